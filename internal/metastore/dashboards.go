package metastore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Every call on a tenant's dashboards, data sources and alert rules takes the tenant id
// and matches rows on it: another tenant's row is ErrNotFound, exactly as a missing one,
// so ids cannot be probed across tenants.

// Paging of lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

var (
	// ErrInvalidCursor is returned for a page cursor this store did not hand out.
	ErrInvalidCursor = errors.New("invalid page cursor")
	// ErrNameTaken is returned when the tenant already has a row of that name.
	ErrNameTaken = errors.New("name already taken")
	// ErrNotPublic is returned when asking a share token of a dashboard that is not public.
	ErrNotPublic = errors.New("dashboard is not public")
)

// InvalidError lists what is wrong with a request, each error naming its field.
type InvalidError struct {
	Errs field.ErrorList
}

func (e *InvalidError) Error() string { return e.Errs.ToAggregate().Error() }

func invalid(errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Errs: errs}
}

// ManagedError is returned when the web API tries to change a row an object owns: the
// object is the source of truth, and the next sync would undo the change.
type ManagedError struct {
	// Kind of the owning object: "Dashboard" or "DataSource".
	Kind string
	// ManagedBy is the owning object, "<namespace>/<name>".
	ManagedBy string
}

func (e *ManagedError) Error() string {
	return fmt.Sprintf("managed by the %s object %s: change the object instead", e.Kind, e.ManagedBy)
}

// ListOptions asks for one page of a list.
type ListOptions struct {
	// Limit is the page size: DefaultPageSize when 0 or less, at most MaxPageSize.
	Limit int
	// Cursor is the Next of the previous page; empty for the first.
	Cursor string
}

func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return DefaultPageSize
	case o.Limit > MaxPageSize:
		return MaxPageSize
	}
	return o.Limit
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// Lists are ordered by name, unique per tenant, so a cursor is the last name served:
// rows created or deleted between pages neither repeat nor shift the others.
func encodeCursor(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeCursor(cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || (cursor != "" && len(raw) == 0) {
		return "", ErrInvalidCursor
	}
	return string(raw), nil
}

// pageOf trims the one extra row a list query fetches and sets the cursor from it.
func pageOf[T any](items []T, limit int, name func(T) string) Page[T] {
	if len(items) <= limit {
		return Page[T]{Items: items}
	}
	items = items[:limit]
	return Page[T]{Items: items, Next: encodeCursor(name(items[limit-1]))}
}

// validID reports whether id can be a row id: a UUID as PostgreSQL reads one. Anything
// else, such as an id from a URL, is simply not found, rather than a database error about
// uuid syntax.
func validID(id string) bool {
	var u pgtype.UUID
	return u.Scan(id) == nil
}

func pgError(err error) *pgconn.PgError {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	return nil
}

// mapWriteError turns the constraint violations a request can cause into the package's
// errors: a taken name, and a missing tenant (foreign key).
func mapWriteError(err error) error {
	pgErr := pgError(err)
	switch {
	case pgErr == nil:
		return err
	case pgErr.Code == "23505" && strings.HasSuffix(pgErr.ConstraintName, "_tenant_id_name_key"):
		return ErrNameTaken
	case pgErr.Code == "23503" && strings.HasSuffix(pgErr.ConstraintName, "_tenant_id_fkey"):
		return fmt.Errorf("tenant: %w", ErrNotFound)
	}
	return err
}

// validateName checks a row's name: what lists are ordered by and unique per tenant.
func validateName(path *field.Path, name string) field.ErrorList {
	switch {
	case name == "":
		return field.ErrorList{field.Required(path, "")}
	case len(name) > 253:
		return field.ErrorList{field.TooLong(path, "", 253)}
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.TrimSpace(name) != name:
		return field.ErrorList{field.Invalid(path, name, "must not hold control characters or surrounding spaces")}
	}
	return nil
}

// validateManagedBy checks "<namespace>/<name>" of an owning object.
func validateManagedBy(managedBy string) error {
	ns, name, ok := strings.Cut(managedBy, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return invalid(field.ErrorList{field.Invalid(field.NewPath("managedBy"), managedBy, "must be <namespace>/<name> of an object")})
	}
	return nil
}

// validateJSONObject checks that raw is a JSON object of at most maxLen bytes; empty is
// allowed and stored as {}.
func validateJSONObject(path *field.Path, raw json.RawMessage, maxLen int) field.ErrorList {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) > maxLen {
		return field.ErrorList{field.TooLong(path, "", maxLen)}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return field.ErrorList{field.Invalid(path, string(raw), "must be a JSON object")}
	}
	return nil
}

// jsonText is raw as compact text for a jsonb parameter; {} when empty.
func jsonText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "{}", nil
	}
	out, err := json.Marshal(raw) // compacts and validates
	return string(out), err
}

// rowQuerier is what reads need of a connection or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Widget types.
const (
	WidgetTimeseries = "timeseries"
	WidgetBar        = "bar"
	WidgetNumber     = "number"
	WidgetTable      = "table"
	WidgetPie        = "pie"
)

// Dashboard limits, as in the Dashboard object's schema.
const (
	MaxWidgets        = 50
	maxTitleLen       = 200
	maxDescriptionLen = 2000
	maxQueryLen       = 16 << 10
	maxLayoutLen      = 4 << 10
)

// DashboardSpec is a dashboard's content: what the API and the Dashboard controller write.
type DashboardSpec struct {
	// Name is unique within the tenant and orders lists.
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Public makes the dashboard readable by share token, without sign-in.
	Public bool `json:"public,omitempty"`
	// TimeFrom and TimeTo are the default time range: "now", "now-<n><m|h|d|w>" or RFC
	// 3339; empty leaves the viewer's default.
	TimeFrom string `json:"timeFrom,omitempty"`
	TimeTo   string `json:"timeTo,omitempty"`
	// RefreshSeconds is 0 (off) or 10 to 86400.
	RefreshSeconds int32 `json:"refreshSeconds,omitempty"`
	// Widgets in position order.
	Widgets []Widget `json:"widgets,omitempty"`
}

// Widget is one chart of a dashboard. Query and Layout are JSON objects the store keeps
// as given: their meaning belongs to the query API.
type Widget struct {
	// ID is set by the store; a widget gets a new id each time its dashboard is written.
	ID string `json:"-"`
	// Key is the widget's id in its Dashboard object, unique within the dashboard; empty
	// for widgets made through the API.
	Key    string          `json:"key,omitempty"`
	Type   string          `json:"type"`
	Title  string          `json:"title,omitempty"`
	Query  json.RawMessage `json:"query,omitempty"`
	Layout json.RawMessage `json:"layout,omitempty"`
}

// Dashboard is a stored dashboard.
type Dashboard struct {
	ID       string
	TenantID string
	DashboardSpec
	// ManagedBy is "<namespace>/<name>" of the Dashboard object that owns the row, or
	// empty; the API cannot change an owned row.
	ManagedBy string
	// ShareToken is set only in the result of the call that minted it: the store keeps
	// just its hash, so it cannot be read back.
	ShareToken string
	// Version counts the writes of the row, from 1.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

var (
	timePattern = regexp.MustCompile(`^(now(-[0-9]{1,4}[mhdw])?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$`)
	widgetTypes = []string{WidgetTimeseries, WidgetBar, WidgetNumber, WidgetTable, WidgetPie}
)

// Validate reports every invalid field of the spec. The store checks it on every write;
// it checks the form only, not that the widgets' queries name existing pipelines.
func (d *DashboardSpec) Validate() field.ErrorList {
	errs := validateName(field.NewPath("name"), d.Name)
	if len(d.Title) > maxTitleLen {
		errs = append(errs, field.TooLong(field.NewPath("title"), "", maxTitleLen))
	}
	if len(d.Description) > maxDescriptionLen {
		errs = append(errs, field.TooLong(field.NewPath("description"), "", maxDescriptionLen))
	}
	for _, tf := range []struct {
		name, value string
	}{{"timeFrom", d.TimeFrom}, {"timeTo", d.TimeTo}} {
		if tf.value != "" && !timePattern.MatchString(tf.value) {
			errs = append(errs, field.Invalid(field.NewPath(tf.name), tf.value, `must be "now", "now-<n><m|h|d|w>" or an RFC 3339 time`))
		}
	}
	if d.TimeFrom != "" && d.TimeFrom == d.TimeTo {
		errs = append(errs, field.Invalid(field.NewPath("timeTo"), d.TimeTo, "must differ from timeFrom"))
	}
	if r := d.RefreshSeconds; r != 0 && (r < 10 || r > 86400) {
		errs = append(errs, field.Invalid(field.NewPath("refreshSeconds"), r, "must be 0 (off) or between 10 and 86400"))
	}
	widgetsPath := field.NewPath("widgets")
	if len(d.Widgets) > MaxWidgets {
		errs = append(errs, field.TooMany(widgetsPath, len(d.Widgets), MaxWidgets))
	}
	keys := map[string]bool{}
	for i, w := range d.Widgets {
		p := widgetsPath.Index(i)
		if w.Key != "" {
			if msgs := validation.IsDNS1123Label(w.Key); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p.Child("key"), w.Key, msgs[0]))
			} else if keys[w.Key] {
				errs = append(errs, field.Duplicate(p.Child("key"), w.Key))
			}
			keys[w.Key] = true
		}
		if !contains(widgetTypes, w.Type) {
			errs = append(errs, field.NotSupported(p.Child("type"), w.Type, widgetTypes))
		}
		if len(w.Title) > maxTitleLen {
			errs = append(errs, field.TooLong(p.Child("title"), "", maxTitleLen))
		}
		if len(w.Query) == 0 {
			errs = append(errs, field.Required(p.Child("query"), "a JSON object"))
		}
		errs = append(errs, validateJSONObject(p.Child("query"), w.Query, maxQueryLen)...)
		errs = append(errs, validateJSONObject(p.Child("layout"), w.Layout, maxLayoutLen)...)
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// contentHash identifies a spec's content: equal specs hash equal whatever the JSON
// spacing of their widgets.
func (d *DashboardSpec) contentHash() ([]byte, error) {
	data, err := json.Marshal(d) // compacts the widgets' raw JSON
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("dashboard/v1\n"), data...))
	return sum[:], nil
}

// shareTokenBytes of crypto/rand make a share token: 256 bits, beyond guessing.
const shareTokenBytes = 32

// newShareToken mints a share token (base64url, no prefix: it goes into URLs) and the
// hash the store keeps of it.
func newShareToken() (token string, hash []byte, err error) {
	b := make([]byte, shareTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("reading random bytes: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashKey(token), nil
}

const dashboardColumns = `d.id::text, d.tenant_id, d.name, d.title, d.description, d.public, d.time_from, d.time_to,
	d.refresh_seconds, d.managed_by, d.version, d.created_at, d.updated_at`

func dashboardTargets(d *Dashboard) []any {
	return []any{&d.ID, &d.TenantID, &d.Name, &d.Title, &d.Description, &d.Public, &d.TimeFrom, &d.TimeTo,
		&d.RefreshSeconds, &d.ManagedBy, &d.Version, &d.CreatedAt, &d.UpdatedAt}
}

// widgetsColumn reads a dashboard's widgets in the same statement as its row, so both
// come from one snapshot.
const widgetsColumn = `coalesce((
	SELECT json_agg(json_build_object('id', w.id, 'key', w.key, 'type', w.type, 'title', w.title,
		'query', w.query, 'layout', w.layout) ORDER BY w.position)
	FROM widgets w WHERE w.dashboard_id = d.id), '[]')::text`

// storedWidget is a widget as widgetsColumn spells it.
type storedWidget struct {
	ID     string          `json:"id"`
	Key    string          `json:"key"`
	Type   string          `json:"type"`
	Title  string          `json:"title"`
	Query  json.RawMessage `json:"query"`
	Layout json.RawMessage `json:"layout"`
}

func scanDashboard(row pgx.Row) (Dashboard, error) {
	var (
		d       Dashboard
		widgets string
	)
	if err := row.Scan(append(dashboardTargets(&d), &widgets)...); err != nil {
		return Dashboard{}, err
	}
	var stored []storedWidget
	if err := json.Unmarshal([]byte(widgets), &stored); err != nil {
		return Dashboard{}, fmt.Errorf("reading widgets: %w", err)
	}
	d.Widgets = make([]Widget, len(stored))
	for i, w := range stored {
		d.Widgets[i] = Widget(w)
	}
	return d, nil
}

func getDashboard(ctx context.Context, q rowQuerier, tenantID, id string) (Dashboard, error) {
	if !validID(id) {
		return Dashboard{}, ErrNotFound
	}
	d, err := scanDashboard(q.QueryRow(ctx, `SELECT `+dashboardColumns+`, `+widgetsColumn+`
		FROM dashboards d WHERE d.tenant_id = $1 AND d.id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Dashboard{}, ErrNotFound
	}
	return d, err
}

// GetDashboard returns the tenant's dashboard with its widgets in position order, or
// ErrNotFound.
func (s *Store) GetDashboard(ctx context.Context, tenantID, id string) (Dashboard, error) {
	var d Dashboard
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		d, err = getDashboard(ctx, c, tenantID, id)
		return err
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("metastore: dashboard %q of tenant %q: %w", id, tenantID, err)
	}
	return d, nil
}

// GetDashboardByShareToken returns the public dashboard the token opens, with its
// widgets, whichever tenant it belongs to (TenantID says which): the caller must serve it
// read-only and query only that tenant's data. Unknown tokens, tokens of dashboards made
// private since, and dashboards of tenants being deleted give ErrNotFound.
func (s *Store) GetDashboardByShareToken(ctx context.Context, token string) (Dashboard, error) {
	var d Dashboard
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		d, err = scanDashboard(c.QueryRow(ctx, `SELECT `+dashboardColumns+`, `+widgetsColumn+`
			FROM dashboards d JOIN tenants t ON t.id = d.tenant_id
			WHERE d.share_token_hash = $1 AND d.public AND t.deleted_at IS NULL`, HashKey(token)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Dashboard{}, fmt.Errorf("metastore: share token: %w", ErrNotFound)
	}
	if err != nil {
		return Dashboard{}, fmt.Errorf("metastore: looking up a share token: %w", err)
	}
	return d, nil
}

// ListDashboards returns a page of the tenant's dashboards ordered by name, without their
// widgets.
func (s *Store) ListDashboards(ctx context.Context, tenantID string, opts ListOptions) (Page[Dashboard], error) {
	after, err := decodeCursor(opts.Cursor)
	if err != nil {
		return Page[Dashboard]{}, fmt.Errorf("metastore: listing dashboards: %w", err)
	}
	limit := opts.limit()
	var list []Dashboard
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+dashboardColumns+` FROM dashboards d
			WHERE d.tenant_id = $1 AND d.name > $2 ORDER BY d.name LIMIT $3`, tenantID, after, limit+1)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Dashboard, error) {
			var d Dashboard
			return d, row.Scan(dashboardTargets(&d)...)
		})
		return err
	})
	if err != nil {
		return Page[Dashboard]{}, fmt.Errorf("metastore: listing dashboards of tenant %q: %w", tenantID, err)
	}
	return pageOf(list, limit, func(d Dashboard) string { return d.Name }), nil
}

// CreateDashboard stores a new dashboard of the tenant. A public one gets a share token,
// returned once in the result. ErrNameTaken if the name is; *InvalidError for a bad spec;
// ErrNotFound if the tenant does not exist.
func (s *Store) CreateDashboard(ctx context.Context, tenantID string, spec DashboardSpec) (Dashboard, error) {
	d, err := s.createDashboard(ctx, tenantID, "", spec)
	if err != nil {
		return Dashboard{}, fmt.Errorf("metastore: creating dashboard %q of tenant %q: %w", spec.Name, tenantID, err)
	}
	return d, nil
}

func (s *Store) createDashboard(ctx context.Context, tenantID, managedBy string, spec DashboardSpec) (Dashboard, error) {
	if err := invalid(spec.Validate()); err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = insertDashboard(ctx, tx, tenantID, managedBy, spec, nil)
		return err
	})
	return d, err
}

// insertDashboard inserts a validated spec with its widgets and returns the row, with
// the share token minted if it is public.
func insertDashboard(ctx context.Context, tx pgx.Tx, tenantID, managedBy string, spec DashboardSpec, contentHash []byte) (Dashboard, error) {
	var (
		token     string
		tokenHash []byte
	)
	if spec.Public {
		var err error
		if token, tokenHash, err = newShareToken(); err != nil {
			return Dashboard{}, err
		}
	}
	var id string
	err := tx.QueryRow(ctx, `
		INSERT INTO dashboards (tenant_id, name, title, description, public, time_from, time_to, refresh_seconds,
			managed_by, share_token_hash, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id::text`,
		tenantID, spec.Name, spec.Title, spec.Description, spec.Public, spec.TimeFrom, spec.TimeTo, spec.RefreshSeconds,
		managedBy, tokenHash, contentHash).Scan(&id)
	if err != nil {
		return Dashboard{}, mapWriteError(err)
	}
	if err := insertWidgets(ctx, tx, id, spec.Widgets); err != nil {
		return Dashboard{}, err
	}
	d, err := getDashboard(ctx, tx, tenantID, id)
	d.ShareToken = token
	return d, err
}

// insertWidgets adds widgets to a dashboard that has none, positions from 0.
func insertWidgets(ctx context.Context, tx pgx.Tx, dashboardID string, widgets []Widget) error {
	if len(widgets) == 0 {
		return nil
	}
	var keys, types, titles, queries, layouts []string
	for _, w := range widgets {
		query, err := jsonText(w.Query)
		if err != nil {
			return err
		}
		layout, err := jsonText(w.Layout)
		if err != nil {
			return err
		}
		keys, types, titles = append(keys, w.Key), append(types, w.Type), append(titles, w.Title)
		queries, layouts = append(queries, query), append(layouts, layout)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO widgets (dashboard_id, position, key, type, title, query, layout)
		SELECT $1, u.ord - 1, u.key, u.type, u.title, u.query::jsonb, u.layout::jsonb
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
			AS u(key, type, title, query, layout, ord)`,
		dashboardID, keys, types, titles, queries, layouts)
	if err != nil {
		return fmt.Errorf("writing widgets: %w", err)
	}
	return nil
}

// lockedDashboard is what a write needs to know of the row it locked.
type lockedDashboard struct {
	id          string
	managedBy   string
	hasToken    bool
	contentHash []byte
}

// writeDashboard brings a locked row to spec: its columns, a new version, its widgets
// replaced. A dashboard made public gets a share token (returned); one made private loses
// its token, so publishing it again gives a new link and the old one stays dead.
func writeDashboard(ctx context.Context, tx pgx.Tx, row lockedDashboard, spec DashboardSpec, contentHash []byte) (token string, err error) {
	var tokenHash []byte
	keepToken := spec.Public && row.hasToken
	if spec.Public && !row.hasToken {
		if token, tokenHash, err = newShareToken(); err != nil {
			return "", err
		}
	}
	_, err = tx.Exec(ctx, `
		UPDATE dashboards SET name = $2, title = $3, description = $4, public = $5, time_from = $6, time_to = $7,
			refresh_seconds = $8, share_token_hash = CASE WHEN $9 THEN share_token_hash ELSE $10 END,
			content_hash = $11, version = version + 1, updated_at = now()
		WHERE id = $1`,
		row.id, spec.Name, spec.Title, spec.Description, spec.Public, spec.TimeFrom, spec.TimeTo, spec.RefreshSeconds,
		keepToken, tokenHash, contentHash)
	if err != nil {
		return "", mapWriteError(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM widgets WHERE dashboard_id = $1", row.id); err != nil {
		return "", err
	}
	return token, insertWidgets(ctx, tx, row.id, spec.Widgets)
}

// lockDashboard locks the tenant's dashboard row for the transaction; ErrNotFound if the
// tenant has no such dashboard. where selects the row: by id or by managed_by.
func lockDashboard(ctx context.Context, tx pgx.Tx, tenantID, where string, arg any) (lockedDashboard, error) {
	var row lockedDashboard
	err := tx.QueryRow(ctx, `
		SELECT id::text, managed_by, share_token_hash IS NOT NULL, content_hash
		FROM dashboards WHERE tenant_id = $1 AND `+where+` FOR UPDATE`, tenantID, arg).
		Scan(&row.id, &row.managedBy, &row.hasToken, &row.contentHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, ErrNotFound
	}
	return row, err
}

func lockDashboardByID(ctx context.Context, tx pgx.Tx, tenantID, id string) (lockedDashboard, error) {
	if !validID(id) {
		return lockedDashboard{}, ErrNotFound
	}
	row, err := lockDashboard(ctx, tx, tenantID, "id = $2", id)
	if err == nil && row.managedBy != "" {
		return row, &ManagedError{Kind: "Dashboard", ManagedBy: row.managedBy}
	}
	return row, err
}

// UpdateDashboard replaces the tenant's dashboard with spec, widgets included, in one
// transaction. ErrNotFound, *ManagedError if an object owns it, ErrNameTaken,
// *InvalidError. A dashboard made public gets a share token, returned once in the result.
func (s *Store) UpdateDashboard(ctx context.Context, tenantID, id string, spec DashboardSpec) (Dashboard, error) {
	var d Dashboard
	err := func() error {
		if err := invalid(spec.Validate()); err != nil {
			return err
		}
		return s.inTx(ctx, func(tx pgx.Tx) error {
			row, err := lockDashboardByID(ctx, tx, tenantID, id)
			if err != nil {
				return err
			}
			token, err := writeDashboard(ctx, tx, row, spec, nil)
			if err != nil {
				return err
			}
			d, err = getDashboard(ctx, tx, tenantID, id)
			d.ShareToken = token
			return err
		})
	}()
	if err != nil {
		return Dashboard{}, fmt.Errorf("metastore: updating dashboard %q of tenant %q: %w", id, tenantID, err)
	}
	return d, nil
}

// DeleteDashboard deletes the tenant's dashboard and its widgets. ErrNotFound, or
// *ManagedError if an object owns it.
func (s *Store) DeleteDashboard(ctx context.Context, tenantID, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		row, err := lockDashboardByID(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM dashboards WHERE id = $1", row.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: deleting dashboard %q of tenant %q: %w", id, tenantID, err)
	}
	return nil
}

// RotateDashboardShareToken gives the tenant's public dashboard a new share token and
// returns it; the old one stops working. ErrNotFound, ErrNotPublic, or *ManagedError if
// an object owns it (its controller gets tokens from SyncDashboard).
func (s *Store) RotateDashboardShareToken(ctx context.Context, tenantID, id string) (string, error) {
	var token string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		row, err := lockDashboardByID(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		var hash []byte
		if token, hash, err = newShareToken(); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE dashboards SET share_token_hash = $2, version = version + 1, updated_at = now()
			WHERE id = $1 AND public`, row.id, hash)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotPublic
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("metastore: rotating the share token of dashboard %q of tenant %q: %w", id, tenantID, err)
	}
	return token, nil
}

// SyncResult says what a sync did.
type SyncResult struct {
	// ID of the row.
	ID string
	// Wrote is false when the row already held the content, and nothing was written.
	Wrote bool
	// ShareToken is set when this sync minted one (the dashboard became public): the
	// caller must keep it, as the store keeps only its hash.
	ShareToken string
}

// SyncDashboard makes the dashboard owned by the object managedBy ("<namespace>/<name>")
// hold spec, creating it if needed, for the Dashboard controller. When the stored
// content hash equals spec's, nothing is written (updated_at and Version stay).
// ErrNameTaken if another dashboard of the tenant has spec's name; ErrNotFound if the
// tenant does not exist.
func (s *Store) SyncDashboard(ctx context.Context, tenantID, managedBy string, spec DashboardSpec) (SyncResult, error) {
	res, err := func() (SyncResult, error) {
		if err := validateManagedBy(managedBy); err != nil {
			return SyncResult{}, err
		}
		if err := invalid(spec.Validate()); err != nil {
			return SyncResult{}, err
		}
		hash, err := spec.contentHash()
		if err != nil {
			return SyncResult{}, err
		}
		var res SyncResult
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			// Serialises syncs of the tenant, so two controllers' first syncs of an
			// object cannot both insert.
			if err := lockTenant(ctx, tx, tenantID); err != nil {
				return err
			}
			row, err := lockDashboard(ctx, tx, tenantID, "managed_by = $2", managedBy)
			if errors.Is(err, ErrNotFound) {
				d, err := insertDashboard(ctx, tx, tenantID, managedBy, spec, hash)
				res = SyncResult{ID: d.ID, Wrote: true, ShareToken: d.ShareToken}
				return err
			}
			if err != nil {
				return err
			}
			res.ID = row.id
			if string(row.contentHash) == string(hash) {
				return nil
			}
			res.Wrote = true
			res.ShareToken, err = writeDashboard(ctx, tx, row, spec, hash)
			return err
		})
		return res, err
	}()
	if err != nil {
		return SyncResult{}, fmt.Errorf("metastore: syncing dashboard %s of tenant %q: %w", managedBy, tenantID, err)
	}
	return res, nil
}

// DeleteManagedDashboard deletes the dashboard the object managedBy owns; deleting one
// that is already gone succeeds, so finalizers can retry.
func (s *Store) DeleteManagedDashboard(ctx context.Context, tenantID, managedBy string) error {
	if err := validateManagedBy(managedBy); err != nil {
		return fmt.Errorf("metastore: deleting dashboard %s of tenant %q: %w", managedBy, tenantID, err)
	}
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DELETE FROM dashboards WHERE tenant_id = $1 AND managed_by = $2", tenantID, managedBy)
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: deleting dashboard %s of tenant %q: %w", managedBy, tenantID, err)
	}
	return nil
}
