package lake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

var errBody = errors.New("body broke")

// brokenReader yields the bytes of data up to failAt, then errBody (or, with cancel set,
// cancels the upload's context at failAt and goes on yielding).
type brokenReader struct {
	data   []byte
	off    int
	failAt int
	cancel context.CancelFunc
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.off >= r.failAt {
		if r.cancel == nil {
			return 0, errBody
		}
		r.cancel()
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if r.off < r.failAt {
		end = min(end, r.failAt)
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(b)
	return b
}

func TestPutStream(t *testing.T) {
	srv := testbackends.StartS3(t)
	ctx := context.Background()
	l := testLake(t, srv, "shoal-stream")
	if err := l.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	// S3's minimum for all parts but the last; small enough to keep the test quick.
	const part = 5 << 20
	l.partSize = part

	pendingUploads := func(key string) int {
		t.Helper()
		out, err := l.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(l.Bucket()), Prefix: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name  string
			size  int
			parts int // of the stored object; 0 for a single PutObject
		}{
			{"empty", 0, 0},
			{"less than a part", part - 1, 0},
			{"exactly one part", part, 1},
			{"parts and a short last one", 2*part + part/2, 3},
			{"exactly two parts", 2 * part, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := "standard/tenant=acme/stream/" + tt.name
				body := randomBytes(tt.size)
				n, err := l.PutStream(ctx, key, bytes.NewReader(body), "application/octet-stream")
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(tt.size) {
					t.Errorf("PutStream = %d bytes, want %d", n, tt.size)
				}
				got, err := l.GetObject(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, body) {
					t.Errorf("read back %d bytes that differ from the %d written", len(got), len(body))
				}
				head, err := l.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(l.Bucket()), Key: &key, PartNumber: aws.Int32(1)})
				if err != nil {
					t.Fatal(err)
				}
				if parts := int(aws.ToInt32(head.PartsCount)); parts != tt.parts {
					t.Errorf("stored in %d parts, want %d", parts, tt.parts)
				}
				if ct := aws.ToString(head.ContentType); ct != "application/octet-stream" {
					t.Errorf("content type %q", ct)
				}
				if n := pendingUploads(key); n != 0 {
					t.Errorf("%d multipart uploads left open", n)
				}
			})
		}
	})

	t.Run("a failing body leaves nothing behind", func(t *testing.T) {
		tests := []struct {
			name   string
			failAt int
		}{
			{"within the first part", part / 2},
			{"after the first part", part + part/2},
			{"after two parts", 2 * part},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := "standard/tenant=acme/broken/" + tt.name
				_, err := l.PutStream(ctx, key, &brokenReader{data: randomBytes(3 * part), failAt: tt.failAt}, "")
				if !errors.Is(err, errBody) {
					t.Fatalf("PutStream = %v, want the body's error", err)
				}
				if _, err := l.GetObject(ctx, key); !isNotFound(err) {
					t.Errorf("object after a failed stream: GetObject = %v, want not found", err)
				}
				if n := pendingUploads(key); n != 0 {
					t.Errorf("%d multipart uploads left open", n)
				}
			})
		}
	})

	t.Run("a cancelled upload is aborted", func(t *testing.T) {
		key := "standard/tenant=acme/cancelled"
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := l.PutStream(cctx, key, &brokenReader{data: randomBytes(3 * part), failAt: part + 1, cancel: cancel}, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutStream = %v, want context.Canceled", err)
		}
		if n := pendingUploads(key); n != 0 {
			t.Errorf("%d multipart uploads left open", n)
		}
	})

	t.Run("a failing stream keeps the existing object", func(t *testing.T) {
		key := "standard/tenant=acme/kept"
		if err := l.PutObject(ctx, key, []byte("old"), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := l.PutStream(ctx, key, &brokenReader{data: randomBytes(2 * part), failAt: part + 1}, ""); err == nil {
			t.Fatal("PutStream succeeded with a failing body")
		}
		if got, err := l.GetObject(ctx, key); err != nil || string(got) != "old" {
			t.Errorf("object = %q, %v; want the old one", got, err)
		}
	})
}
