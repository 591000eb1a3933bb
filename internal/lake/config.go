package lake

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// Config says where the lake bucket is and how long each retention class keeps data.
type Config struct {
	// Endpoint is the S3 API URL of a non-AWS server (http(s)://host:port); empty means
	// AWS S3 itself, found from Region.
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the bucket's region. Defaults to us-east-1, which S3-compatible servers
	// accept whatever they call their region.
	Region string `json:"region,omitempty"`
	// Bucket holds every tenant's prefix.
	Bucket string `json:"bucket"`
	// PathStyle addresses the bucket as <endpoint>/<bucket> instead of
	// <bucket>.<endpoint>; most S3-compatible servers need it.
	PathStyle bool `json:"pathStyle,omitempty"`
	// AccessKeyID and SecretAccessKey are static credentials. Both empty means the
	// default AWS chain (environment, shared files, IRSA, instance role).
	AccessKeyID     string `json:"accessKeyID,omitempty"`
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	// Classes sets the lifecycle of each retention class. A class left out keeps its
	// default (Standard 365 days, Extended 3 years, Compliance 7 years).
	Classes []ClassLifecycle `json:"classes,omitempty"`
}

// ClassLifecycle is the bucket lifecycle of one retention class: one rule on the
// class's prefix, whatever the number of tenants in it.
type ClassLifecycle struct {
	// Class is Standard, Extended or Compliance.
	Class v1alpha1.LakeClass `json:"class"`
	// ExpireAfterDays deletes objects this many days after they were written; 0 means
	// the class default.
	ExpireAfterDays int `json:"expireAfterDays,omitempty"`
	// TransitionAfterDays moves objects to StorageClass this many days after they were
	// written; 0 means no transition.
	TransitionAfterDays int `json:"transitionAfterDays,omitempty"`
	// StorageClass is the S3 storage class objects move to (for example GLACIER_IR),
	// required with TransitionAfterDays.
	StorageClass string `json:"storageClass,omitempty"`
}

// DefaultRegion is the region used when none is configured.
const DefaultRegion = "us-east-1"

// Classes lists the retention classes in the order their rules are written.
func Classes() []v1alpha1.LakeClass {
	return []v1alpha1.LakeClass{v1alpha1.LakeStandard, v1alpha1.LakeExtended, v1alpha1.LakeCompliance}
}

// DefaultExpireAfterDays is how long a class keeps data when the config does not say.
func DefaultExpireAfterDays(class v1alpha1.LakeClass) int {
	switch class {
	case v1alpha1.LakeExtended:
		return 3 * 365
	case v1alpha1.LakeCompliance:
		return 7 * 365
	default:
		return 365
	}
}

// maxDays bounds lifecycle days to a century, far beyond any retention a class needs,
// so a typo (an extra zero or two) is caught rather than written to the bucket.
const maxDays = 36500

// Default fills in the region and one lifecycle per retention class, in class order.
func (c *Config) Default() {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	byClass := map[v1alpha1.LakeClass]ClassLifecycle{}
	var unknown []ClassLifecycle
	for _, cl := range c.Classes {
		if !slices.Contains(Classes(), cl.Class) {
			unknown = append(unknown, cl) // kept so Validate reports it
			continue
		}
		if _, dup := byClass[cl.Class]; dup {
			unknown = append(unknown, cl) // a duplicate too, for Validate
			continue
		}
		byClass[cl.Class] = cl
	}
	classes := make([]ClassLifecycle, 0, len(Classes())+len(unknown))
	for _, class := range Classes() {
		cl, ok := byClass[class]
		if !ok {
			cl = ClassLifecycle{Class: class}
		}
		if cl.ExpireAfterDays == 0 {
			cl.ExpireAfterDays = DefaultExpireAfterDays(class)
		}
		classes = append(classes, cl)
	}
	c.Classes = append(classes, unknown...)
}

// S3 bucket naming rules (the common subset all servers accept).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate reports every invalid field under path. Call Default first.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Child("endpoint"), c.Endpoint, err.Error()))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, field.Invalid(path.Child("endpoint"), c.Endpoint, "must be an http:// or https:// URL with a host"))
		}
	}
	if c.Region == "" {
		errs = append(errs, field.Required(path.Child("region"), ""))
	}
	switch {
	case c.Bucket == "":
		errs = append(errs, field.Required(path.Child("bucket"), "the lake bucket holds every tenant's prefix"))
	case !bucketName.MatchString(c.Bucket):
		errs = append(errs, field.Invalid(path.Child("bucket"), c.Bucket, "must be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'"))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, field.Required(path.Child("secretAccessKey"), "accessKeyID and secretAccessKey go together; leave both empty for the default AWS credential chain"))
	}

	seen := map[v1alpha1.LakeClass]bool{}
	known := make([]string, 0, len(Classes()))
	for _, class := range Classes() {
		known = append(known, string(class))
	}
	storageClasses := make([]string, 0)
	for _, sc := range types.TransitionStorageClass("").Values() {
		storageClasses = append(storageClasses, string(sc))
	}
	for i, cl := range c.Classes {
		p := path.Child("classes").Index(i)
		switch {
		case !slices.Contains(Classes(), cl.Class):
			errs = append(errs, field.NotSupported(p.Child("class"), cl.Class, known))
		case seen[cl.Class]:
			errs = append(errs, field.Duplicate(p.Child("class"), cl.Class))
		}
		seen[cl.Class] = true
		if cl.ExpireAfterDays < 1 || cl.ExpireAfterDays > maxDays {
			errs = append(errs, field.Invalid(p.Child("expireAfterDays"), cl.ExpireAfterDays, fmt.Sprintf("must be between 1 and %d", maxDays)))
		}
		switch {
		case cl.TransitionAfterDays < 0:
			errs = append(errs, field.Invalid(p.Child("transitionAfterDays"), cl.TransitionAfterDays, "must not be negative"))
		case cl.TransitionAfterDays > 0 && cl.TransitionAfterDays >= cl.ExpireAfterDays:
			errs = append(errs, field.Invalid(p.Child("transitionAfterDays"), cl.TransitionAfterDays, "must be less than expireAfterDays: objects would expire before they move"))
		case cl.TransitionAfterDays > 0 && cl.StorageClass == "":
			errs = append(errs, field.Required(p.Child("storageClass"), "needed with transitionAfterDays"))
		case cl.TransitionAfterDays == 0 && cl.StorageClass != "":
			errs = append(errs, field.Required(p.Child("transitionAfterDays"), "needed with storageClass"))
		}
		if cl.StorageClass != "" && !slices.Contains(storageClasses, cl.StorageClass) {
			errs = append(errs, field.NotSupported(p.Child("storageClass"), cl.StorageClass, storageClasses))
		}
	}
	return errs
}

// lifecycle returns the lifecycle of a class, defaulted.
func (c *Config) lifecycle(class v1alpha1.LakeClass) ClassLifecycle {
	for _, cl := range c.Classes {
		if cl.Class == class {
			return cl
		}
	}
	return ClassLifecycle{Class: class, ExpireAfterDays: DefaultExpireAfterDays(class)}
}
