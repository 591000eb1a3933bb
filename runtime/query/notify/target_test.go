package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		want         error // with private targets refused
		allowPrivate error // with them allowed
	}{
		{"https://hooks.example.com/shoal", nil, nil},
		{"http://hooks.example.com:8080/x?y=1", nil, nil},
		{"https://93.184.215.14/hook", nil, nil},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook", nil, nil},
		{"ftp://hooks.example.com/", ErrInvalidURL, ErrInvalidURL},
		{"file:///etc/passwd", ErrInvalidURL, ErrInvalidURL},
		{"gopher://127.0.0.1:6379/_FLUSHALL", ErrInvalidURL, ErrInvalidURL},
		{"https://user:pass@hooks.example.com/", ErrInvalidURL, ErrInvalidURL},
		{"https://user@hooks.example.com/", ErrInvalidURL, ErrInvalidURL},
		{"https:///no-host", ErrInvalidURL, ErrInvalidURL},
		{"https://:443/no-host", ErrInvalidURL, ErrInvalidURL},
		{"not a url", ErrInvalidURL, ErrInvalidURL},
		{"https://hooks.example.com/" + strings.Repeat("a", MaxURLLength), ErrInvalidURL, ErrInvalidURL},
		{"http://localhost:8080/", ErrForbiddenTarget, nil},
		{"http://LOCALHOST./", ErrForbiddenTarget, nil},
		{"http://api.localhost/", ErrForbiddenTarget, nil},
		{"http://127.0.0.1/", ErrForbiddenTarget, nil},
		{"http://127.8.9.10/", ErrForbiddenTarget, nil},
		{"http://[::1]:9000/", ErrForbiddenTarget, nil},
		{"http://[::ffff:127.0.0.1]/", ErrForbiddenTarget, nil},
		{"http://10.1.2.3/", ErrForbiddenTarget, nil},
		{"http://172.16.0.1/", ErrForbiddenTarget, nil},
		{"http://172.31.255.255/", ErrForbiddenTarget, nil},
		{"http://192.168.1.1/", ErrForbiddenTarget, nil},
		{"http://[fd00::1]/", ErrForbiddenTarget, nil},
		{"http://169.254.169.254/latest/meta-data/", ErrForbiddenTarget, nil},
		{"http://[fe80::1%25eth0]/", ErrForbiddenTarget, nil},
		{"http://0.0.0.0/", ErrForbiddenTarget, nil},
		{"http://[::]/", ErrForbiddenTarget, nil},
		{"http://224.0.0.1/", ErrForbiddenTarget, nil},
		{"http://[ff02::1]/", ErrForbiddenTarget, nil},
		{"http://100.64.0.1/", ErrForbiddenTarget, nil},
		{"http://255.255.255.255/", ErrForbiddenTarget, nil},
		{"http://[64:ff9b::a00:1]/", ErrForbiddenTarget, nil}, // NAT64 of 10.0.0.1
		{"http://172.32.0.1/", nil, nil},                      // just outside 172.16.0.0/12
		// IPv4 in forms some resolvers read as 127.0.0.1.
		{"http://127.1/", ErrInvalidURL, nil},
		{"http://2130706433/", ErrInvalidURL, nil},
		{"http://0x7f000001/", ErrInvalidURL, nil},
	} {
		t.Run(tc.url[:min(len(tc.url), 60)], func(t *testing.T) {
			if err := CheckURL(tc.url, false); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("CheckURL(%q) = %v, want %v", tc.url, err, tc.want)
			}
			if err := CheckURL(tc.url, true); !errors.Is(err, tc.allowPrivate) || (tc.allowPrivate == nil) != (err == nil) {
				t.Errorf("CheckURL(%q, allowPrivate) = %v, want %v", tc.url, err, tc.allowPrivate)
			}
		})
	}
}

func TestForbiddenAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.0.0.1": true, "192.168.0.10": true, "172.20.1.1": true,
		"169.254.1.1": true, "fe80::1": true, "0.0.0.0": true, "::": true, "239.1.1.1": true,
		"ff05::2": true, "fc00::1": true, "100.127.255.255": true, "::ffff:10.0.0.1": true,
		"64:ff9b::7f00:1": true, "8.8.8.8": false, "2001:4860:4860::8888": false, "100.128.0.1": false,
		"64:ff9b::808:808": false,
	} {
		if got := ForbiddenAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("ForbiddenAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// receiver is a local webhook receiver counting requests.
func receiver(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWebhookToLoopbackRefusedWhenSent(t *testing.T) {
	srv, got := receiver(t) // listens on 127.0.0.1
	ctx := context.Background()
	refusing, err := NewWebhook([]byte("0123456789abcdef"), WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = refusing.Send(ctx, srv.URL+"/hook", Event{Kind: KindFiring})
	if !errors.Is(err, ErrForbiddenTarget) {
		t.Errorf("webhook to %s: %v, want ErrForbiddenTarget", srv.URL, err)
	}
	if _, again := retryable(err); again {
		t.Error("a refused target is retried")
	}

	// The address check on connecting, past the URL check: what a name resolving to a
	// loopback address (or rebinding to one after a check) meets.
	client := &http.Client{Transport: guardedTransport(false)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, ErrForbiddenTarget) {
		t.Errorf("connecting to %s: %v, want ErrForbiddenTarget", srv.URL, err)
	}
	if _, again := retryable(err); again {
		t.Error("a connection refused by the address check is retried")
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests with private targets refused", n)
	}

	allowing, err := NewWebhook([]byte("0123456789abcdef"), WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := allowing.Send(ctx, srv.URL+"/hook", Event{Kind: KindFiring}); err != nil {
		t.Errorf("with private targets allowed: %v", err)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
}

func TestDialControl(t *testing.T) {
	for addr, want := range map[string]error{
		"127.0.0.1:80": ErrForbiddenTarget, "[::1]:443": ErrForbiddenTarget, "10.0.0.5:8080": ErrForbiddenTarget,
		"169.254.169.254:80": ErrForbiddenTarget, "not-an-address": ErrForbiddenTarget,
		"93.184.215.14:443": nil, "[2606:4700::1111]:443": nil,
	} {
		if err := dialControl("tcp", addr, nil); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("dialControl(%s) = %v, want %v", addr, err, want)
		}
	}
}
