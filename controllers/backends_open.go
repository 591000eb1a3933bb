package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
)

// OpenBackends connects to every backend of the platform config. The shared ClickHouse
// and PostgreSQL are contacted now (the version decides the SQL; the migrations run), so
// a wrong address or password stops the operator at start with an error that names the
// backend. The returned close releases what was opened.
func OpenBackends(ctx context.Context, p *config.Platform, c client.Client) (Backends, func(), error) {
	var (
		b       Backends
		closers []func()
	)
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(backend string, err error) (Backends, func(), error) {
		closeAll()
		return Backends{}, nil, fmt.Errorf("%s: %w", backend, err)
	}

	switch p.Kafka.Mode {
	case kafka.ModeStrimzi:
		topics, err := kafka.NewStrimzi(c, p.Kafka)
		if err != nil {
			return fail("kafka", err)
		}
		b.Topics = topics
	default:
		topics, err := kafka.NewDirect(p.Kafka)
		if err != nil {
			return fail("kafka", err)
		}
		closers = append(closers, topics.Close)
		b.Topics = topics
	}

	ch, err := clickhouse.New(ctx, p.ClickHouse)
	if err != nil {
		return fail("clickhouse", err)
	}
	closers = append(closers, func() { _ = ch.Close() })
	b.ClickHouse = ch
	b.Dedicated = ConnectClickHouse

	lk, err := lake.New(ctx, p.Lake)
	if err != nil {
		return fail("lake", err)
	}
	b.Lake = lk

	store, err := metastore.Open(ctx, p.Metastore)
	if err != nil {
		return fail("metastore", err)
	}
	closers = append(closers, store.Close)
	b.Metastore = store
	b.Catalog = store
	b.Dashboards = store
	// Without keys the keyring is nil: data sources without credentials still sync, and
	// one with credentials is refused with a message naming sealing.keys.
	var keys *sealing.Keyring
	if len(p.Sealing.Keys) > 0 {
		if keys, err = sealing.Load(p.Sealing); err != nil {
			return fail("sealing", err)
		}
	}
	b.DataSources = store.DataSources(keys)

	bill, err := billing.New(p.BillingConfig())
	if err != nil {
		return fail("billing", err)
	}
	b.Billing = bill
	return b, closeAll, nil
}
