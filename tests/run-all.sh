#!/usr/bin/env bash
# Runs every test of the project: Rust (core, store backends on SQLite and
# PostgreSQL, server, end-to-end), then the mobile SDK's Python and Kotlin suites and
# the Swift freshness check. Installs what it needs, idempotently. One cargo profile
# (dev) and one target/ for everything.
#
#   bash tests/run-all.sh
#
# Environment: PUSHAUTH_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PUSHAUTH_TEST_PG_URL=${PUSHAUTH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
export SQLX_OFFLINE=true
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }

step "checking PostgreSQL at ${PUSHAUTH_TEST_PG_URL}"
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not answering; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL is required by the store and server tests (PUSHAUTH_TEST_PG_URL)." >&2
  exit 1
fi

step "cargo fetch"
cargo fetch --locked

step "cargo build (workspace, all targets: the one build every later step reuses)"
cargo build --workspace --all-targets --locked --features pushauth-bindings/bindgen

step "cargo test (workspace)"
set +e
cargo test --workspace --locked --features pushauth-bindings/bindgen 2>&1 | tee /tmp/pushauth-cargo-test.log | grep -vE '^test .* ok$'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "cargo test failed" >&2; exit "$status"; }

step "mobile SDK: generate bindings"
bash bindings/scripts/generate.sh

step "mobile SDK: Python"
bash tests/with-server.sh bash bindings/scripts/test-python.sh

step "mobile SDK: Kotlin (JVM)"
bash tests/with-server.sh bash bindings/scripts/test-kotlin.sh

step "demo: Enfuce webhook -> push -> virtual phone approves -> result at the processor"
bash mobile-demo/demo.sh --processor enfuce

step "ops console: headless Chromium, SQLite and PostgreSQL (screenshots in target/console-screenshots)"
bash tests/console/run.sh

step "mobile SDK: Swift sources are fresh"
bash bindings/scripts/check-swift-fresh.sh

step "mobile SDK: packaging, samples and R8 rules (what can be checked without NDK/Xcode)"
bash bindings/scripts/check-packaging.sh

step "deployment: systemd unit (systemd-analyze verify), Dockerfile, scripts"
bash deploy/check.sh

passed=$(grep -E '^test result:' /tmp/pushauth-cargo-test.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -E '^test result:' /tmp/pushauth-cargo-test.log | awk '{s+=$6} END {print s+0}')
step "all suites passed"
echo "rust: ${passed} passed, ${failed} failed"
