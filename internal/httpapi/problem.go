package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemTypeBase prefixes every problem type URI, so clients tell problems apart
// without parsing the detail.
const ProblemTypeBase = "https://shoal.dev/problems/"

// Problem is an RFC 9457 problem document.
type Problem struct {
	// Type is the problem type's path under ProblemTypeBase, such as "ingest/rate-limited".
	Type   string
	Status int
	Detail string
	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int
	// InvalidParams name each wrong request parameter with the reason.
	InvalidParams []InvalidParam
}

// InvalidParam is one wrong parameter of a request.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// problemBody is the JSON of a problem. Error repeats the detail for clients that look
// for the conventional {"error": ...} member.
type problemBody struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail"`
	Error         string         `json:"error"`
	RequestID     string         `json:"requestId,omitempty"`
	InvalidParams []InvalidParam `json:"invalidParams,omitempty"`
}

// WriteProblem answers with p as application/problem+json, with the request id of r when
// there is one (r may be nil), and returns the status.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) int {
	requestID := ""
	if r != nil {
		requestID = RequestID(r.Context())
	}
	body, _ := json.Marshal(problemBody{
		Type:          ProblemTypeBase + p.Type,
		Title:         http.StatusText(p.Status),
		Status:        p.Status,
		Detail:        p.Detail,
		Error:         p.Detail,
		RequestID:     requestID,
		InvalidParams: p.InvalidParams,
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
