#!/usr/bin/env bash
# Swift cannot be compiled here: check that the committed Swift sources exist and
# are exactly what the current Rust code generates.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

committed="$BINDINGS/generated/swift"
for f in PushAuth.swift pushauthFFI.h pushauthFFI.modulemap; do
    if [ ! -s "$committed/$f" ]; then
        echo "swift: FAILED: bindings/generated/swift/$f is missing (run bindings/scripts/generate.sh)"
        exit 1
    fi
done

build_bindings
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$BINDGEN" generate --library "$LIB" --language swift --no-format --out-dir "$tmp" >/dev/null
if diff -ru "$committed" "$tmp" > "$tmp.diff"; then
    echo "swift: generated sources are fresh ($(ls "$committed" | wc -l) files, $(wc -l < "$committed/PushAuth.swift") lines of Swift)"
    rm -f "$tmp.diff"
else
    head -40 "$tmp.diff"
    rm -f "$tmp.diff"
    echo "swift: FAILED: bindings/generated/swift is stale (run bindings/scripts/generate.sh)"
    exit 1
fi
