package lake

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// ruleIDPrefix starts the ID of every lifecycle rule Shoal owns; rules with other IDs
// belong to someone else and are kept as they are.
const ruleIDPrefix = "shoal-"

// abortIncompleteUploadsDays cleans up multipart uploads a crashed writer left behind.
const abortIncompleteUploadsDays = 7

// RuleID is the stable ID of a class's lifecycle rule.
func RuleID(class v1alpha1.LakeClass) string { return ruleIDPrefix + strings.ToLower(string(class)) }

// ClassPrefix is the key prefix of every tenant prefix of a class; naming.LakePrefix
// starts with it.
func ClassPrefix(class v1alpha1.LakeClass) string { return strings.ToLower(string(class)) + "/" }

// LifecycleRules are the bucket lifecycle rules of the config: one per retention class on
// the class's prefix, so their number does not depend on how many tenants there are.
func LifecycleRules(cfg Config) []types.LifecycleRule {
	cfg.Default()
	rules := make([]types.LifecycleRule, 0, len(Classes()))
	for _, class := range Classes() {
		cl := cfg.lifecycle(class)
		rule := types.LifecycleRule{
			ID:         aws.String(RuleID(class)),
			Status:     types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String(ClassPrefix(class))},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(int32(cl.ExpireAfterDays))},
			AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{
				DaysAfterInitiation: aws.Int32(abortIncompleteUploadsDays),
			},
		}
		if cl.TransitionAfterDays > 0 {
			rule.Transitions = []types.Transition{{
				Days:         aws.Int32(int32(cl.TransitionAfterDays)),
				StorageClass: types.TransitionStorageClass(cl.StorageClass),
			}}
		}
		rules = append(rules, rule)
	}
	return rules
}

// EnsureLifecycle makes the bucket's lifecycle rules those of LifecycleRules, writing
// them only when they differ from what the bucket has, and reports whether it wrote.
// Rules not owned by Shoal are kept. On a server without lifecycle support the error is
// ErrLifecycleUnsupported: data is then kept until deleted, which callers report rather
// than fail provisioning on.
func (l *Lake) EnsureLifecycle(ctx context.Context) (bool, error) {
	current, err := l.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &l.cfg.Bucket})
	var have []types.LifecycleRule
	switch {
	case err == nil:
		have = current.Rules
	case errorCode(err) == "NoSuchLifecycleConfiguration":
	case isNotImplemented(err):
		return false, fmt.Errorf("reading lifecycle of lake bucket %s: %w: %w", l.cfg.Bucket, ErrLifecycleUnsupported, err)
	default:
		return false, fmt.Errorf("reading lifecycle of lake bucket %s: %w", l.cfg.Bucket, err)
	}

	want := LifecycleRules(l.cfg)
	if sameRules(ownRules(have), want) {
		return false, nil
	}
	for _, r := range have {
		if !strings.HasPrefix(aws.ToString(r.ID), ruleIDPrefix) {
			want = append(want, r)
		}
	}
	_, err = l.client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                 &l.cfg.Bucket,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: want},
	})
	if isNotImplemented(err) {
		return false, fmt.Errorf("writing lifecycle of lake bucket %s: %w: %w", l.cfg.Bucket, ErrLifecycleUnsupported, err)
	}
	if err != nil {
		return false, fmt.Errorf("writing lifecycle of lake bucket %s: %w", l.cfg.Bucket, err)
	}
	return true, nil
}

func ownRules(rules []types.LifecycleRule) []types.LifecycleRule {
	var own []types.LifecycleRule
	for _, r := range rules {
		if strings.HasPrefix(aws.ToString(r.ID), ruleIDPrefix) {
			own = append(own, r)
		}
	}
	return own
}

// sameRules compares rules by what Shoal sets, in any order: servers return rules with
// fields filled in or moved (a bare Prefix instead of a Filter) that do not change them.
func sameRules(a, b []types.LifecycleRule) bool {
	key := func(rules []types.LifecycleRule) []string {
		keys := make([]string, 0, len(rules))
		for _, r := range rules {
			keys = append(keys, ruleKey(r))
		}
		slices.Sort(keys)
		return keys
	}
	return slices.Equal(key(a), key(b))
}

func ruleKey(r types.LifecycleRule) string {
	prefix := aws.ToString(r.Prefix) //nolint:staticcheck // servers may still return the old field
	if r.Filter != nil && r.Filter.Prefix != nil {
		prefix = *r.Filter.Prefix
	}
	var expire, abort int32
	if r.Expiration != nil {
		expire = aws.ToInt32(r.Expiration.Days)
	}
	if r.AbortIncompleteMultipartUpload != nil {
		abort = aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation)
	}
	var transitions []string
	for _, t := range r.Transitions {
		transitions = append(transitions, fmt.Sprintf("%d:%s", aws.ToInt32(t.Days), t.StorageClass))
	}
	return fmt.Sprintf("%s|%s|%s|%d|%d|%s", aws.ToString(r.ID), r.Status, prefix, expire, abort, strings.Join(transitions, ","))
}

func isNotImplemented(err error) bool {
	if err == nil {
		return false
	}
	code := errorCode(err)
	return code == "NotImplemented" || code == "NotSupported" || httpStatus(err) == http.StatusNotImplemented
}
