package clickhouse

import (
	"fmt"
	"regexp"
)

// Table names inside every tenant database.
const (
	EventsTable     = "events"
	QuarantineTable = "quarantine"
)

// identifier is what Shoal accepts as a database, table, user or cluster name. It is
// stricter than ClickHouse so a name never needs escaping inside backticks or XML.
var identifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// maxIdentifier keeps names well inside filesystem limits: ClickHouse stores a database as
// a directory and a file-based user as <name>.xml.
const maxIdentifier = 200

// ValidateIdentifier reports why name cannot be a ClickHouse identifier for Shoal.
func ValidateIdentifier(name string) error {
	if len(name) > maxIdentifier {
		return fmt.Errorf("identifier %q is longer than %d characters", name, maxIdentifier)
	}
	if !identifier.MatchString(name) {
		return fmt.Errorf("identifier %q must match %s", name, identifier)
	}
	return nil
}

// quote validates name and puts it in backticks.
func quote(name string) (string, error) {
	if err := ValidateIdentifier(name); err != nil {
		return "", err
	}
	return "`" + name + "`", nil
}

// quoteAll quotes several names, stopping at the first invalid one.
func quoteAll(names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		q, err := quote(n)
		if err != nil {
			return nil, err
		}
		out[i] = q
	}
	return out, nil
}

// Statement is one SQL statement with its bound parameters (client-side bound by the
// driver for the native protocol, which old servers need). Args may hold secrets: String
// prints the SQL only.
type Statement struct {
	SQL  string
	Args []any
}

func (s Statement) String() string { return s.SQL }

// Dialect builds SQL for one server version; every builder is pure, so the SQL for each
// version is unit-tested without a server.
type Dialect struct {
	Version  Version
	Features Features
	// Cluster, if set, puts ON CLUSTER into DDL.
	Cluster string
}

// NewDialect returns the dialect of a server version.
func NewDialect(v Version, cluster string) Dialect {
	return Dialect{Version: v, Features: FeaturesOf(v), Cluster: cluster}
}

// onCluster is " ON CLUSTER `c`", or empty.
func (d Dialect) onCluster() (string, error) {
	if d.Cluster == "" {
		return "", nil
	}
	c, err := quote(d.Cluster)
	if err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	return " ON CLUSTER " + c, nil
}

// stringType is the type of low-cardinality text columns (event types, topics).
func (d Dialect) stringType() string {
	if d.Features.LowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

// ttl is the TTL clause deleting rows retentionDays after the time column. Servers without
// TTL get none: their retention is enforced by the operator dropping whole monthly
// partitions (Client.DropPartitionsBefore).
func (d Dialect) ttl(column string, retentionDays int) string {
	if !d.Features.TTL || retentionDays <= 0 {
		return ""
	}
	return fmt.Sprintf(" TTL `%s` + INTERVAL %d DAY", column, retentionDays)
}

// CreateDatabase is CREATE DATABASE IF NOT EXISTS.
func (d Dialect) CreateDatabase(db string) (Statement, error) {
	q, err := quote(db)
	if err != nil {
		return Statement{}, err
	}
	oc, err := d.onCluster()
	if err != nil {
		return Statement{}, err
	}
	return Statement{SQL: "CREATE DATABASE IF NOT EXISTS " + q + oc}, nil
}

// DropDatabase is DROP DATABASE IF EXISTS.
func (d Dialect) DropDatabase(db string) (Statement, error) {
	q, err := quote(db)
	if err != nil {
		return Statement{}, err
	}
	oc, err := d.onCluster()
	if err != nil {
		return Statement{}, err
	}
	return Statement{SQL: "DROP DATABASE IF EXISTS " + q + oc}, nil
}

// CreateEventsTable is the tenant's events table.
//
// Deduplication: ReplacingMergeTree keeps one row per sorting key within a partition when
// parts merge, so the key must hold event_id and nothing that can differ between two
// deliveries of the same event. Every element of the key (event_type, the day of the
// event's timestamp, event_id) and the partition (month of timestamp) come from the event
// itself, which Kafka re-delivers byte for byte; received_at, which does differ, is the
// version column instead, so the latest copy wins. event_id is last because it spreads
// rows evenly and is useless for range scans, while event_type and day first serve the
// per-tenant queries (one type over a time range). Duplicates disappear at merge time:
// exact counts need FINAL or uniqExact(event_id).
func (d Dialect) CreateEventsTable(db string, retentionDays int) (Statement, error) {
	return d.createTable(db, EventsTable, tableDef{
		columns: fmt.Sprintf("`event_id` String, `event_type` %s, `timestamp` DateTime, `received_at` DateTime, "+
			"`user_id` String, `session_id` String, `properties` String", d.stringType()),
		engine:    "ReplacingMergeTree(`received_at`)",
		partition: "toYYYYMM(`timestamp`)",
		order:     "`event_type`, toDate(`timestamp`), `event_id`",
		ttlColumn: "timestamp",
	}, retentionDays)
}

// CreateQuarantineTable holds what could not become an event, with where it came from so it
// can be replayed. A record is identified by its topic, partition and offset, which a
// redelivery repeats, so a record quarantined twice collapses on merge like an event.
func (d Dialect) CreateQuarantineTable(db string, retentionDays int) (Statement, error) {
	return d.createTable(db, QuarantineTable, tableDef{
		columns:   fmt.Sprintf("`raw` String, `reason` String, `received_at` DateTime, `topic` %s, `partition` Int32, `offset` Int64", d.stringType()),
		engine:    "ReplacingMergeTree(`received_at`)",
		partition: "toYYYYMM(`received_at`)",
		order:     "`topic`, `partition`, `offset`",
		ttlColumn: "received_at",
	}, retentionDays)
}

// tableDef is the fixed SQL text of a table Shoal creates; only the database name and the
// retention vary, and the database name is validated before it is used.
type tableDef struct {
	columns, engine, partition, order, ttlColumn string
}

func (d Dialect) createTable(db, table string, def tableDef, retentionDays int) (Statement, error) {
	q, err := quoteAll(db, table)
	if err != nil {
		return Statement{}, err
	}
	oc, err := d.onCluster()
	if err != nil {
		return Statement{}, err
	}
	sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (%s) ENGINE = %s PARTITION BY %s ORDER BY (%s)%s",
		q[0], q[1], oc, def.columns, def.engine, def.partition, def.order, d.ttl(def.ttlColumn, retentionDays))
	return Statement{SQL: sql}, nil
}

// DropPartition drops one monthly partition (yyyymm, the value of toYYYYMM) of a table.
func (d Dialect) DropPartition(db, table string, yyyymm int) (Statement, error) {
	q, err := quoteAll(db, table)
	if err != nil {
		return Statement{}, err
	}
	if yyyymm < 100001 || yyyymm > 999912 || yyyymm%100 < 1 || yyyymm%100 > 12 {
		return Statement{}, fmt.Errorf("partition %d is not a yyyymm month", yyyymm)
	}
	oc, err := d.onCluster()
	if err != nil {
		return Statement{}, err
	}
	return Statement{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION %d", q[0], q[1], oc, yyyymm)}, nil
}

// CreateUser are the statements giving user (with the password's SHA-256, lower-case hex)
// SELECT and INSERT on db, on servers with SQL users. ALTER USER after CREATE USER IF NOT
// EXISTS makes a changed password converge; the hash, not the password, is sent so the
// plaintext never reaches the server's query log.
func (d Dialect) CreateUser(user, db, passwordSHA256Hex string) ([]Statement, error) {
	if !d.Features.SQLUsers {
		return nil, fmt.Errorf("ClickHouse %s has no SQL users: manage users through users.d", d.Version)
	}
	q, err := quoteAll(user, db)
	if err != nil {
		return nil, err
	}
	if !sha256Hex.MatchString(passwordSHA256Hex) {
		return nil, fmt.Errorf("password hash must be 64 lower-case hex digits")
	}
	oc, err := d.onCluster()
	if err != nil {
		return nil, err
	}
	return []Statement{
		{SQL: "CREATE USER IF NOT EXISTS " + q[0] + oc + " IDENTIFIED WITH sha256_hash BY ?", Args: []any{passwordSHA256Hex}},
		{SQL: "ALTER USER " + q[0] + oc + " IDENTIFIED WITH sha256_hash BY ?", Args: []any{passwordSHA256Hex}},
		{SQL: "GRANT" + oc + " SELECT, INSERT ON " + q[1] + ".* TO " + q[0]},
	}, nil
}

// DropUser is DROP USER IF EXISTS, on servers with SQL users.
func (d Dialect) DropUser(user string) (Statement, error) {
	if !d.Features.SQLUsers {
		return Statement{}, fmt.Errorf("ClickHouse %s has no SQL users: manage users through users.d", d.Version)
	}
	q, err := quote(user)
	if err != nil {
		return Statement{}, err
	}
	oc, err := d.onCluster()
	if err != nil {
		return Statement{}, err
	}
	return Statement{SQL: "DROP USER IF EXISTS " + q + oc}, nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
