package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DefaultPartSize is the part size of PutStream's multipart uploads: above S3's 5 MiB
// minimum, and with S3's 10,000 parts it allows objects of 80 GiB.
const DefaultPartSize = 8 << 20

// maxParts is S3's limit on the parts of one upload.
const maxParts = 10000

// abortTimeout bounds aborting a failed upload, which runs even when ctx is done so a
// cancelled stream does not leave its parts behind.
const abortTimeout = 30 * time.Second

// PutStream writes an object from r without holding it in memory: a body shorter than
// one part is one PutObject, a longer one a multipart upload of parts read one at a time.
// It returns the object's size. When r or the server fails, the multipart upload is
// aborted, so no object (and no stored part) is left behind; an existing object under key
// is kept. Errors from r are returned wrapped.
func (l *Lake) PutStream(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	buf := make([]byte, l.partSize)
	n, err := io.ReadFull(r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if err := l.PutObject(ctx, key, buf[:n], contentType); err != nil {
			return 0, err
		}
		return int64(n), nil
	case err != nil:
		return 0, fmt.Errorf("writing lake object %s: reading the body: %w", key, err)
	}

	in := &s3.CreateMultipartUploadInput{Bucket: &l.cfg.Bucket, Key: &key}
	if contentType != "" {
		in.ContentType = &contentType
	}
	created, err := l.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("writing lake object %s: starting multipart upload: %w", key, err)
	}
	size, err := l.uploadParts(ctx, key, created.UploadId, r, buf, n)
	if err != nil {
		// The abort gets its own context: ctx may be the reason the upload failed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, abortErr := l.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &l.cfg.Bucket, Key: &key, UploadId: created.UploadId,
		}); abortErr != nil {
			// The bucket's lifecycle rule removes what is left after a few days.
			return 0, fmt.Errorf("%w (and aborting the upload failed: %w)", err, abortErr)
		}
		return 0, err
	}
	return size, nil
}

// uploadParts uploads the first part, already read into buf[:n], and the rest of r, then
// completes the upload. buf is reused for every part: UploadPart is done with its body,
// retries included, when it returns.
func (l *Lake) uploadParts(ctx context.Context, key string, uploadID *string, r io.Reader, buf []byte, n int) (int64, error) {
	var (
		parts []types.CompletedPart
		size  int64
	)
	for n > 0 {
		num := int32(len(parts) + 1)
		if num > maxParts {
			return 0, fmt.Errorf("writing lake object %s: more than %d parts of %d bytes", key, maxParts, len(buf))
		}
		out, err := l.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        &l.cfg.Bucket,
			Key:           &key,
			UploadId:      uploadID,
			PartNumber:    aws.Int32(num),
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return 0, fmt.Errorf("writing lake object %s: uploading part %d: %w", key, num, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		size += int64(n)

		n, err = io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("writing lake object %s: reading the body after %d bytes: %w", key, size, err)
		}
	}
	if _, err := l.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &l.cfg.Bucket,
		Key:             &key,
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return 0, fmt.Errorf("writing lake object %s: completing multipart upload: %w", key, err)
	}
	return size, nil
}
