// The SDK from Kotlin against a running pushauth server (protocol v2), the flows of the
// Python server_flow.py: two-key enrollment; listing and fetching without the approval
// key; one approval-key signature per approval, from the view; deny without it;
// rotation of each key interrupted at each step, then completed; a newer server's
// answers; migration grant and its refusals. The test plays the issuer's backend
// through the admin API (java.net.http); SDK calls are `suspend` functions run under
// runBlocking. tests/with-server.sh starts a server and sets:
//
//   PUSHAUTH_TEST_SERVER     its base URL (http://127.0.0.1:PORT)
//   PUSHAUTH_TEST_ADMIN_KEY  an admin API key of that server
//
// Without them the test is skipped with the reason printed.

package pushauth.tests

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import kotlinx.coroutines.runBlocking
import uniffi.pushauth.*

/** The issuer backend's side: the admin API with a bearer key. */
class Admin(private val server: String, private val key: String) {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    fun call(method: String, path: String, body: Map<String, Any?>? = null): Any? {
        val publisher = if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(toJson(body))
        val request = HttpRequest.newBuilder(URI.create(server + path))
            .timeout(Duration.ofSeconds(10))
            .header("Authorization", "Bearer $key")
            .apply { if (body != null) header("Content-Type", "application/json") }
            .method(method, publisher)
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$method $path: HTTP ${response.statusCode()} ${response.body()}" }
        return if (response.body().isBlank()) null else Json.parse(response.body())
    }

    fun newChallenge(cardholder: String, reference: String): String = call(
        "POST", "/v1/admin/challenges",
        mapOf(
            "cardholder_id" to cardholder, "reference" to reference,
            "amount" to mapOf("minor" to 4990, "currency" to "EUR"), "payee" to "Example Shop", "ttl_secs" to 120,
        ),
    ).obj()["challenge"].obj().str("id")
}

class Device(val store: SoftwareKeyStore, val client: PushAuthClient, val transport: RecordingTransport) {
    val approvals get() = store.signatureCount(KeyPurpose.APPROVAL_SIGNING)
}

suspend fun enrollDevice(link: String, transport: RecordingTransport = RecordingTransport()): Device {
    val store = SoftwareKeyStore()
    val request = EnrollRequest(activation = link, serverUrl = null, platform = Platform.ANDROID, label = "kotlin binding test")
    val state = enrollWithTransport(request, store, transport)
    return Device(store, PushAuthClient.withTransport(state, store, ClientOptions(), transport), transport)
}

/** What the app does after being killed: read the stored JSON, make a new client. */
fun reopen(d: Device): Device {
    val state = enrollmentStateFromJson(enrollmentStateToJson(d.client.state()))
    val transport = RecordingTransport()
    return Device(d.store, PushAuthClient.withTransport(state, d.store, ClientOptions(), transport), transport)
}

fun serverFlowTests(r: Runner) {
    val server = System.getenv("PUSHAUTH_TEST_SERVER")
    val adminKey = System.getenv("PUSHAUTH_TEST_ADMIN_KEY")
    val names = listOf("server: two keys, approve from view, deny", "server: rotation interrupted", "server: newer server answers", "server: migration")
    if (server.isNullOrEmpty() || adminKey.isNullOrEmpty()) {
        names.forEach { r.skip(it, "PUSHAUTH_TEST_SERVER / PUSHAUTH_TEST_ADMIN_KEY not set (run under tests/with-server.sh)") }
        return
    }
    val admin = Admin(server.trimEnd('/'), adminKey)
    val suffix = System.nanoTime().toString()
    fun cardholder() = admin.call("POST", "/v1/admin/cardholders", mapOf("label" to "kotlin sdk test")).obj().str("id")
    fun link(cardholder: String) = admin.call("POST", "/v1/admin/cardholders/$cardholder/activation-codes").obj().str("deeplink")
    val A = KeyPurpose.APPROVAL_SIGNING
    val D = KeyPurpose.DEVICE_SIGNING

    r.test(names[0]) {
        val holder = cardholder()
        runBlocking {
            val d = enrollDevice(link(holder))
            val state = d.client.state()
            check(state.deviceKeyJwk != state.approvalKeyJwk) { "two distinct keys" }
            eq(d.store.signatureCount(D) to d.approvals, 1uL to 1uL, "enrollment signatures (device, approval)")
            val first = admin.newChallenge(holder, "kt-approve-$suffix")
            eq(d.client.pendingChallenges().map { it.id }, listOf(first), "pending ids")
            val view = d.client.challenge(first)
            eq(view.amountDisplay, "EUR 49.90", "amountDisplay")
            eq(d.approvals, 1uL, "no approval-key use for listing and fetching")
            throws<PushAuthException.InvalidInput> { d.client.approve(view.copy(payee = "Another Shop"), null) }
            eq(d.approvals, 1uL, "an altered view is never signed")
            eq(d.client.approve(view, null), DecisionOutcome.Approved, "approve")
            eq(d.approvals, 2uL, "exactly one approval-key signature per approval")
            eq(d.store.prompts().last().summary, "Approve EUR 49.90 at Example Shop", "prompt")
            // answering again is the user approving again: one more prompt, then 409
            throws<PushAuthException.AlreadyAnswered> { d.client.approve(view, null) }
            eq(d.approvals, 3uL, "a repeated approval is signed (and refused by the server)")
            val second = admin.newChallenge(holder, "kt-deny-$suffix")
            eq(d.client.deny(d.client.challenge(second), DenyReason.NOT_ME), DecisionOutcome.Denied, "deny")
            d.client.updatePushToken("fcm-$suffix", null)
            eq(d.approvals, 3uL, "deny and push token without the approval key")
            val two = admin.call("GET", "/v1/admin/challenges/$second").obj()
            eq(two["decision"].obj()["reason"], "not_me", "deny reason")
        }
    }

    r.test(names[1]) {
        for (purpose in listOf(D, A)) for (step in listOf("after_prepare", "before_request", "lost_response")) {
            val holder = cardholder()
            runBlocking {
                val d = enrollDevice(link(holder))
                val old = d.client.state().let { if (purpose == D) it.deviceKeyAlias else it.approvalKeyAlias }
                val prepared = d.client.prepareKeyRotation(purpose)
                if (step != "after_prepare") {
                    val isRotation = { q: uniffi.pushauth.HttpRequest -> q.url.endsWith("/v1/device/key") }
                    if (step == "before_request") d.transport.drop = isRotation else d.transport.lose = isRotation
                    throws<PushAuthException.Network> { d.client.completeKeyRotation() }
                    eq(d.client.state().pendingKey, prepared.pendingKey, "$purpose $step: still pending")
                }
                val again = reopen(d)
                val done = again.client.completeKeyRotation()
                eq(done.pendingKey, null, "$purpose $step: completed")
                eq(if (purpose == D) done.deviceKeyAlias else done.approvalKeyAlias, prepared.pendingKey!!.alias, "$purpose $step: new key")
                check(old !in d.store.aliases()) { "$purpose $step: old key deleted" }
                val cid = admin.newChallenge(holder, "kt-rot-$purpose-$step-$suffix")
                val before = again.approvals
                eq(again.client.approve(again.client.challenge(cid), null), DecisionOutcome.Approved, "$purpose $step: still enrolled")
                eq(again.approvals, before + 1uL, "$purpose $step: one approval signature")
            }
        }
    }

    r.test(names[2]) {
        val holder = cardholder()
        runBlocking {
            val transport = RecordingTransport()
            transport.edit = { q, a ->
                if (a.status.toInt() !in 200..299 || a.body.isEmpty()) a else {
                    val body = Json.parse(String(a.body)).obj().toMutableMap()
                    body["added_later"] = mapOf("nested" to listOf(1, 2))
                    if (q.url.endsWith("/decision")) body["status"] = "approved_pending_review"
                    a.copy(body = toJson(body).toByteArray())
                }
            }
            val d = enrollDevice(link(holder), transport)
            admin.newChallenge(holder, "kt-future-$suffix")
            val view = d.client.pendingChallenges().single()
            eq(d.client.approve(view, null), DecisionOutcome.Other("approved_pending_review"), "unknown status shown generically")
        }
    }

    r.test(names[3]) {
        val holder = cardholder()
        runBlocking {
            val old = enrollDevice(link(holder))
            val code = old.client.createMigrationCode(300u)
            eq(old.approvals, 2uL, "the grant costs one approval-key signature")
            val new = enrollDevice(code.deeplink)
            val cid = admin.newChallenge(holder, "kt-migrated-$suffix")
            eq(new.client.approve(new.client.challenge(cid), null), DecisionOutcome.Approved, "new phone approves")
            old.client.pendingChallenges() // the old phone stays enrolled
            val now = System.currentTimeMillis() / 1000
            val reasons = mutableListOf<String>()
            val expired = old.client.signMigrationGrantForTests(now - 1200, 600)
            reasons += throws<PushAuthException.Refused> { old.client.submitMigrationGrantForTests(expired) }.reason
            val grant = old.client.signMigrationGrantForTests(now, 300)
            old.client.submitMigrationGrantForTests(grant)
            reasons += throws<PushAuthException.Refused> { old.client.submitMigrationGrantForTests(grant) }.reason
            val other = old.client.signMigrationGrantForTests(now, 300)
            reasons += throws<PushAuthException.Refused> { new.client.submitMigrationGrantForTests(other) }.reason
            eq(reasons.toSet().size, 3, "a reason per refusal: $reasons")
        }
    }
}
