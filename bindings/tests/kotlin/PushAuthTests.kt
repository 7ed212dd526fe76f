// Binding tests of the pushauth SDK from Kotlin on the JVM (JNA + kotlinx-coroutines).
// Run with bindings/scripts/test-kotlin.sh. The last line printed is
// "N passed, N failed" (then ", N skipped" when the server flow had no server); the
// exit status is non-zero on any failure.

package pushauth.tests

import java.io.File
import java.net.ServerSocket
import java.util.Base64
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking
import uniffi.pushauth.*

// ---------------------------------------------------------------- tiny harness

class AssertionFailed(message: String) : Exception(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionFailed(message())
}

fun <T> eq(actual: T, expected: T, what: String = "value") =
    check(actual == expected) { "$what: expected <$expected>, got <$actual>" }

inline fun <reified E : Throwable> throws(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionFailed("expected ${E::class.simpleName}, got ${e::class.qualifiedName}: ${e.message}")
    }
    throw AssertionFailed("expected ${E::class.simpleName}, nothing was thrown")
}

class Runner {
    var passed = 0
    var failed = 0
    var skipped = 0

    fun skip(name: String, reason: String) {
        skipped++
        println("SKIP $name: $reason")
    }

    fun test(name: String, body: () -> Unit) {
        val started = System.nanoTime()
        try {
            body()
            passed++
            println("PASS $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: ${e::class.simpleName}: ${e.message}")
        }
    }
}

// ---------------------------------------------------------------- fixtures

val vectors = File(System.getProperty("pushauth.vectors") ?: "core/tests/vectors")

fun load(name: String): Map<String, Any?> = Json.parse(File(vectors, name).readText()).obj()

fun cases(name: String, key: String = "cases"): List<Map<String, Any?>> = load(name)[key].list().map { it.obj() }

fun case(file: String, name: String) = cases(file).first { it["name"] == name }

fun b64u(text: String): ByteArray = Base64.getUrlDecoder().decode(text)

val keys = load("keys.json")
val issuer = load("challenges.json").str("issuer")
val device = keys.str("device_id")

/** A JWK as the SDK writes it. */
fun jwk(key: String): String = publicKeyJwk(toJson(keys[key]).toByteArray())

/** The fixed keys of keys.json (device, approval, agreement). */
fun <T : SoftwareKeyStore> T.withVectorKeys(): T = apply {
    importSigningKey("device.device", KeyPurpose.DEVICE_SIGNING, b64u(keys.str("device_signing_pkcs8")))
    importSigningKey("device.approval", KeyPurpose.APPROVAL_SIGNING, b64u(keys.str("device_approval_pkcs8")))
    importAgreementKey("device.agreement", b64u(keys.str("device_agreement_scalar")))
}

fun vectorStore(): SoftwareKeyStore = SoftwareKeyStore().withVectorKeys()

fun vectorState(serverUrl: String = "https://pushauth.example") = EnrollmentState(
    version = 2u,
    serverUrl = serverUrl,
    issuer = issuer,
    deviceId = device,
    serverKeyJwk = jwk("server_signing_jwk"),
    serverKid = keys.str("server_kid"),
    deviceKeyAlias = "device.device",
    deviceKeyJwk = jwk("device_signing_jwk"),
    approvalKeyAlias = "device.approval",
    approvalKeyJwk = jwk("device_approval_jwk"),
    agreementKeyAlias = "device.agreement",
    agreementKeyJwk = jwk("device_agreement_jwk"),
    pendingKey = null,
)

fun provider(name: String): Provider = when (name) {
    "enfuce" -> Provider.Enfuce
    "adyen" -> Provider.Adyen
    "paysafe" -> Provider.Paysafe
    "treezor" -> Provider.Treezor
    "api" -> Provider.Api
    else -> Provider.Other(name)
}

fun kind(name: String): TransactionKind = when (name) {
    "payment" -> TransactionKind.Payment
    "recurring" -> TransactionKind.Recurring
    "wallet_operation" -> TransactionKind.WalletOperation
    else -> TransactionKind.Other(name)
}

val knownTxn = setOf(
    "v", "provider", "ref", "kind", "amount", "currency", "payee", "merchant_country",
    "merchant_url", "purchase_date", "card_last4", "operation", "operation_ref",
)

/** The SDK record of a vector's transaction: known members as fields, the others kept. */
fun transaction(t: Map<String, Any?>) = Transaction(
    provider = provider(t.str("provider")),
    reference = t.str("ref"),
    kind = kind(t.str("kind")),
    amountMinor = t["amount"] as Long?,
    currency = t["currency"] as String?,
    payee = t["payee"] as String?,
    merchantCountry = t["merchant_country"] as String?,
    merchantUrl = t["merchant_url"] as String?,
    purchaseDate = t["purchase_date"] as String?,
    cardLast4 = t["card_last4"] as String?,
    operation = t["operation"] as String?,
    operationRef = t["operation_ref"] as String?,
    otherMembers = t.keys.filter { it !in knownTxn }.sorted().map { k ->
        val v = t[k]
        TxnMember(k, if (v is Long) TxnMemberValue.Integer(v) else TxnMemberValue.Text(v as String))
    },
)

fun expectations(e: Map<String, Any?>, now: Long = e.long("now")) = ProofExpectations(
    kind = e.str("kind"),
    minUserVerification = UserVerification.valueOf(e.str("min_user_verification").uppercase()),
    device = e.str("device"),
    keyJwk = jwk(if (e.str("key") == "approval") "device_approval_jwk" else "device_signing_jwk"),
    audience = e.str("audience"),
    challenge = e.str("challenge"),
    nonce = e.str("nonce"),
    txn = e.str("txn"),
    deadline = e.long("deadline"),
    processorOutput = e["processor_output"] as String?,
    now = now,
    skewSecs = e.long("skew_secs"),
)

fun claimsOf(token: String): Map<String, Any?> = Json.parse(String(b64u(token.split(".")[1]))).obj()

/** An app-side key store written in Kotlin (a foreign implementation of the
 *  suspend trait), backed by a software store that returns DER signatures, as
 *  Android Keystore does. It records each call with its purpose and prompt. */
open class RecordingKeyStore : KeyStore {
    val inner = SoftwareKeyStore.withSignatureFormat(SignatureFormat.DER)
    val calls = mutableListOf<String>()
    val prompts = mutableListOf<SigningPrompt?>()
    override suspend fun createKey(alias: String, purpose: KeyPurpose): ByteArray {
        calls += "createKey:$purpose"; return inner.createKey(alias, purpose)
    }
    override suspend fun sign(alias: String, purpose: KeyPurpose, message: ByteArray, prompt: SigningPrompt?): ByteArray {
        calls += "sign:$purpose"; prompts += prompt; return inner.sign(alias, purpose, message, prompt)
    }
    override suspend fun agree(alias: String, peerPublicKey: ByteArray): ByteArray {
        calls += "agree"; return inner.agree(alias, peerPublicKey)
    }
    override suspend fun deleteKey(alias: String) { calls += "deleteKey"; inner.deleteKey(alias) }
    fun signs(purpose: KeyPurpose) = calls.count { it == "sign:$purpose" }
}

class FailingKeyStore(private val error: KeyStoreException) : RecordingKeyStore() {
    override suspend fun sign(alias: String, purpose: KeyPurpose, message: ByteArray, prompt: SigningPrompt?): ByteArray =
        if (purpose == KeyPurpose.APPROVAL_SIGNING) throw error else super.sign(alias, purpose, message, prompt)
}

/** An app-side HTTP transport (as OkHttp would be) over the built-in client; it can
 *  drop a request before sending, lose an answer after the server acted, or edit
 *  answers (a newer server). */
class RecordingTransport : HttpTransport {
    private val inner = builtinTransport(ClientOptions())
    val requests = mutableListOf<HttpRequest>()
    var drop: ((HttpRequest) -> Boolean)? = null
    var lose: ((HttpRequest) -> Boolean)? = null
    var edit: ((HttpRequest, HttpResponse) -> HttpResponse)? = null
    override suspend fun send(request: HttpRequest): HttpResponse {
        requests += request
        drop?.let { if (it(request)) { drop = null; throw TransportException.NoAnswer("dropped before sending") } }
        val response = inner.send(request)
        lose?.let { if (it(request)) { lose = null; throw TransportException.NoAnswer("answer lost") } }
        return edit?.invoke(request, response) ?: response
    }
}

val validChallenge = case("challenges.json", "valid")

fun signProof(
    store: KeyStore,
    reason: DenyReason? = null,
    output: String? = null,
    token: String = validChallenge.str("token"),
    now: Long = validChallenge.long("now"),
    options: ClientOptions = ClientOptions(),
): String = runBlocking {
    PushAuthClient.withOptions(vectorState(), store, options).signProofForTests(token, now, reason, output)
}

// ---------------------------------------------------------------- tests

fun vectorTests(r: Runner) {
    r.test("keys: thumbprints, public key, signature normalisation") {
        eq(jwkThumbprint(jwk("device_signing_jwk")), keys.str("device_signing_thumbprint"))
        eq(jwkThumbprint(jwk("server_signing_jwk")), keys.str("server_kid"))
        val public = SoftwareKeyStore().importSigningKey("k", KeyPurpose.DEVICE_SIGNING, b64u(keys.str("device_signing_pkcs8")))
        eq(publicKeyJwk(public), jwk("device_signing_jwk"))
        for (v in keys["signatures"].list().map { it.obj() }) {
            if (v["valid"] == true) {
                check(normalizeSignature(b64u(v.str("signature"))).contentEquals(b64u(v.str("raw")))) { v.str("name") }
            } else {
                throws<PushAuthException.InvalidInput> { normalizeSignature(b64u(v.str("signature"))) }
            }
        }
    }

    r.test("transactions: canonical JSON and digest") {
        val all = cases("transactions.json")
        check(all.size >= 8) { "expected at least 8 cases" }
        for (c in all) {
            val t = transaction(c["transaction"].obj())
            eq(canonicalTransactionJson(t), c.str("canonical"), c.str("name"))
            eq(transactionDigest(t), c.str("digest"), c.str("name"))
        }
        eq(all.map { it.str("digest") }.toSet().size, all.size, "distinct digests")
    }

    r.test("transactions: a newer server's members are digested and shown generically") {
        for (c in cases("transactions.json", "device_cases")) {
            val t = transaction(c["transaction"].obj())
            check(t.otherMembers.isNotEmpty()) { "expected unknown members in ${c.str("name")}" }
            eq(canonicalTransactionJson(t), c.str("canonical"), c.str("name"))
            eq(transactionDigest(t), c.str("digest"), c.str("name"))
            eq(
                transactionDisplayFields(t).map { it.key to it.known },
                c["display_fields"].list().map { val f = it.obj(); f.str("key") to (f["known"] as Boolean) },
                c.str("name"),
            )
        }
    }

    r.test("challenges: verify against the pinned server key") {
        val server = jwk("server_signing_jwk")
        for (c in cases("challenges.json")) {
            val verify = { verifyServerChallenge(c.str("token"), server, issuer, c.str("device"), c.long("now")) }
            when (val result = c.str("result")) {
                "ok" -> {
                    val view = verify()
                    val claims = c["claims"].obj()
                    val txn = claims["txn"].obj()
                    eq(view.id, claims.str("jti"))
                    eq(view.amountDisplay, c.str("display_amount"))
                    eq(view.amountMinor, txn["amount"] as Long?)
                    eq(view.currency, txn["currency"] as String?)
                    eq(view.payee, txn["payee"] as String?)
                    val expected = transaction(txn)
                    eq(view.provider, expected.provider)
                    eq(view.kind, expected.kind)
                    eq(view.transaction, expected)
                    eq(view.deadline, claims.long("exp"))
                    eq(view.processorInput, claims["pin"] as String?)
                    eq(view.transactionDigest, c.str("digest"))
                    eq(view.token, c.str("token"))
                }
                "past_deadline" -> throws<PushAuthException.ChallengeExpired> { verify() }
                else -> eq(throws<PushAuthException.InvalidChallenge> { verify() }.reason, result, c.str("name"))
            }
        }
    }

    r.test("proofs: server verification codes") {
        for (c in cases("proofs.json")) {
            eq(verifyApprovalProofForTests(c.str("token"), expectations(c["expect"].obj())), c.str("result"), c.str("name"))
        }
    }

    r.test("push: decrypt envelopes with the agreement key") {
        val store = vectorStore()
        val state = vectorState()
        for (c in cases("push.json")) {
            if (c["result"] == "ok") {
                val preview = runBlocking { decryptPush(state, store, c.str("challenge"), c.str("envelope")) }
                eq(preview.summary, c.str("summary"))
                eq(preview.challengeId, c.str("challenge"))
                eq(preview.amountDisplay, "EUR 49.90")
                eq(preview.deadline, c["details"].obj().long("exp"))
                eq(preview.otp, null)
            } else {
                val e = throws<PushAuthException.InvalidPush> { runBlocking { decryptPush(state, store, c.str("challenge"), c.str("envelope")) } }
                eq(e.reason, c.str("result"), c.str("name"))
            }
        }
    }

    r.test("requests: request proof verification codes") {
        for (c in cases("requests.json")) {
            val got = verifyRequestProofForTests(
                c.str("token"), device, jwk("device_signing_jwk"), issuer,
                c.str("method"), c.str("path"), c.str("body"), c.long("now"), 60,
            )
            eq(got, c.str("result"), c.str("name"))
        }
    }
}

fun offlineTests(r: Runner) {
    r.test("enrollment links: the issuer's own scheme") {
        val link = parseEnrollmentLink("pushauth://enroll?v=1&server=https%3A%2F%2Fbank.example%2Fpa&code=abcd-efgh-jkmn-pqrs-tvwx", "pushauth")
        eq(link.serverUrl, "https://bank.example/pa")
        eq(link.activationCode, "ABCD-EFGH-JKMN-PQRS-TVWX")
        val own = "mybank-pushauth://enroll?v=1&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX"
        eq(parseEnrollmentLink(own, "mybank-pushauth").serverUrl, "https://a.example")
        throws<PushAuthException.InvalidInput> { parseEnrollmentLink(own, "pushauth") }
        throws<PushAuthException.InvalidInput> { parseEnrollmentLink("pushauth://enroll?v=2&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX", "pushauth") }
        throws<PushAuthException.InvalidInput> { parseEnrollmentLink("pushauth://enroll?v=1&server=http://a.example&code=ABCDEFGHJKMNPQRSTVWX", "pushauth") }
    }

    r.test("enrollment state: JSON round trip, checks, client state") {
        val state = vectorState()
        eq(enrollmentStateFromJson(enrollmentStateToJson(state)), state)
        val tampered = enrollmentStateToJson(state).replace(keys.str("server_kid"), "x".repeat(43))
        throws<PushAuthException.InvalidInput> { enrollmentStateFromJson(tampered) }
        PushAuthClient(state, vectorStore()).use { eq(it.state(), state) }
    }

    r.test("software key store: export, import, push with restored keys") {
        val again = SoftwareKeyStore.importState(vectorStore().exportState())
        eq(again.aliases(), listOf("device.agreement", "device.approval", "device.device"))
        val push = case("push.json", "valid")
        runBlocking {
            eq(decryptPush(vectorState(), again, push.str("challenge"), push.str("envelope")).summary, "EUR 49.90 at Example Shop")
            throws<KeyStoreException.NotFound> { again.sign("missing", KeyPurpose.DEVICE_SIGNING, byteArrayOf(1), null) }
        }
    }

    r.test("approval: exactly one approval-key signature, amount and payee in the prompt") {
        val expect = case("proofs.json", "approve_with_processor_output")["expect"].obj()
        val now = validChallenge.long("now") + 2
        val store = vectorStore()
        val token = signProof(store, output = expect.str("processor_output"))
        eq(store.signatureCount(KeyPurpose.APPROVAL_SIGNING), 1uL, "approval-key signatures")
        eq(store.signatureCount(KeyPurpose.DEVICE_SIGNING), 0uL, "device-key signatures")
        eq(store.prompts().map { it.summary }, listOf("Approve EUR 49.90 at Example Shop"), "prompts")
        eq(verifyApprovalProofForTests(token, expectations(expect, now)), "ok")
        val swapped = expectations(expect, now).copy(processorOutput = "another-output")
        eq(verifyApprovalProofForTests(token, swapped), "processor_output_mismatch")
        val claims = claimsOf(token)
        eq(claims["decision"], "approve")
        eq(claims["txn"], validChallenge.str("digest"))
    }

    r.test("not me: device key only, no prompt (Kotlin key store, DER signatures)") {
        val store = RecordingKeyStore().apply { inner.withVectorKeys() }
        val token = signProof(store, reason = DenyReason.NOT_ME)
        eq(store.calls.toList(), listOf("sign:DEVICE_SIGNING"))
        eq(store.prompts.toList(), listOf<SigningPrompt?>(null))
        eq(Json.parse(String(b64u(token.split(".")[0]))).obj()["typ"], "pushauth-decline+jwt")
        eq(claimsOf(token)["reason"], "not_me")
        eq(claimsOf(token)["uv"], "none", "a decline without a prompt claims no user verification")
        val expect = case("proofs.json", "deny_not_me")["expect"].obj()
        eq(verifyApprovalProofForTests(token, expectations(expect, validChallenge.long("now") + 2)), "ok")
        val strict = vectorStore()
        signProof(strict, reason = DenyReason.DECLINED, options = ClientOptions(declineRequiresApprovalKey = true))
        eq(strict.signatureCount(KeyPurpose.APPROVAL_SIGNING), 1uL, "decline with the approval key when required")
    }

    r.test("key store errors reach the app with the key's purpose") {
        val invalidated = vectorStore().apply { invalidateKey("device.approval") }
        eq(throws<PushAuthException.KeyInvalidated> { signProof(invalidated) }.purpose, KeyPurpose.APPROVAL_SIGNING)
        signProof(invalidated, reason = DenyReason.DECLINED) // declining still works
        throws<PushAuthException.UserCancelled> {
            signProof(FailingKeyStore(KeyStoreException.UserCancelled()).apply { inner.withVectorKeys() })
        }
        throws<PushAuthException.AuthenticationFailed> {
            signProof(FailingKeyStore(KeyStoreException.AuthenticationFailed()).apply { inner.withVectorKeys() })
        }
        val replaced = SoftwareKeyStore().apply { runBlocking { createKey("device.approval", KeyPurpose.APPROVAL_SIGNING) } }
        throws<PushAuthException.KeyInvalidated> { signProof(replaced) }
    }

    r.test("a forged challenge is never signed") {
        val forged = case("challenges.json", "signed_by_other_key")
        val store = vectorStore()
        val e = throws<PushAuthException.InvalidChallenge> {
            signProof(store, token = forged.str("token"), now = forged.long("now"))
        }
        eq(e.reason, "wrong_key_id")
        eq(store.prompts(), emptyList<SigningPrompt>())
    }

    r.test("parse_push: challenge with preview, dismiss, unknown") {
        val push = case("push.json", "valid")
        val id = push.str("challenge")
        runBlocking {
            val msg = parsePush(mapOf("cid" to id, "kind" to "challenge", "enc" to push.str("envelope")), vectorState(), vectorStore())
            check(msg is PushMessage.Challenge) { "expected a challenge, got $msg" }
            eq((msg as PushMessage.Challenge).preview?.summary, "EUR 49.90 at Example Shop")
            eq(parsePush(mapOf("cid" to id, "kind" to "dismiss"), null, null), PushMessage.Dismiss(id))
            eq(parsePush(mapOf("cid" to id, "kind" to "later-kind"), null, null), PushMessage.Unknown)
            eq(parsePush(mapOf("other" to "x"), null, null), PushMessage.Unknown)
        }
    }

    r.test("web push: RFC 8291 vector, subscription token, encrypted and pre-decrypted messages") {
        // RFC 8291, Appendix A: the user agent's keys and the message it receives.
        val rfc = WebPushKeys(
            p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            auth = "BTBZMqHH6r4Tts7J_aSIgg",
            privateKey = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
        )
        val message = java.util.Base64.getUrlDecoder().decode(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
        eq(String(decryptWebPush(rfc, message)), "When I grow up, I want to be a watermelon")
        val keys = generateWebPushKeys()
        val token = webPushToken("https://ntfy.example.org/upAbC?up=1", keys.p256dh, keys.auth)
        eq(token, "{\"endpoint\":\"https://ntfy.example.org/upAbC?up=1\",\"keys\":{\"p256dh\":\"${keys.p256dh}\",\"auth\":\"${keys.auth}\"}}")
        val push = case("push.json", "valid")
        val id = push.str("challenge")
        val data = "{\"cid\":\"$id\",\"kind\":\"challenge\",\"enc\":\"${push.str("envelope")}\"}".toByteArray()
        val body = encryptWebPushForTests(token, data)
        runBlocking {
            val msg = parseWebPush(body, keys, vectorState(), vectorStore())
            check(msg is PushMessage.Challenge) { "expected a challenge, got $msg" }
            eq((msg as PushMessage.Challenge).preview?.summary, "EUR 49.90 at Example Shop")
            // UnifiedPush connector 3 hands over the decrypted bytes: no keys.
            eq(parseWebPush(data, null, vectorState(), vectorStore()), msg)
            eq(parseWebPush("{\"cid\":\"$id\",\"kind\":\"dismiss\"}".toByteArray(), null, null, null), PushMessage.Dismiss(id))
            eq(parseWebPush(body, generateWebPushKeys(), null, null), PushMessage.Unknown)
            eq(parseWebPush("not json".toByteArray(), null, null, null), PushMessage.Unknown)
        }
        throws<PushAuthException.InvalidPush> { decryptWebPush(generateWebPushKeys(), body) }
        throws<PushAuthException.InvalidInput> { webPushToken("not a url", keys.p256dh, keys.auth) }
    }

    r.test("network errors through the app's transport; failed enrollment deletes its keys") {
        val port = ServerSocket(0).use { it.localPort }
        val url = "http://127.0.0.1:$port"
        val transport = RecordingTransport()
        val client = PushAuthClient.withTransport(vectorState(url), vectorStore(), ClientOptions(timeoutSecs = 5u), transport)
        runBlocking {
            throws<PushAuthException.Network> { client.pendingChallenges() }
            throws<PushAuthException.Network> { client.denyById(validChallenge["claims"].obj().str("jti"), DenyReason.DECLINED) }
            throws<PushAuthException.InvalidInput> { client.challenge("not-a-uuid") }
        }
        eq(transport.requests.first().url, "$url/v1/device/challenges")
        check(transport.requests.first().headers.any { it.name == "Authorization" && it.value.startsWith("PushAuth ") }) { "no proof" }
        val store = RecordingKeyStore()
        val request = EnrollRequest(activation = "ABCDEFGHJKMNPQRSTVWX", serverUrl = url, platform = Platform.ANDROID)
        runBlocking { throws<PushAuthException.Network> { enroll(request, store) } }
        eq(store.inner.aliases(), emptyList<String>())
        check("deleteKey" in store.calls) { "keys of the failed enrollment must be deleted" }
        client.close()
    }
}

fun main() {
    val r = Runner()
    vectorTests(r)
    offlineTests(r)
    org.pushauth.sdk.androidInitTests(r)
    serverFlowTests(r)
    println("${r.passed} passed, ${r.failed} failed" + if (r.skipped > 0) ", ${r.skipped} skipped" else "")
    exitProcess(if (r.failed == 0) 0 else 1)
}
