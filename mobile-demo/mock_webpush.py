#!/usr/bin/env python3
"""A tiny mock Web Push service (RFC 8030) for mobile-demo/demo.sh --push webpush
(Python 3 standard library only), plus the "device side" for the virtual phone.

Server side, as pushauth's Web Push sender sees it (server/src/push/webpush.rs):
  POST /push/{id}        a push message: the VAPID token (RFC 8292) is verified (ES256
                         signature under k=, k = the application server key the
                         subscription was made for, aud = this origin, exp within 24 h,
                         sub a mailto:/https: contact); TTL, Content-Encoding: aes128gcm,
                         Urgency, Topic and the 4096-byte limit are checked; the body,
                         RFC 8291 ciphertext, is queued as is. 201 Created.
Device side, standing in for a UnifiedPush distributor:
  POST /subscribe        a new subscription: answers "<id> <endpoint>"
  GET  /inbox?sub=ID&wait_ms=N  long poll: one line per message, the body base64url
                         (the phone decrypts it with its subscription keys)

    python3 mock_webpush.py --config webpush.json --port-file port

webpush.json: {"t0_ms", "vapid_public_key"} (base64url, 65 bytes: what the app passes
as the application server key when it subscribes).
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = {}
QUEUES = {}  # subscription id -> list of bodies
SUBS = set()
COND = threading.Condition()


def now_ms():
    return time.time_ns() // 1_000_000


def log(text):
    t0 = CONFIG.get("t0_ms")
    stamp = f"+{now_ms() - t0:>6} ms" if t0 else time.strftime("%H:%M:%S")
    print(f"[{stamp}] mock push | {text}", flush=True)


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- ES256 check, stdlib only

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def on_curve(pt):
    x, y = pt
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x - 3 * x + B)) % P == 0


def add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        m = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P) % P
    else:
        m = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (m * m - x1 - x2) % P
    return x3, (m * (x1 - x3) - y1) % P


def mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = add(out, pt)
        pt = add(pt, pt)
        k >>= 1
    return out


def es256_valid(signing_input, signature, point):
    if len(point) != 65 or point[0] != 4 or len(signature) != 64:
        return False
    q = (int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
    if not on_curve(q):
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    e = int.from_bytes(hashlib.sha256(signing_input).digest(), "big")
    w = pow(s, -1, N)
    x = add(mul(e * w % N, G), mul(r * w % N, q))
    return x is not None and x[0] % N == r


def check_vapid(authorization, origin):
    """(why the Authorization header is refused or None, the token's claims)."""
    if not authorization.startswith("vapid "):
        return "not a vapid authorization", {}
    params = dict(p.strip().split("=", 1) for p in authorization[6:].split(",") if "=" in p)
    token, key = params.get("t", ""), params.get("k", "")
    if key != CONFIG["vapid_public_key"]:
        return "k is not the application server key of this subscription", {}
    try:
        head, payload, sig = token.split(".")
        header, claims = json.loads(b64url(head)), json.loads(b64url(payload))
    except ValueError:
        return "t is not a JWT", {}
    if header.get("alg") != "ES256":
        return "alg is not ES256", claims
    if not es256_valid(f"{head}.{payload}".encode(), b64url(sig), b64url(key)):
        return "bad ES256 signature", claims
    if claims.get("aud") != origin:
        return f"aud is not {origin}", claims
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        return "exp not within the next 24 hours", claims
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "sub is not a mailto: or https: contact", claims
    return None, claims


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "mock-webpush/1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, status, why):
        log(f"REFUSED {self.path.split('?')[0]}: {why}")
        self.answer(status, why.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.urlsplit(self.path).path
        if path == "/subscribe":
            sub = secrets.token_urlsafe(16)
            with COND:
                SUBS.add(sub)
            endpoint = f"{CONFIG['origin']}/push/{sub}"
            log(f"new subscription {sub[:8]}…: endpoint {endpoint}")
            return self.answer(201, f"{sub} {endpoint}".encode())
        if not path.startswith("/push/"):
            return self.answer(404)
        sub = path[len("/push/"):]
        if sub not in SUBS:
            return self.refuse(404, "no such subscription")
        why, claims = check_vapid(self.headers.get("Authorization", ""), CONFIG["origin"])
        if why:
            return self.refuse(401, why)
        ttl, urgency, topic = self.headers.get("TTL"), self.headers.get("Urgency"), self.headers.get("Topic")
        if ttl is None or not ttl.isdigit():
            return self.refuse(400, "TTL missing")
        if self.headers.get("Content-Encoding") != "aes128gcm":
            return self.refuse(400, "Content-Encoding is not aes128gcm")
        if urgency not in (None, "very-low", "low", "normal", "high"):
            return self.refuse(400, "bad Urgency")
        if topic is not None and not (0 < len(topic) <= 32):
            return self.refuse(400, "bad Topic")
        if len(body) > 4096:
            return self.refuse(413, "payload too large")
        log(f"push to {sub[:8]}…: VAPID ES256 token of {claims['sub']} verified, {len(body)} bytes of "
            f"aes128gcm ciphertext (opaque here), TTL {ttl}, Urgency {urgency}, Topic {topic}")
        with COND:
            QUEUES.setdefault(sub, []).append(body)
            COND.notify_all()
        self.send_response(201)
        self.send_header("Location", f"/message/{secrets.token_hex(8)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/inbox":
            return self.answer(404)
        query = dict(urllib.parse.parse_qsl(url.query))
        sub, wait = query.get("sub", ""), min(int(query.get("wait_ms", "0")), 30_000) / 1000
        end = time.monotonic() + wait
        with COND:
            while not QUEUES.get(sub) and time.monotonic() < end:
                COND.wait(end - time.monotonic())
            bodies = QUEUES.pop(sub, [])
        for body in bodies:
            log(f"delivered {len(body)} bytes to subscription {sub[:8]}… (the distributor wakes the app)")
        lines = "".join(base64.urlsafe_b64encode(b).decode().rstrip("=") + "\n" for b in bodies)
        self.answer(200, lines.encode())


def self_test():
    """The curve arithmetic: G is on the curve and n·G is the point at infinity."""
    assert on_curve(G) and mul(N, G) is None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    self_test()
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.config, encoding="utf-8") as f:
        CONFIG.update(json.load(f))
    CONFIG["origin"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
