#!/usr/bin/env bash
# Compares shapes of the webhook's PostgreSQL transaction by PostgreSQL's own CPU per
# transaction (docs/benchmarks.md, fifth round). Not part of the test command: a
# measurement, run by hand on an otherwise idle machine.
#
# Creates a scratch database, applies server/store-postgres/migrations and setup.sql,
# then runs each shape for 10 s with pgbench (16 clients, prepared statements),
# alternately, ROUNDS times, emptying the written tables before each run. PostgreSQL's
# CPU is read from /proc: every live postgres process plus what the postmaster has
# collected from exited ones. The scratch database is dropped at the end.
#
# Needs: psql and pgbench on PATH, a local PostgreSQL (Linux /proc) where the role may
# create databases. Usage: tests/loadgen/pgbench/run.sh [ROUNDS]   (default 2)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              PGO: options for the benchmark sessions, e.g. "-c synchronous_commit=off".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rounds=${1:-2}
admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=pushauth_shapes_$$
url=${admin%/*}/$db

for tool in psql pgbench; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
psql -q "$admin" -c "CREATE DATABASE $db"
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db"' EXIT
for f in "$root"/server/store-postgres/migrations/*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$url" -f "$f"
done
psql -q -v ON_ERROR_STOP=1 "$url" -f "$here/setup.sql"

# PostgreSQL's CPU so far, in clock ticks.
pg_ticks() {
    local t=0 p u s
    for p in $(pgrep -x postgres); do
        read -r u s < <(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null || echo "0 0")
        t=$((t + u + s))
    done
    read -r u s < <(cut -d' ' -f16,17 "/proc/$(pgrep -x postgres -o)/stat")
    echo $((t + u + s))
}

hz=$(getconf CLK_TCK)
for _ in $(seq "$rounds"); do
    for shape in statements one-call two-calls-in-tx one-call-in-tx; do
        psql -q "$url" -c "TRUNCATE challenges, outbox, audit_log, issuer_events CASCADE" \
            -c "ANALYZE" 2>/dev/null
        before=$(pg_ticks)
        out=$(PGOPTIONS="${PGO:-}" pgbench -n -M prepared -c 16 -j 2 -T 10 \
            -f "$here/$shape.sql" "$url" 2>&1)
        sleep 0.5
        after=$(pg_ticks)
        tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
        tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        if [ -z "$tx" ] || [ "$tx" = 0 ]; then
            echo "$shape: no transaction completed" >&2
            echo "$out" >&2
            exit 1
        fi
        awk -v s="$shape" -v tps="$tps" -v d=$((after - before)) -v tx="$tx" -v hz="$hz" \
            'BEGIN { printf "%-17s %8.0f tx/s  %.3f ms PostgreSQL CPU per transaction\n", s, tps, d * 1000 / hz / tx }'
    done
done
