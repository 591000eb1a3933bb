package lake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

func testLake(t *testing.T, srv *testbackends.S3, bucket string) *Lake {
	t.Helper()
	l, err := New(context.Background(), Config{
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		Bucket:          bucket,
		PathStyle:       true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLifecycleRules(t *testing.T) {
	custom := Config{Bucket: "lake", Classes: []ClassLifecycle{
		{Class: v1alpha1.LakeExtended, ExpireAfterDays: 400, TransitionAfterDays: 30, StorageClass: "GLACIER_IR"},
	}}
	tests := []struct {
		name       string
		cfg        Config
		wantExpire map[string]int32
		transition map[string]string // rule ID -> "days:class"
	}{{
		name:       "defaults",
		cfg:        Config{Bucket: "lake"},
		wantExpire: map[string]int32{"shoal-standard": 365, "shoal-extended": 1095, "shoal-compliance": 2555},
	}, {
		name:       "one class configured, others default",
		cfg:        custom,
		wantExpire: map[string]int32{"shoal-standard": 365, "shoal-extended": 400, "shoal-compliance": 2555},
		transition: map[string]string{"shoal-extended": "30:GLACIER_IR"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := LifecycleRules(tt.cfg)
			if len(rules) != 3 {
				t.Fatalf("got %d rules, want one per class (3)", len(rules))
			}
			for _, r := range rules {
				id := aws.ToString(r.ID)
				class, ok := strings.CutPrefix(id, "shoal-")
				if !ok {
					t.Errorf("rule ID %q does not start with shoal-", id)
				}
				if got, want := aws.ToString(r.Filter.Prefix), class+"/"; got != want {
					t.Errorf("rule %s: prefix %q, want %q", id, got, want)
				}
				if got := aws.ToInt32(r.Expiration.Days); got != tt.wantExpire[id] {
					t.Errorf("rule %s: expires after %d days, want %d", id, got, tt.wantExpire[id])
				}
				var transition string
				for _, tr := range r.Transitions {
					transition = fmt.Sprintf("%d:%s", aws.ToInt32(tr.Days), tr.StorageClass)
				}
				if transition != tt.transition[id] {
					t.Errorf("rule %s: transition %q, want %q", id, transition, tt.transition[id])
				}
			}
		})
	}

	// Every tenant prefix falls under exactly one class rule, so a thousand tenants still
	// need three rules.
	rules := LifecycleRules(Config{Bucket: "lake"})
	for i := range 1000 {
		class := Classes()[i%3]
		prefix := naming.LakePrefix(string(class), fmt.Sprintf("tenant-%d", i))
		matches := 0
		for _, r := range rules {
			if strings.HasPrefix(prefix, aws.ToString(r.Filter.Prefix)) {
				matches++
			}
		}
		if matches != 1 {
			t.Fatalf("prefix %s matches %d rules, want 1", prefix, matches)
		}
	}
	if len(LifecycleRules(Config{Bucket: "lake"})) != 3 {
		t.Fatal("rule count changed")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // fields with errors
	}{
		{"minimal", Config{Bucket: "shoal-lake"}, nil},
		{"no bucket", Config{}, []string{"lake.bucket"}},
		{"bad bucket", Config{Bucket: "Shoal_Lake"}, []string{"lake.bucket"}},
		{"bad endpoint", Config{Bucket: "lake", Endpoint: "127.0.0.1:9000"}, []string{"lake.endpoint"}},
		{"key without secret", Config{Bucket: "lake", AccessKeyID: "a"}, []string{"lake.secretAccessKey"}},
		{"unknown class", Config{Bucket: "lake", Classes: []ClassLifecycle{{Class: "Forever", ExpireAfterDays: 1}}}, []string{"lake.classes[3].class"}},
		{"transition after expiry", Config{Bucket: "lake", Classes: []ClassLifecycle{{Class: v1alpha1.LakeStandard, ExpireAfterDays: 10, TransitionAfterDays: 20, StorageClass: "GLACIER"}}}, []string{"lake.classes[0].transitionAfterDays"}},
		{"transition without class", Config{Bucket: "lake", Classes: []ClassLifecycle{{Class: v1alpha1.LakeStandard, TransitionAfterDays: 20}}}, []string{"lake.classes[0].storageClass"}},
		{"bad storage class", Config{Bucket: "lake", Classes: []ClassLifecycle{{Class: v1alpha1.LakeStandard, TransitionAfterDays: 20, StorageClass: "COLD"}}}, []string{"lake.classes[0].storageClass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Default()
			errs := tt.cfg.Validate(field.NewPath("lake"))
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("errors on %v, want on %v: %v", got, tt.want, errs)
			}
		})
	}
}

func TestIsTenantPrefix(t *testing.T) {
	tests := map[string]bool{
		naming.LakePrefix("Standard", "acme"): true,
		"":                                    false,
		"standard/":                           false,
		"standard/tenant=/":                   false,
		"standard/tenant=acme":                false,
		"standard/tenant=acme/dt=2026-01-01/": false,
		"/tenant=acme/":                       false,
	}
	for prefix, want := range tests {
		if got := isTenantPrefix(prefix); got != want {
			t.Errorf("isTenantPrefix(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func TestLakeAgainstS3(t *testing.T) {
	srv := testbackends.StartS3(t)
	ctx := context.Background()
	l := testLake(t, srv, "shoal-lake")

	t.Run("bucket is created idempotently", func(t *testing.T) {
		for i := range 2 {
			if err := l.EnsureBucket(ctx); err != nil {
				t.Fatalf("EnsureBucket #%d: %v", i+1, err)
			}
		}
		if _, err := l.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("shoal-lake")}); err != nil {
			t.Fatalf("bucket missing after EnsureBucket: %v", err)
		}
	})

	t.Run("concurrent EnsureBucket", func(t *testing.T) {
		other := testLake(t, srv, "shoal-lake-concurrent")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = other.EnsureBucket(ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lifecycle unsupported is reported as such", func(t *testing.T) {
		changed, err := l.EnsureLifecycle(ctx)
		t.Logf("error: %v", err)
		if !errors.Is(err, ErrLifecycleUnsupported) {
			t.Fatalf("EnsureLifecycle = %v, %v; want ErrLifecycleUnsupported (versitygw has no lifecycle)", changed, err)
		}
		if IsUnavailable(err) {
			t.Error("an unsupported feature is not an outage")
		}
	})

	t.Run("tenant prefix marker", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		prefix, err := l.EnsureTenantPrefix(ctx, v1alpha1.LakeCompliance, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if want := "compliance/tenant=acme/"; prefix != want {
			t.Fatalf("prefix %q, want %q", prefix, want)
		}
		exists, err := l.TenantPrefixExists(ctx, prefix)
		if err != nil || !exists {
			t.Fatalf("TenantPrefixExists = %v, %v; want true", exists, err)
		}
		m, err := l.ReadMarker(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if m.Tenant != "acme" || m.Class != v1alpha1.LakeCompliance || m.Created.Before(before) || m.Created.After(time.Now()) {
			t.Fatalf("marker %+v, want tenant acme, class Compliance, created just now", m)
		}
		// Ensuring again keeps the first marker.
		if _, err := l.EnsureTenantPrefix(ctx, v1alpha1.LakeCompliance, "acme"); err != nil {
			t.Fatal(err)
		}
		again, err := l.ReadMarker(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Created.Equal(m.Created) {
			t.Errorf("marker rewritten: created %s, then %s", m.Created, again.Created)
		}
		if exists, err := l.TenantPrefixExists(ctx, naming.LakePrefix("Standard", "nobody")); err != nil || exists {
			t.Errorf("TenantPrefixExists(nobody) = %v, %v; want false", exists, err)
		}
		if _, err := l.EnsureTenantPrefix(ctx, "Forever", "acme"); err == nil {
			t.Error("unknown class accepted")
		}
	})

	t.Run("DeleteTenantPrefix deletes past one page and nothing else", func(t *testing.T) {
		doomed, err := l.EnsureTenantPrefix(ctx, v1alpha1.LakeStandard, "doomed")
		if err != nil {
			t.Fatal(err)
		}
		kept, err := l.EnsureTenantPrefix(ctx, v1alpha1.LakeStandard, "doomed-not")
		if err != nil {
			t.Fatal(err)
		}
		const objects = 1500
		putMany(t, l, doomed, objects)
		putMany(t, l, kept, 3)

		deleted, err := l.DeleteTenantPrefix(ctx, doomed)
		if err != nil {
			t.Fatal(err)
		}
		if deleted != objects+1 { // and the marker
			t.Errorf("deleted %d objects, want %d", deleted, objects+1)
		}
		if n := countObjects(t, l, doomed); n != 0 {
			t.Errorf("%d objects left under %s", n, doomed)
		}
		if n := countObjects(t, l, kept); n != 4 {
			t.Errorf("%d objects under %s, want its 3 and its marker", n, kept)
		}
		if _, err := l.DeleteTenantPrefix(ctx, "standard/"); err == nil {
			t.Error("deleting a whole class was accepted")
		}
	})

	t.Run("wrong credentials are refused", func(t *testing.T) {
		bad, err := New(ctx, Config{
			Endpoint: srv.Endpoint, Region: srv.Region, Bucket: "shoal-lake", PathStyle: true,
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey + "x",
		})
		if err != nil {
			t.Fatal(err)
		}
		err = bad.PutObject(ctx, "standard/tenant=acme/x", []byte("x"), "")
		if err == nil {
			t.Fatal("write with a wrong secret succeeded")
		}
		t.Logf("error: %v", err)
		if httpStatus(err) != http.StatusForbidden {
			t.Errorf("status %d, want 403 (the server checked the signature)", httpStatus(err))
		}
		if IsUnavailable(err) {
			t.Errorf("refused credentials reported as an outage: %v", err)
		}
	})

	t.Run("server down is unavailable, and back", func(t *testing.T) {
		srv.Stop()
		_, err := l.TenantPrefixExists(ctx, naming.LakePrefix("Standard", "acme"))
		t.Logf("error: %v", err)
		if !IsUnavailable(err) {
			t.Errorf("with the server down, IsUnavailable(%v) = false", err)
		}
		srv.Start()
		if err := l.EnsureBucket(ctx); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	})
}

func putMany(t *testing.T, l *Lake, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			key := fmt.Sprintf("%sdt=2026-11-26/hr=%02d/batch-%05d.json", prefix, i%24, i)
			if err := l.PutObject(context.Background(), key, []byte(`{"n":1}`), "application/json"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func countObjects(t *testing.T, l *Lake, prefix string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectsV2Paginator(l.client, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket()), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

func TestSameRules(t *testing.T) {
	want := LifecycleRules(Config{Bucket: "lake"})
	// As a server may return them: reversed, with the old top-level Prefix field.
	returned := make([]types.LifecycleRule, 0, len(want))
	for _, r := range slices.Backward(want) {
		r.Prefix = r.Filter.Prefix //nolint:staticcheck // the old field, as servers send it
		r.Filter = nil
		returned = append(returned, r)
	}
	longer := LifecycleRules(Config{Bucket: "lake", Classes: []ClassLifecycle{{Class: v1alpha1.LakeStandard, ExpireAfterDays: 400}}})
	tests := []struct {
		name string
		have []types.LifecycleRule
		same bool
	}{
		{"identical", LifecycleRules(Config{Bucket: "lake"}), true},
		{"reordered, old prefix field", returned, true},
		{"none", nil, false},
		{"a class missing", want[1:], false},
		{"expiry changed", longer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameRules(tt.have, want); got != tt.same {
				t.Errorf("sameRules = %v, want %v", got, tt.same)
			}
		})
	}
}
