#!/usr/bin/env python3
"""Checks that the reference samples (bindings/samples/{android,ios}) are written against
the API the SDK actually exports: the generated Kotlin and Swift in bindings/generated.

Neither Kotlin for Android nor Swift can be compiled here, so this is what stands in for
the compiler on the SDK-facing half of the samples:
  - every foreign-trait method (KeyStore, HttpTransport) is implemented by the sample
    class with the generated name, parameter names and types, suspend/async and return
    type, and the sample implements no method the trait does not have;
  - every `uniffi.pushauth.X` import exists, and every `Enum.Case` / `Error.Case` the
    samples use (KeyPurpose, KeyStoreException/KeyStoreError, TransportException/
    TransportError, PushAuthException/PushAuthError, push message cases) exists;
  - every top-level SDK function the samples call exists (Kotlin camelCase names).
Platform APIs (Android Keystore, Security framework) are not checked: see
bindings/android/README.md and bindings/apple/README.md for what is and is not verified.

usage: check_sample_api.py [--generated DIR] [--samples DIR]   (defaults: bindings/…)
Prints one line per check and exits 1 when any fails.
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAITS = ("KeyStore", "HttpTransport")

failures = []


def check(ok, message):
    print(("ok: " if ok else "FAILED: ") + message)
    if not ok:
        failures.append(message)


def split_top(params):
    """Splits a parameter list on commas outside <> () []."""
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [p.strip() for p in out if p.strip()]


def kt_type(t):
    t = re.sub(r"\s+", "", t or "Unit")
    return re.sub(r"\bkotlin\.(collections\.)?", "", t)


def kt_params(params):
    out = []
    for p in split_top(params):
        name, _, typ = p.partition(":")
        out.append((name.replace("`", "").strip(), kt_type(typ)))
    return out


def block(text, header_regex):
    """The text of the `{ … }` block whose header matches, or None."""
    m = re.search(header_regex, text, re.M)
    if not m:
        return None
    i = text.index("{", m.start())
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def without_anonymous_objects(text):
    """The text with every `object : Type { … }` expression removed: the overrides of an
    anonymous object (an OkHttp `Callback` inside a transport) are not the class's own."""
    while True:
        m = re.search(r"\bobject\s*:\s*[\w.<>]+\s*\{", text)
        if not m:
            return text
        body = block(text[m.start():], r"\{")
        if body is None:
            return text
        end = m.start() + text[m.start():].index("{") + len(body) + 2
        text = text[: m.start()] + text[end:]


# ---- Kotlin ---------------------------------------------------------------------------

def kotlin(generated, samples):
    gen = (generated / "kotlin/uniffi/pushauth/pushauth.kt").read_text()
    files = sorted((samples / "android").glob("*.kt"))
    texts = {f.name: f.read_text() for f in files}
    for trait in TRAITS:
        body = block(gen, rf"^public interface {trait}\s*\{{")
        if body is None:
            check(False, f"kotlin: generated code has no interface {trait}")
            continue
        wanted = {}
        for m in re.finditer(r"^\s*(suspend\s+)?fun\s+`(\w+)`\((.*)\)\s*(?::\s*(\S.*))?$", body, re.M):
            wanted[m.group(2)] = (bool(m.group(1)), kt_params(m.group(3)), kt_type(m.group(4)))
        implementers = [n for n, t in texts.items() if re.search(rf"\)\s*:\s*{trait}\s*\{{", t)]
        check(bool(implementers), f"kotlin: a sample implements {trait} ({', '.join(implementers) or 'none'})")
        for name in implementers:
            t = without_anonymous_objects(texts[name])
            have = {}
            for m in re.finditer(
                r"override\s+(suspend\s+)?fun\s+(\w+)\s*\(([^)]*)\)\s*(?::\s*([\w<>?.,\s]+?))?\s*(?:=|\{)", t, re.S
            ):
                have[m.group(2)] = (bool(m.group(1)), kt_params(m.group(3)), kt_type(m.group(4)) if m.group(4) else None)
            for method, (susp, params, ret) in wanted.items():
                got = have.get(method)
                if got is None:
                    check(False, f"kotlin: {name} does not implement {trait}.{method}")
                    continue
                same = got[0] == susp and got[1] == params and (got[2] is None and ret == "Unit" or got[2] == ret)
                check(same, f"kotlin: {name} {trait}.{method}: "
                      + ("matches" if same else f"sample {got} vs generated {(susp, params, ret)}"))
            for method in have:
                if method not in wanted:
                    check(False, f"kotlin: {name} overrides {method}, which {trait} does not declare")
    declared = set(re.findall(r"^(?:public |internal )?(?:data |enum |sealed |open |abstract )*(?:class|interface|object)\s+(\w+)", gen, re.M))
    declared |= set(re.findall(r"^\s*(?:public |internal )?(?:data |enum |sealed |open )*class\s+(\w+)", gen, re.M))
    functions = set(re.findall(r"^\s*(?:@Throws\([^)]*\)\s*)?(?:suspend\s+)?fun\s+`(\w+)`", gen, re.M))
    enum_cases = {}
    for m in re.finditer(r"^enum class (\w+)[^{]*\{(.*?)^\s*companion|^enum class (\w+)[^{]*\{(.*?)^\}", gen, re.M | re.S):
        name, body = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        enum_cases[name] = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)\b", body, re.M))
    for name, t in texts.items():
        for imp in re.findall(r"^import uniffi\.pushauth\.(\w+)", t, re.M):
            check(imp in declared or imp in functions, f"kotlin: {name} imports uniffi.pushauth.{imp}")
        for owner, case in sorted(set(re.findall(r"\b(KeyStoreException|TransportException|PushAuthException|PushMessage)\.(\w+)", t))):
            sealed = block(gen, rf"^sealed class {owner}\b[^{{]*\{{") or ""
            ok = re.search(rf"^\s*(?:data )?(?:class|object) {case}\b", sealed, re.M) is not None
            check(ok, f"kotlin: {name} uses {owner}.{case}")
        for owner, case in sorted(set(re.findall(r"\b(KeyPurpose)\.([A-Z_]+)\b", t))):
            check(case in enum_cases.get(owner, set()), f"kotlin: {name} uses {owner}.{case}")


# ---- Swift ----------------------------------------------------------------------------

def swift_sig(line):
    line = re.sub(r"\s+", " ", line.strip().rstrip("{").strip())
    return line.replace(" -> ", " -> ").replace("throws ->", "throws ->")


def swift(generated, samples):
    gen = (generated / "swift/PushAuth.swift").read_text()
    files = sorted((samples / "ios").glob("*.swift"))
    texts = {f.name: f.read_text() for f in files}
    for trait in TRAITS:
        body = block(gen, rf"^public protocol {trait}\b[^{{]*\{{")
        if body is None:
            check(False, f"swift: generated code has no protocol {trait}")
            continue
        wanted = [swift_sig(m.group(0)) for m in re.finditer(r"^\s*func \w+\(.*$", body, re.M)]
        implementers = [n for n, t in texts.items() if re.search(rf"^(?:final )?class \w+\s*:[^{{]*\b{trait}\b", t, re.M)]
        check(bool(implementers), f"swift: a sample implements {trait} ({', '.join(implementers) or 'none'})")
        for name in implementers:
            have = {swift_sig(m.group(0)) for m in re.finditer(r"^\s*func \w+\(.*$", texts[name], re.M)}
            for sig in wanted:
                check(sig in have, f"swift: {name} implements `{sig}`")
    for name, t in texts.items():
        for owner, case in sorted(set(re.findall(r"\b(KeyStoreError|TransportError|PushAuthError)\.(\w+)", t))):
            body = block(gen, rf"^(?:public\s+)?enum {owner}\b[^{{]*\{{") or ""
            check(re.search(rf"^\s*case {case}\b", body, re.M) is not None, f"swift: {name} uses {owner}.{case}")
        purpose = block(gen, r"^(?:public\s+)?enum KeyPurpose\b[^{]*\{") or ""
        for case in sorted(set(re.findall(r"case \.(deviceSigning|approvalSigning|agreement)\b", t))
                           | set(re.findall(r"== \.(deviceSigning|approvalSigning|agreement)\b", t))):
            check(re.search(rf"^\s*case {case}\b", purpose, re.M) is not None, f"swift: {name} uses KeyPurpose.{case}")
        for fn in sorted(set(re.findall(r"\b(parsePush|enrollmentStateFromJson|enrollmentStateToJson)\(", t))):
            check(re.search(rf"^public func {fn}\(", gen, re.M) is not None, f"swift: {name} calls {fn}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=pathlib.Path, default=ROOT / "bindings/generated")
    ap.add_argument("--samples", type=pathlib.Path, default=ROOT / "bindings/samples")
    args = ap.parse_args()
    kotlin(args.generated, args.samples)
    swift(args.generated, args.samples)
    print(f"sample API: {len(failures)} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
