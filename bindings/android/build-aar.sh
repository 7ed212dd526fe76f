#!/usr/bin/env bash
# Builds the pushauth Android library (AAR):
#   1. libpushauth.so for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk, profile
#      release-sdk, linked with 16 KB max page size;
#   2. checks every library: 16 KB-aligned LOAD segments, uniffi exports present, and
#      the committed Kotlin in bindings/generated/kotlin generated from this very library
#      (otherwise the API checksums differ and the SDK refuses to load at run time);
#   3. copies them to bindings/android/src/main/jniLibs/<abi>/;
#   4. runs Gradle: assembleRelease -> build/outputs/aar/pushauth-release.aar, and checks
#      that the AAR holds the three libraries and the consumer R8 rules.
#
# Needs: rustup targets aarch64-linux-android armv7-linux-androideabi x86_64-linux-android,
# cargo-ndk >= 4 (`cargo install cargo-ndk`), the Android NDK (ANDROID_NDK_HOME, or the
# newest under $ANDROID_HOME/ndk; r27 or newer), the Android SDK (ANDROID_HOME) and a JDK 17+
# for Gradle (./gradlew when present, else $GRADLE or `gradle` on PATH).
#
#   bindings/android/build-aar.sh [--no-gradle] [--platform API] [--profile PROFILE]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../scripts/packaging-lib.sh
source "$ROOT/bindings/scripts/packaging-lib.sh"

PROFILE="release-sdk"
PLATFORM=26          # = minSdk in build.gradle.kts
RUN_GRADLE=1
ABIS=(arm64-v8a armeabi-v7a x86_64)
TRIPLES=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
PAGE_SIZE=16384

while (( $# > 0 )); do
    case "$1" in
        --no-gradle) RUN_GRADLE=0 ;;
        --platform) PLATFORM="$2"; shift ;;
        --profile) PROFILE="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "build-aar: $*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found"
command -v cargo-ndk >/dev/null || die "cargo-ndk not found: cargo install cargo-ndk"
installed_targets="$(rustup target list --installed 2>/dev/null || true)"
for triple in "${TRIPLES[@]}"; do
    grep -qx "$triple" <<<"$installed_targets" || die "missing Rust target $triple: rustup target add ${TRIPLES[*]}"
done

ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
if [[ -z "$ndk" && -n "${ANDROID_HOME:-}" && -d "$ANDROID_HOME/ndk" ]]; then
    ndk="$(find "$ANDROID_HOME/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)"
fi
[[ -n "$ndk" && -d "$ndk" ]] || die "Android NDK not found: set ANDROID_NDK_HOME"
export ANDROID_NDK_HOME="$ndk"
llvm_bin="$(find "$ndk/toolchains/llvm/prebuilt" -mindepth 2 -maxdepth 2 -type d -name bin | head -n 1)"
READELF="$llvm_bin/llvm-readelf"
NM="$llvm_bin/llvm-nm"
[[ -x "$READELF" && -x "$NM" ]] || die "llvm-readelf/llvm-nm not found under $ndk"

target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
stage="$target_dir/android-jniLibs/$PROFILE"
jni_libs="$HERE/src/main/jniLibs"

# ---- 1. Rust libraries ---------------------------------------------------------------
# 16 KB pages: NDK r28+ links 64-bit ABIs with max-page-size=16384 by default and
# cargo-ndk 4 adds the flag for r27; we pass it explicitly for every ABI and NDK, per
# target (CARGO_TARGET_<TRIPLE>_RUSTFLAGS), so host build scripts are untouched and the
# result does not depend on either default. Step 2 verifies it.
for triple in "${TRIPLES[@]}"; do
    var="CARGO_TARGET_$(tr '[:lower:]-' '[:upper:]_' <<<"$triple")_RUSTFLAGS"
    export "$var=-C link-arg=-Wl,-z,max-page-size=$PAGE_SIZE ${!var:-}"
done

target_args=()
for abi in "${ABIS[@]}"; do target_args+=(-t "$abi"); done
rm -rf "$stage"
mkdir -p "$stage"
echo "==> cargo ndk ${target_args[*]} --platform $PLATFORM build -p pushauth-bindings --profile $PROFILE --lib"
(cd "$ROOT" && cargo ndk "${target_args[@]}" --platform "$PLATFORM" -o "$stage" \
    build --locked -p pushauth-bindings --profile "$PROFILE" --lib)

# ---- 2. checks -----------------------------------------------------------------------
for abi in "${ABIS[@]}"; do
    so="$stage/$abi/libpushauth.so"
    [[ -f "$so" ]] || die "cargo-ndk produced no $so"
    check_elf_alignment "$READELF" "$so" "$PAGE_SIZE"
    check_uniffi_exports "$NM" "$so"
    echo "    $abi: $(human_size "$(wc -c < "$so")")"
done

echo "==> checking bindings/generated/kotlin against the arm64-v8a library"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
(cd "$ROOT" && cargo run --quiet --locked -p pushauth-bindings --features bindgen --bin uniffi-bindgen -- \
    generate --library "$stage/arm64-v8a/libpushauth.so" --language kotlin --no-format --out-dir "$fresh" >/dev/null)
diff -r "$ROOT/bindings/generated/kotlin" "$fresh" >/dev/null \
    || die "bindings/generated/kotlin does not match the library (run bindings/scripts/generate.sh and commit)"

# ---- 3. jniLibs ----------------------------------------------------------------------
rm -rf "$jni_libs"
for abi in "${ABIS[@]}"; do
    mkdir -p "$jni_libs/$abi"
    cp "$stage/$abi/libpushauth.so" "$jni_libs/$abi/"
done
echo "==> libraries copied to ${jni_libs#"$ROOT"/}"

# ---- 4. Gradle -----------------------------------------------------------------------
(( RUN_GRADLE )) || { echo "build-aar: --no-gradle: stopping before Gradle"; exit 0; }
if [[ -x "$HERE/gradlew" ]]; then
    gradle_cmd=("$HERE/gradlew")
elif [[ -n "${GRADLE:-}" ]]; then
    gradle_cmd=("$GRADLE")
elif command -v gradle >/dev/null; then
    gradle_cmd=(gradle)
else
    die "no Gradle: add a wrapper (gradle wrapper --gradle-version 8.13) or set GRADLE"
fi
echo "==> ${gradle_cmd[*]} assembleRelease"
(cd "$HERE" && "${gradle_cmd[@]}" --no-daemon assembleRelease)

aar="$HERE/build/outputs/aar/pushauth-release.aar"
[[ -f "$aar" ]] || die "Gradle produced no $aar"
listing="$(unzip -Z1 "$aar")"
for entry in classes.jar proguard.txt AndroidManifest.xml "${ABIS[@]/#/jni/}"; do
    case "$entry" in jni/*) entry="$entry/libpushauth.so" ;; esac
    grep -qx "$entry" <<<"$listing" || die "$aar lacks $entry"
done
echo "build-aar: ${aar#"$ROOT"/}: $(human_size "$(wc -c < "$aar")"), ABIs ${ABIS[*]}"
