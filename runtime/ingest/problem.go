package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemTypeBase prefixes the type URI of every problem this service answers, so
// clients can tell problems apart without parsing the detail.
const problemTypeBase = "https://shoal.dev/problems/ingest/"

// problem is an RFC 9457 problem document.
type problem struct {
	// Type is the last segment of the problem type URI.
	Type   string
	Status int
	Detail string
	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int
}

// problemBody is the JSON of a problem. Error repeats the detail for clients that look
// for the conventional {"error": ...} member.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
}

// writeProblem answers with p as application/problem+json and returns its status.
func writeProblem(w http.ResponseWriter, p problem) int {
	body, _ := json.Marshal(problemBody{
		Type:   problemTypeBase + p.Type,
		Title:  http.StatusText(p.Status),
		Status: p.Status,
		Detail: p.Detail,
		Error:  p.Detail,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
	return p.Status
}
