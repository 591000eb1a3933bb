package ingest

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/httpapi"
)

// problem is an RFC 9457 problem document; its Type is the last segment of the type URI,
// under the ingest API's own prefix so clients tell problems apart without parsing the
// detail.
type problem = httpapi.Problem

// problemTypePrefix is where the ingest API's problem types live under
// httpapi.ProblemTypeBase.
const problemTypePrefix = "ingest/"

// writeProblem answers with p as application/problem+json and returns its status.
func writeProblem(w http.ResponseWriter, p problem) int {
	p.Type = problemTypePrefix + p.Type
	return httpapi.WriteProblem(w, nil, p)
}
