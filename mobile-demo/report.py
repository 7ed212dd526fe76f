#!/usr/bin/env python3
"""The end of mobile-demo/demo.sh: what the issuer's evidence says, and the timeline.

    python3 report.py --answer FILE          one line for a webhook's answer
    python3 report.py EVIDENCE.json AUDIT.json RESULTS.jsonl T0_MS WEBHOOK_MS ENROLL_MS \
        PROCESSOR ANSWER PUSH(yes|no)

EVIDENCE.json is GET /v1/admin/challenges/{id} (challenge, decision, outbox, delivery
attempts, audit trail), AUDIT.json GET /v1/admin/audit/verify, RESULTS.jsonl what the
mock processor received. Server and demo share this machine's clock, so the server's
timestamps and the demo's are compared directly.
"""

import json
import sys
import time


def answer_summary(path):
    """One line for a webhook's answer: a challenge's id and status, or the body."""
    text = open(path, encoding="utf-8", errors="replace").read()
    try:
        j = json.loads(text)
    except ValueError:
        j = None
    if isinstance(j, dict) and isinstance(j.get("challenge"), dict):
        ch = j["challenge"]
        text = f"challenge {ch.get('id')} {ch.get('status')}, {j.get('pushes', '?')} push(es)"
    return (text[:160] + "…") if len(text) > 160 else (text or "(no body)")


def main():
    if sys.argv[1] == "--answer":
        print(answer_summary(sys.argv[2]))
        return
    evidence, audit_file, results_file, t0, webhook_at, enroll_ms, processor, answer, push = sys.argv[1:]
    t0, webhook_at = int(t0), int(webhook_at)
    e = json.load(open(evidence, encoding="utf-8"))
    audit = json.load(open(audit_file, encoding="utf-8"))
    results = [json.loads(line) for line in open(results_file, encoding="utf-8") if line.strip()]
    c, d = e["challenge"], e.get("decision") or {}
    attempts = e.get("attempts") or []

    def say(text):
        print(f"[+{time.time_ns() // 1_000_000 - t0:>6} ms] {'demo':<9} | {text}")

    say(f"admin: challenge {c['id'][:8]} ({c['provider']}, ref {c['provider_ref'][:36]}) is {c['status']}, "
        f"upstream {c.get('upstream')}")
    if d:
        reason = f" ({d['reason']})" if d.get("reason") else ""
        say(f"admin: decision {d['decision']}{reason} by device {d['device'][:8]}, uv {d.get('user_verification')}, "
            f"signed proof kept as evidence ({len(d['proof'])} chars)")
    for a in attempts:
        say(f"admin: delivery {a['kind']} attempt {a['attempt_no']}: {a['outcome']}, HTTP {a['http_status']}, "
            f"{a['latency_ms']} ms")
    trail = ", ".join(x.get("action", "?") for x in e.get("audit") or [])
    say(f"admin: audit chain {audit.get('result')} ({audit.get('entries')} entries); this challenge: {trail}")

    service = "mock Web Push service" if push == "webpush" else "mock FCM"
    rows = [("enroll: link -> device registered, keys pinned", int(enroll_ms), "the phone, JVM start included")]
    rows.append(("processor's request sent -> challenge stored", c["created_at"] - webhook_at, ""))
    for a in attempts:
        if a["kind"] == "push":
            rows.append((f"  -> push accepted by the {service}", a["at"] + a["latency_ms"] - webhook_at, ""))
    if d:
        rows.append((f"  -> the phone's {d['decision']} accepted", d["at"] - webhook_at,
                     "push, decrypt, fetch + verify, sign, send" if push != "no" else "poll, fetch + verify, sign, send"))
    if results:
        rows.append(("  -> result received by the mock processor", results[0]["received_ms"] - webhook_at,
                     str(results[0]["result"])))
    for a in attempts:
        if a["kind"] == "upstream":
            rows.append(("  -> the processor's answer back at pushauth", a["at"] + a["latency_ms"] - webhook_at,
                         f"HTTP {a['http_status']}, delivery recorded"))
    print()
    if answer == "ask" and d:
        answer = f"ask -> {d['decision']}" + (f" ({d['reason']})" if d.get("reason") else "")
    print(f"== pushauth demo: {processor}, answer {answer}, "
          f"push {'via the ' + service if push != 'no' else 'off (the phone polls)'}")
    for label, ms, note in rows:
        print(f"   {label:<48} {ms:>6} ms" + (f"   ({note})" if note else ""))


if __name__ == "__main__":
    main()
