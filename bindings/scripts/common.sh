# Shared by the scripts in bindings/scripts/ (sourced, not run).
# Builds the debug cdylib in the workspace's target directory and runs the
# workspace's uniffi-bindgen binary in library mode.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BINDINGS="$ROOT/bindings"

# The workspace target directory (honours CARGO_TARGET_DIR and .cargo/config).
target_dir() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        case "$CARGO_TARGET_DIR" in
            /*) echo "$CARGO_TARGET_DIR" ;;
            *) echo "$ROOT/$CARGO_TARGET_DIR" ;;
        esac
    else
        cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
    fi
}

LIB_DIR="$(target_dir)/debug"
case "$(uname -s)" in
    Darwin) LIB_FILE="libpushauth.dylib" ;;
    *) LIB_FILE="libpushauth.so" ;;
esac
LIB="$LIB_DIR/$LIB_FILE"
BINDGEN="$LIB_DIR/uniffi-bindgen"

# The project's one build: every crate and target of the workspace, debug profile, with
# the SDK's bindgen feature. It compiles exactly the units `cargo test --workspace
# --features pushauth-bindings/bindgen` uses (and links the cdylib and the binaries),
# so scripts and tests share one target/ and never rebuild dependencies with another
# feature set. A no-op when nothing changed.
build_workspace() {
    (cd "$ROOT" && cargo build --quiet --workspace --all-targets --features pushauth-bindings/bindgen)
}

# The SDK library (lib, cdylib, staticlib) and uniffi-bindgen.
build_bindings() {
    build_workspace
}

# generate_into DIR: writes DIR/{kotlin,swift,python} from the built library.
generate_into() {
    local out="$1" lang
    for lang in kotlin swift python; do
        rm -rf "${out:?}/$lang"
        mkdir -p "$out/$lang"
        "$BINDGEN" generate --library "$LIB" --language "$lang" --no-format --out-dir "$out/$lang" >/dev/null
    done
}

# ---- Kotlin on the JVM (SDK tests and mobile-demo) ------------------------------------
# kotlinc from the npm package kotlin-compiler, in the git-ignored .tools/, and Debian's
# JNA (with libjnidispatch); both installed on first use, idempotently.
KOTLIN_VERSION="2.4.20"
KOTLIN_TOOLS="$ROOT/.tools/kotlin"
KOTLIN_HOME="$KOTLIN_TOOLS/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JNA_JAR="/usr/share/java/jna.jar"
COROUTINES_JAR="$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar"
STDLIB_JAR="$KOTLIN_HOME/lib/kotlin-stdlib.jar"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's JNA, and a JDK when none is installed.
ensure_jvm() {
    if [ ! -f "$JNA_JAR" ] || ! command -v java >/dev/null; then
        echo "installing libjna-java (and a JDK if missing) with apt" >&2
        local pkgs=(libjna-java)
        command -v java >/dev/null || pkgs+=(default-jdk-headless)
        as_root apt-get install -y -q "${pkgs[@]}" >/dev/null 2>&1 \
            || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "${pkgs[@]}" >/dev/null; }
    fi
}

# kotlinc $KOTLIN_VERSION from npm into .tools/kotlin.
ensure_kotlinc() {
    if [ ! -x "$KOTLINC" ] || ! grep -qx "$KOTLIN_VERSION" "$KOTLIN_HOME/build.txt" 2>/dev/null; then
        echo "installing kotlin-compiler@$KOTLIN_VERSION into .tools/kotlin (npm)" >&2
        mkdir -p "$KOTLIN_TOOLS"
        npm install --prefix "$KOTLIN_TOOLS" --no-audit --no-fund --no-save --loglevel=error \
            "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
    fi
}
