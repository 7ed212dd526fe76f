"""Binding tests of the pushauth SDK from Python (unittest, standard library only).

Run with bindings/scripts/test-python.sh, which puts the generated module and the
cdylib on PYTHONPATH and points PUSHAUTH_VECTORS at core/tests/vectors.

- VectorTests: the golden vectors of core/tests/vectors/*.json through the bindings.
- OfflineFlowTests: key store, enrollment links, state, push decryption, proofs
  signed through the key store, errors, async calls — no server needed.
- ServerFlowTests: enroll -> pending -> challenge -> approve against a live server;
  skipped unless PUSHAUTH_TEST_SERVER is set.
"""

import asyncio
import base64
import json
import os
import pathlib
import socket
import time
import unittest

import pushauth as pa

VECTORS = pathlib.Path(
    os.environ.get("PUSHAUTH_VECTORS", pathlib.Path(__file__).resolve().parents[3] / "core" / "tests" / "vectors")
)


def load(name):
    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)


def b64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


KEYS = load("keys.json")
ISSUER = load("challenges.json")["issuer"]
DEVICE = KEYS["device_id"]


def jwk(value):
    """A JWK as the SDK writes it (canonical JSON of the public key)."""
    return pa.public_key_jwk(json.dumps(value).encode())


def vector_store():
    """A software key store holding the fixed device keys of keys.json."""
    store = pa.SoftwareKeyStore()
    store.import_signing_key("device.signing", b64u(KEYS["device_signing_pkcs8"]))
    store.import_agreement_key("device.agreement", b64u(KEYS["device_agreement_scalar"]))
    return store


def vector_state(server_url="https://pushauth.example"):
    """The enrollment state a device holding the vector keys would have stored."""
    return pa.EnrollmentState(
        version=1,
        server_url=server_url,
        issuer=ISSUER,
        device_id=DEVICE,
        server_key_jwk=jwk(KEYS["server_signing_jwk"]),
        server_kid=KEYS["server_kid"],
        signing_key_alias="device.signing",
        signing_key_jwk=jwk(KEYS["device_signing_jwk"]),
        agreement_key_alias="device.agreement",
        agreement_key_jwk=jwk(KEYS["device_agreement_jwk"]),
    )


def transaction(t):
    return pa.Transaction(
        provider=pa.Provider[t["provider"].upper()],
        reference=t["ref"],
        kind=pa.TransactionKind[t["kind"].upper()],
        amount_minor=t.get("amount"),
        currency=t.get("currency"),
        payee=t.get("payee"),
    )


def expectations(e):
    return pa.ProofExpectations(
        device=e["device"],
        device_key_jwk=jwk(KEYS["device_signing_jwk"]),
        audience=e["audience"],
        challenge=e["challenge"],
        nonce=e["nonce"],
        txn=e["txn"],
        deadline=e["deadline"],
        processor_output=e["processor_output"],
        now=e["now"],
        skew_secs=e["skew_secs"],
    )


def case(file, name):
    return next(c for c in load(file)["cases"] if c["name"] == name)


class VectorTests(unittest.TestCase):
    def test_keys_thumbprints_and_signatures(self):
        self.assertEqual(pa.jwk_thumbprint(jwk(KEYS["device_signing_jwk"])), KEYS["device_signing_thumbprint"])
        self.assertEqual(pa.jwk_thumbprint(jwk(KEYS["server_signing_jwk"])), KEYS["server_kid"])
        store = pa.SoftwareKeyStore()
        public = store.import_signing_key("k", b64u(KEYS["device_signing_pkcs8"]))
        self.assertEqual(json.loads(pa.public_key_jwk(public)), KEYS["device_signing_jwk"])
        for v in KEYS["signatures"]:
            with self.subTest(v["name"]):
                if v["valid"]:
                    self.assertEqual(pa.normalize_signature(b64u(v["signature"])), b64u(v["raw"]))
                else:
                    with self.assertRaises(pa.PushAuthError.InvalidInput):
                        pa.normalize_signature(b64u(v["signature"]))

    def test_transactions(self):
        cases = load("transactions.json")["cases"]
        self.assertGreaterEqual(len(cases), 8)
        for c in cases:
            with self.subTest(c["name"]):
                t = transaction(c["transaction"])
                self.assertEqual(pa.canonical_transaction_json(t), c["canonical"])
                self.assertEqual(pa.transaction_digest(t), c["digest"])
        self.assertEqual(len({c["digest"] for c in cases}), len(cases))

    def test_challenges(self):
        server_jwk = jwk(KEYS["server_signing_jwk"])
        for c in load("challenges.json")["cases"]:
            with self.subTest(c["name"]):
                verify = lambda: pa.verify_server_challenge(c["token"], server_jwk, ISSUER, c["device"], c["now"])
                if c["result"] == "ok":
                    view = verify()
                    claims = c["claims"]
                    self.assertEqual(view.id, claims["jti"])
                    self.assertEqual(view.amount_display, c["display_amount"])
                    self.assertEqual(view.amount_minor, claims["txn"]["amount"])
                    self.assertEqual(view.currency, claims["txn"]["currency"])
                    self.assertEqual(view.payee, claims["txn"]["payee"])
                    self.assertEqual(view.provider, pa.Provider.ENFUCE)
                    self.assertEqual(view.kind, pa.TransactionKind.PAYMENT)
                    self.assertEqual(view.deadline, claims["exp"])
                    self.assertEqual(view.processor_input, claims["pin"])
                    self.assertEqual(view.transaction_digest, c["digest"])
                elif c["result"] == "past_deadline":
                    with self.assertRaises(pa.PushAuthError.ChallengeExpired):
                        verify()
                else:
                    with self.assertRaises(pa.PushAuthError.InvalidChallenge) as ctx:
                        verify()
                    self.assertEqual(ctx.exception.reason, c["result"])

    def test_proofs(self):
        cases = load("proofs.json")["cases"]
        for c in cases:
            with self.subTest(c["name"]):
                self.assertEqual(pa.verify_approval_proof_for_tests(c["token"], expectations(c["expect"])), c["result"])

    def test_push(self):
        store, state = vector_store(), vector_state()
        for c in load("push.json")["cases"]:
            with self.subTest(c["name"]):
                if c["result"] == "ok":
                    preview = pa.decrypt_push(state, store, c["challenge"], c["envelope"])
                    self.assertEqual(preview.summary, c["summary"])
                    self.assertEqual(preview.challenge_id, c["challenge"])
                    self.assertEqual(preview.amount_display, "EUR 49.90")
                    self.assertEqual(preview.payee, c["details"]["txn"]["payee"])
                    self.assertEqual(preview.deadline, c["details"]["exp"])
                    self.assertIsNone(preview.otp)
                else:
                    with self.assertRaises(pa.PushAuthError.InvalidPush) as ctx:
                        pa.decrypt_push(state, store, c["challenge"], c["envelope"])
                    self.assertEqual(ctx.exception.reason, c["result"])

    def test_requests(self):
        device_jwk = jwk(KEYS["device_signing_jwk"])
        for c in load("requests.json")["cases"]:
            with self.subTest(c["name"]):
                got = pa.verify_request_proof_for_tests(
                    c["token"], DEVICE, device_jwk, ISSUER, c["method"], c["path"], c["body"], c["now"], 60
                )
                self.assertEqual(got, c["result"])


class CountingKeyStore(pa.KeyStore):
    """An app-side key store written in Python (a foreign trait implementation),
    backed by a SoftwareKeyStore producing DER signatures like Android Keystore."""

    def __init__(self):
        self.inner = pa.SoftwareKeyStore.with_signature_format(pa.SignatureFormat.DER)
        self.calls = []

    def create_signing_key(self, alias):
        self.calls.append("create_signing_key")
        return self.inner.create_signing_key(alias)

    def sign(self, alias, message):
        self.calls.append("sign")
        return self.inner.sign(alias, message)

    def create_agreement_key(self, alias):
        self.calls.append("create_agreement_key")
        return self.inner.create_agreement_key(alias)

    def agree(self, alias, peer_public_key):
        self.calls.append("agree")
        return self.inner.agree(alias, peer_public_key)

    def delete_key(self, alias):
        self.calls.append("delete_key")
        return self.inner.delete_key(alias)


class CancellingKeyStore(CountingKeyStore):
    def sign(self, alias, message):
        raise pa.KeyStoreError.UserCancelled()


def unused_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OfflineFlowTests(unittest.TestCase):
    challenge = case("challenges.json", "valid")
    approve_vector = case("proofs.json", "approve_with_processor_output")

    def test_enrollment_links(self):
        link = pa.parse_enrollment_link(
            "pushauth://enroll?v=1&server=https%3A%2F%2Fbank.example%2Fpushauth&code=abcd-efgh-jkmn-pqrs-tvwx"
        )
        self.assertEqual(link.server_url, "https://bank.example/pushauth")
        self.assertEqual(link.activation_code, "ABCD-EFGH-JKMN-PQRS-TVWX")
        for bad in [
            "pushauth://enroll?v=2&server=https://bank.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?v=1&server=http://bank.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?v=1&server=https://bank.example&code=TOO-SHORT",
            "https://bank.example/enroll",
        ]:
            with self.subTest(bad), self.assertRaises(pa.PushAuthError.InvalidInput):
                pa.parse_enrollment_link(bad)

    def test_state_json_round_trip_and_checks(self):
        state = vector_state()
        text = pa.enrollment_state_to_json(state)
        self.assertEqual(pa.enrollment_state_from_json(text), state)
        broken = json.loads(text)
        broken["server_kid"] = "x" * 43
        with self.assertRaises(pa.PushAuthError.InvalidInput):
            pa.enrollment_state_from_json(json.dumps(broken))
        client = pa.PushAuthClient(state, vector_store())
        self.assertEqual(client.state(), state)

    def test_software_key_store_export_import(self):
        store = vector_store()
        again = pa.SoftwareKeyStore.import_state(store.export_state())
        self.assertEqual(again.aliases(), ["device.agreement", "device.signing"])
        preview = pa.decrypt_push(vector_state(), again, *[case("push.json", "valid")[k] for k in ("challenge", "envelope")])
        self.assertEqual(preview.summary, "EUR 49.90 at Example Shop")
        self.assertNotIn("MIG", repr(again))
        with self.assertRaises(pa.KeyStoreError.NotFound):
            again.sign("missing", b"m")

    def sign_proof(self, store, approve=True, reason=None, output=None, state=None):
        client = pa.PushAuthClient(state or vector_state(), store)
        return asyncio.run(
            client.sign_proof_for_tests(self.challenge["token"], self.challenge["now"], approve, reason, output)
        )

    def test_approval_proof_signed_through_the_key_store_verifies(self):
        expect = dict(self.approve_vector["expect"], now=self.challenge["now"] + 2)
        token = self.sign_proof(vector_store(), output=expect["processor_output"])
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(expect)), "ok")
        swapped = dict(expect, processor_output="another-output")
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(swapped)), "processor_output_mismatch")
        claims = json.loads(b64u(token.split(".")[1]))
        self.assertEqual(claims["decision"], "approve")
        self.assertEqual(claims["txn"], self.challenge["digest"])
        self.assertEqual(claims["uv"], "biometric")

    def test_deny_not_me_with_a_python_key_store_and_der_signatures(self):
        store = CountingKeyStore()
        state = vector_state()
        store.inner.import_signing_key("device.signing", b64u(KEYS["device_signing_pkcs8"]))
        token = self.sign_proof(store, approve=False, reason=pa.DenyReason.NOT_ME, state=state)
        self.assertEqual(store.calls, ["sign"])
        expect = dict(case("proofs.json", "deny_not_me")["expect"], now=self.challenge["now"] + 2)
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(expect)), "ok")
        self.assertEqual(json.loads(b64u(token.split(".")[1]))["reason"], "not_me")

    def test_key_store_errors_reach_the_app(self):
        invalidated = vector_store()
        invalidated.invalidate_key("device.signing")
        with self.assertRaises(pa.PushAuthError.KeyInvalidated):
            self.sign_proof(invalidated)
        with self.assertRaises(pa.PushAuthError.UserCancelled):
            self.sign_proof(CancellingKeyStore())
        # A key store whose alias now names another key: refused before sending.
        replaced = pa.SoftwareKeyStore()
        replaced.create_signing_key("device.signing")
        with self.assertRaises(pa.PushAuthError.KeyInvalidated):
            self.sign_proof(replaced)

    def test_forged_challenge_is_never_signed(self):
        forged = case("challenges.json", "signed_by_other_key")
        client = pa.PushAuthClient(vector_state(), vector_store())
        with self.assertRaises(pa.PushAuthError.InvalidChallenge) as ctx:
            asyncio.run(client.sign_proof_for_tests(forged["token"], forged["now"], True, None, None))
        self.assertEqual(ctx.exception.reason, "wrong_key_id")

    def test_transaction_helpers_refuse_bad_input(self):
        t = transaction(case("transactions.json", "enfuce_eur_payment")["transaction"])
        def variant(**changes):
            fields = dict(provider=t.provider, reference=t.reference, kind=t.kind, amount_minor=t.amount_minor,
                          currency=t.currency, payee=t.payee)
            return pa.Transaction(**dict(fields, **changes))

        self.assertEqual(pa.transaction_digest(variant()), pa.transaction_digest(t))
        for bad in [
            variant(currency=None),
            variant(amount_minor=-1),
            variant(reference="a b"),
            variant(currency="eur"),
            variant(payee=""),
        ]:
            with self.assertRaises(pa.PushAuthError.InvalidInput):
                pa.transaction_digest(bad)
        self.assertEqual(pa.format_amount(1234, "BHD"), "BHD 1.234")
        self.assertEqual(pa.format_amount(5000, "JPY"), "JPY 5000")

    def test_async_calls_map_network_errors(self):
        port = unused_loopback_port()
        client = pa.PushAuthClient.with_options(
            vector_state(f"http://127.0.0.1:{port}"), vector_store(), pa.ClientOptions(timeout_secs=5)
        )

        async def calls():
            with self.assertRaises(pa.PushAuthError.Network):
                await client.pending_challenges()
            with self.assertRaises(pa.PushAuthError.Network):
                await client.approve(self.challenge["claims"]["jti"], None)
            with self.assertRaises(pa.PushAuthError.InvalidInput):
                await client.challenge("not-a-uuid")

        asyncio.run(calls())
        request = pa.EnrollRequest(activation="ABCDEFGHJKMNPQRSTVWX", server_url=f"http://127.0.0.1:{port}",
                                   platform=pa.Platform.OTHER)
        store = CountingKeyStore()
        with self.assertRaises(pa.PushAuthError.Network):
            asyncio.run(pa.enroll(request, store))
        # The keys made for the failed enrollment are deleted again.
        self.assertEqual(store.inner.aliases(), [])
        self.assertIn("delete_key", store.calls)
        with self.assertRaises(pa.PushAuthError.InvalidInput):
            pa.PushAuthClient(vector_state("http://bank.example"), vector_store())


@unittest.skipUnless(os.environ.get("PUSHAUTH_TEST_SERVER"), "PUSHAUTH_TEST_SERVER not set: no live server flow")
class ServerFlowTests(unittest.TestCase):
    """The SDK against a running pushauth server: enroll -> pending -> challenge ->
    approve, and deny not_me. The test plays the issuer's backend through the admin
    API. `tests/run-all.sh` starts a server and sets:

    PUSHAUTH_TEST_SERVER: its base URL (http://127.0.0.1:PORT).
    PUSHAUTH_TEST_ADMIN_KEY: an admin API key of that server.
    """

    def setUp(self):
        self.server = os.environ.get("PUSHAUTH_TEST_SERVER")
        self.admin_key = os.environ.get("PUSHAUTH_TEST_ADMIN_KEY")
        if not self.server or not self.admin_key:
            self.skipTest("PUSHAUTH_TEST_SERVER / PUSHAUTH_TEST_ADMIN_KEY not set (tests/run-all.sh sets them)")

    def admin(self, method, path, body=None):
        import urllib.request
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.admin_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def new_challenge(self, cardholder, reference):
        return self.admin("POST", "/v1/admin/challenges", {
            "cardholder_id": cardholder, "reference": reference,
            "amount": {"minor": 4990, "currency": "EUR"}, "payee": "Example Shop", "ttl_secs": 120,
        })["challenge"]["id"]

    def test_enroll_approve_and_deny_not_me(self):
        cardholder = self.admin("POST", "/v1/admin/cardholders", {"label": "python sdk test"})["id"]
        link = self.admin("POST", "/v1/admin/cardholders/%s/activation-codes" % cardholder)["deeplink"]
        store = pa.SoftwareKeyStore()
        options = pa.ClientOptions(user_verification=pa.UserVerification.BIOMETRIC)
        suffix = str(time.time_ns())

        async def flow():
            request = pa.EnrollRequest(activation=link, server_url=None, platform=pa.Platform.OTHER,
                                       label="python binding test", options=options)
            state = await pa.enroll(request, store)
            client = pa.PushAuthClient.with_options(state, store, options)
            first = self.new_challenge(cardholder, "py-approve-" + suffix)
            pending = await client.pending_challenges()
            self.assertEqual([c.id for c in pending], [first])
            view = await client.challenge(first)
            self.assertEqual(view.amount_display, "EUR 49.90")
            self.assertEqual(view.payee, "Example Shop")
            approved = await client.approve(first, None)
            with self.assertRaises(pa.PushAuthError.AlreadyAnswered):
                await client.approve(first, None)
            second = self.new_challenge(cardholder, "py-deny-" + suffix)
            await client.challenge(second)
            denied = await client.deny(second, pa.DenyReason.NOT_ME)
            return first, approved, second, denied

        first, approved, second, denied = asyncio.run(flow())
        self.assertEqual(approved, pa.DecisionOutcome.APPROVED)
        self.assertEqual(denied, pa.DecisionOutcome.DENIED)
        one = self.admin("GET", "/v1/admin/challenges/" + first)
        self.assertEqual(one["challenge"]["status"], "approved")
        self.assertEqual(one["decision"]["user_verification"], "biometric")
        two = self.admin("GET", "/v1/admin/challenges/" + second)
        self.assertEqual(two["decision"]["reason"], "not_me")


if __name__ == "__main__":
    unittest.main()
