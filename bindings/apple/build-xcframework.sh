#!/usr/bin/env bash
# Builds the pushauth iOS SDK for Swift Package Manager (on macOS with Xcode):
#   1. libpushauth.a for aarch64-apple-ios (devices), aarch64-apple-ios-sim and
#      x86_64-apple-ios (simulators), profile release-sdk, iOS 15.0 deployment target;
#   2. one fat simulator library (lipo: arm64 + x86_64);
#   3. the C header and module map with the workspace's uniffi-bindgen, run on the device
#      library (so they describe exactly what ships), and a check that the committed
#      bindings/generated/swift is that same output;
#   4. xcodebuild -create-xcframework -> build/pushauthFFI.xcframework (headers under
#      Headers/pushauthFFI/, so the module map cannot collide with another
#      XCFramework's module.modulemap in the app);
#   5. build/pushauthFFI.xcframework.zip and its SwiftPM checksum;
#   6. Sources/PushAuth/PushAuth.swift for the local Package.swift next to this script,
#      and build/release-package/ (Package.swift with url + checksum, and the Swift
#      source) ready to push to the repository apps depend on, when PUSHAUTH_XCFRAMEWORK_URL
#      (where the zip will be downloadable) is set;
#   7. unless --no-verify: xcodebuild builds the local package for the iOS Simulator.
#
# Needs: macOS, Xcode (xcodebuild, lipo, swift), rustup targets aarch64-apple-ios
# aarch64-apple-ios-sim x86_64-apple-ios.
#
#   bindings/apple/build-xcframework.sh [--no-verify] [--profile PROFILE]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../scripts/packaging-lib.sh
source "$ROOT/bindings/scripts/packaging-lib.sh"

PROFILE="release-sdk"
VERIFY=1
DEVICE=aarch64-apple-ios
SIMULATORS=(aarch64-apple-ios-sim x86_64-apple-ios)
FFI_MODULE=pushauthFFI     # bindings/uniffi.toml: ffi_module_name
# Keep in step with `platforms` in Package.swift.
export IPHONEOS_DEPLOYMENT_TARGET=15.0

while (( $# > 0 )); do
    case "$1" in
        --no-verify) VERIFY=0 ;;
        --profile) PROFILE="$2"; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "build-xcframework: $*" >&2; exit 1; }

[[ "$(uname -s)" == Darwin ]] || die "needs macOS with Xcode (xcodebuild, lipo)"
for tool in xcodebuild lipo swift cargo rustup ditto; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
installed_targets="$(rustup target list --installed)"
for triple in "$DEVICE" "${SIMULATORS[@]}"; do
    grep -qx "$triple" <<<"$installed_targets" || die "missing Rust target $triple: rustup target add $DEVICE ${SIMULATORS[*]}"
done

target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="$HERE/build"
rm -rf "$out"
mkdir -p "$out"
lib_of() { echo "$target_dir/$1/$PROFILE/libpushauth.a"; }

# ---- 1. Rust static libraries ----------------------------------------------------------
# The device build goes through `cargo rustc` to print the native libraries and
# frameworks the static library needs from the final link; each framework must be in
# the linkerSettings of Package.swift (and of the release Package.swift).
echo "==> cargo rustc --target $DEVICE --profile $PROFILE"
(cd "$ROOT" && cargo rustc --locked -p pushauth-bindings --profile "$PROFILE" --lib --target "$DEVICE" \
    -- --print native-static-libs) 2>&1 | tee "$out/device-build.log"
native_libs="$(sed -n 's/.*native-static-libs: //p' "$out/device-build.log" | tail -n 1)"
[[ -n "$native_libs" ]] || die "rustc printed no native-static-libs line"
echo "    native-static-libs: $native_libs"
while read -r setting; do
    for manifest in "$HERE/Package.swift" "$HERE/release/Package.swift"; do
        grep -qF "$setting" "$manifest" || die "the library needs $setting in the linkerSettings of ${manifest#"$ROOT"/}"
    done
done < <(swiftpm_linker_settings "$native_libs")
for triple in "${SIMULATORS[@]}"; do
    echo "==> cargo build --target $triple --profile $PROFILE"
    (cd "$ROOT" && cargo build --locked -p pushauth-bindings --profile "$PROFILE" --lib --target "$triple")
done

# ---- 2. simulator slices ---------------------------------------------------------------
mkdir -p "$out/ios-simulator"
sim_inputs=()
for triple in "${SIMULATORS[@]}"; do sim_inputs+=("$(lib_of "$triple")"); done
lipo -create "${sim_inputs[@]}" -output "$out/ios-simulator/libpushauth.a"
lipo -info "$out/ios-simulator/libpushauth.a"

# ---- 3. header, module map, Swift source -------------------------------------------------
gen="$out/generated"
(cd "$ROOT" && cargo run --quiet --locked -p pushauth-bindings --features bindgen --bin uniffi-bindgen -- \
    generate --library "$(lib_of "$DEVICE")" --language swift --no-format --out-dir "$gen" >/dev/null)
diff -r "$ROOT/bindings/generated/swift" "$gen" >/dev/null \
    || die "bindings/generated/swift does not match the library (run bindings/scripts/generate.sh and commit)"
headers="$out/headers/$FFI_MODULE"
mkdir -p "$headers"
cp "$gen/$FFI_MODULE.h" "$headers/"
cp "$gen/$FFI_MODULE.modulemap" "$headers/module.modulemap"

# ---- 4. XCFramework ----------------------------------------------------------------------
xcframework="$out/$FFI_MODULE.xcframework"
xcodebuild -create-xcframework \
    -library "$(lib_of "$DEVICE")" -headers "$out/headers" \
    -library "$out/ios-simulator/libpushauth.a" -headers "$out/headers" \
    -output "$xcframework"

# ---- 5. zip + checksum ---------------------------------------------------------------------
zip="$xcframework.zip"
(cd "$out" && ditto -c -k --sequesterRsrc --keepParent "$FFI_MODULE.xcframework" "$(basename "$zip")")
checksum="$(swift package compute-checksum "$zip")"
echo "$checksum" > "$zip.checksum"
echo "==> ${zip#"$ROOT"/}: $(human_size "$(wc -c < "$zip")"), checksum $checksum"
for triple in "$DEVICE" "${SIMULATORS[@]}"; do
    echo "    $triple libpushauth.a: $(human_size "$(wc -c < "$(lib_of "$triple")")")"
done

# ---- 6. Swift package sources ------------------------------------------------------------
mkdir -p "$HERE/Sources/PushAuth"
cp "$gen/PushAuth.swift" "$HERE/Sources/PushAuth/PushAuth.swift"
if [[ -n "${PUSHAUTH_XCFRAMEWORK_URL:-}" ]]; then
    release="$out/release-package"
    mkdir -p "$release/Sources/PushAuth"
    cp "$gen/PushAuth.swift" "$release/Sources/PushAuth/"
    sed -e "s|@XCFRAMEWORK_URL@|$PUSHAUTH_XCFRAMEWORK_URL|" -e "s|@XCFRAMEWORK_CHECKSUM@|$checksum|" \
        "$HERE/release/Package.swift" > "$release/Package.swift"
    echo "==> release package in ${release#"$ROOT"/} (upload the zip to $PUSHAUTH_XCFRAMEWORK_URL)"
fi

# ---- 7. the package builds ---------------------------------------------------------------
if (( VERIFY )); then
    echo "==> xcodebuild: local package for the iOS Simulator"
    (cd "$HERE" && xcodebuild -quiet -scheme PushAuth -destination 'generic/platform=iOS Simulator' \
        -derivedDataPath "$out/DerivedData" build)
fi
echo "build-xcframework: ${xcframework#"$ROOT"/} (device arm64; simulator arm64 + x86_64)"
