"""Binding tests of the pushauth SDK from Python (unittest, standard library only).

Run with bindings/scripts/test-python.sh, which puts the generated module and the
cdylib on PYTHONPATH and points PUSHAUTH_VECTORS at core/tests/vectors.

- VectorTests: the golden vectors of core/tests/vectors/*.json through the bindings.
- OfflineFlowTests: key store (async, counting signatures per key purpose),
  enrollment links, state (v2, v1 import), push parsing and decryption, proofs
  signed through the key store with the right key, errors, transports — no server.
- ServerFlowTests (server_flow.py): protocol v2 against a live server; skipped
  unless PUSHAUTH_TEST_SERVER is set.
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


def fill_vector_store(store):
    """The fixed device keys of keys.json (device, approval, agreement)."""
    store.import_signing_key("device.device", pa.KeyPurpose.DEVICE_SIGNING, b64u(KEYS["device_signing_pkcs8"]))
    store.import_signing_key("device.approval", pa.KeyPurpose.APPROVAL_SIGNING, b64u(KEYS["device_approval_pkcs8"]))
    store.import_agreement_key("device.agreement", b64u(KEYS["device_agreement_scalar"]))
    return store


def vector_store():
    return fill_vector_store(pa.SoftwareKeyStore())


def vector_state(server_url="https://pushauth.example"):
    """The enrollment state a device holding the vector keys would have stored."""
    return pa.EnrollmentState(
        version=2,
        server_url=server_url,
        issuer=ISSUER,
        device_id=DEVICE,
        server_key_jwk=jwk(KEYS["server_signing_jwk"]),
        server_kid=KEYS["server_kid"],
        device_key_alias="device.device",
        device_key_jwk=jwk(KEYS["device_signing_jwk"]),
        approval_key_alias="device.approval",
        approval_key_jwk=jwk(KEYS["device_approval_jwk"]),
        agreement_key_alias="device.agreement",
        agreement_key_jwk=jwk(KEYS["device_agreement_jwk"]),
        pending_key=None,
    )


def run(coro):
    """Runs SDK coroutines on a fresh event loop, which is also the loop the SDK's
    calls into Python async foreign implementations (key store, transport) use."""
    loop = asyncio.new_event_loop()
    pa.uniffi_set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        pa.uniffi_set_event_loop(None)
        loop.close()


KNOWN_TXN = {"v", "provider", "ref", "kind", "amount", "currency", "payee", "merchant_country",
             "merchant_url", "purchase_date", "card_last4", "operation", "operation_ref"}


def open_enum(cls, known, name):
    """A known variant of an open enum, or Other(name) for one this SDK does not know."""
    return getattr(cls, name.upper())() if name in known else cls.OTHER(name=name)


def transaction(t):
    """The SDK record of a vector's transaction: known members as fields, the others kept."""
    other = [pa.TxnMember(name=k, value=pa.TxnMemberValue.INTEGER(value=v) if isinstance(v, int)
                          else pa.TxnMemberValue.TEXT(value=v))
             for k, v in sorted(t.items()) if k not in KNOWN_TXN]
    return pa.Transaction(
        provider=open_enum(pa.Provider, {"enfuce", "adyen", "paysafe", "treezor", "api"}, t["provider"]),
        reference=t["ref"],
        kind=open_enum(pa.TransactionKind, {"payment", "recurring", "wallet_operation"}, t["kind"]),
        amount_minor=t.get("amount"),
        currency=t.get("currency"),
        payee=t.get("payee"),
        merchant_country=t.get("merchant_country"),
        merchant_url=t.get("merchant_url"),
        purchase_date=t.get("purchase_date"),
        card_last4=t.get("card_last4"),
        operation=t.get("operation"),
        operation_ref=t.get("operation_ref"),
        other_members=other,
    )


def expectations(e):
    return pa.ProofExpectations(
        kind=e["kind"],
        min_user_verification=getattr(pa.UserVerification, e["min_user_verification"].upper()),
        device=e["device"],
        key_jwk=jwk(KEYS["device_approval_jwk" if e["key"] == "approval" else "device_signing_jwk"]),
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
        public = store.import_signing_key("k", pa.KeyPurpose.DEVICE_SIGNING, b64u(KEYS["device_signing_pkcs8"]))
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

    def test_newer_server_transactions(self):
        """Old SDK, new server: unknown members and kinds are digested and shown generically."""
        for c in load("transactions.json")["device_cases"]:
            with self.subTest(c["name"]):
                t = transaction(c["transaction"])
                self.assertTrue(t.other_members)
                self.assertEqual(pa.canonical_transaction_json(t), c["canonical"])
                self.assertEqual(pa.transaction_digest(t), c["digest"])
                fields = pa.transaction_display_fields(t)
                self.assertEqual([(f.key, f.known) for f in fields],
                                 [(f["key"], f["known"]) for f in c["display_fields"]])

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
                    self.assertEqual(view.amount_minor, claims["txn"].get("amount"))
                    self.assertEqual(view.currency, claims["txn"].get("currency"))
                    self.assertEqual(view.payee, claims["txn"].get("payee"))
                    expected = transaction(claims["txn"])
                    self.assertEqual(view.provider, expected.provider)
                    self.assertEqual(view.kind, expected.kind)
                    self.assertEqual(view.transaction, expected)
                    self.assertEqual(view.deadline, claims["exp"])
                    self.assertEqual(view.processor_input, claims.get("pin"))
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
                    preview = run(pa.decrypt_push(state, store, c["challenge"], c["envelope"]))
                    self.assertEqual(preview.summary, c["summary"])
                    self.assertEqual(preview.challenge_id, c["challenge"])
                    self.assertEqual(preview.amount_display, "EUR 49.90")
                    self.assertEqual(preview.payee, c["details"]["txn"]["payee"])
                    self.assertEqual(preview.deadline, c["details"]["exp"])
                    self.assertIsNone(preview.otp)
                else:
                    with self.assertRaises(pa.PushAuthError.InvalidPush) as ctx:
                        run(pa.decrypt_push(state, store, c["challenge"], c["envelope"]))
                    self.assertEqual(ctx.exception.reason, c["result"])

    def test_requests(self):
        device_jwk = jwk(KEYS["device_signing_jwk"])
        for c in load("requests.json")["cases"]:
            with self.subTest(c["name"]):
                got = pa.verify_request_proof_for_tests(
                    c["token"], DEVICE, device_jwk, ISSUER, c["method"], c["path"], c["body"], c["now"], 60
                )
                self.assertEqual(got, c["result"])


class PythonKeyStore(pa.KeyStore):
    """An app-side key store written in Python (a foreign implementation of the
    async trait), backed by a SoftwareKeyStore producing DER signatures like Android
    Keystore. It records every call with its purpose and prompt."""

    def __init__(self):
        self.inner = pa.SoftwareKeyStore.with_signature_format(pa.SignatureFormat.DER)
        self.calls = []

    async def create_key(self, alias, purpose):
        self.calls.append(("create_key", purpose))
        return await self.inner.create_key(alias, purpose)

    async def sign(self, alias, purpose, message, prompt):
        self.calls.append(("sign", purpose, prompt))
        return await self.inner.sign(alias, purpose, message, prompt)

    async def agree(self, alias, peer_public_key):
        self.calls.append(("agree",))
        return await self.inner.agree(alias, peer_public_key)

    async def delete_key(self, alias):
        self.calls.append(("delete_key",))
        return await self.inner.delete_key(alias)

    def signs(self, purpose):
        return [c for c in self.calls if c[0] == "sign" and c[1] == purpose]


class FailingKeyStore(PythonKeyStore):
    def __init__(self, error):
        super().__init__()
        self.error = error

    async def sign(self, alias, purpose, message, prompt):
        if purpose == pa.KeyPurpose.APPROVAL_SIGNING:
            raise self.error
        return await super().sign(alias, purpose, message, prompt)


class RecordingTransport(pa.HttpTransport):
    """An app-side HTTP transport (as URLSession / OkHttp would be) over the built-in
    client; `edit` may rewrite answers, `drop` / `lose` simulate a request that never
    left and an answer lost after the server acted."""

    def __init__(self, options=None):
        self.inner = pa.builtin_transport(options or pa.ClientOptions())
        self.requests = []
        self.drop = None
        self.lose = None
        self.edit = None

    async def send(self, request):
        self.requests.append((request.method, request.url, {h.name: h.value for h in request.headers}))
        if self.drop and self.drop(request):
            self.drop = None
            raise pa.TransportError.NoAnswer("dropped before sending")
        response = await self.inner.send(request)
        if self.lose and self.lose(request):
            self.lose = None
            raise pa.TransportError.NoAnswer("answer lost")
        if self.edit:
            response = self.edit(request, response)
        return response


def unused_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tampered(view, **changes):
    fields = {k: getattr(view, k) for k in view.__dict__}
    return pa.ChallengeView(**dict(fields, **changes))


class OfflineFlowTests(unittest.TestCase):
    challenge = case("challenges.json", "valid")
    approve_vector = case("proofs.json", "approve_with_processor_output")

    def test_enrollment_links_with_the_issuer_scheme(self):
        link = pa.parse_enrollment_link(
            "pushauth://enroll?v=1&server=https%3A%2F%2Fbank.example%2Fpushauth&code=abcd-efgh-jkmn-pqrs-tvwx",
            "pushauth",
        )
        self.assertEqual(link.server_url, "https://bank.example/pushauth")
        self.assertEqual(link.activation_code, "ABCD-EFGH-JKMN-PQRS-TVWX")
        own = "mybank-pushauth://enroll?v=1&server=https://bank.example&code=ABCDEFGHJKMNPQRSTVWX"
        self.assertEqual(pa.parse_enrollment_link(own, "mybank-pushauth").server_url, "https://bank.example")
        for bad, scheme in [
            (own, "pushauth"),
            ("pushauth://enroll?v=1&server=https://bank.example&code=ABCDEFGHJKMNPQRSTVWX", "mybank-pushauth"),
            ("pushauth://enroll?v=2&server=https://bank.example&code=ABCDEFGHJKMNPQRSTVWX", "pushauth"),
            ("pushauth://enroll?v=1&server=http://bank.example&code=ABCDEFGHJKMNPQRSTVWX", "pushauth"),
            ("pushauth://enroll?v=1&server=https://bank.example&code=TOO-SHORT", "pushauth"),
            ("https://bank.example/enroll", "pushauth"),
        ]:
            with self.subTest(bad), self.assertRaises(pa.PushAuthError.InvalidInput):
                pa.parse_enrollment_link(bad, scheme)

    def test_state_json_round_trip_v1_import_and_checks(self):
        state = vector_state()
        text = pa.enrollment_state_to_json(state)
        self.assertEqual(pa.enrollment_state_from_json(text), state)
        broken = json.loads(text)
        broken["server_kid"] = "x" * 43
        with self.assertRaises(pa.PushAuthError.InvalidInput):
            pa.enrollment_state_from_json(json.dumps(broken))
        # A state stored by SDK 1: its one signing key becomes device and approval key.
        v1 = {k: v for k, v in json.loads(text).items() if not k.startswith(("device_key", "approval_key", "pending"))}
        v1.update(version=1, signing_key_alias="old.signing", signing_key_jwk=state.device_key_jwk)
        upgraded = pa.enrollment_state_from_json(json.dumps(v1))
        self.assertEqual(upgraded.version, 2)
        self.assertEqual((upgraded.device_key_alias, upgraded.approval_key_alias), ("old.signing", "old.signing"))
        client = pa.PushAuthClient(state, vector_store())
        self.assertEqual(client.state(), state)

    def test_software_key_store_counts_and_exports(self):
        store = vector_store()
        again = pa.SoftwareKeyStore.import_state(store.export_state())
        self.assertEqual(again.aliases(), ["device.agreement", "device.approval", "device.device"])
        preview = run(pa.decrypt_push(vector_state(), again, *[case("push.json", "valid")[k] for k in ("challenge", "envelope")]))
        self.assertEqual(preview.summary, "EUR 49.90 at Example Shop")
        self.assertNotIn("MIG", repr(again))
        with self.assertRaises(pa.KeyStoreError.NotFound):
            run(again.sign("missing", pa.KeyPurpose.DEVICE_SIGNING, b"m", None))
        self.assertEqual(again.signature_count(pa.KeyPurpose.APPROVAL_SIGNING), 0)

    def sign_proof(self, store, reason=None, output=None, state=None, options=None):
        client = pa.PushAuthClient.with_options(state or vector_state(), store, options or pa.ClientOptions())
        return run(client.sign_proof_for_tests(self.challenge["token"], self.challenge["now"], reason, output))

    def test_approval_is_one_approval_key_signature_with_the_amount_in_the_prompt(self):
        store = vector_store()
        expect = dict(self.approve_vector["expect"], now=self.challenge["now"] + 2)
        token = self.sign_proof(store, output=expect["processor_output"])
        self.assertEqual(store.signature_count(pa.KeyPurpose.APPROVAL_SIGNING), 1)
        self.assertEqual(store.signature_count(pa.KeyPurpose.DEVICE_SIGNING), 0)
        self.assertEqual([p.summary for p in store.prompts()], ["Approve EUR 49.90 at Example Shop"])
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(expect)), "ok")
        swapped = dict(expect, processor_output="another-output")
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(swapped)), "processor_output_mismatch")
        header = json.loads(b64u(token.split(".")[0]))
        claims = json.loads(b64u(token.split(".")[1]))
        self.assertEqual(header["typ"], "pushauth-approval+jwt")
        self.assertEqual(claims["decision"], "approve")
        self.assertEqual(claims["txn"], self.challenge["digest"])
        self.assertEqual(claims["uv"], "biometric")

    def test_not_me_is_signed_by_the_device_key_without_a_prompt(self):
        store = fill_vector_store(PythonKeyStore().inner)
        app_store = PythonKeyStore()
        app_store.inner = store
        token = self.sign_proof(app_store, reason=pa.DenyReason.NOT_ME)
        self.assertEqual(app_store.calls, [("sign", pa.KeyPurpose.DEVICE_SIGNING, None)])
        expect = dict(case("proofs.json", "deny_not_me")["expect"], now=self.challenge["now"] + 2)
        self.assertEqual(pa.verify_approval_proof_for_tests(token, expectations(expect)), "ok")
        header = json.loads(b64u(token.split(".")[0]))
        claims = json.loads(b64u(token.split(".")[1]))
        self.assertEqual(header["typ"], "pushauth-decline+jwt")
        self.assertEqual((claims["decision"], claims["reason"]), ("deny", "not_me"))
        self.assertEqual(claims["uv"], "none", "no user verification happened: the proof says so")
        # An issuer whose server requires the approval key for declines.
        strict = vector_store()
        self.sign_proof(strict, reason=pa.DenyReason.DECLINED,
                        options=pa.ClientOptions(decline_requires_approval_key=True))
        self.assertEqual(strict.signature_count(pa.KeyPurpose.APPROVAL_SIGNING), 1)
        self.assertEqual(strict.prompts()[0].summary, "Decline EUR 49.90 at Example Shop")

    def test_key_store_errors_reach_the_app(self):
        invalidated = vector_store()
        invalidated.invalidate_key("device.approval")
        with self.assertRaises(pa.PushAuthError.KeyInvalidated) as ctx:
            self.sign_proof(invalidated)
        self.assertEqual(ctx.exception.purpose, pa.KeyPurpose.APPROVAL_SIGNING)
        # Declining still works with an invalidated approval key.
        self.sign_proof(invalidated, reason=pa.DenyReason.DECLINED)
        for error, expected in [
            (pa.KeyStoreError.UserCancelled(), pa.PushAuthError.UserCancelled),
            (pa.KeyStoreError.AuthenticationFailed(), pa.PushAuthError.AuthenticationFailed),
            (pa.KeyStoreError.Unavailable("locked"), pa.PushAuthError.KeyStoreUnavailable),
        ]:
            store = FailingKeyStore(error)
            fill_vector_store(store.inner)
            with self.subTest(expected.__name__), self.assertRaises(expected):
                self.sign_proof(store)
        # A key store whose alias now names another key: refused before sending.
        replaced = pa.SoftwareKeyStore()
        run(replaced.create_key("device.approval", pa.KeyPurpose.APPROVAL_SIGNING))
        with self.assertRaises(pa.PushAuthError.KeyInvalidated):
            self.sign_proof(replaced)

    def test_forged_challenge_is_never_signed(self):
        forged = case("challenges.json", "signed_by_other_key")
        store = vector_store()
        client = pa.PushAuthClient(vector_state(), store)
        with self.assertRaises(pa.PushAuthError.InvalidChallenge) as ctx:
            run(client.sign_proof_for_tests(forged["token"], forged["now"], None, None))
        self.assertEqual(ctx.exception.reason, "wrong_key_id")
        self.assertEqual(store.prompts(), [])

    def test_push_messages_parse(self):
        valid = case("push.json", "valid")
        store, state = vector_store(), vector_state()
        msg = run(pa.parse_push({"cid": valid["challenge"], "kind": "challenge", "enc": valid["envelope"]}, state, store))
        self.assertIsInstance(msg, pa.PushMessage.CHALLENGE)
        self.assertEqual(msg.challenge_id, valid["challenge"])
        self.assertEqual(msg.preview.summary, "EUR 49.90 at Example Shop")
        # Without keys (or with a broken envelope): the id, no preview.
        bare = run(pa.parse_push({"cid": valid["challenge"], "kind": "challenge", "enc": "AAAA"}, state, store))
        self.assertIsNone(bare.preview)
        dismiss = run(pa.parse_push({"cid": valid["challenge"], "kind": "dismiss"}, None, None))
        self.assertEqual(dismiss, pa.PushMessage.DISMISS(challenge_id=valid["challenge"]))
        for data in [{}, {"cid": "x"}, {"cid": valid["challenge"], "kind": "future-kind"}, {"aps": "{}"}]:
            with self.subTest(data):
                self.assertTrue(run(pa.parse_push(data, None, None)).is_UNKNOWN())
        self.assertEqual(store.signature_count(pa.KeyPurpose.DEVICE_SIGNING), 0)

    def test_web_push(self):
        # RFC 8291, Appendix A: the user agent's keys and the message it receives.
        rfc = pa.WebPushKeys(
            p256dh="BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            auth="BTBZMqHH6r4Tts7J_aSIgg",
            private_key="q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
        )
        message = base64.urlsafe_b64decode(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN" + "=" * 2)
        self.assertEqual(pa.decrypt_web_push(rfc, message), b"When I grow up, I want to be a watermelon")
        # The app's own subscription keys, the push token, and a challenge push through it.
        keys = pa.generate_web_push_keys()
        token = pa.web_push_token("https://ntfy.example.org/upAbC?up=1", keys.p256dh, keys.auth)
        self.assertEqual(json.loads(token), {"endpoint": "https://ntfy.example.org/upAbC?up=1",
                                             "keys": {"p256dh": keys.p256dh, "auth": keys.auth}})
        valid = case("push.json", "valid")
        data = json.dumps({"cid": valid["challenge"], "kind": "challenge", "enc": valid["envelope"]}).encode()
        body = pa.encrypt_web_push_for_tests(token, data)
        self.assertNotIn(valid["challenge"].encode(), body)
        store, state = vector_store(), vector_state()
        msg = run(pa.parse_web_push(body, keys, state, store))
        self.assertIsInstance(msg, pa.PushMessage.CHALLENGE)
        self.assertEqual(msg.preview.summary, "EUR 49.90 at Example Shop")
        # A distributor that decrypted already (UnifiedPush connector 3): no keys.
        self.assertEqual(run(pa.parse_web_push(data, None, state, store)), msg)
        dismiss = json.dumps({"cid": valid["challenge"], "kind": "dismiss", "later": 1}).encode()
        self.assertEqual(run(pa.parse_web_push(dismiss, None, None, None)),
                         pa.PushMessage.DISMISS(challenge_id=valid["challenge"]))
        # Other keys, garbage, not JSON: not ours.
        other = pa.generate_web_push_keys()
        for raw, k in [(body, other), (b"\x00" * 10, keys), (b"not json", None), (b"[1]", None)]:
            with self.subTest(raw=raw[:8]):
                self.assertTrue(run(pa.parse_web_push(raw, k, None, None)).is_UNKNOWN())
        with self.assertRaises(pa.PushAuthError.InvalidPush):
            pa.decrypt_web_push(other, body)
        with self.assertRaises(pa.PushAuthError.InvalidInput):
            pa.web_push_token("not a url", keys.p256dh, keys.auth)

    def test_approve_reverifies_the_view_and_never_signs_a_stale_one(self):
        store = vector_store()
        client = pa.PushAuthClient(vector_state(), store)
        view = pa.verify_server_challenge(
            self.challenge["token"], jwk(KEYS["server_signing_jwk"]), ISSUER, DEVICE, self.challenge["now"]
        )
        self.assertEqual(view.token, self.challenge["token"])
        self.assertEqual(view.summary, "EUR 49.90 at Example Shop")
        # Its deadline passed by the wall clock: refused without any prompt.
        with self.assertRaises(pa.PushAuthError.ChallengeExpired):
            run(client.approve(view, None))
        self.assertEqual(store.prompts(), [])

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

    def test_network_errors_and_the_app_transport(self):
        port = unused_loopback_port()
        transport = RecordingTransport(pa.ClientOptions(timeout_secs=5))
        client = pa.PushAuthClient.with_transport(
            vector_state(f"http://127.0.0.1:{port}"), vector_store(), pa.ClientOptions(), transport
        )

        async def calls():
            with self.assertRaises(pa.PushAuthError.Network):
                await client.pending_challenges()
            with self.assertRaises(pa.PushAuthError.InvalidInput):
                await client.challenge("not-a-uuid")

        run(calls())
        method, url, headers = transport.requests[0]
        self.assertEqual((method, url), ("GET", f"http://127.0.0.1:{port}/v1/device/challenges"))
        self.assertTrue(headers["Authorization"].startswith("PushAuth "))
        request = pa.EnrollRequest(activation="ABCDEFGHJKMNPQRSTVWX", server_url=f"http://127.0.0.1:{port}",
                                   platform=pa.Platform.OTHER)
        store = PythonKeyStore()
        with self.assertRaises(pa.PushAuthError.Network):
            run(pa.enroll(request, store))
        # The keys made for the failed enrollment are deleted again.
        self.assertEqual(store.inner.aliases(), [])
        self.assertIn(("delete_key",), store.calls)
        with self.assertRaises(pa.PushAuthError.InvalidInput):
            pa.PushAuthClient(vector_state("http://bank.example"), vector_store())


from server_flow import ServerFlowTests  # noqa: E402,F401  (live server, skipped without one)


if __name__ == "__main__":
    unittest.main()
