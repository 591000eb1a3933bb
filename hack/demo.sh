#!/usr/bin/env bash
# Runs Shoal locally: a real kube-apiserver and etcd, the operator, and the sample tenants.
# `make demo` builds what this needs first. Runs until Ctrl-C, then stops everything it
# started. With SHOAL_DEMO_ONESHOT=1 it stops by itself once the samples are Ready.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${SHOAL_BIN:-$root/bin}"
cd "$root"

for b in shoal shoal-localcluster kubectl kube-apiserver etcd; do
  [[ -x "$bin/$b" ]] || { echo "demo: $bin/$b is missing; run 'make demo'" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo.XXXXXX")
kubeconfig="$work/kubeconfig"
pids=()
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  echo
  echo "demo: stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n==> %s\n' "$*"; }
kc() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

step "starting kube-apiserver and etcd (logs: $work/controlplane.log)"
"$bin/shoal-localcluster" --kubeconfig "$kubeconfig" >"$work/controlplane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  [[ -s "$kubeconfig" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/controlplane.log" >&2; exit 1; }
  sleep 0.5
done
[[ -s "$kubeconfig" ]] || { echo "demo: control plane did not start in 60s" >&2; cat "$work/controlplane.log" >&2; exit 1; }
grep -h "ready\|upstream" "$work/controlplane.log" | sed 's/^/    /'

step "starting the operator (logs: $work/operator.log)"
# The example platform config, with metrics and health endpoints off so the demo needs no
# free ports.
sed -e 's/^  metricsAddr:.*/  metricsAddr: "0"/' -e 's/^  healthAddr:.*/  healthAddr: "0"/' \
  config/platform.yaml >"$work/platform.yaml"
"$bin/shoal" operator --config "$work/platform.yaml" --kubeconfig "$kubeconfig" --dev-logs \
  >"$work/operator.log" 2>&1 &
pids+=($!)

step "applying the sample tenants"
kc apply -f config/samples/analytics_v1alpha1_tenant_shared.yaml -f config/samples/analytics_v1alpha1_tenant_dedicated.yaml
kc wait --for=condition=Ready tenant/acme tenant/globex --timeout=120s
kc get tenants -o wide

step "applying the sample Pipeline, Dashboard and DataSource into tenant-acme"
kc apply -f config/samples/analytics_v1alpha1_pipeline.yaml \
  -f config/samples/analytics_v1alpha1_dashboard.yaml \
  -f config/samples/analytics_v1alpha1_datasource.yaml
kc get pipelines,dashboards,datasources -n tenant-acme

cat <<TXT

Shoal is running. In another terminal:

  export KUBECONFIG=$kubeconfig
  $bin/kubectl get tenants -o wide
  $bin/kubectl describe tenant acme                # conditions and events
  $bin/kubectl get namespace tenant-acme --show-labels
  $bin/kubectl explain tenant.spec --recursive
  $bin/kubectl apply -f - <<'EOF'                   # a refused spec: dedicated with Shared
  {"apiVersion":"analytics.shoal.dev/v1alpha1","kind":"Tenant","metadata":{"name":"bad"},
   "spec":{"displayName":"Bad","plan":"free","owners":["a@b.example"],"isolation":"Shared",
           "dedicated":{"clickhouse":{"storage":"10Gi"}}}}
  EOF
  $bin/kubectl delete tenant globex                 # namespace first, then the finalizer

Operator logs: $work/operator.log
Press Ctrl-C to stop everything.
TXT

if [[ "${SHOAL_DEMO_ONESHOT:-}" == 1 ]]; then
  exit 0
fi
while kill -0 "${pids[0]}" 2>/dev/null && kill -0 "${pids[1]}" 2>/dev/null; do
  sleep 1
done
echo "demo: a process stopped unexpectedly" >&2
tail -20 "$work/operator.log" "$work/controlplane.log" >&2
exit 1
