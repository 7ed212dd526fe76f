# Functions shared by bindings/android/build-aar.sh, bindings/apple/build-xcframework.sh
# and bindings/scripts/check-packaging.sh (sourced, not run). Pure checks on files, so
# check-packaging.sh can exercise them here on host-built libraries.

# elf_load_alignments READELF FILE: prints the Align value (hex) of every PT_LOAD
# segment of FILE, one per line, as `READELF -lW` shows them (GNU readelf and the
# NDK's llvm-readelf print the same program header table).
elf_load_alignments() {
    local readelf="$1" file="$2"
    "$readelf" -lW "$file" | awk '$1 == "LOAD" { print $NF }'
}

# check_elf_alignment READELF FILE [MIN]: fails unless every PT_LOAD segment of FILE is
# aligned to at least MIN bytes (default 16384: Android's 16 KB page size; a 16 KB
# aligned library also loads on 4 KB devices).
check_elf_alignment() {
    local readelf="$1" file="$2" min="${3:-16384}" align count=0
    while read -r align; do
        count=$((count + 1))
        if (( align < min )); then
            echo "FAILED: $file has a LOAD segment aligned to $align bytes (< $min): link with -Wl,-z,max-page-size=$min" >&2
            return 1
        fi
    done < <(elf_load_alignments "$readelf" "$file")
    if (( count == 0 )); then
        echo "FAILED: $file has no LOAD segment (not a shared library?)" >&2
        return 1
    fi
    echo "ok: $file: $count LOAD segments aligned to >= $min bytes"
}

# check_uniffi_exports NM FILE: fails unless FILE exports the SDK's uniffi entry points
# (the generated Kotlin/Swift bind to them by name).
check_uniffi_exports() {
    local nm="$1" file="$2" count
    count=$("$nm" -D --defined-only "$file" 2>/dev/null | grep -c ' T uniffi_pushauth_' || true)
    if (( count == 0 )); then
        echo "FAILED: $file exports no uniffi_pushauth_* function" >&2
        return 1
    fi
    echo "ok: $file exports $count uniffi_pushauth_* functions"
}

# human_size BYTES: "12,345,678 bytes (11.8 MiB)".
human_size() {
    local bytes="$1"
    printf "%'d bytes (%s MiB)" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
}

# swiftpm_linker_settings NATIVE_STATIC_LIBS: the SwiftPM linkerSettings entries a Rust
# static library needs, one per line, from the line rustc prints with
# `--print native-static-libs`: -framework X -> .linkedFramework("X"), -lX ->
# .linkedLibrary("X"), except libSystem, libc and libm (every Apple binary links
# libSystem, which provides the other two).
swiftpm_linker_settings() {
    local libs="$1" word previous=""
    for word in $libs; do
        if [[ "$previous" == "-framework" ]]; then
            echo ".linkedFramework(\"$word\")"
        elif [[ "$word" == -l* ]]; then
            case "${word#-l}" in
                System|c|m) ;;
                *) echo ".linkedLibrary(\"${word#-l}\")" ;;
            esac
        fi
        previous="$word"
    done | sort -u
}
