"""The SDK against a running pushauth server (protocol v2). The test plays the
issuer's backend through the admin API. tests/with-server.sh starts a server and
sets PUSHAUTH_TEST_SERVER (its base URL) and PUSHAUTH_TEST_ADMIN_KEY.

Covered: two-key enrollment; listing and fetching with no approval-key use; exactly
one approval-key signature per approval, from the view; deny without the approval
key; rotation of each key interrupted at each step then completed; new-server
answers with extra fields and an unknown status; migration grant happy path and
refusals (expired, reused, wrong device).
"""

import json
import os
import time
import unittest
import urllib.request

import pushauth as pa
from test_pushauth import RecordingTransport, run

D, A = pa.KeyPurpose.DEVICE_SIGNING, pa.KeyPurpose.APPROVAL_SIGNING


@unittest.skipUnless(os.environ.get("PUSHAUTH_TEST_SERVER"), "PUSHAUTH_TEST_SERVER not set: no live server flow")
class ServerFlowTests(unittest.TestCase):
    def setUp(self):
        self.server = os.environ["PUSHAUTH_TEST_SERVER"].rstrip("/")
        self.admin_key = os.environ.get("PUSHAUTH_TEST_ADMIN_KEY")
        if not self.admin_key:
            self.skipTest("PUSHAUTH_TEST_ADMIN_KEY not set")
        self.suffix = str(time.time_ns())

    # ---- the issuer backend's side

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.admin_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def cardholder(self):
        return self.admin("POST", "/v1/admin/cardholders", {"label": "python sdk test"})["id"]

    def activation_link(self, cardholder):
        return self.admin("POST", "/v1/admin/cardholders/%s/activation-codes" % cardholder)["deeplink"]

    def new_challenge(self, cardholder, tag):
        return self.admin("POST", "/v1/admin/challenges", {
            "cardholder_id": cardholder, "reference": "py-%s-%s" % (tag, self.suffix),
            "amount": {"minor": 4990, "currency": "EUR"}, "payee": "Example Shop", "ttl_secs": 120,
        })["challenge"]["id"]

    # ---- the device's side

    async def enrolled(self, link=None, cardholder=None, transport=None):
        """Enrolls a fresh device; returns (cardholder, store, state, client, transport)."""
        cardholder = cardholder or self.cardholder()
        store = pa.SoftwareKeyStore()
        transport = transport or RecordingTransport()
        request = pa.EnrollRequest(activation=link or self.activation_link(cardholder), server_url=None,
                                   platform=pa.Platform.OTHER, label="python binding test")
        state = await pa.enroll_with_transport(request, store, transport)
        client = pa.PushAuthClient.with_transport(state, store, pa.ClientOptions(), transport)
        return cardholder, store, state, client, transport

    def reopen(self, state, store, transport=None):
        """What the app does after a restart: the stored JSON, a new client."""
        state = pa.enrollment_state_from_json(pa.enrollment_state_to_json(state))
        return pa.PushAuthClient.with_transport(state, store, pa.ClientOptions(), transport or RecordingTransport())

    # ---- tests

    def test_two_key_enrollment_listing_approve_from_view_and_deny(self):
        async def flow():
            cardholder, store, state, client, _ = await self.enrolled()
            # Enrollment: one device-key signature (the request proof) and one
            # approval-key signature (its statement, one prompt).
            self.assertNotEqual(state.device_key_jwk, state.approval_key_jwk)
            self.assertEqual((store.signature_count(D), store.signature_count(A)), (1, 1))
            first = self.new_challenge(cardholder, "approve")
            pending = await client.pending_challenges()
            self.assertEqual([c.id for c in pending], [first])
            view = await client.challenge(first)
            self.assertEqual((view.amount_display, view.payee), ("EUR 49.90", "Example Shop"))
            # Listing and fetching used the device key only.
            self.assertEqual(store.signature_count(A), 1)
            # A view whose shown amount was altered is refused, with no prompt.
            altered = pa.ChallengeView(**dict(view.__dict__, amount_display="EUR 0.01"))
            with self.assertRaises(pa.PushAuthError.InvalidInput):
                await client.approve(altered, None)
            self.assertEqual(store.signature_count(A), 1)
            self.assertEqual(await client.approve(view, None), pa.DecisionOutcome.APPROVED())
            self.assertEqual(store.signature_count(A), 2)
            self.assertEqual(store.prompts()[-1].summary, "Approve EUR 49.90 at Example Shop")
            with self.assertRaises(pa.PushAuthError.AlreadyAnswered):
                await client.approve(view, None)
            second = self.new_challenge(cardholder, "deny")
            (view2,) = await client.pending_challenges()
            approvals = store.signature_count(A)
            self.assertEqual(await client.deny(view2, pa.DenyReason.NOT_ME), pa.DecisionOutcome.DENIED())
            self.assertEqual(store.signature_count(A), approvals)
            third = self.new_challenge(cardholder, "deny-id")
            self.assertEqual(await client.deny_by_id(third, pa.DenyReason.DECLINED), pa.DecisionOutcome.DENIED())
            self.assertEqual(store.signature_count(A), approvals)
            await client.update_push_token("fcm-token-" + self.suffix, None)
            self.assertEqual(store.signature_count(A), approvals)
            return first, second

        first, second = run(flow())
        one = self.admin("GET", "/v1/admin/challenges/" + first)
        self.assertEqual(one["challenge"]["status"], "approved")
        self.assertEqual(one["decision"]["user_verification"], "biometric")
        two = self.admin("GET", "/v1/admin/challenges/" + second)
        self.assertEqual(two["decision"]["reason"], "not_me")

    def check_still_enrolled(self, client, store, cardholder, tag):
        async def check():
            cid = self.new_challenge(cardholder, tag)
            view = await client.challenge(cid)
            before = store.signature_count(A)
            self.assertEqual(await client.approve(view, None), pa.DecisionOutcome.APPROVED())
            self.assertEqual(store.signature_count(A), before + 1)
        run(check())

    def rotation_interrupted(self, purpose, step):
        """Rotates the key of `purpose`, abandoning the flow at `step`, then completes
        it from the persisted state with a new client."""
        async def flow():
            cardholder, store, state, client, transport = await self.enrolled()
            old = state.device_key_alias if purpose == D else state.approval_key_alias
            prepared = await client.prepare_key_rotation(purpose)
            self.assertEqual(prepared.pending_key.purpose, purpose)
            if step == "after_prepare":
                pass  # the app is killed right after persisting the prepared state
            else:
                is_rotation = lambda r: r.url.endswith("/v1/device/key")
                if step == "before_request":
                    transport.drop = is_rotation
                else:  # "lost_response": the server swapped, the answer never came
                    transport.lose = is_rotation
                with self.assertRaises(pa.PushAuthError.Network):
                    await client.complete_key_rotation()
                # Still pending, in the state the app persists.
                self.assertEqual(client.state().pending_key, prepared.pending_key)
            again = self.reopen(client.state(), store)
            done = await again.complete_key_rotation()
            self.assertIsNone(done.pending_key)
            new = done.device_key_alias if purpose == D else done.approval_key_alias
            self.assertEqual(new, prepared.pending_key.alias)
            self.assertNotIn(old, store.aliases())
            # Completing again is a no-op.
            self.assertEqual(await again.complete_key_rotation(), done)
            return cardholder, again, store
        return run(flow())

    def test_rotation_interrupted_at_each_step_then_completed(self):
        for purpose in (D, A):
            for step in ("after_prepare", "before_request", "lost_response"):
                with self.subTest(purpose=purpose, step=step):
                    cardholder, client, store = self.rotation_interrupted(purpose, step)
                    # Still enrolled: fetching (device key) and approving (approval
                    # key, one signature) work with the rotated keys.
                    self.check_still_enrolled(client, store, cardholder, "%s-%s" % (purpose.name, step))

    def test_old_sdk_reads_new_server_answers(self):
        """A newer server adds members to every answer and new status values: this
        SDK ignores the members and shows the status generically."""
        def edit(request, response):
            if not (200 <= response.status < 300) or not response.body:
                return response
            body = json.loads(response.body)
            body["added_in_a_later_version"] = {"nested": [1, 2, 3]}
            for item in body.get("challenges", []):
                item["priority"] = "high"
            if request.url.endswith("/decision"):
                body["status"] = "approved_pending_review"
            return pa.HttpResponse(status=response.status, headers=response.headers,
                                   body=json.dumps(body).encode())

        async def flow():
            transport = RecordingTransport()
            transport.edit = edit
            cardholder, store, state, client, _ = await self.enrolled(transport=transport)
            cid = self.new_challenge(cardholder, "future")
            (view,) = await client.pending_challenges()
            self.assertEqual(view.id, cid)
            outcome = await client.approve(view, None)
            self.assertEqual(outcome, pa.DecisionOutcome.OTHER(status="approved_pending_review"))
        run(flow())

    def test_migration_grant_and_its_refusals(self):
        async def flow():
            cardholder, store, state, client, _ = await self.enrolled()
            before = store.signature_count(A)
            code = await client.create_migration_code(300)
            self.assertEqual(store.signature_count(A), before + 1)
            self.assertGreater(code.expires_at, int(time.time()))
            # The new phone enrolls with the deeplink, for the same cardholder.
            _, store2, state2, client2, _ = await self.enrolled(link=code.deeplink, cardholder=cardholder)
            self.assertNotEqual(state2.device_id, state.device_id)
            cid = self.new_challenge(cardholder, "migrated")
            view = await client2.challenge(cid)
            self.assertEqual(await client2.approve(view, None), pa.DecisionOutcome.APPROVED())
            # The old device is still enrolled.
            await client.pending_challenges()

            now = int(time.time())
            expired = await client.sign_migration_grant_for_tests(now - 1200, 600)
            with self.assertRaises(pa.PushAuthError.Refused) as ctx:
                await client.submit_migration_grant_for_tests(expired)
            reasons = [ctx.exception.reason]
            grant = await client.sign_migration_grant_for_tests(now, 300)
            await client.submit_migration_grant_for_tests(grant)
            with self.assertRaises(pa.PushAuthError.Refused) as ctx:
                await client.submit_migration_grant_for_tests(grant)
            reasons.append(ctx.exception.reason)
            other = await client.sign_migration_grant_for_tests(now, 300)
            with self.assertRaises(pa.PushAuthError.Refused) as ctx:
                await client2.submit_migration_grant_for_tests(other)
            reasons.append(ctx.exception.reason)
            return reasons

        reasons = run(flow())
        # Each refusal has its own reason.
        self.assertEqual(len(set(reasons)), 3, reasons)
