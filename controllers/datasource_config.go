package controllers

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// dataSourceConfig is the metastore's config object of a DataSource: the fields of its
// type's block, with spec.schedule and spec.mapping. A postgres host's port goes to its
// own field, as the store wants it.
func dataSourceConfig(ds *v1alpha1.DataSource) (json.RawMessage, error) {
	cfg := map[string]any{"mapping": ds.Spec.Mapping}
	if ds.Spec.Schedule != "" {
		cfg["schedule"] = ds.Spec.Schedule
	}
	setIf := func(key, value string) {
		if value != "" {
			cfg[key] = value
		}
	}
	switch s := ds.Spec; {
	case s.Type == v1alpha1.DataSourceHTTP && s.HTTP != nil:
		cfg["url"] = s.HTTP.URL
		setIf("recordsPath", s.HTTP.RecordsPath)
	case s.Type == v1alpha1.DataSourcePostgres && s.Postgres != nil:
		host, port := splitPort(s.Postgres.Host)
		cfg["host"] = host
		if port != nil {
			cfg["port"] = port
		}
		cfg["database"] = s.Postgres.Database
		setIf("query", s.Postgres.Query)
		setIf("cursorColumn", s.Postgres.CursorColumn)
	case s.Type == v1alpha1.DataSourceS3 && s.S3 != nil:
		cfg["bucket"] = s.S3.Bucket
		setIf("prefix", s.S3.Prefix)
		setIf("region", s.S3.Region)
		setIf("format", string(s.S3.Format))
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return raw, nil
}

// splitPort splits "host:port" (or "[v6]:port"); port is nil without one, a number when
// numeric and the text otherwise, so the store names what is wrong with it.
func splitPort(hostport string) (string, any) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, nil
	}
	if n, err := strconv.Atoi(port); err == nil {
		return host, n
	}
	return host, port
}

// dataSourceSpec is what the metastore keeps of a DataSource: its name is the object's.
func dataSourceSpec(ds *v1alpha1.DataSource, creds map[string]string) (metastore.DataSourceSpec, error) {
	cfg, err := dataSourceConfig(ds)
	if err != nil {
		return metastore.DataSourceSpec{}, err
	}
	return metastore.DataSourceSpec{Name: ds.Name, Type: string(ds.Spec.Type), Config: cfg, Credentials: creds}, nil
}

// dataSourceConfigErrors checks the configuration as the metastore will, each error
// naming the object's field (spec.postgres.host) rather than the store's (config.host).
func dataSourceConfigErrors(ds *v1alpha1.DataSource) (field.ErrorList, error) {
	cfg, err := dataSourceConfig(ds)
	if err != nil {
		return nil, err
	}
	errs := metastore.ValidateDataSourceConfig(string(ds.Spec.Type), cfg)
	for _, e := range errs {
		e.Field = specPath(ds.Spec.Type, e.Field)
	}
	return errs, nil
}

// specPath maps a path of the store's data source ("config.host", "type") to the
// DataSource's ("spec.postgres.host", "spec.type").
func specPath(typ v1alpha1.DataSourceType, storePath string) string {
	rest, ok := strings.CutPrefix(storePath, "config.")
	switch {
	case storePath == "config":
		return "spec"
	case !ok:
		return "spec." + storePath
	}
	switch key, _, _ := strings.Cut(rest, "."); key {
	case "schedule", "mapping":
		return "spec." + rest
	case "port":
		return "spec." + string(typ) + ".host"
	}
	return "spec." + string(typ) + "." + rest
}

// secretCredentials are a Secret's keys and values as data source credentials.
func secretCredentials(s *corev1.Secret) map[string]string {
	creds := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		creds[k] = string(v)
	}
	return creds
}
