# shellcheck shell=bash
# Shared by mobile-demo/phone.sh and mobile-demo/demo.sh (sourced, not run): builds what
# the virtual phone needs, idempotently. Reuses bindings/scripts/common.sh (ROOT,
# LIB_DIR, build_bindings) and the Kotlin toolchain (ensure_jvm, ensure_kotlinc).

source "$(dirname "${BASH_SOURCE[0]}")/../bindings/scripts/common.sh"

DEMO="$ROOT/mobile-demo"
PHONE_JAR="$DEMO/build/phone.jar"

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
