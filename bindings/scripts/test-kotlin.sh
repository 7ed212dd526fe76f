#!/usr/bin/env bash
# Compiles the generated Kotlin bindings and bindings/tests/kotlin/*.kt with kotlinc
# (npm package kotlin-compiler, installed into .tools/) in one invocation, and runs
# them on the JVM with Debian's JNA against the debug cdylib. Ends with
# "N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT="$BINDINGS/target-kotlin"
JAR="$OUT/pushauth-kotlin-tests.jar"

ensure_jvm
ensure_kotlinc

build_bindings

sources=("$BINDINGS"/generated/kotlin/uniffi/pushauth/pushauth.kt "$BINDINGS"/tests/kotlin/*.kt)
mkdir -p "$OUT"
# Recompile only when the sources, the classpath or this script changed (by content).
fingerprint="$(cat "${sources[@]}" "$0" "$KOTLIN_HOME/build.txt" "$JNA_JAR" | sha256sum | cut -d' ' -f1)"
if [ -f "$JAR" ] && [ "$(cat "$OUT/fingerprint" 2>/dev/null)" = "$fingerprint" ]; then
    echo "kotlin: sources unchanged since the last compile, reusing ${JAR#$ROOT/}"
else
    started=$(date +%s)
    rm -f "$JAR" "$OUT/fingerprint"
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR:$COROUTINES_JAR" -d "$JAR" "${sources[@]}" 2>&1 \
        | grep -v -E '^(warning|info):' || true
    if [ ! -f "$JAR" ]; then
        echo "kotlin: FAILED: kotlinc did not produce a jar"
        echo "0 passed, 1 failed"
        exit 1
    fi
    echo "$fingerprint" > "$OUT/fingerprint"
    echo "kotlin: compiled ${#sources[@]} files with kotlinc $KOTLIN_VERSION in $(( $(date +%s) - started )) s"
fi

echo "kotlin: running on $(java -version 2>&1 | head -1) with JNA $JNA_JAR, library ${LIB#$ROOT/}"
exec java -Djna.library.path="$LIB_DIR" -Dpushauth.vectors="$ROOT/core/tests/vectors" \
    -cp "$JAR:$JNA_JAR:$COROUTINES_JAR:$STDLIB_JAR" pushauth.tests.PushAuthTestsKt
