package lake

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// lakeError is a constant error, so sentinels are not package-level variables.
type lakeError string

func (e lakeError) Error() string { return string(e) }

// ErrLifecycleUnsupported says the S3 server does not implement bucket lifecycle rules,
// so retention classes are not enforced by the bucket. It is a status to report, not a
// reason to stop provisioning.
const ErrLifecycleUnsupported = lakeError("the S3 server does not support bucket lifecycle rules; retention classes are not enforced")

// IsUnavailable reports an error that says the S3 server could not be reached or failed
// on its side (connection refused or reset, timeout, 5xx), so retrying later may succeed.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, ErrLifecycleUnsupported) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	status := httpStatus(err)
	return status >= 500 && status != http.StatusNotImplemented
}

// errorCode is the S3 error code of err ("NoSuchKey", "NotImplemented"), or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of the response that caused err, or 0.
func httpStatus(err error) int {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}
