#!/usr/bin/env bash
# Runs a data-path benchmark: `shoal bench ingest`, `shoal bench process`,
# `shoal bench freshness` or `shoal bench query`. ingest needs no backend (its Kafka is a
# kfake broker in the benchmark's own process); process and freshness need ClickHouse, S3
# and Kafka, query needs ClickHouse and PostgreSQL, so this starts the local backends as
# hack/demo.sh does (shoal-localcluster, which also runs a kube-apiserver and etcd that
# the benchmark leaves idle) and passes their platform config. `make bench-ingest`,
# `make bench-process`, `make bench-freshness` and `make bench-query` build what this
# needs first. Extra arguments go to the benchmark (for example --json). Stops everything
# on exit; the work directory with the backends' log is kept when the run failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${SHOAL_BIN:-$root/bin}"
cd "$root"

mode="${1:-}"
case "$mode" in
  ingest|process|freshness|query) shift ;;
  *) echo "usage: $0 ingest|process|freshness|query [shoal bench flags...]" >&2; exit 2 ;;
esac

[[ -x "$bin/shoal" ]] || { echo "bench-$mode: $bin/shoal is missing; run 'make bench-$mode'" >&2; exit 1; }
if [[ "$mode" == ingest ]]; then
  exec "$bin/shoal" bench ingest "$@"
fi

for b in shoal-localcluster kube-apiserver etcd; do
  [[ -x "$bin/$b" ]] || { echo "bench-$mode: $bin/$b is missing; run 'make bench-$mode'" >&2; exit 1; }
done
for b in stripe-mock versitygw; do
  [[ -x "$bin/$b" ]] || command -v "$b" >/dev/null ||
    { echo "bench-$mode: $b is missing; run 'make bin/$b'" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-$mode.XXXXXX")
kubeconfig="$work/kubeconfig"
platform="$work/platform.yaml"
cluster=""
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  if [[ -n "$cluster" ]]; then
    kill "$cluster" 2>/dev/null || true
    wait "$cluster" 2>/dev/null || true
  fi
  if [[ "$code" == 0 ]]; then
    rm -rf "$work"
  else
    echo "bench-$mode: failed; logs kept in $work" >&2
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-$mode: starting the backends (log: $work/controlplane.log)" >&2
# The kubeconfig is written last, once the backends are up and the platform config is
# written.
"$bin/shoal-localcluster" --kubeconfig "$kubeconfig" --platform-config "$platform" \
  --example config/platform.yaml >"$work/controlplane.log" 2>&1 &
cluster=$!
for _ in $(seq 1 240); do
  [[ -s "$kubeconfig" ]] && break
  kill -0 "$cluster" 2>/dev/null || { cat "$work/controlplane.log" >&2; exit 1; }
  sleep 0.5
done
[[ -s "$kubeconfig" ]] || { echo "bench-$mode: the backends did not start in 120s" >&2; cat "$work/controlplane.log" >&2; exit 1; }

"$bin/shoal" bench "$mode" --config "$platform" "$@"
