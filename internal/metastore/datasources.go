package metastore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/internal/sealing"
)

// Data source types.
const (
	DataSourceHTTP     = "http"
	DataSourcePostgres = "postgres"
	DataSourceS3       = "s3"
	DataSourceWebhook  = "webhook"
)

const (
	maxConfigLen      = 16 << 10
	maxCredentialsLen = 16 << 10
)

// DataSourceSpec is a data source's content: what the API and the DataSource controller
// write.
type DataSourceSpec struct {
	// Name is unique within the tenant and orders lists.
	Name string `json:"name"`
	// Type is http, postgres, s3 or webhook.
	Type string `json:"type"`
	// Config is the type's JSON object, stored in clear: ValidateDataSourceConfig says
	// what it holds, and refuses credentials in it.
	Config json.RawMessage `json:"config"`
	// Credentials (password, token, accessKeyID/secretAccessKey, ...) are sealed before
	// they are stored and never returned by Get or List. In Update, nil keeps the stored
	// credentials and an empty map removes them; elsewhere nil and empty mean none.
	Credentials map[string]string `json:"-"`
}

// DataSource is a stored data source. Its credentials are not part of it: HasCredentials
// says whether it has some.
type DataSource struct {
	ID       string
	TenantID string
	Name     string
	Type     string
	Config   json.RawMessage
	// HasCredentials reports whether credentials are stored (sealed).
	HasCredentials bool
	// ManagedBy is "<namespace>/<name>" of the DataSource object that owns the row, or
	// empty; the API cannot change an owned row.
	ManagedBy string
	// Cursor, LastSyncAt and RecordsSynced are the connector's progress.
	Cursor        string
	LastSyncAt    *time.Time
	RecordsSynced int64
	// Version counts the writes of the row, from 1.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Validate reports every invalid field of the spec. Credentials values are never echoed.
func (d *DataSourceSpec) Validate() field.ErrorList {
	errs := validateName(field.NewPath("name"), d.Name)
	errs = append(errs, ValidateDataSourceConfig(d.Type, d.Config)...)
	size := 0
	for k, v := range d.Credentials {
		size += len(k) + len(v)
		if k == "" || len(k) > 63 || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			errs = append(errs, field.Invalid(field.NewPath("credentials").Key(k), "(redacted)", "keys must be 1 to 63 printable characters"))
		}
	}
	if size > maxCredentialsLen {
		errs = append(errs, field.TooLong(field.NewPath("credentials"), "", maxCredentialsLen))
	}
	return errs
}

// configField is one field a data source type's config may hold.
type configField struct {
	name     string
	required bool
	check    func(path *field.Path, v any) *field.Error
}

// dataSourceConfigs lists each type's config fields. Unknown fields are refused, so a
// misspelt optional field is reported rather than silently ignored.
var dataSourceConfigs = map[string][]configField{
	DataSourceHTTP: {
		{"url", true, checkHTTPURL},
		{"recordsPath", false, checkString(256)},
		{"schedule", false, checkString(100)},
		{"mapping", false, checkObject},
	},
	DataSourcePostgres: {
		{"host", true, checkHost},
		{"port", false, checkPort},
		{"database", true, checkIdentifier},
		{"query", false, checkString(4096)},
		{"cursorColumn", false, checkString(63)},
		{"sslMode", false, checkEnum("disable", "require", "verify-ca", "verify-full")},
		{"schedule", false, checkString(100)},
		{"mapping", false, checkObject},
	},
	DataSourceS3: {
		{"bucket", true, checkBucket},
		{"region", false, checkRegion},
		{"endpoint", false, checkHTTPURL},
		{"prefix", false, checkString(1024)},
		{"format", false, checkEnum("ndjson", "csv", "parquet")},
		{"schedule", false, checkString(100)},
		{"mapping", false, checkObject},
	},
	// A webhook source is pushed to: it has no URL of its own to configure.
	DataSourceWebhook: {
		{"mapping", false, checkObject},
	},
}

// dataSourceTypes is the sorted list of types, for error messages.
func dataSourceTypes() []string {
	types := make([]string, 0, len(dataSourceConfigs))
	for t := range dataSourceConfigs {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// secretLike matches config field names that suggest a credential.
var secretLike = regexp.MustCompile(`(?i)(password|passwd|secret|token|apikey|api_key|credential|private)`)

// ValidateDataSourceConfig checks a data source's type and config, a JSON object, each
// error naming its field ("type", "config.url", ...):
//
//   - http: url (http or https) required; recordsPath optional.
//   - postgres: host and database required; port optional (1-65535, default 5432).
//   - s3: bucket required; region and endpoint (an http or https URL) optional.
//   - webhook: nothing required (it is pushed to, so it has no URL of its own).
//
// Every type also takes "mapping" (an object) and polled ones "schedule". Fields that look
// like credentials are refused: config is stored in clear, credentials are sealed.
func ValidateDataSourceConfig(typ string, config json.RawMessage) field.ErrorList {
	fields, ok := dataSourceConfigs[typ]
	if !ok {
		return field.ErrorList{field.NotSupported(field.NewPath("type"), typ, dataSourceTypes())}
	}
	path := field.NewPath("config")
	if len(config) > maxConfigLen {
		return field.ErrorList{field.TooLong(path, "", maxConfigLen)}
	}
	var obj map[string]any
	if len(config) > 0 {
		dec := json.NewDecoder(bytes.NewReader(config))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
			return field.ErrorList{field.Invalid(path, "", "must be a JSON object")}
		}
	}
	var errs field.ErrorList
	known := map[string]bool{}
	var names []string
	for _, f := range fields {
		known[f.name] = true
		names = append(names, f.name)
		v, present := obj[f.name]
		if !present {
			if f.required {
				errs = append(errs, field.Required(path.Child(f.name), ""))
			}
			continue
		}
		if err := f.check(path.Child(f.name), v); err != nil {
			errs = append(errs, err)
		}
	}
	var unknown []string
	for k := range obj {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		if secretLike.MatchString(k) {
			errs = append(errs, field.Forbidden(path.Child(k), "config is stored in clear: pass credentials as credentials, which are encrypted"))
			continue
		}
		errs = append(errs, field.NotSupported(path.Child(k), k, names))
	}
	return errs
}

func checkString(maxLen int) func(*field.Path, any) *field.Error {
	return func(p *field.Path, v any) *field.Error {
		s, ok := v.(string)
		switch {
		case !ok:
			return field.TypeInvalid(p, v, "must be a string")
		case len(s) > maxLen:
			return field.TooLong(p, "", maxLen)
		}
		return nil
	}
}

func checkEnum(values ...string) func(*field.Path, any) *field.Error {
	return func(p *field.Path, v any) *field.Error {
		if s, ok := v.(string); !ok || !contains(values, s) {
			return field.NotSupported(p, v, values)
		}
		return nil
	}
}

func checkObject(p *field.Path, v any) *field.Error {
	if _, ok := v.(map[string]any); !ok {
		return field.TypeInvalid(p, v, "must be an object")
	}
	return nil
}

func checkHTTPURL(p *field.Path, v any) *field.Error {
	if err := checkString(2048)(p, v); err != nil {
		return err
	}
	u, err := url.Parse(v.(string))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return field.Invalid(p, v, "must be an http or https URL")
	}
	if u.User != nil {
		// The URL is stored in clear.
		return field.Forbidden(p, "must not hold a user or password: pass them as credentials")
	}
	return nil
}

func checkHost(p *field.Path, v any) *field.Error {
	if err := checkString(255)(p, v); err != nil {
		return err
	}
	host := v.(string)
	if net.ParseIP(host) != nil {
		return nil
	}
	if strings.Contains(host, ":") {
		return field.Invalid(p, host, "must be a host name or IP address; set the port in port")
	}
	if msgs := validation.IsDNS1123Subdomain(strings.ToLower(host)); len(msgs) > 0 {
		return field.Invalid(p, host, "must be a host name or IP address")
	}
	return nil
}

func checkPort(p *field.Path, v any) *field.Error {
	n, ok := v.(json.Number)
	if !ok {
		return field.TypeInvalid(p, v, "must be a number")
	}
	port, err := n.Int64()
	if err != nil || port < 1 || port > math.MaxUint16 {
		return field.Invalid(p, n.String(), "must be between 1 and 65535")
	}
	return nil
}

var identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]{0,62}$`)

func checkIdentifier(p *field.Path, v any) *field.Error {
	if err := checkString(63)(p, v); err != nil {
		return err
	}
	if !identifierPattern.MatchString(v.(string)) {
		return field.Invalid(p, v, "must be a database name: letters, digits, '_', '$' or '-', up to 63")
	}
	return nil
}

var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func checkBucket(p *field.Path, v any) *field.Error {
	if err := checkString(63)(p, v); err != nil {
		return err
	}
	if !bucketPattern.MatchString(v.(string)) {
		return field.Invalid(p, v, "must be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' or '-'")
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func checkRegion(p *field.Path, v any) *field.Error {
	if err := checkString(64)(p, v); err != nil {
		return err
	}
	if !regionPattern.MatchString(v.(string)) {
		return field.Invalid(p, v, "must be a region name such as eu-west-1")
	}
	return nil
}

// contentHash identifies a spec's name, type and config; credentials are compared by
// opening the stored ones, since a hash of them would help guess weak passwords.
func (d *DataSourceSpec) contentHash() ([]byte, error) {
	config, err := jsonText(d.Config)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal([]string{d.Name, d.Type, config})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("datasource/v1\n"), data...))
	return sum[:], nil
}

// DataSources reads and writes data sources, sealing their credentials with keys.
type DataSources struct {
	store *Store
	keys  *sealing.Keyring
}

// DataSources returns the data sources of the store, sealing credentials with keys.
func (s *Store) DataSources(keys *sealing.Keyring) *DataSources {
	return &DataSources{store: s, keys: keys}
}

// credentialsAAD binds sealed credentials to their row: a ciphertext copied to another
// row or tenant does not open. Tenant ids are DNS labels and row ids UUIDs, so the
// encoding is unambiguous.
func credentialsAAD(tenantID, id string) []byte {
	return []byte("data_sources/" + tenantID + "/" + id)
}

// seal returns the key id and ciphertext of creds for the row; nil for no credentials.
func (d *DataSources) seal(tenantID, id string, creds map[string]string) (string, []byte, error) {
	if len(creds) == 0 {
		return "", nil, nil
	}
	plaintext, err := json.Marshal(creds) // sorted keys: equal maps give equal bytes
	if err != nil {
		return "", nil, err
	}
	keyID, ct, err := d.keys.Seal(plaintext, credentialsAAD(tenantID, id))
	if err != nil {
		return "", nil, err
	}
	return keyID, ct, nil
}

func (d *DataSources) open(tenantID, id, keyID string, ct []byte) (map[string]string, error) {
	if ct == nil {
		return nil, nil
	}
	plaintext, err := d.keys.Open(keyID, ct, credentialsAAD(tenantID, id))
	if err != nil {
		return nil, fmt.Errorf("opening credentials: %w", err)
	}
	var creds map[string]string
	if err := json.Unmarshal(plaintext, &creds); err != nil {
		return nil, fmt.Errorf("decoding credentials: %w", err)
	}
	return creds, nil
}

const dataSourceColumns = `id::text, tenant_id, name, type, config::text, credentials IS NOT NULL, managed_by,
	cursor, last_sync_at, records_synced, version, created_at, updated_at`

func scanDataSource(row pgx.Row) (DataSource, error) {
	var (
		ds     DataSource
		config string
	)
	err := row.Scan(&ds.ID, &ds.TenantID, &ds.Name, &ds.Type, &config, &ds.HasCredentials, &ds.ManagedBy,
		&ds.Cursor, &ds.LastSyncAt, &ds.RecordsSynced, &ds.Version, &ds.CreatedAt, &ds.UpdatedAt)
	ds.Config = json.RawMessage(config)
	return ds, err
}

func getDataSource(ctx context.Context, q rowQuerier, tenantID, id string) (DataSource, error) {
	if !validID(id) {
		return DataSource{}, ErrNotFound
	}
	ds, err := scanDataSource(q.QueryRow(ctx, `SELECT `+dataSourceColumns+`
		FROM data_sources WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return DataSource{}, ErrNotFound
	}
	return ds, err
}

// Get returns the tenant's data source, without credentials, or ErrNotFound.
func (d *DataSources) Get(ctx context.Context, tenantID, id string) (DataSource, error) {
	var ds DataSource
	err := d.store.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		ds, err = getDataSource(ctx, c, tenantID, id)
		return err
	})
	if err != nil {
		return DataSource{}, fmt.Errorf("metastore: data source %q of tenant %q: %w", id, tenantID, err)
	}
	return ds, nil
}

// List returns a page of the tenant's data sources ordered by name, without credentials.
func (d *DataSources) List(ctx context.Context, tenantID string, opts ListOptions) (Page[DataSource], error) {
	after, err := decodeCursor(opts.Cursor)
	if err != nil {
		return Page[DataSource]{}, fmt.Errorf("metastore: listing data sources: %w", err)
	}
	limit := opts.limit()
	var list []DataSource
	err = d.store.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+dataSourceColumns+` FROM data_sources
			WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, tenantID, after, limit+1)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DataSource, error) { return scanDataSource(row) })
		return err
	})
	if err != nil {
		return Page[DataSource]{}, fmt.Errorf("metastore: listing data sources of tenant %q: %w", tenantID, err)
	}
	return pageOf(list, limit, func(ds DataSource) string { return ds.Name }), nil
}

// Credentials opens the tenant's data source's credentials, for its connector only: the
// API never returns them. nil when it has none; ErrNotFound; an error wrapping
// sealing.ErrUnknownKey or sealing.ErrOpen when they cannot be opened.
func (d *DataSources) Credentials(ctx context.Context, tenantID, id string) (map[string]string, error) {
	var (
		keyID string
		ct    []byte
	)
	err := d.store.withConn(ctx, func(c *pgx.Conn) error {
		if !validID(id) {
			return ErrNotFound
		}
		err := c.QueryRow(ctx, "SELECT key_id, credentials FROM data_sources WHERE tenant_id = $1 AND id = $2", tenantID, id).
			Scan(&keyID, &ct)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	var creds map[string]string
	if err == nil {
		creds, err = d.open(tenantID, id, keyID, ct)
	}
	if err != nil {
		return nil, fmt.Errorf("metastore: credentials of data source %q of tenant %q: %w", id, tenantID, err)
	}
	return creds, nil
}

// Create stores a new data source of the tenant, its credentials sealed with the current
// key. ErrNameTaken, *InvalidError, or ErrNotFound if the tenant does not exist.
func (d *DataSources) Create(ctx context.Context, tenantID string, spec DataSourceSpec) (DataSource, error) {
	var ds DataSource
	err := func() error {
		if err := invalid(spec.Validate()); err != nil {
			return err
		}
		return d.store.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			ds, err = d.insert(ctx, tx, tenantID, "", spec, nil)
			return err
		})
	}()
	if err != nil {
		return DataSource{}, fmt.Errorf("metastore: creating data source %q of tenant %q: %w", spec.Name, tenantID, err)
	}
	return ds, nil
}

// insert adds a validated spec. The row id is part of the credentials' AAD, so the row is
// inserted first and its credentials sealed and set in the same transaction.
func (d *DataSources) insert(ctx context.Context, tx pgx.Tx, tenantID, managedBy string, spec DataSourceSpec, contentHash []byte) (DataSource, error) {
	config, err := jsonText(spec.Config)
	if err != nil {
		return DataSource{}, err
	}
	var id string
	err = tx.QueryRow(ctx, `
		INSERT INTO data_sources (tenant_id, name, type, config, managed_by, content_hash)
		VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING id::text`,
		tenantID, spec.Name, spec.Type, config, managedBy, contentHash).Scan(&id)
	if err != nil {
		return DataSource{}, mapWriteError(err)
	}
	if err := d.setCredentials(ctx, tx, tenantID, id, spec.Credentials); err != nil {
		return DataSource{}, err
	}
	return getDataSource(ctx, tx, tenantID, id)
}

func (d *DataSources) setCredentials(ctx context.Context, tx pgx.Tx, tenantID, id string, creds map[string]string) error {
	keyID, ct, err := d.seal(tenantID, id, creds)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE data_sources SET credentials = $2, key_id = $3 WHERE id = $1", id, ct, keyID)
	return err
}

// lockedDataSource is what a write needs to know of the row it locked.
type lockedDataSource struct {
	id          string
	managedBy   string
	keyID       string
	credentials []byte
	contentHash []byte
}

func lockDataSource(ctx context.Context, tx pgx.Tx, tenantID, where string, arg any) (lockedDataSource, error) {
	var row lockedDataSource
	err := tx.QueryRow(ctx, `
		SELECT id::text, managed_by, key_id, credentials, content_hash
		FROM data_sources WHERE tenant_id = $1 AND `+where+` FOR UPDATE`, tenantID, arg).
		Scan(&row.id, &row.managedBy, &row.keyID, &row.credentials, &row.contentHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, ErrNotFound
	}
	return row, err
}

func lockDataSourceByID(ctx context.Context, tx pgx.Tx, tenantID, id string) (lockedDataSource, error) {
	if !validID(id) {
		return lockedDataSource{}, ErrNotFound
	}
	row, err := lockDataSource(ctx, tx, tenantID, "id = $2", id)
	if err == nil && row.managedBy != "" {
		return row, &ManagedError{Kind: "DataSource", ManagedBy: row.managedBy}
	}
	return row, err
}

// write brings a locked row to spec and seals creds with the current key.
func (d *DataSources) write(ctx context.Context, tx pgx.Tx, tenantID string, row lockedDataSource, spec DataSourceSpec,
	creds map[string]string, contentHash []byte,
) error {
	config, err := jsonText(spec.Config)
	if err != nil {
		return err
	}
	keyID, ct, err := d.seal(tenantID, row.id, creds)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		UPDATE data_sources SET name = $2, type = $3, config = $4::jsonb, credentials = $5, key_id = $6,
			content_hash = $7, version = version + 1, updated_at = now()
		WHERE id = $1`, row.id, spec.Name, spec.Type, config, ct, keyID, contentHash)
	return mapWriteError(err)
}

// Update replaces the tenant's data source with spec. Credentials are sealed again with
// the current key, whether given (spec.Credentials non-nil) or kept (nil).
// ErrNotFound, *ManagedError if an object owns it, ErrNameTaken, *InvalidError.
func (d *DataSources) Update(ctx context.Context, tenantID, id string, spec DataSourceSpec) (DataSource, error) {
	var ds DataSource
	err := func() error {
		if err := invalid(spec.Validate()); err != nil {
			return err
		}
		return d.store.inTx(ctx, func(tx pgx.Tx) error {
			row, err := lockDataSourceByID(ctx, tx, tenantID, id)
			if err != nil {
				return err
			}
			creds := spec.Credentials
			if creds == nil {
				if creds, err = d.open(tenantID, row.id, row.keyID, row.credentials); err != nil {
					return err
				}
			}
			if err := d.write(ctx, tx, tenantID, row, spec, creds, nil); err != nil {
				return err
			}
			ds, err = getDataSource(ctx, tx, tenantID, id)
			return err
		})
	}()
	if err != nil {
		return DataSource{}, fmt.Errorf("metastore: updating data source %q of tenant %q: %w", id, tenantID, err)
	}
	return ds, nil
}

// Delete deletes the tenant's data source. ErrNotFound, or *ManagedError if an object
// owns it.
func (d *DataSources) Delete(ctx context.Context, tenantID, id string) error {
	err := d.store.inTx(ctx, func(tx pgx.Tx) error {
		row, err := lockDataSourceByID(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM data_sources WHERE id = $1", row.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: deleting data source %q of tenant %q: %w", id, tenantID, err)
	}
	return nil
}

// Sync makes the data source owned by the object managedBy ("<namespace>/<name>") hold
// spec, credentials included (nil or empty: none), creating it if needed, for the
// DataSource controller. Nothing is written when name, type, config and credentials are
// unchanged and the credentials are sealed with the current key; credentials sealed with
// an older or unknown key are sealed again. ErrNameTaken; ErrNotFound if the tenant does
// not exist.
func (d *DataSources) Sync(ctx context.Context, tenantID, managedBy string, spec DataSourceSpec) (SyncResult, error) {
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
		err = d.store.inTx(ctx, func(tx pgx.Tx) error {
			if err := lockTenant(ctx, tx, tenantID); err != nil {
				return err
			}
			row, err := lockDataSource(ctx, tx, tenantID, "managed_by = $2", managedBy)
			if errors.Is(err, ErrNotFound) {
				ds, err := d.insert(ctx, tx, tenantID, managedBy, spec, hash)
				res = SyncResult{ID: ds.ID, Wrote: true}
				return err
			}
			if err != nil {
				return err
			}
			res.ID = row.id
			if bytes.Equal(row.contentHash, hash) && d.sameCredentials(tenantID, row, spec.Credentials) {
				return nil
			}
			res.Wrote = true
			return d.write(ctx, tx, tenantID, row, spec, spec.Credentials, hash)
		})
		return res, err
	}()
	if err != nil {
		return SyncResult{}, fmt.Errorf("metastore: syncing data source %s of tenant %q: %w", managedBy, tenantID, err)
	}
	return res, nil
}

// sameCredentials reports whether the row holds creds sealed with the current key.
func (d *DataSources) sameCredentials(tenantID string, row lockedDataSource, creds map[string]string) bool {
	if row.credentials == nil || len(creds) == 0 {
		return row.credentials == nil && len(creds) == 0
	}
	if row.keyID != d.keys.CurrentKeyID() {
		return false
	}
	stored, err := d.open(tenantID, row.id, row.keyID, row.credentials)
	if err != nil || len(stored) != len(creds) {
		return false
	}
	for k, v := range creds {
		if sv, ok := stored[k]; !ok || sv != v {
			return false
		}
	}
	return true
}

// DeleteManaged deletes the data source the object managedBy owns; deleting one that is
// already gone succeeds, so finalizers can retry.
func (d *DataSources) DeleteManaged(ctx context.Context, tenantID, managedBy string) error {
	err := validateManagedBy(managedBy)
	if err == nil {
		err = d.store.withConn(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "DELETE FROM data_sources WHERE tenant_id = $1 AND managed_by = $2", tenantID, managedBy)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("metastore: deleting data source %s of tenant %q: %w", managedBy, tenantID, err)
	}
	return nil
}

// resealPage is how many rows Reseal re-seals per transaction.
const resealPage = 100

// Reseal seals again, with the current key, the credentials of every data source sealed
// with another key, a page per transaction, and returns how many it re-sealed: after a
// rotation, once it reports no error, the old key can be retired. Rows whose credentials
// do not open are left as they are and named in the error, after the others are done.
func (d *DataSources) Reseal(ctx context.Context) (int, error) {
	var (
		done   int
		failed []string
		after  = "00000000-0000-0000-0000-000000000000"
	)
	for {
		n, last, pageFailed, err := d.resealPage(ctx, after)
		done += n
		failed = append(failed, pageFailed...)
		if err != nil {
			return done, fmt.Errorf("metastore: re-sealing credentials: %w", err)
		}
		if last == "" {
			break
		}
		after = last
	}
	if len(failed) > 0 {
		return done, fmt.Errorf("metastore: re-sealing credentials: %d could not be opened: %s", len(failed), strings.Join(failed, "; "))
	}
	return done, nil
}

// resealPage re-seals the rows after the id after; last is the last id looked at, empty
// when there were none.
func (d *DataSources) resealPage(ctx context.Context, after string) (done int, last string, failed []string, err error) {
	err = d.store.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id::text, tenant_id, key_id, credentials FROM data_sources
			WHERE credentials IS NOT NULL AND key_id <> $1 AND id > $2::uuid
			ORDER BY id LIMIT $3 FOR UPDATE`, d.keys.CurrentKeyID(), after, resealPage)
		if err != nil {
			return err
		}
		type sealed struct {
			id, tenantID, keyID string
			ct                  []byte
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sealed, error) {
			var s sealed
			return s, row.Scan(&s.id, &s.tenantID, &s.keyID, &s.ct)
		})
		if err != nil {
			return err
		}
		for _, s := range list {
			last = s.id
			creds, err := d.open(s.tenantID, s.id, s.keyID, s.ct)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", s.id, err))
				continue
			}
			if err := d.setCredentials(ctx, tx, s.tenantID, s.id, creds); err != nil {
				return err
			}
			done++
		}
		return nil
	})
	if err != nil {
		return 0, "", nil, err
	}
	return done, last, failed, nil
}
