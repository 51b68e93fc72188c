#!/usr/bin/env bash
# make kube-assets: put kube-apiserver, kube-controller-manager and etcd of the pinned Kubernetes
# release (go.mod) in a cache folder outside the repository and print that folder on stdout.
#
# - KUBEBUILDER_ASSETS set (controller-runtime's convention, what `setup-envtest use` gives):
#   nothing is built; that folder is checked and printed.
# - Otherwise the binaries are built with Go from the module proxy into
#   ${TENANTDB_KUBE_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantdb/kube-assets}/<version>,
#   once: a warm run only checks that they are there.
# Progress goes to stderr, so `dir=$(make -s kube-assets)` captures the folder alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")"
binaries=(kube-apiserver etcd kube-controller-manager)

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  for required in kube-apiserver etcd; do
    if [ ! -x "$KUBEBUILDER_ASSETS/$required" ]; then
      echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $required" >&2
      exit 1
    fi
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

cache="${TENANTDB_KUBE_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantdb/kube-assets}"
out="$cache/$version"
complete="$out/.complete"
# The stamp names the sources the binaries came from, so a changed go.mod/go.sum rebuilds.
want="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -d' ' -f1)"
if [ -f "$complete" ] && [ "$(cat "$complete")" = "$want" ]; then
  echo "$out"
  exit 0
fi

go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [ ! -x "$go" ]; then
  echo "kube-assets: no Go toolchain (install Go >= 1.26 or set KUBEBUILDER_ASSETS)" >&2
  exit 1
fi

major="${version#v}"; major="${major%%.*}"
minor="${version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "$out"
echo "kube-assets: building Kubernetes $version into $out (a cold build takes a while)" >&2
start=$(date +%s)
cd "$here"
for binary in "${binaries[@]}"; do
  echo "kube-assets: go build $binary" >&2
  CGO_ENABLED=0 GOFLAGS=-mod=readonly "$go" build -trimpath -ldflags "$ldflags" \
    -o "$out/$binary.tmp" "./cmd/$binary" >&2
  mv "$out/$binary.tmp" "$out/$binary"
done
echo "$want" > "$complete"
echo "kube-assets: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
