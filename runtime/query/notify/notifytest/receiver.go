// Package notifytest has a webhook receiver for tests of notification delivery: a real
// HTTP server on a loopback port that fails its first requests as told and keeps every
// request it got.
package notifytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is one request a Receiver got.
type Request struct {
	At     time.Time
	Header http.Header
	Body   []byte
}

// Receiver answers Status (with Retry-After when set) to its first Fail requests, to
// every request when Fail < 0, and 204 after.
type Receiver struct {
	// URL is the server's base URL.
	URL string

	fail, status int
	retryAfter   string
	mu           sync.Mutex
	reqs         []Request
}

// NewReceiver starts a Receiver, closed when the test ends.
func NewReceiver(t testing.TB, fail, status int, retryAfter string) *Receiver {
	t.Helper()
	rcv := &Receiver{fail: fail, status: status, retryAfter: retryAfter}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rcv.mu.Lock()
		rcv.reqs = append(rcv.reqs, Request{At: time.Now(), Header: r.Header.Clone(), Body: body})
		n := len(rcv.reqs)
		rcv.mu.Unlock()
		if rcv.fail < 0 || n <= rcv.fail {
			if rcv.retryAfter != "" {
				w.Header().Set("Retry-After", rcv.retryAfter)
			}
			w.WriteHeader(rcv.status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rcv.URL = srv.URL
	return rcv
}

// Requests are the requests received so far, in order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// NewHangingReceiver starts a server that answers no request until release is called
// (or the client gives up), and returns its URL. Call release before whatever waits for
// its requests to end (a dispatcher's drain) is cleaned up.
func NewHangingReceiver(t testing.TB) (url string, release func()) {
	t.Helper()
	ch := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-ch:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	// Cleanups run last-in first-out: release the handlers, then close the server.
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return srv.URL, release
}
