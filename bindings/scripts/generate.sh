#!/usr/bin/env bash
# Regenerates the committed Kotlin, Swift and Python sources in bindings/generated/
# from the debug cdylib (uniffi library mode, the workspace's uniffi-bindgen).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_bindings
generate_into "$BINDINGS/generated"
count=$(find "$BINDINGS/generated" -type f | wc -l)
echo "generate: $count files written to bindings/generated/{kotlin,swift,python} from ${LIB#$ROOT/}"
