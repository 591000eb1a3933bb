// Package httpapi holds what Shoal's HTTP APIs (ingest and query) answer alike: problem
// documents (RFC 9457) for errors, request ids, and per-key token buckets with the
// RateLimit headers.
package httpapi
