package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Error is a failed provisioning call. It names the topic and the backend so a condition
// built from it says where to look.
type Error struct {
	// Op is what was being done, such as "creating topic".
	Op string
	// Topic is the topic concerned.
	Topic string
	// Backend names what was called: the brokers, or the Strimzi namespace and cluster.
	Backend string
	// Unavailable is true when the backend could not be reached or answered with a
	// transient error: the call is worth retrying unchanged.
	Unavailable bool
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	what := "kafka"
	if e.Unavailable {
		what = "kafka unavailable"
	}
	return fmt.Sprintf("%s: %s %s on %s: %v", what, e.Op, e.Topic, e.Backend, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsUnavailable reports whether err comes from a backend that could not be reached or
// failed transiently, so retrying later may succeed; false for errors that retrying will
// not fix (an invalid spec, a refused request).
func IsUnavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Unavailable
}

// brokerUnavailable classifies an error from the Kafka admin API.
func brokerUnavailable(err error) bool {
	var netErr net.Error
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return true
	case errors.As(err, &ke):
		return ke.Retriable || errors.Is(err, kerr.BrokerNotAvailable) || errors.Is(err, kerr.CoordinatorNotAvailable)
	}
	// The client reports exhausted retries on a dead broker in wrapped forms that do not
	// always keep the net.Error, such as "unable to dial".
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "unable to dial") || strings.Contains(msg, "i/o timeout")
}

// apiUnavailable classifies an error from the Kubernetes API server.
func apiUnavailable(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) ||
		apierrors.IsConflict(err)
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}
