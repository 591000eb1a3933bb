package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// errorBodyTransport turns a failure response that is not JSON (a proxy or load balancer
// answering 502 or 503 with HTML) into a Stripe-shaped API error. stripe-go would
// otherwise report a JSON decoding error with no status code, which IsUnavailable could
// not tell from a bug.
type errorBodyTransport struct {
	next http.RoundTripper
}

func (t errorBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType == "application/json" {
		return resp, nil
	}
	sample, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	body, err := json.Marshal(map[string]any{"error": map[string]string{
		"type":    "api_error",
		"message": fmt.Sprintf("HTTP %d from the Stripe API address: %s", resp.StatusCode, bytes.TrimSpace(sample)),
	}})
	if err != nil {
		return nil, fmt.Errorf("encoding a Stripe error body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header = resp.Header.Clone()
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}
