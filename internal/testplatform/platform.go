// Package testplatform starts every backend of a Shoal installation for tests, the demo
// and the benchmarks, and points a platform config at them.
package testplatform

import (
	"testing"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

// Platform is every backend a Shoal installation needs, started for tests, the demo and
// the benchmarks.
type Platform struct {
	Kafka      *testbackends.Kafka
	ClickHouse *testbackends.ClickHouse
	Postgres   *testbackends.Postgres
	S3         *testbackends.S3
	// Stripe is nil when billing was not asked for.
	Stripe *testbackends.Stripe
	// MetastoreDSN is the database created for the metastore.
	MetastoreDSN string
}

// Start starts Kafka, ClickHouse, PostgreSQL and S3, and stripe-mock when
// billing is true. They stop when tb ends.
func Start(tb testing.TB, billing bool) *Platform {
	tb.Helper()
	p := &Platform{
		Kafka:      testbackends.StartKafka(tb),
		ClickHouse: testbackends.StartClickHouse(tb),
		Postgres:   testbackends.StartPostgres(tb),
		S3:         testbackends.StartS3(tb),
	}
	p.MetastoreDSN = p.Postgres.CreateDatabase(tb, "shoal")
	if billing {
		p.Stripe = testbackends.StartStripe(tb)
	}
	return p
}

// StripeTestKey is the key stripe-mock accepts.
const StripeTestKey = "sk_test_123"

// Configure points a platform config's backend sections at the started servers.
func (p *Platform) Configure(cfg *config.Platform) {
	cfg.Kafka.Brokers = append([]string(nil), p.Kafka.Brokers...)
	cfg.ClickHouse.Addr = p.ClickHouse.Addr
	cfg.ClickHouse.User = p.ClickHouse.User
	cfg.ClickHouse.Password, cfg.ClickHouse.PasswordFile = p.ClickHouse.Password, ""
	cfg.ClickHouse.UsersDir = p.ClickHouse.UsersDir
	cfg.Lake.Endpoint = p.S3.Endpoint
	cfg.Lake.Region = p.S3.Region
	cfg.Lake.PathStyle = true
	if cfg.Lake.Bucket == "" {
		cfg.Lake.Bucket = "shoal-lake"
	}
	cfg.Lake.AccessKeyID, cfg.Lake.SecretAccessKey = p.S3.AccessKey, p.S3.SecretKey
	cfg.Metastore.DSN, cfg.Metastore.DSNFile = p.MetastoreDSN, ""
	cfg.Billing.SecretKey, cfg.Billing.SecretKeyFile, cfg.Billing.APIBase = "", "", ""
	if p.Stripe != nil {
		cfg.Billing.SecretKey = StripeTestKey
		cfg.Billing.APIBase = p.Stripe.URL
	}
}
