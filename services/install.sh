#!/usr/bin/env bash
# Installs what the real-service tests (loadgen/tests/it/real_services.rs) need,
# idempotently, and says what it does: `npm ci` for each Node service (from
# its committed package-lock.json; skipped when node_modules matches it),
# Debian's golang-go when `go` is missing, and the Go service's binary in
# $REAL_SERVICES_DIR (default target/real-services). Exit 3 when something
# cannot be installed (an environment problem, docs/interfaces.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${REAL_SERVICES_DIR:-target/real-services}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need() { command -v "$1" >/dev/null || { echo "install.sh: $1 is missing: $2" >&2; exit 3; }; }
need node "the Node services need Node.js 18 or later"
need npm "the Node services are installed with npm ci"

for dir in services/express-session services/oauth2; do
  # The lock file's hash, written after a good `npm ci`: equal means the
  # installed tree is the committed one.
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.clw-installed-lock" 2>/dev/null)" = "$sum" ]; then
    echo "install.sh: $dir: node_modules up to date with package-lock.json"
  else
    echo "install.sh: $dir: npm ci --no-audit --no-fund"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" > "$dir/node_modules/.clw-installed-lock"
  fi
done

if ! command -v go >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install.sh: go is missing: apt-get install golang-go (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  else
    echo "install.sh: go is missing and cannot be installed here (needs root and apt-get): install Go 1.19 or later" >&2
    exit 3
  fi
fi
# Standard library only: no module is ever downloaded (GOPROXY=off), and the
# source paths stay absolute (no -trimpath) so heap profiles name main.go.
echo "install.sh: go build services/go-sessions -> $out/go-sessions ($(go version))"
(cd services/go-sessions && GOPROXY=off GOFLAGS=-mod=mod go build -o "$out/go-sessions" .)
echo "install.sh: done"
