#!/usr/bin/env bash
# make promtool: put promtool of the pinned Prometheus release (go.mod) in a cache folder outside
# the repository and print the binary's path on stdout. The alert rules' unit tests run it
# (promtool test rules, tests/deploy/test_alerts.py).
#
# - PROMTOOL set: nothing is built; that file is checked and printed.
# - Otherwise promtool is built with Go from the module proxy into
#   ${TENANTDB_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantdb/promtool}/<version>,
#   once: a warm run only checks that it is there.
# - --check: only says where a built one is (exit 1 when none is): what the tests ask.
# Progress goes to stderr, so `promtool=$(make -s promtool)` captures the path alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
module_version="$(awk '$1 == "require" && $2 == "github.com/prometheus/prometheus" {print $3; exit}' "$here/go.mod")"
# Prometheus 3.x is published as Go module v0.3xx.y: v0.316.0 is release 3.16.0.
minor="${module_version#v0.}"; minor="${minor%%.*}"; patch="${module_version##*.}"
release="${minor:0:1}.$((10#${minor:1})).$patch"

# --check: print the cached binary's path if it is built, else fail; never build (a test asks).
check_only=""
if [ "${1:-}" = "--check" ]; then check_only=1; fi

if [ -n "${PROMTOOL:-}" ]; then
  if [ ! -x "$PROMTOOL" ]; then
    echo "PROMTOOL=$PROMTOOL is not an executable file" >&2
    exit 1
  fi
  echo "$PROMTOOL"
  exit 0
fi

cache="${TENANTDB_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantdb/promtool}"
out="$cache/$release"
complete="$out/.complete"
# The stamp names the sources the binary came from, so a changed go.mod/go.sum rebuilds.
want="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -d' ' -f1)"
if [ -f "$complete" ] && [ "$(cat "$complete")" = "$want" ] && [ -x "$out/promtool" ]; then
  echo "$out/promtool"
  exit 0
fi

if [ -n "$check_only" ]; then
  echo "promtool: not built yet (make promtool)" >&2
  exit 1
fi

go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [ ! -x "$go" ]; then
  echo "promtool: no Go toolchain (install Go >= 1.26 or set PROMTOOL)" >&2
  exit 1
fi

ldflags="-s -w"
for field in "Version=$release" "Revision=$module_version" "Branch=release" \
  "BuildUser=tenantdb" "BuildDate=19700101-00:00:00"; do
  ldflags+=" -X github.com/prometheus/common/version.$field"
done

mkdir -p "$out"
echo "promtool: building Prometheus $release's promtool into $out (a cold build takes minutes)" >&2
start=$(date +%s)
cd "$here"
# remove_all_sd: no service discovery plugins (cloud SDKs), which rule tests never use.
CGO_ENABLED=0 GOFLAGS=-mod=readonly "$go" build -trimpath -tags remove_all_sd -ldflags "$ldflags" \
  -o "$out/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool >&2
mv "$out/promtool.tmp" "$out/promtool"
echo "$want" > "$complete"
echo "promtool: built in $(( $(date +%s) - start ))s" >&2
echo "$out/promtool"
