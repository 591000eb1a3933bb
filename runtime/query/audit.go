package query

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// audit records a change made through the API in the tenant's audit log. It is best
// effort: the change is made, and a failed write is logged rather than undoing it.
func (s *Server) audit(r *http.Request, action, kind, id string, details map[string]string) {
	p := principalOf(r)
	if details == nil {
		details = map[string]string{}
	}
	details["requestId"] = httpapi.RequestID(r.Context())
	details["method"] = string(p.Method)
	err := s.store.AppendAudit(r.Context(), metastore.AuditEntry{
		TenantID: p.TenantID, Actor: p.Email, Action: action, Target: kind + "/" + id, Details: details,
	})
	if err != nil {
		s.log.WarnContext(r.Context(), "audit log write failed", "action", action, "target", kind+"/"+id, "err", err)
	}
}
