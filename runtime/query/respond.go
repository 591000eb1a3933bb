package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// maxBodyBytes bounds a request body: the largest object, a dashboard of 50 widgets with
// 16 KiB queries, fits.
const maxBodyBytes = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// badRequest answers 400 naming each wrong parameter.
func badRequest(w http.ResponseWriter, r *http.Request, detail string, params ...httpapi.InvalidParam) {
	httpapi.WriteProblem(w, r, httpapi.Problem{Type: "query/invalid", Status: http.StatusBadRequest, Detail: detail, InvalidParams: params})
}

// decodeBody reads the request's JSON object into v: unknown fields, trailing data and
// bodies over maxBodyBytes are refused, with a 400 naming the body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		badRequest(w, r, fmt.Sprintf("the body could not be read (at most %d bytes): %v", maxBodyBytes, err),
			httpapi.InvalidParam{Name: "body", Reason: "unreadable or too large"})
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		badRequest(w, r, "the body is not the expected JSON object", httpapi.InvalidParam{Name: "body", Reason: err.Error()})
		return false
	}
	if dec.More() {
		badRequest(w, r, "the body holds more than one JSON value", httpapi.InvalidParam{Name: "body", Reason: "trailing data"})
		return false
	}
	return true
}

// pageOptions reads limit and cursor.
func pageOptions(w http.ResponseWriter, r *http.Request, maxLimit int) (metastore.ListOptions, bool) {
	var opts metastore.ListOptions
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			badRequest(w, r, "invalid limit", httpapi.InvalidParam{Name: "limit", Reason: fmt.Sprintf("%q is not a whole number from 1 to %d", s, maxLimit)})
			return opts, false
		}
		opts.Limit = n
	}
	opts.Cursor = q.Get("cursor")
	return opts, true
}

// page is a list answer.
type page[T any] struct {
	Items []T `json:"items"`
	// Next is the cursor of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
}

func mapItems[S, T any](items []S, f func(S) T) []T {
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

// fail answers a store or engine error. what names the object the request was about,
// for the 404 and 409 details.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	p := problemFor(what, err)
	if p.Status >= http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "what", what, "err", err,
			"requestId", httpapi.RequestID(r.Context()))
	}
	httpapi.WriteProblem(w, r, p)
}

// problemFor classifies an error of the store or the engine into what the client is
// told. Anything unexpected is a 500 whose detail says nothing of the cause.
func problemFor(what string, err error) httpapi.Problem {
	var (
		invalid *metastore.InvalidError
		managed *metastore.ManagedError
		qerrs   metricquery.Errors
	)
	p := httpapi.Problem{Status: http.StatusInternalServerError, Type: "internal", Detail: "internal error"}
	switch {
	case errors.As(err, &invalid):
		p = httpapi.Problem{Type: "query/invalid", Status: http.StatusBadRequest, Detail: "invalid " + what}
		for _, fe := range invalid.Errs {
			p.InvalidParams = append(p.InvalidParams, httpapi.InvalidParam{Name: fe.Field, Reason: fe.ErrorBody()})
		}
	case errors.As(err, &qerrs):
		p = httpapi.Problem{Type: "query/invalid", Status: http.StatusBadRequest, Detail: "invalid metrics query", InvalidParams: invalidParams(qerrs)}
	case errors.As(err, &managed):
		p = httpapi.Problem{Type: "query/managed", Status: http.StatusConflict, Detail: fmt.Sprintf("%s is %s", what, managed.Error())}
	case errors.Is(err, metastore.ErrNotFound):
		p = httpapi.Problem{Type: "query/not-found", Status: http.StatusNotFound, Detail: what + " not found"}
	case errors.Is(err, metricquery.ErrNotFound):
		p = httpapi.Problem{Type: "query/not-found", Status: http.StatusNotFound, Detail: "no such pipeline",
			InvalidParams: []httpapi.InvalidParam{{Name: metricquery.ParamPipeline, Reason: "the tenant has no such pipeline"}}}
	case errors.Is(err, metastore.ErrNameTaken):
		p = httpapi.Problem{Type: "query/conflict", Status: http.StatusConflict, Detail: "the name is already taken by another " + what,
			InvalidParams: []httpapi.InvalidParam{{Name: "name", Reason: "already taken"}}}
	case errors.Is(err, metastore.ErrInvalidCursor):
		p = httpapi.Problem{Type: "query/invalid", Status: http.StatusBadRequest, Detail: "invalid cursor",
			InvalidParams: []httpapi.InvalidParam{{Name: "cursor", Reason: "not a cursor this API returned"}}}
	case errors.Is(err, metastore.ErrLastOwner):
		p = httpapi.Problem{Type: "query/last-owner", Status: http.StatusConflict,
			Detail: "this user is the tenant's last owner: make another user owner first"}
	case errors.Is(err, metastore.ErrTooManyTokens):
		p = httpapi.Problem{Type: "query/too-many-tokens", Status: http.StatusConflict,
			Detail: fmt.Sprintf("you have %d active tokens: revoke one first", metastore.MaxPersonalTokensPerUser)}
	case errors.Is(err, metastore.ErrNotPublic):
		p = httpapi.Problem{Type: "query/not-public", Status: http.StatusConflict, Detail: what + " is not public: make it public to share it"}
	case errors.Is(err, context.DeadlineExceeded):
		p = httpapi.Problem{Type: "query/timeout", Status: http.StatusGatewayTimeout, Detail: "the request took too long"}
	case errors.Is(err, metricquery.ErrUnavailable), metastore.IsUnavailable(err):
		p = httpapi.Problem{Type: "query/unavailable", Status: http.StatusServiceUnavailable, RetryAfter: retryAfterUnavailable,
			Detail: "a backend is unavailable: retry later"}
	}
	return p
}

func invalidParams(errs metricquery.Errors) []httpapi.InvalidParam {
	out := make([]httpapi.InvalidParam, len(errs))
	for i, e := range errs {
		out[i] = httpapi.InvalidParam{Name: e.Param, Reason: e.Reason}
	}
	return out
}
