package query

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// dataSourceBody is what POST takes. Credentials are sealed before they are stored and
// never returned.
type dataSourceBody struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Config      json.RawMessage   `json:"config"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// dataSourceJSON is a data source as the API answers it: never its credentials, only
// whether it has some.
type dataSourceJSON struct {
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	Type           string          `json:"type"`
	Config         json.RawMessage `json:"config"`
	HasCredentials bool            `json:"hasCredentials"`
	ManagedBy      string          `json:"managedBy,omitempty"`
	Cursor         string          `json:"cursor,omitempty"`
	LastSyncAt     *time.Time      `json:"lastSyncAt,omitempty"`
	RecordsSynced  int64           `json:"recordsSynced"`
	Version        int64           `json:"version"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

func dataSourceOut(d metastore.DataSource) dataSourceJSON {
	return dataSourceJSON{
		ID: d.ID, Name: d.Name, Type: d.Type, Config: d.Config, HasCredentials: d.HasCredentials, ManagedBy: d.ManagedBy,
		Cursor: d.Cursor, LastSyncAt: d.LastSyncAt, RecordsSynced: d.RecordsSynced, Version: d.Version,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

func (s *Server) handleListDataSources(w http.ResponseWriter, r *http.Request) {
	opts, ok := pageOptions(w, r, metastore.MaxPageSize)
	if !ok {
		return
	}
	pg, err := s.sources.List(r.Context(), principalOf(r).TenantID, opts)
	if err != nil {
		s.fail(w, r, "data source", err)
		return
	}
	writeJSON(w, http.StatusOK, page[dataSourceJSON]{Items: mapItems(pg.Items, dataSourceOut), Next: pg.Next})
}

func (s *Server) handleCreateDataSource(w http.ResponseWriter, r *http.Request) {
	var body dataSourceBody
	if !decodeBody(w, r, &body) {
		return
	}
	if len(body.Credentials) > 0 && s.opts.Keyring == nil {
		badRequest(w, r, "this installation has no sealing keys, so data sources cannot hold credentials",
			httpapi.InvalidParam{Name: "credentials", Reason: "no sealing key is configured (platform config sealing)"})
		return
	}
	d, err := s.sources.Create(r.Context(), principalOf(r).TenantID, metastore.DataSourceSpec{
		Name: body.Name, Type: body.Type, Config: body.Config, Credentials: body.Credentials,
	})
	if err != nil {
		s.fail(w, r, "data source", err)
		return
	}
	s.audit(r, "datasources.create", "data-source", d.ID, map[string]string{"name": d.Name, "type": d.Type})
	w.Header().Set("Location", APIPrefix+"/data-sources/"+d.ID)
	writeJSON(w, http.StatusCreated, dataSourceOut(d))
}

func (s *Server) handleGetDataSource(w http.ResponseWriter, r *http.Request) {
	d, err := s.sources.Get(r.Context(), principalOf(r).TenantID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "data source "+r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, dataSourceOut(d))
}

func (s *Server) handleDeleteDataSource(w http.ResponseWriter, r *http.Request) {
	if err := s.sources.Delete(r.Context(), principalOf(r).TenantID, r.PathValue("id")); err != nil {
		s.fail(w, r, "data source "+r.PathValue("id"), err)
		return
	}
	s.audit(r, "datasources.delete", "data-source", r.PathValue("id"), nil)
	w.WriteHeader(http.StatusNoContent)
}
