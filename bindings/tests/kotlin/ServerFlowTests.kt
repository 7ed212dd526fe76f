// The SDK from Kotlin against a running pushauth server: enroll -> pending -> challenge
// -> approve, and deny not_me, the flow of the Python ServerFlowTests. The test plays
// the issuer's backend through the admin API (java.net.http); the SDK calls are
// `suspend` functions run under runBlocking. tests/with-server.sh starts a server and sets:
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

fun serverFlowTests(r: Runner) {
    val name = "server flow: enroll, pending, challenge, approve; deny not_me (Kotlin key store)"
    val server = System.getenv("PUSHAUTH_TEST_SERVER")
    val adminKey = System.getenv("PUSHAUTH_TEST_ADMIN_KEY")
    if (server.isNullOrEmpty() || adminKey.isNullOrEmpty()) {
        r.skip(name, "PUSHAUTH_TEST_SERVER / PUSHAUTH_TEST_ADMIN_KEY not set (run under tests/with-server.sh)")
        return
    }
    r.test(name) {
        val admin = Admin(server.trimEnd('/'), adminKey)
        val cardholder = admin.call("POST", "/v1/admin/cardholders", mapOf("label" to "kotlin sdk test")).obj().str("id")
        val link = admin.call("POST", "/v1/admin/cardholders/$cardholder/activation-codes").obj().str("deeplink")
        // A key store written in Kotlin (DER signatures, as Android Keystore returns them).
        val store = CountingKeyStore()
        val options = ClientOptions(userVerification = UserVerification.BIOMETRIC)
        val suffix = System.nanoTime().toString()

        val (first, second) = runBlocking {
            val request = EnrollRequest(
                activation = link, serverUrl = null, platform = Platform.OTHER,
                label = "kotlin binding test", options = options,
            )
            val state = enroll(request, store)
            eq(state.serverUrl.trimEnd('/'), server.trimEnd('/'), "state.serverUrl")
            eq(enrollmentStateFromJson(enrollmentStateToJson(state)), state, "state JSON round trip")
            PushAuthClient.withOptions(state, store, options).use { client ->
                val first = admin.newChallenge(cardholder, "kt-approve-$suffix")
                eq(client.pendingChallenges().map { it.id }, listOf(first), "pending ids")
                val view = client.challenge(first)
                eq(view.amountDisplay, "EUR 49.90", "amountDisplay")
                eq(view.payee, "Example Shop", "payee")
                eq(view.provider, Provider.API, "provider")
                eq(client.approve(first, null), DecisionOutcome.APPROVED, "approve")
                throws<PushAuthException.AlreadyAnswered> { client.approve(first, null) }

                val second = admin.newChallenge(cardholder, "kt-deny-$suffix")
                client.challenge(second)
                eq(client.deny(second, DenyReason.NOT_ME), DecisionOutcome.DENIED, "deny")
                eq(client.pendingChallenges(), emptyList<ChallengeView>(), "nothing pending after both answers")
                first to second
            }
        }
        for (call in listOf("createSigningKey", "createAgreementKey", "sign")) {
            check(call in store.calls) { "the Kotlin key store was never asked to $call" }
        }
        val one = admin.call("GET", "/v1/admin/challenges/$first").obj()
        eq(one["challenge"].obj()["status"], "approved", "first status")
        eq(one["decision"].obj()["user_verification"], "biometric", "user_verification")
        val two = admin.call("GET", "/v1/admin/challenges/$second").obj()
        eq(two["challenge"].obj()["status"], "denied", "second status")
        eq(two["decision"].obj()["reason"], "not_me", "deny reason")
    }
}
