#!/usr/bin/env bash
# Compiles the generated Kotlin bindings and bindings/tests/kotlin/*.kt with kotlinc
# (npm package kotlin-compiler, installed into .tools/) in one invocation, and runs
# them on the JVM with Debian's JNA against the debug cdylib. Ends with
# "N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KOTLIN_VERSION="2.4.20"
TOOLS="$ROOT/.tools/kotlin"
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JNA_JAR="/usr/share/java/jna.jar"
OUT="$BINDINGS/target-kotlin"
JAR="$OUT/pushauth-kotlin-tests.jar"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# JNA from Debian (also brings libjnidispatch).
if [ ! -f "$JNA_JAR" ]; then
    echo "kotlin: installing libjna-java"
    as_root apt-get install -y -q libjna-java >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q libjna-java >/dev/null; }
fi

# kotlinc from npm, into the git-ignored .tools/ (idempotent).
if [ ! -x "$KOTLINC" ] || ! grep -qx "$KOTLIN_VERSION" "$KOTLIN_HOME/build.txt" 2>/dev/null; then
    echo "kotlin: installing kotlin-compiler@$KOTLIN_VERSION into .tools/kotlin"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --no-save --loglevel=error "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
fi
COROUTINES_JAR="$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar"
STDLIB_JAR="$KOTLIN_HOME/lib/kotlin-stdlib.jar"

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
