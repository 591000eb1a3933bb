#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, etcd, kubectl) from the Go modules pinned
# in hack/controlplane/go.mod into bin/. Nothing is downloaded but Go modules.
# Reuses what is built: a stamp records the pinned versions, and the Go build cache makes a
# rebuild after a clean checkout take seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/controlplane"
out="${BIN_DIR:-$root/bin}"
mkdir -p "$out"

k8s_version=$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' "$mod/go.mod")
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$mod/go.mod")
stamp="$out/.controlplane-$k8s_version-$etcd_version"
if [[ -f "$stamp" && -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  echo "control plane $k8s_version (etcd $etcd_version) already built in $out"
  exit 0
fi

ver=${k8s_version#v}
major=${ver%%.*}
minor=${ver#*.}; minor=${minor%%.*}
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
done
ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version"

start=$(date +%s)
echo "building kube-apiserver, kubectl $k8s_version and etcd $etcd_version into $out (first build takes about 10 minutes)"
cd "$mod"
export CGO_ENABLED=0
go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "$ldflags" -o "$out/etcd" go.etcd.io/etcd/server/v3
rm -f "$out"/.controlplane-*
touch "$stamp"
echo "control plane built in $(( $(date +%s) - start ))s"
