#!/usr/bin/env bash
# Makes sure the backend servers the tests start are installed: ClickHouse and PostgreSQL
# from Debian's packages. (Kafka runs in-process; the S3 server and stripe-mock are built
# from Go modules by make.) Installs what is missing when run as root, else says how.
set -euo pipefail

missing=()
command -v clickhouse-server >/dev/null 2>&1 || command -v clickhouse >/dev/null 2>&1 || missing+=(clickhouse-server)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "backends: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "backends: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' own services are not wanted: tests start their servers themselves.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
