# shellcheck shell=bash
# Shared by mobile-demo/phone.sh and mobile-demo/demo.sh (sourced, not run): builds what
# the virtual phone needs, idempotently. Reuses bindings/scripts/common.sh (ROOT,
# LIB_DIR, build_bindings) and the Kotlin toolchain of bindings/scripts/test-kotlin.sh:
# the same kotlin-compiler version from npm in the ignored .tools/, Debian's JNA.

source "$(dirname "${BASH_SOURCE[0]}")/../bindings/scripts/common.sh"

DEMO="$ROOT/mobile-demo"
KOTLIN_VERSION="$(sed -n 's/^KOTLIN_VERSION="\(.*\)"$/\1/p' "$BINDINGS/scripts/test-kotlin.sh")"
KOTLIN_TOOLS="$ROOT/.tools/kotlin"
KOTLIN_HOME="$KOTLIN_TOOLS/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JNA_JAR="/usr/share/java/jna.jar"
COROUTINES_JAR="$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar"
STDLIB_JAR="$KOTLIN_HOME/lib/kotlin-stdlib.jar"
PHONE_JAR="$DEMO/build/phone.jar"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's JNA (with libjnidispatch) and a JDK, as test-kotlin.sh installs them.
ensure_jvm() {
    if [ ! -f "$JNA_JAR" ] || ! command -v java >/dev/null; then
        echo "installing libjna-java and a JDK (apt)" >&2
        local pkgs=(libjna-java)
        command -v java >/dev/null || pkgs+=(default-jdk-headless)
        as_root apt-get install -y -q "${pkgs[@]}" >/dev/null 2>&1 \
            || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "${pkgs[@]}" >/dev/null; }
    fi
}

# kotlinc from npm into .tools/kotlin, the version test-kotlin.sh pins.
ensure_kotlinc() {
    if [ ! -x "$KOTLINC" ] || ! grep -qx "$KOTLIN_VERSION" "$KOTLIN_HOME/build.txt" 2>/dev/null; then
        echo "installing kotlin-compiler@$KOTLIN_VERSION into .tools/kotlin (npm)" >&2
        mkdir -p "$KOTLIN_TOOLS"
        npm install --prefix "$KOTLIN_TOOLS" --no-audit --no-fund --no-save --loglevel=error \
            "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
    fi
}

# The cdylib (debug, common.sh's feature set) and the phone's jar: the generated Kotlin
# bindings plus mobile-demo/src/*.kt, recompiled only when their content changed.
build_phone() {
    ensure_jvm
    ensure_kotlinc
    build_bindings
    local sources=("$BINDINGS/generated/kotlin/uniffi/pushauth/pushauth.kt" "$DEMO"/src/*.kt)
    local fingerprint
    fingerprint="$(cat "${sources[@]}" "$DEMO/lib.sh" "$KOTLIN_HOME/build.txt" "$JNA_JAR" | sha256sum | cut -d' ' -f1)"
    if [ -f "$PHONE_JAR" ] && [ "$(cat "$DEMO/build/fingerprint" 2>/dev/null)" = "$fingerprint" ]; then
        return 0
    fi
    mkdir -p "$DEMO/build"
    rm -f "$PHONE_JAR" "$DEMO/build/fingerprint"
    echo "compiling the virtual phone with kotlinc $KOTLIN_VERSION (about 30 s, once)" >&2
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR:$COROUTINES_JAR" -d "$PHONE_JAR" "${sources[@]}" 2>&1 \
        | grep -v -E '^(warning|info):' >&2 || true
    [ -f "$PHONE_JAR" ] || { echo "kotlinc did not produce $PHONE_JAR" >&2; return 1; }
    echo "$fingerprint" > "$DEMO/build/fingerprint"
}

# phone ARGS…: runs the virtual phone (build_phone first).
phone() {
    java -Djna.library.path="$LIB_DIR" -cp "$PHONE_JAR:$JNA_JAR:$COROUTINES_JAR:$STDLIB_JAR" pushauth.demo.PhoneKt "$@"
}
