#!/usr/bin/env bash
# Runs Shoal locally: a real kube-apiserver and etcd, the backends Shoal provisions into
# (Kafka, ClickHouse, PostgreSQL, S3, stripe-mock), the operator, the sample tenants, and
# shoal dev (ingest and process) with sample events for acme.
# `make demo` builds what this needs first. Runs until Ctrl-C, then stops everything it
# started. With SHOAL_DEMO_ONESHOT=1 it stops by itself once the samples are Ready and
# what they got and the sample events' way into ClickHouse and the lake are shown.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${SHOAL_BIN:-$root/bin}"
cd "$root"

for b in shoal shoal-localcluster kubectl kube-apiserver etcd; do
  [[ -x "$bin/$b" ]] || { echo "demo: $bin/$b is missing; run 'make demo'" >&2; exit 1; }
done
# The test servers: from bin/ or PATH, as the backends' helpers look for them.
for b in stripe-mock versitygw; do
  [[ -x "$bin/$b" ]] || command -v "$b" >/dev/null ||
    { echo "demo: $b is missing; run 'make bin/$b'" >&2; exit 1; }
done

command -v curl >/dev/null || { echo "demo: curl is missing; the demo sends events with it" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo.XXXXXX")
kubeconfig="$work/kubeconfig"
platform="$work/platform.yaml"
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
# show prints a command as a reader would type it (KUBECONFIG exported, the backends' env
# file sourced) and runs it, indenting its output.
show() {
  printf '  $ %s\n' "$1"
  (eval "$1") 2>&1 | sed 's/^/      /' || true
}
# note prints a command that needs a tool this machine lacks.
note() { printf '  $ %s\n      (%s)\n' "$1" "$2"; }

step "starting kube-apiserver, etcd and the backends (logs: $work/controlplane.log)"
# The kubeconfig is written last, once the backends are up and the platform config is
# written.
"$bin/shoal-localcluster" --kubeconfig "$kubeconfig" --platform-config "$platform" \
  --example config/platform.yaml >"$work/controlplane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 240); do
  [[ -s "$kubeconfig" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/controlplane.log" >&2; exit 1; }
  sleep 0.5
done
[[ -s "$kubeconfig" ]] || { echo "demo: control plane did not start in 120s" >&2; cat "$work/controlplane.log" >&2; exit 1; }
sed 's/^/    /' "$work/controlplane.log"

# What show's commands use: kubectl on the demo's cluster and the backends' addresses.
export KUBECONFIG="$kubeconfig" PATH="$bin:$PATH"
set -a
# shellcheck disable=SC1091
source "$platform.env"
set +a

step "starting the operator with $platform (logs: $work/operator.log)"
"$bin/shoal" operator --config "$platform" --kubeconfig "$kubeconfig" --dev-logs \
  >"$work/operator.log" 2>&1 &
pids+=($!)

step "applying the sample tenants"
kc apply -f config/samples/analytics_v1alpha1_tenant_shared.yaml -f config/samples/analytics_v1alpha1_tenant_dedicated.yaml
if ! kc wait --for=condition=Ready tenant/acme tenant/globex --timeout=120s; then
  echo "demo: the sample tenants did not become Ready; their conditions:" >&2
  kc get tenants -o jsonpath='{range .items[*]}{.metadata.name}:{"\n"}{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\n"}{end}{end}' >&2 || true
  echo "operator log (last lines):" >&2
  tail -30 "$work/operator.log" >&2
  exit 1
fi
kc get tenants -o wide

step "applying the sample Pipeline, Dashboard and DataSource into tenant-acme"
kc apply -f config/samples/analytics_v1alpha1_pipeline.yaml \
  -f config/samples/analytics_v1alpha1_dashboard.yaml \
  -f config/samples/analytics_v1alpha1_datasource.yaml
kc get pipelines,dashboards,datasources -n tenant-acme

step "what the Shared tenant acme got"
show "kubectl get tenant acme -o jsonpath='topic:     {.status.topic}{\"\\n\"}database:  {.status.database}{\"\\n\"}storage:   {.status.storage}{\"\\n\"}billing:   {.status.billing}{\"\\n\"}endpoints: {.status.endpoints}{\"\\n\"}'"
echo "  The ingest write key (only its hash is stored anywhere else):"
show "kubectl get secret -n tenant-acme acme-ingest-key -o jsonpath='{.data.key}' | base64 -d; echo"

echo "  Its Kafka topic:"
topic_cmd='kcat -L -b "$SHOAL_KAFKA_BROKERS" -t shoal-events-acme'
if command -v kcat >/dev/null; then show "$topic_cmd"; else note "$topic_cmd" "install kcat to run this"; fi

echo "  Its ClickHouse database:"
if command -v clickhouse-client >/dev/null; then
  chc=clickhouse-client
elif command -v clickhouse >/dev/null; then
  chc="clickhouse client"
else
  chc=""
fi
ch_cmd="${chc:-clickhouse-client}"' --host "${SHOAL_CLICKHOUSE_ADDR%:*}" --port "${SHOAL_CLICKHOUSE_ADDR##*:}" --user "$SHOAL_CLICKHOUSE_USER" --password "$SHOAL_CLICKHOUSE_PASSWORD" -q '"'SHOW TABLES FROM tenant_acme'"
if [[ -n "$chc" ]]; then show "$ch_cmd"; else note "$ch_cmd" "install clickhouse-client to run this"; fi

echo "  Its row in the metadata store:"
pg_cmd="psql \"\$SHOAL_METASTORE_DSN\" -c 'select id, plan, isolation, suspended from tenants'"
if command -v psql >/dev/null; then show "$pg_cmd"; else note "$pg_cmd" "install postgresql-client to run this"; fi

echo "  Its lake prefix (a signed S3 ListObjectsV2):"
lake_prefix=$(kc get tenant acme -o jsonpath='{.status.storage.prefix}')
# Signed with the query fully percent-encoded: curl signs it as written.
lake_query="list-type=2&prefix=$(printf '%s' "$lake_prefix" | sed -e 's|/|%2F|g' -e 's|=|%3D|g')"
lake_cmd="curl -sS --aws-sigv4 \"aws:amz:\$SHOAL_S3_REGION:s3\" --user \"\$SHOAL_S3_ACCESS_KEY:\$SHOAL_S3_SECRET_KEY\" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \"\$SHOAL_S3_ENDPOINT/\$SHOAL_LAKE_BUCKET?$lake_query\" | grep -o '<Key>[^<]*</Key>'"
if command -v curl >/dev/null; then show "$lake_cmd"; else note "$lake_cmd" "install curl to run this"; fi

step "what the Dedicated tenant globex got (stand-ins play the Altinity operator and the deployment controller)"
show "kubectl get clickhouseinstallations,deployments -n tenant-globex"

step "sending sample events for acme through shoal dev (ingest, process and the query API in one process)"
# free_port prints a loopback port nothing answers on.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  echo "demo: found no free port" >&2
  return 1
}
dev_listen="127.0.0.1:$(free_port)"
dev_process_listen="127.0.0.1:$(free_port)"
dev_query_listen="127.0.0.1:$(free_port)"
# --sign-in prints a token of acme's owner from the local OIDC issuer shoal dev runs.
dev_args=(--config "$platform" --listen "$dev_listen" --process-listen "$dev_process_listen"
  --query-listen "$dev_query_listen" --sign-in acme=ops@acme.example)
echo "  bin/shoal dev ${dev_args[*]} (logs: $work/dev.log)"
"$bin/shoal" dev "${dev_args[@]}" >"$work/dev.log" 2>&1 &
pids+=($!)
dev_pid=$!
dev_ready=""
for _ in $(seq 1 120); do
  if curl -sf "http://$dev_listen/readyz" >/dev/null 2>&1 && curl -sf "http://$dev_process_listen/readyz" >/dev/null 2>&1 &&
    curl -sf "http://$dev_query_listen/readyz" >/dev/null 2>&1; then
    dev_ready=1
    break
  fi
  kill -0 "$dev_pid" 2>/dev/null || break
  sleep 0.5
done
if [[ -z "$dev_ready" ]]; then
  echo "demo: shoal dev did not become ready; its log:" >&2
  tail -30 "$work/dev.log" >&2
  exit 1
fi

# The key the operator put into acme's Secret, and 20 events: page views, signups and
# completed checkouts (what the sample Pipeline aggregates).
export SHOAL_INGEST_URL="http://$dev_listen/api/v1/events/ingest"
SHOAL_ACME_KEY=$(kc get secret -n tenant-acme acme-ingest-key -o jsonpath='{.data.key}' | base64 -d)
export SHOAL_ACME_KEY
sent=20
{
  printf '['
  for i in $(seq 1 "$sent"); do
    ((i > 1)) && printf ','
    if ((i % 2 == 0)); then
      plans=(free team) countries=(US DE FR) currencies=(USD EUR)
      printf '{"event_id":"demo-%d","event_type":"checkout_completed","user_id":"user-%d","properties":{"plan":"%s","country":"%s","currency":"%s","amount":%d.5,"items":%d}}' \
        "$i" $((i % 7)) "${plans[$((i / 2 % 2))]}" "${countries[$((i % 3))]}" "${currencies[$((i / 4 % 2))]}" $((10 * i)) $((i % 4 + 1))
    elif ((i % 5 == 0)); then
      printf '{"event_id":"demo-%d","event_type":"signup","user_id":"user-%d","properties":{"plan":"team"}}' "$i" "$i"
    else
      printf '{"event_id":"demo-%d","event_type":"page_view","user_id":"user-%d","properties":{"path":"/docs/%d"}}' "$i" $((i % 7)) "$i"
    fi
  done
  printf ']\n'
} >"$work/acme-events.json"
echo "  $sent events ($work/acme-events.json) with acme's key (\$SHOAL_ACME_KEY, from its Secret):"
show "curl -sS \"\$SHOAL_INGEST_URL\" -H \"Authorization: Bearer \$SHOAL_ACME_KEY\" -H 'Content-Type: application/json' -d @$work/acme-events.json"

echo "  In ClickHouse once the processor wrote them (FINAL collapses redelivered copies):"
count_cmd="${ch_cmd%-q *}-q 'SELECT count() FROM tenant_acme.events FINAL'"
if [[ -n "$chc" ]]; then
  for _ in $(seq 1 60); do
    [[ "$(eval "$count_cmd" 2>/dev/null)" == "$sent" ]] && break
    sleep 0.5
  done
  show "$count_cmd"
else
  note "$count_cmd" "install clickhouse-client to run this"
fi
echo "  In the lake, one gzipped NDJSON object per batch:"
for _ in $(seq 1 20); do
  (eval "$lake_cmd") 2>/dev/null | grep -q 'ndjson.gz' && break
  sleep 0.5
done
show "$lake_cmd"

step "reading them back through the query API, signed in as acme's owner"
query_api="http://$dev_query_listen/api/v1"
SHOAL_ACME_TOKEN=$(grep -o "Authorization: Bearer [^']*" "$work/dev.log" | head -1 | sed 's/^Authorization: Bearer //')
export SHOAL_ACME_TOKEN SHOAL_QUERY_API="$query_api"
echo "  The Pipeline builds its rollup once the processor has passed the view's cutoff:"
if ! kc wait --for=condition=Ready pipeline/checkout-revenue -n tenant-acme --timeout=180s; then
  kc get pipeline checkout-revenue -n tenant-acme -o jsonpath='{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
fi
show "kubectl get pipeline checkout-revenue -n tenant-acme"
echo "  Orders and revenue per plan, by hour, from the rollup (the token is from \$work/dev.log):"
show "curl -sS -H \"Authorization: Bearer \$SHOAL_ACME_TOKEN\" \"\$SHOAL_QUERY_API/metrics/query?pipeline=checkout-revenue&metric=orders,revenue&groupBy=properties.plan&from=now-2h&interval=hour\"; echo"
echo "  The sample Dashboard, synced from its object, with each widget's data:"
dash_id=$(kc get dashboard revenue -n tenant-acme -o jsonpath='{.status.dashboardID}')
show "curl -sS -H \"Authorization: Bearer \$SHOAL_ACME_TOKEN\" \"\$SHOAL_QUERY_API/dashboards/$dash_id\" | head -c 600; echo"

cat <<TXT

Shoal is running. In another terminal:

  export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH
  source $platform.env   # the backends' addresses
  kubectl get tenants -o wide
  kubectl describe tenant acme                     # conditions and events
  kubectl get namespace tenant-acme --show-labels
  kubectl explain tenant.spec --recursive
  kubectl apply -f - <<'EOF'                       # a refused spec: dedicated with Shared
  {"apiVersion":"analytics.shoal.dev/v1alpha1","kind":"Tenant","metadata":{"name":"bad"},
   "spec":{"displayName":"Bad","plan":"free","owners":["a@b.example"],"isolation":"Shared",
           "dedicated":{"clickhouse":{"storage":"10Gi"}}}}
  EOF
  kubectl delete tenant globex                     # data archived, namespace, then the finalizer

  # More events for acme, through shoal dev (logs: $work/dev.log):
  SHOAL_KEY=\$(kubectl get secret -n tenant-acme acme-ingest-key -o jsonpath='{.data.key}' | base64 -d)
  curl -sS http://$dev_listen/api/v1/events/ingest -H "Authorization: Bearer \$SHOAL_KEY" \\
    -H 'Content-Type: application/json' -d '[{"event_type":"page_view","user_id":"user-1","properties":{"path":"/pricing"}}]'

  # The query API (token of acme's owner in $work/dev.log; the routes: /api/v1/openapi.json):
  curl -H "Authorization: Bearer \$SHOAL_ACME_TOKEN" "$query_api/metrics/query?mode=raw&eventType=page_view&groupBy=properties.path"

Platform config: $platform
Operator logs: $work/operator.log
Press Ctrl-C to stop everything.
TXT

if [[ "${SHOAL_DEMO_ONESHOT:-}" == 1 ]]; then
  exit 0
fi
running() {
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}
while running; do
  sleep 1
done
echo "demo: a process stopped unexpectedly" >&2
tail -20 "$work/operator.log" "$work/controlplane.log" "$work/dev.log" >&2
exit 1
