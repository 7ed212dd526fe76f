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

# Builds the library (lib, cdylib, staticlib) and uniffi-bindgen, debug profile.
# One feature set for every script, so the scripts never rebuild each other's output.
build_bindings() {
    (cd "$ROOT" && cargo build --quiet -p pushauth-bindings --features bindgen)
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
