// Package lake is Shoal's adapter to the S3 data lake: the bucket, its lifecycle rules (one
// per retention class, whatever the tenant count) and each tenant's prefix under its class.
package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Lake talks to the lake bucket.
type Lake struct {
	client *s3.Client
	cfg    Config
	// partSize is PutStream's part size: DefaultPartSize, smaller in tests.
	partSize int
}

// New checks the config and builds an S3 client for it. It does not contact the server.
func New(ctx context.Context, cfg Config) (*Lake, error) {
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("invalid lake config: %w", errs.ToAggregate())
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration for the lake: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// S3-compatible servers differ in which of the newer default checksums they
			// accept; sending them only where the API requires one works with all.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return &Lake{client: client, cfg: cfg, partSize: DefaultPartSize}, nil
}

// Bucket is the lake bucket's name.
func (l *Lake) Bucket() string { return l.cfg.Bucket }

// EnsureBucket creates the bucket when it does not exist. A bucket that exists, created by
// Shoal or beforehand, is left as it is.
func (l *Lake) EnsureBucket(ctx context.Context) error {
	_, err := l.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &l.cfg.Bucket})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("checking lake bucket %s: %w", l.cfg.Bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: &l.cfg.Bucket}
	// us-east-1 is the one region S3 refuses as an explicit location constraint.
	if l.cfg.Region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(l.cfg.Region),
		}
	}
	if _, err := l.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil // created concurrently by another reconcile
		}
		return fmt.Errorf("creating lake bucket %s: %w", l.cfg.Bucket, err)
	}
	return nil
}

// Marker is the content of the object that marks a tenant prefix, so prefixes can be found
// and attributed without the metastore.
type Marker struct {
	Tenant  string             `json:"tenant"`
	Class   v1alpha1.LakeClass `json:"class"`
	Created time.Time          `json:"created"`
}

// markerName is the object written at the root of every tenant prefix.
const markerName = "_shoal_tenant.json"

// MarkerKey is the key of the marker object of a tenant prefix.
func MarkerKey(prefix string) string { return prefix + markerName }

// EnsureTenantPrefix makes the tenant's prefix under its retention class exist by writing
// its marker object, once: an existing marker keeps its creation time. It returns the
// prefix.
func (l *Lake) EnsureTenantPrefix(ctx context.Context, class v1alpha1.LakeClass, tenant string) (string, error) {
	if !slices.Contains(Classes(), class) {
		return "", fmt.Errorf("lake class %q is not one of %v", class, Classes())
	}
	if tenant == "" {
		return "", errors.New("tenant name is empty")
	}
	prefix := naming.LakePrefix(string(class), tenant)
	exists, err := l.TenantPrefixExists(ctx, prefix)
	if err != nil {
		return "", err
	}
	if exists {
		return prefix, nil
	}
	body, err := json.Marshal(Marker{Tenant: tenant, Class: class, Created: time.Now().UTC()})
	if err != nil {
		return "", fmt.Errorf("encoding lake prefix marker: %w", err)
	}
	if err := l.PutObject(ctx, MarkerKey(prefix), body, "application/json"); err != nil {
		return "", fmt.Errorf("creating lake prefix %s: %w", prefix, err)
	}
	return prefix, nil
}

// TenantPrefixExists reports whether the prefix's marker object exists.
func (l *Lake) TenantPrefixExists(ctx context.Context, prefix string) (bool, error) {
	_, err := l.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &l.cfg.Bucket, Key: aws.String(MarkerKey(prefix))})
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("checking lake prefix %s: %w", prefix, err)
	}
}

// ReadMarker returns the marker of a tenant prefix.
func (l *Lake) ReadMarker(ctx context.Context, prefix string) (Marker, error) {
	data, err := l.GetObject(ctx, MarkerKey(prefix))
	if err != nil {
		return Marker{}, err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return Marker{}, fmt.Errorf("decoding lake prefix marker %s: %w", MarkerKey(prefix), err)
	}
	return m, nil
}

// DeleteTenantPrefix deletes every object under a tenant prefix and returns how many it
// deleted. It refuses anything that is not a tenant prefix, so a bug upstream cannot empty
// a whole class or the bucket.
func (l *Lake) DeleteTenantPrefix(ctx context.Context, prefix string) (int, error) {
	if !isTenantPrefix(prefix) {
		return 0, fmt.Errorf("refusing to delete %q: not a tenant prefix (<class>/tenant=<name>/)", prefix)
	}
	deleted := 0
	// Always list the first page again instead of following continuation tokens: the
	// objects a token points past are being deleted, which some servers handle badly.
	for {
		page, err := l.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &l.cfg.Bucket, Prefix: &prefix})
		if err != nil {
			return deleted, fmt.Errorf("listing lake prefix %s: %w", prefix, err)
		}
		if len(page.Contents) == 0 {
			return deleted, nil
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, obj := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: obj.Key})
		}
		out, err := l.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &l.cfg.Bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return deleted, fmt.Errorf("deleting objects under lake prefix %s: %w", prefix, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return deleted, fmt.Errorf("deleting %d objects under lake prefix %s failed, first %s: %s %s",
				len(out.Errors), prefix, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		deleted += len(ids)
	}
}

// isTenantPrefix reports whether prefix has the shape naming.LakePrefix gives.
func isTenantPrefix(prefix string) bool {
	class, rest, ok := strings.Cut(prefix, "/")
	if !ok || class == "" {
		return false
	}
	tenant, ok := strings.CutPrefix(rest, "tenant=")
	return ok && len(tenant) > 1 && strings.Count(tenant, "/") == 1 && strings.HasSuffix(tenant, "/")
}

// PutObject writes an object.
func (l *Lake) PutObject(ctx context.Context, key string, body []byte, contentType string) error {
	in := &s3.PutObjectInput{
		Bucket:        &l.cfg.Bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	if contentType != "" {
		in.ContentType = &contentType
	}
	if _, err := l.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("writing lake object %s: %w", key, err)
	}
	return nil
}

// GetObject reads a whole object.
func (l *Lake) GetObject(ctx context.Context, key string) ([]byte, error) {
	out, err := l.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.cfg.Bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("reading lake object %s: %w", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("reading lake object %s: %w", key, err)
	}
	return data, nil
}

// isNotFound reports a missing bucket, key or configuration. HEAD responses have no body,
// so the status code is all there is to go on.
func isNotFound(err error) bool {
	if code := errorCode(err); code == "NotFound" || code == "NoSuchKey" || code == "NoSuchBucket" {
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}
