#!/usr/bin/env python3
"""A tiny mock of Firebase Cloud Messaging for mobile-demo/demo.sh (Python 3 standard
library only), plus the "device side" of FCM for the virtual phone.

Server side, as pushauth's FCM sender sees it (server/src/push/fcm.rs):
  POST /token                              OAuth2 JWT-bearer grant (RFC 7523): the RS256
                                           assertion is checked against the service
                                           account's public key (iss, aud, scope, exp)
  POST /v1/projects/{project}/messages:send  HTTP v1 send with that bearer; the data
                                           message is queued for its registration token
Device side, standing in for Google Play services delivering RemoteMessage.data:
  GET  /inbox?token=T&wait_ms=N            long poll: one line per message, the data
                                           map form-encoded (cid=…&kind=challenge&enc=…)

    python3 mock_fcm.py --config fcm.json --port-file port

fcm.json: {"t0_ms", "client_email", "project_id", "public_key_pem_file"}; the expected
token_uri (the assertion's aud) is http://127.0.0.1:<its port>/token.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = {}
TOKENS = set()
QUEUES = {}  # registration token -> list of data maps
COND = threading.Condition()
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def now_ms():
    return time.time_ns() // 1_000_000


def log(text):
    t0 = CONFIG.get("t0_ms")
    stamp = f"+{now_ms() - t0:>6} ms" if t0 else time.strftime("%H:%M:%S")
    print(f"[{stamp}] mock FCM  | {text}", flush=True)


# ---------------------------------------------------------------- RS256 check, stdlib only

def der_read(data, at):
    """One DER TLV at `at`: (tag, value bytes, next offset)."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[at:at + n], "big")
        at += n
    return tag, data[at:at + length], at + length


def rsa_public_key(pem_text):
    """(n, e) of a SubjectPublicKeyInfo PEM."""
    body = "".join(line for line in pem_text.splitlines() if line and not line.startswith("-----"))
    spki = base64.b64decode(body)
    _, seq, _ = der_read(spki, 0)
    _, _alg, at = der_read(seq, 0)
    _, bits, _ = der_read(seq, at)
    _, rsa, _ = der_read(bits[1:], 0)  # skip the unused-bits byte
    _, n, at = der_read(rsa, 0)
    _, e, _ = der_read(rsa, at)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_assertion(assertion):
    """Why the assertion is refused, or None."""
    try:
        head, payload, sig = assertion.split(".")
        header, claims = json.loads(b64url(head)), json.loads(b64url(payload))
    except ValueError:
        return "not a compact JWS"
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    n, e = rsa_public_key(open(CONFIG["public_key_pem_file"], encoding="ascii").read())
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(b64url(sig), "big"), e, n).to_bytes(k, "big")
    digest = hashlib.sha256(f"{head}.{payload}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(SHA256_DIGEST_INFO) - 32) + b"\x00" + SHA256_DIGEST_INFO + digest
    if em != expected:
        return "bad RS256 signature"
    if claims.get("iss") != CONFIG["client_email"]:
        return "iss is not the service account"
    if claims.get("aud") != CONFIG["token_uri"]:
        return "aud is not the token endpoint"
    if "https://www.googleapis.com/auth/firebase.messaging" not in str(claims.get("scope", "")).split():
        return "scope lacks firebase.messaging"
    if not claims.get("iat", 0) - 60 <= time.time() < claims.get("exp", 0):
        return "expired or not yet valid"
    return None


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "mock-fcm/1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=None, content_type="application/json"):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fcm_error(self, status, code, message):
        log(f"REFUSED {self.command} {urllib.parse.urlsplit(self.path).path}: {message}")
        self.answer(status, {"error": {"code": status, "message": message, "status": code}})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            return self.token(body)
        m = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", path)
        if m:
            return self.send_message(m.group(1), body)
        self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such route"}})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/inbox":
            return self.answer(404, {"error": "no such route"})
        query = dict(urllib.parse.parse_qsl(url.query))
        token, wait = query.get("token", ""), min(int(query.get("wait_ms", "0")), 30_000) / 1000
        end = time.monotonic() + wait
        with COND:
            while not QUEUES.get(token) and time.monotonic() < end:
                COND.wait(end - time.monotonic())
            messages = QUEUES.pop(token, [])
        for data in messages:
            log(f"delivered the {data.get('kind')} message for challenge {data.get('cid')} to the phone")
        lines = "".join(urllib.parse.urlencode(data) + "\n" for data in messages)
        self.answer(200, lines.encode(), "text/plain")

    def token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.answer(400, {"error": "unsupported_grant_type"})
        why = check_assertion(form.get("assertion", ""))
        if why:
            log(f"REFUSED the OAuth assertion: {why}")
            return self.answer(400, {"error": "invalid_grant", "error_description": why})
        token = "ya29.mock-" + secrets.token_urlsafe(24)
        TOKENS.add(token)
        log("OAuth: RS256 assertion of the service account verified, access token issued")
        self.answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def send_message(self, project, body):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in TOKENS:
            return self.fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if project != CONFIG["project_id"]:
            return self.fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch")
        message = json.loads(body).get("message", {})
        token, data = message.get("token", ""), message.get("data", {})
        if not token or not isinstance(data, dict) or "cid" not in data:
            return self.fcm_error(400, "INVALID_ARGUMENT", "message.token and message.data.cid are required")
        android = message.get("android", {})
        enc = data.get("enc")
        log(f"messages:send to token {token[:12]}…: data kind={data.get('kind')} cid={data.get('cid')}"
            + (f" enc=<{len(enc)} chars, encrypted>" if enc else "")
            + f", priority {android.get('priority')}, ttl {android.get('ttl')}")
        with COND:
            QUEUES.setdefault(token, []).append({k: str(v) for k, v in data.items()})
            COND.notify_all()
        self.answer(200, {"name": f"projects/{project}/messages/0:{now_ms()}%{secrets.token_hex(8)}"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.config, encoding="utf-8") as f:
        CONFIG.update(json.load(f))
    CONFIG.setdefault("token_uri", f"http://127.0.0.1:{httpd.server_address[1]}/token")
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
