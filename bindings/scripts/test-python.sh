#!/usr/bin/env bash
# Runs the Python binding tests (unittest, system python3) against the committed
# generated module and the debug cdylib. Set PUSHAUTH_TEST_SERVER (and
# PUSHAUTH_TEST_ACTIVATION_CODE) to also run the flow against a live server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_bindings
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$BINDINGS/generated/python/pushauth.py" "$LIB" "$tmp/"

echo "python: $(python3 --version 2>&1), module bindings/generated/python/pushauth.py, library ${LIB#$ROOT/}"
cd "$BINDINGS/tests/python"
PYTHONPATH="$tmp" PUSHAUTH_VECTORS="$ROOT/core/tests/vectors" PYTHONDONTWRITEBYTECODE=1 \
    python3 -m unittest -v test_pushauth
