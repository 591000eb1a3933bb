#!/usr/bin/env bash
# Runs a benchmark: `shoal bench tenants`, `ingest`, `process`, `freshness` or `query`.
# ingest needs no backend (its Kafka is a kfake broker in the benchmark's own process).
# The others need the local backends, so this starts them as hack/demo.sh does
# (shoal-localcluster: a kube-apiserver and etcd, which only tenants uses, and every
# backend) and passes their platform config. `make bench-<mode>` builds what this needs
# first. tenants takes the tenant count first: `hack/bench.sh tenants 100`. Extra
# arguments go to the benchmark (for example --json). Stops everything on exit; the work
# directory with the logs is kept when the run failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${SHOAL_BIN:-$root/bin}"
cd "$root"

mode="${1:-}"
case "$mode" in
  ingest|process|freshness|query) shift ;;
  tenants)
    n="${2:-}"
    [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "usage: $0 tenants N [shoal bench tenants flags...]" >&2; exit 2; }
    shift 2
    ;;
  *) echo "usage: $0 tenants N|ingest|process|freshness|query [shoal bench flags...]" >&2; exit 2 ;;
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

if [[ "$mode" == tenants ]]; then
  # The benchmark's own files (its operator config and log) go into the work directory too.
  TMPDIR="$work" "$bin/shoal" bench tenants -n "$n" --kubeconfig "$kubeconfig" --config "$platform" "$@"
else
  "$bin/shoal" bench "$mode" --config "$platform" "$@"
fi
