#!/usr/bin/env python3
"""The issuer's event receiver for the demo: accepts pushauth's issuer events (Standard
Webhooks, docs/api.md "Issuer events"), verifies each signature the way the
specification says, prints one line per event and appends verified events to a file.

    issuer_receiver.py --secret-file FILE --port-file FILE --events FILE [--t0-ms MS]

Verification: HMAC-SHA256 with the base64-decoded `whsec_` secret over
`{webhook-id}.{webhook-timestamp}.{raw body}`, any one of the space-separated `v1,`
signatures, compared in constant time; timestamps more than 5 minutes off and repeated
webhook-ids are refused (a repeat is answered 204 and not recorded again).
"""

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300
ARGS = None
KEY = b""
SEEN = set()
LOCK = threading.Lock()


def now_ms():
    return time.time_ns() // 1_000_000


def log(text):
    stamp = f"+{now_ms() - ARGS.t0_ms:>6} ms" if ARGS.t0_ms else time.strftime("%H:%M:%S")
    print(f"[{stamp}] issuer    | {text}", flush=True)


def verify(headers, body):
    """Returns the webhook-id when the message verifies, else raises ValueError."""
    msg_id = headers.get("webhook-id") or ""
    ts = headers.get("webhook-timestamp") or ""
    if not msg_id or not ts.isdigit():
        raise ValueError("missing webhook-id or webhook-timestamp")
    if abs(time.time() - int(ts)) > TOLERANCE_S:
        raise ValueError("timestamp outside the tolerance")
    expected = hmac.new(KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for sig in (headers.get("webhook-signature") or "").split(" "):
        version, _, b64 = sig.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(given, expected):
            return msg_id
    raise ValueError("no valid signature")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            msg_id = verify(self.headers, body)
        except ValueError as e:
            log(f"REFUSED: {e}")
            self.send_response(401)
            self.end_headers()
            return
        with LOCK:
            repeat = msg_id in SEEN
            SEEN.add(msg_id)
        if not repeat:
            event = json.loads(body)
            data = event.get("data", {})
            shown = ", ".join(f"{k}={data[k]}" for k in ("outcome", "processor", "reference", "reason", "platform") if k in data)
            log(f"{event.get('type')} ({shown}) webhook-id {msg_id}: signature verified")
            with LOCK, open(ARGS.events, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": msg_id, **event}) + "\n")
        self.send_response(204)
        self.end_headers()


def main():
    global ARGS, KEY
    p = argparse.ArgumentParser()
    p.add_argument("--secret-file", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--t0-ms", type=int, default=0)
    ARGS = p.parse_args()
    secret = open(ARGS.secret_file, encoding="utf-8").read().strip()
    KEY = base64.b64decode(secret.removeprefix("whsec_"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(ARGS.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
