#!/usr/bin/env bash
# The ops console in a real browser: Debian's headless Chromium, driven by
# playwright-core (npm, pinned by package-lock.json; it downloads no browser), against
# the real server (the workspace's debug binary, [console] enabled), once on SQLite and
# once on PostgreSQL (a database of its own, dropped afterwards).
#
#   bash tests/console/run.sh [sqlite|postgres|all]      (default: all)
#
# Installs what it needs, idempotently: chromium and zbar-tools (apt), playwright-core (npm ci into
# tests/console/node_modules, ignored by git). Builds the workspace (a no-op when
# fresh). A screenshot of each page goes to <target dir>/console-screenshots/<backend>/
# (an artifact of the run, never committed).
#
# Environment: PUSHAUTH_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test):
# its server is used, in a new database.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../bindings/scripts/common.sh
source "$here/../../bindings/scripts/common.sh"   # ROOT, LIB, target_dir, build_workspace, as_root
cd "$ROOT"
which=${1:-all}
case "$which" in sqlite|postgres) backends=("$which") ;; all) backends=(sqlite postgres) ;;
    *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;; esac
pg_url=${PUSHAUTH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}

apt_install() {
    as_root apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$@" >/dev/null; }
}
command -v chromium >/dev/null || { echo "installing chromium (apt)" >&2; apt_install chromium; }
command -v zbarimg >/dev/null || { echo "installing zbar-tools (apt; reads the QR code back)" >&2; apt_install zbar-tools; }
command -v node >/dev/null || { echo "installing nodejs and npm (apt)" >&2; apt_install nodejs npm; }
if [[ " ${backends[*]} " == *" postgres "* ]] && ! command -v psql >/dev/null; then
    echo "installing postgresql-client (apt)" >&2; apt_install postgresql-client
fi
want=$(node -p "require('$here/package.json').dependencies['playwright-core']")
have=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$want" != "$have" ]; then
    echo "installing playwright-core@$want (npm ci, no browser download)" >&2
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

build_workspace
bin="$(target_dir)/debug/pushauth"
shots_root="$(target_dir)/console-screenshots"
work=$(mktemp -d)
pid=""
pg_db=""
pg_admin="${pg_url%/*}/postgres"
stop() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
    if [ -n "$pg_db" ]; then psql "$pg_admin" -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; pg_db=""; fi
}
trap 'stop; rm -rf "$work"' EXIT

# The virtual phone: the SDK's Python module and the debug cdylib, side by side.
mkdir -p "$work/sdk"
cp "$ROOT/bindings/generated/python/pushauth.py" "$LIB" "$work/sdk/"
device=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \
    env "PYTHONPATH=$work/sdk" PYTHONDONTWRITEBYTECODE=1 python3 "$here/device.py")

for backend in "${backends[@]}"; do
    dir="$work/$backend"
    mkdir -p "$dir"
    key="console-admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    secret="callback-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    settings=(PUSHAUTH_SERVER__LISTEN=127.0.0.1:0 "PUSHAUTH_STORAGE__DATA_DIR=$dir"
        "PUSHAUTH_SECURITY__ADMIN_KEY=$key" PUSHAUTH_CONSOLE__ENABLED=true PUSHAUTH_WORKERS__IDLE_POLL_MS=100
        'PUSHAUTH_API__CALLBACK_HOSTS=["127.0.0.1"]' "PUSHAUTH_API__CALLBACK_SECRET=$secret"
        PUSHAUTH_API__ALLOW_HTTP_CALLBACKS=true)
    # An issuer-event endpoint nobody listens on (port 9, discard): its deliveries stay
    # pending with their connection errors, which the events page must show.
    printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" > "$dir/events-secret"
    settings+=("PUSHAUTH_EVENTS__ENDPOINTS=[{name=\"issuer-siem\",url=\"http://127.0.0.1:9/hooks\",secret_files=[\"$dir/events-secret\"],allow_http=true}]")
    if [ "$backend" = postgres ]; then
        pg_db="pushauth_console_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        psql "$pg_admin" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $pg_db" >/dev/null
        settings+=("DATABASE_URL=${pg_url%/*}/$pg_db")
    fi
    env "${settings[@]}" RUST_LOG=warn "$bin" serve --ready-file "$dir/ready.json" 2>"$dir/server.log" &
    pid=$!
    for _ in $(seq 1 300); do
        [ -f "$dir/ready.json" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        sleep 0.1
    done
    [ -f "$dir/ready.json" ] || { echo "the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
    url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_url"])' "$dir/ready.json")
    shots="$shots_root/$backend"
    rm -rf "$shots"
    echo "console browser test on $backend: server $url, screenshots in $shots"
    status=0
    PUSHAUTH_TEST_SERVER="$url" PUSHAUTH_TEST_ADMIN_KEY="$key" CONSOLE_TEST_BACKEND="$backend" \
        CONSOLE_TEST_SCREENSHOTS="$shots" CONSOLE_TEST_DEVICE="$device" CONSOLE_TEST_CALLBACK_SECRET="$secret" \
        CHROMIUM="$(command -v chromium)" \
        node --test --test-reporter=spec "$here/console.test.mjs" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "server log ($backend):" >&2
        tail -n 40 "$dir/server.log" >&2
        exit "$status"
    fi
    stop
done
