#!/usr/bin/env bash
# Runs a command against a fresh pushauth server (the debug binary, SQLite in a
# temporary directory, a random port), with PUSHAUTH_TEST_SERVER and
# PUSHAUTH_TEST_ADMIN_KEY exported. The server is stopped afterwards, whatever happens.
#
#   bash tests/with-server.sh bash bindings/scripts/test-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug/pushauth"
# shellcheck source=../bindings/scripts/common.sh
source bindings/scripts/common.sh
build_workspace
dir=$(mktemp -d)
key="test-admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PUSHAUTH_SERVER__LISTEN=127.0.0.1:0 PUSHAUTH_STORAGE__DATA_DIR="$dir" PUSHAUTH_SECURITY__ADMIN_KEY="$key" \
  RUST_LOG=warn "$bin" serve 2>"$dir/server.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
url=""
for _ in $(seq 1 100); do
  # up to the space after the address: the line may be read while it is written
  url=$(grep -o 'listening on http://[0-9.:]* ' "$dir/server.log" | head -n1 | sed 's/listening on //; s/ $//' || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
export PUSHAUTH_TEST_SERVER="$url" PUSHAUTH_TEST_ADMIN_KEY="$key"
echo "pushauth test server at $url"
"$@"
