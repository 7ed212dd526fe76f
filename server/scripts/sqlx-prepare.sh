#!/usr/bin/env bash
# Regenerates the sqlx offline query caches (`.sqlx/`) of the storage backends,
# without sqlx-cli. Run it after adding or changing a `sqlx::query!` (or a
# migration) in server/store-sqlite or server/store-postgres, and commit the result.
#
# How: each backend's migrations are applied to a scratch database, then the crate
# is rebuilt with the query macros in live mode (SQLX_OFFLINE=false and the crate's
# URL variable from its sqlx.toml set); in live mode the macros write one
# `query-<hash>.json` per query into SQLX_OFFLINE_DIR. The new cache replaces the old
# one only when the build succeeds, so stale entries of removed queries disappear.
#
# Normal builds never need a database: .cargo/config.toml sets SQLX_OFFLINE=true and
# the macros read the committed caches.
#
# Needs: cargo, sqlite3 and psql on PATH, and a PostgreSQL server where the role may
# create databases (it creates and drops `pushauth_sqlx_prepare_<pid>`, so that
# several checkouts can prepare at once).
#
# Usage: server/scripts/sqlx-prepare.sh [sqlite|postgres|all]   (default: all)
# Environment: PG_ADMIN_URL  a maintenance database URL on that server
#                            (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
which=${1:-all}
admin_url=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

need() { command -v "$1" >/dev/null || { echo "sqlx-prepare: $1 is required" >&2; exit 1; }; }

# build_live <crate dir> <package> <url var> <url>
build_live() {
    local crate=$1 package=$2 var=$3 url=$4
    local out=$scratch/$package
    mkdir -p "$out"
    # The macros re-expand only when the crate is recompiled, and cargo does not
    # track their environment: make it recompile.
    touch "$crate"/src/*.rs
    (cd "$root" && env SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" "$var=$url" cargo build --quiet -p "$package" --lib)
    if ! compgen -G "$out/query-*.json" >/dev/null; then
        echo "sqlx-prepare: no query data written for $package" >&2
        exit 1
    fi
    rm -rf "$crate/.sqlx"
    mkdir -p "$crate/.sqlx"
    cp "$out"/query-*.json "$crate/.sqlx/"
    # Check that the cache alone compiles the crate, as every normal build will.
    touch "$crate"/src/*.rs
    (cd "$root" && env -u "$var" SQLX_OFFLINE=true cargo build --quiet -p "$package" --lib)
    echo "sqlx-prepare: $package: $(ls "$crate/.sqlx" | wc -l) queries cached in ${crate#"$root"/}/.sqlx"
}

prepare_sqlite() {
    need sqlite3
    local crate=$root/server/store-sqlite db=$scratch/prepare.db
    for migration in "$crate"/migrations/*.sql; do
        sqlite3 -bail "$db" <"$migration"
    done
    build_live "$crate" pushauth-store-sqlite SQLITE_DATABASE_URL "sqlite:$db"
}

prepare_postgres() {
    need psql
    local crate=$root/server/store-postgres name=pushauth_sqlx_prepare_$$
    local url=${admin_url%/*}/$name
    psql "$admin_url" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
    for migration in "$crate"/migrations/*.sql; do
        psql "$url" -v ON_ERROR_STOP=1 -q -1 -f "$migration"
    done
    # expanded now: \$name is local to this function
    trap "psql '$admin_url' -q -c 'DROP DATABASE IF EXISTS $name' || true; rm -rf '$scratch'" EXIT
    build_live "$crate" pushauth-store-postgres PG_DATABASE_URL "$url"
}

need cargo
case $which in
    sqlite) prepare_sqlite ;;
    postgres) prepare_postgres ;;
    all) prepare_sqlite; prepare_postgres ;;
    *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
