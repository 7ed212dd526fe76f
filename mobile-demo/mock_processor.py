#!/usr/bin/env python3
"""A tiny mock card processor for mobile-demo/demo.sh (Python 3 standard library only).

It receives pushauth's result leg for each processor, checks the credentials the way
the processor would, prints what arrived and appends one JSON line per result to
--results, which demo.sh waits on.

    python3 mock_processor.py --config mock.json --port-file port --results results.jsonl

mock.json holds the secrets demo.sh also gave the server (every key optional):
  t0_ms                      demo start (Unix ms), for the "+N ms" timeline
  api_callback_secret        [api] callback_secret   (PushAuth-Signature HMAC)
  enfuce_callback_user/_password                     (Basic on the Enfuce callback)
  adyen_api_key                                      (X-API-Key on the finalize call)
  paysafe_key_b64, paysafe_api_token                 (Signature HMAC, Bearer)
  treezor_client_id, treezor_client_secret           (OAuth2 client credentials)

Routes (the path prefixes are what demo.sh configures as base URLs):
  POST  /api/callback                                   generic challenge API callback
  POST  /enfuce/v1/callback/{issuer}/{customer}/{session}  Enfuce callbackUrl
  PATCH /adyen/acs/v1/challenges/{id}                   Adyen finalize
  POST  /paysafe/sca/events/{eventId}/attempts          Paysafe SCA attempt
  POST  /treezor/oauth/token                            Treezor OAuth2 token
  PUT   /treezor/v1/auth-requests/{id}/result           Treezor authentication result
"""

import argparse
import base64
import hashlib
import hmac
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
RESULTS_PATH = None
LOCK = threading.Lock()
TREEZOR_TOKENS = set()


def now_ms():
    return time.time_ns() // 1_000_000


def log(text):
    t0 = CONFIG.get("t0_ms")
    stamp = f"+{now_ms() - t0:>6} ms" if t0 else time.strftime("%H:%M:%S")
    print(f"[{stamp}] processor | {text}", flush=True)


def record(entry):
    entry["received_ms"] = now_ms()
    with LOCK, open(RESULTS_PATH, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def jws_claims(token):
    """The payload of a compact JWS, for display only (pushauth verified it already)."""
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except Exception:  # noqa: BLE001 - display only
        return {}


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    server_version = "mock-processor/1"

    def log_message(self, *args):  # quiet: we print our own lines
        pass

    def answer(self, status, body=None, content_type="application/json"):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def refuse(self, status, why):
        log(f"REFUSED {self.command} {self.path}: {why} -> {status}")
        self.answer(status, {"error": why})

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def do_PATCH(self):
        self.route()

    def route(self):
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        routes = [
            ("POST", r"/api/callback", self.api_callback),
            ("POST", r"/enfuce/v1/callback/([^/]+)/([^/]+)/([^/]+)", self.enfuce_callback),
            ("PATCH", r"/adyen/acs/v1/challenges/([^/]+)", self.adyen_finalize),
            ("POST", r"/paysafe/sca/events/([^/]+)/attempts", self.paysafe_attempt),
            ("POST", r"/treezor/oauth/token", self.treezor_token),
            ("PUT", r"/treezor/v1/auth-requests/([^/]+)/result", self.treezor_result),
        ]
        for method, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m and method == self.command:
                try:
                    handler(body, *m.groups())
                except Exception as e:  # noqa: BLE001 - a mock answers 500 and says why
                    self.refuse(500, f"mock error: {e}")
                return
        self.refuse(404, "no such route in the mock processor")

    # -- generic challenge API: PushAuth-Signature: t=<unix>,v1=<hex HMAC(secret, "t.body")>
    def api_callback(self, body):
        secret = CONFIG.get("api_callback_secret", "").encode()
        fields = dict(p.split("=", 1) for p in self.headers.get("PushAuth-Signature", "").split(",") if "=" in p)
        t = fields.get("t", "")
        expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not t.isdigit() or not hmac.compare_digest(expected, fields.get("v1", "")):
            return self.refuse(401, "bad PushAuth-Signature")
        if abs(time.time() - int(t)) > 300:
            return self.refuse(401, "stale PushAuth-Signature timestamp")
        event = json.loads(body)
        outcome = event.get("outcome", {}).get("outcome")
        claims = jws_claims(event.get("proof") or "")
        log(f"POST /api/callback  signature ok, Idempotency-Key {self.headers.get('Idempotency-Key')}")
        log(f"  reference {event.get('reference')}: outcome {outcome.upper() if outcome else '?'}"
            + (f", proof signed by device {str(claims.get('iss', '?'))[:8]}" if claims else ""))
        record({"processor": "api", "result": outcome, "reference": event.get("reference")})
        self.answer(200, {"received": True})

    # -- Enfuce: POST {callbackUrl} {"result": "SUCCESS" | "FAIL" | "TIMEOUT"}, Basic auth
    def enfuce_callback(self, body, issuer, customer, session):
        want = basic(CONFIG.get("enfuce_callback_user", ""), CONFIG.get("enfuce_callback_password", ""))
        if not hmac.compare_digest(self.headers.get("Authorization", ""), want):
            return self.refuse(401, "bad Basic credentials")
        result = json.loads(body).get("result")
        log(f"POST /enfuce/v1/callback/{issuer}/{customer}/{session}  Basic ok")
        log(f"  Enfuce callback for session {session}: result {result}")
        record({"processor": "enfuce", "result": result, "reference": session})
        self.answer(200)

    # -- Adyen: PATCH {base}/acs/v1/challenges/{id} {"completed": bool}, X-API-Key, sdkOutput header
    def adyen_finalize(self, body, auth_id):
        if not hmac.compare_digest(self.headers.get("X-API-Key", ""), CONFIG.get("adyen_api_key", "")):
            return self.refuse(401, "bad X-API-Key")
        completed = json.loads(body).get("completed")
        sdk_output = self.headers.get("WWW-Authenticate")
        log(f"PATCH /adyen/acs/v1/challenges/{auth_id}  X-API-Key ok, Idempotency-Key {self.headers.get('Idempotency-Key')}")
        log(f"  Adyen finalize: completed={str(completed).lower()}"
            + (f", sdkOutput header {sdk_output[:100]}" if sdk_output else ", no sdkOutput"))
        record({"processor": "adyen", "result": "completed" if completed else "not_completed", "reference": auth_id})
        self.answer(200, {})

    # -- Paysafe: POST {base}/sca/events/{eventId}/attempts, Bearer + Signature (HMAC of the body)
    def paysafe_attempt(self, body, event_id):
        if not hmac.compare_digest(self.headers.get("Authorization", ""), "Bearer " + CONFIG.get("paysafe_api_token", "")):
            return self.refuse(401, "bad Bearer token")
        key = base64.b64decode(CONFIG.get("paysafe_key_b64", ""))
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(self.headers.get("Signature", ""), expected):
            return self.refuse(401, "bad Signature")
        attempt = json.loads(body)
        otp_ok = attempt.get("value") == CONFIG.get("paysafe_otp")
        log(f"POST /paysafe/sca/events/{event_id}/attempts  Bearer and Signature ok")
        verdict = "the OTP matches -> VERIFIED" if otp_ok else "the OTP does NOT match -> FAILED"
        log(f"  Paysafe SCA attempt for wallet operation {attempt.get('walletOperationId')}: {verdict}")
        record({"processor": "paysafe", "result": "VERIFIED" if otp_ok else "FAILED", "reference": event_id})
        self.answer(200, {"id": secrets.token_hex(8), "status": "VERIFIED" if otp_ok else "FAILED"})

    # -- Treezor: OAuth2 client credentials, then PUT /v1/auth-requests/{id}/result
    def treezor_token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        ok = (form.get("grant_type") == "client_credentials"
              and hmac.compare_digest(form.get("client_id", ""), CONFIG.get("treezor_client_id", ""))
              and hmac.compare_digest(form.get("client_secret", ""), CONFIG.get("treezor_client_secret", "")))
        if not ok:
            return self.refuse(401, "bad client credentials")
        token = secrets.token_urlsafe(24)
        TREEZOR_TOKENS.add(token)
        log("POST /treezor/oauth/token  client_credentials ok: access token issued")
        self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def treezor_result(self, body, request_id):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in TREEZOR_TOKENS:
            return self.refuse(401, "bad Bearer token")
        sent = json.loads(body)
        result = sent.get("authenticationResult")
        claims = jws_claims(sent.get("authenticationSignature") or "")
        log(f"PUT /treezor/v1/auth-requests/{request_id}/result  Bearer ok")
        log(f"  Treezor result {result}" + (f", authenticationSignature: approval JWS (decision {claims.get('decision')})" if claims else ""))
        record({"processor": "treezor", "result": result, "reference": request_id})
        self.answer(200, {})


def main():
    global RESULTS_PATH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port-file", required=True, help="written with the port once listening")
    parser.add_argument("--results", required=True, help="JSON lines, one per result received")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as f:
        CONFIG.update(json.load(f))
    RESULTS_PATH = args.results
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
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
