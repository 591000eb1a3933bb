#!/usr/bin/env bash
# Measures tenant provisioning: starts a local control plane and every backend (as
# hack/demo.sh does), then runs `shoal bench tenants -n N` against them, which runs the
# operator itself. `make bench-tenants N=100` builds what this needs first. Extra
# arguments go to the benchmark (for example --concurrency 8 or --json). Stops everything
# on exit; the work directory with the operator's log is kept when the run failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${SHOAL_BIN:-$root/bin}"
cd "$root"

n="${1:-}"
[[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "usage: $0 N [shoal bench tenants flags...]" >&2; exit 2; }
shift

for b in shoal shoal-localcluster kube-apiserver etcd; do
  [[ -x "$bin/$b" ]] || { echo "bench-tenants: $bin/$b is missing; run 'make bench-tenants'" >&2; exit 1; }
done
for b in stripe-mock versitygw; do
  [[ -x "$bin/$b" ]] || command -v "$b" >/dev/null ||
    { echo "bench-tenants: $b is missing; run 'make bin/$b'" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
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
    echo "bench-tenants: failed; logs kept in $work" >&2
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-tenants: starting kube-apiserver, etcd and the backends (log: $work/controlplane.log)" >&2
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
[[ -s "$kubeconfig" ]] || { echo "bench-tenants: the local cluster did not start in 120s" >&2; cat "$work/controlplane.log" >&2; exit 1; }

# The benchmark's own files (its operator config and log) go into the work directory too.
TMPDIR="$work" "$bin/shoal" bench tenants -n "$n" --kubeconfig "$kubeconfig" --config "$platform" "$@"
