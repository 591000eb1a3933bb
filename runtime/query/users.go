package query

import (
	"errors"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// userJSON is a user of the tenant.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func userOut(u metastore.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	opts, ok := pageOptions(w, r, metastore.MaxUserPageSize)
	if !ok {
		return
	}
	users, next, err := s.store.ListUsers(r.Context(), principalOf(r).TenantID, opts.Cursor, opts.Limit)
	if errors.Is(err, metastore.ErrInvalidUserInput) {
		err = metastore.ErrInvalidCursor // the only input ListUsers checks
	}
	if err != nil {
		s.fail(w, r, "user", err)
		return
	}
	writeJSON(w, http.StatusOK, page[userJSON]{Items: mapItems(users, userOut), Next: next})
}

// roleBody is what PUT /users/{userId}/roles takes.
type roleBody struct {
	Role string `json:"role"`
}

// handleSetRole changes a user's role. The route needs users.manage; moving a user to or
// from owner needs owners.manage too, and the store refuses to demote the last owner.
func (s *Server) handleSetRole(w http.ResponseWriter, r *http.Request) {
	var body roleBody
	if !decodeBody(w, r, &body) {
		return
	}
	to, err := auth.ParseRole(body.Role)
	if err != nil {
		badRequest(w, r, "invalid role", httpapi.InvalidParam{Name: "role", Reason: err.Error()})
		return
	}
	p := principalOf(r)
	id := r.PathValue("userId")
	u, err := s.store.GetUser(r.Context(), p.TenantID, id)
	if err != nil {
		s.fail(w, r, "user "+id, err)
		return
	}
	if err := auth.AuthorizeRoleChange(p, auth.Role(u.Role), to); err != nil {
		s.authProblem(w, r, err)
		return
	}
	u, err = s.store.SetUserRole(r.Context(), p.TenantID, id, string(to))
	if err != nil {
		s.fail(w, r, "user "+id, err)
		return
	}
	s.audit(r, "users.set-role", "user", id, map[string]string{"role": string(to)})
	writeJSON(w, http.StatusOK, userOut(u))
}

// tokenBody is what POST /tokens takes.
type tokenBody struct {
	Name string `json:"name"`
	// ExpiresAt is when the token stops working; it never expires when absent.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// tokenJSON describes a personal token. Token, the secret, is set only in the answer of
// its creation.
type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Token      string     `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

func tokenOut(t metastore.PersonalToken) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if !decodeBody(w, r, &body) {
		return
	}
	p := principalOf(r)
	t, secret, err := s.store.CreatePersonalToken(r.Context(), p.TenantID, p.UserID, body.Name, body.ExpiresAt)
	if errors.Is(err, metastore.ErrInvalidUserInput) {
		badRequest(w, r, "invalid token request", httpapi.InvalidParam{Name: "body", Reason: err.Error()})
		return
	}
	if err != nil {
		s.fail(w, r, "token", err)
		return
	}
	s.audit(r, "tokens.create", "token", t.ID, map[string]string{"name": t.Name})
	out := tokenOut(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	list, err := s.store.ListPersonalTokens(r.Context(), p.TenantID, p.UserID)
	if err != nil {
		s.fail(w, r, "token", err)
		return
	}
	writeJSON(w, http.StatusOK, page[tokenJSON]{Items: mapItems(list, tokenOut)})
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if err := s.store.RevokePersonalToken(r.Context(), p.TenantID, p.UserID, r.PathValue("id")); err != nil {
		s.fail(w, r, "token "+r.PathValue("id"), err)
		return
	}
	s.audit(r, "tokens.revoke", "token", r.PathValue("id"), nil)
	w.WriteHeader(http.StatusNoContent)
}
