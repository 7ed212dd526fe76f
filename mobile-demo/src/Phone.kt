// The virtual phone: an issuer app's pushauth side on the JVM, built on the generated
// Kotlin bindings (bindings/generated/kotlin) and nothing else of pushauth's.
//
//   phone [--dir DIR] enroll <activation code | pushauth://enroll?… link> [--server URL]
//         [--platform android|ios|webpush|other] [--label TEXT] [--push-token T --push-inbox URL]
//         (webpush: --push-inbox URL only; the phone subscribes at the mock Web Push service)
//   phone [--dir DIR] run [--auto approve|deny|not_me] [--once] [--timeout SECS]
//         [--poll-ms MS] [--ready-file FILE]
//   phone [--dir DIR] status
//   phone [--dir DIR] rotate [device|approval]   two-phase key rotation (state saved between)
//   phone [--dir DIR] reset            unenroll on the server (if it answers) and forget all
//
// DIR defaults to $DEMO_PHONE_DIR or ./.pushauth-phone. Lines are stamped with the
// time since $DEMO_T0_MS (Unix ms) when set, else since the phone started.
// Exit status: 0 done, 1 error, 2 usage, 3 no challenge before --timeout.

package pushauth.demo

import java.io.File
import java.net.URI
import java.net.URLDecoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking
import uniffi.pushauth.*

val T0: Long = System.getenv("DEMO_T0_MS")?.toLongOrNull() ?: System.currentTimeMillis()

fun say(text: String) {
    println("[+%6d ms] %-9s | %s".format(System.currentTimeMillis() - T0, "phone", text))
    System.out.flush()
}

class UsageError(message: String) : Exception(message)

/** Options after the command: `--name value` pairs, `--flag`s and positional words. */
class Args(words: List<String>, private val flags: Set<String>) {
    val positional = mutableListOf<String>()
    private val values = mutableMapOf<String, String>()
    private val set = mutableSetOf<String>()

    init {
        var i = 0
        while (i < words.size) {
            val w = words[i]
            when {
                w in flags -> set += w
                w.startsWith("--") && w.contains('=') -> values[w.substringBefore('=')] = w.substringAfter('=')
                w.startsWith("--") -> values[w] = words.getOrNull(++i) ?: throw UsageError("$w needs a value")
                else -> positional += w
            }
            i++
        }
    }

    fun flag(name: String) = name in set
    operator fun get(name: String): String? = values.remove(name)
    fun done() {
        if (values.isNotEmpty()) throw UsageError("unknown option ${values.keys.first()}")
    }
}

enum class Answer(val word: String) { APPROVE("approve"), DENY("deny"), NOT_ME("not_me") }

val options = ClientOptions(
    timeoutSecs = 10u, userVerification = UserVerification.BIOMETRIC,
    linkScheme = System.getenv("DEMO_LINK_SCHEME") ?: "pushauth",
)

fun ms(since: Long) = System.currentTimeMillis() - since

fun short(id: String) = id.take(8)

// ---------------------------------------------------------------- enroll

fun enrollCommand(storage: PhoneStorage, args: Args) {
    val activation = args.positional.singleOrNull() ?: throw UsageError("enroll takes one activation code or link")
    val serverUrl = args["--server"]
    val platform = when (val p = args["--platform"] ?: "android") {
        "android" -> Platform.ANDROID
        "ios" -> Platform.IOS
        "webpush" -> Platform.WEB_PUSH
        "other" -> Platform.OTHER
        else -> throw UsageError("--platform android|ios|webpush|other, not $p")
    }
    val label = args["--label"] ?: "Virtual phone (pushauth mobile-demo)"
    var pushToken = args["--push-token"]
    val inbox = args["--push-inbox"]
    args.done()
    if (platform == Platform.WEB_PUSH) {
        if (pushToken != null || inbox == null) throw UsageError("--platform webpush takes --push-inbox (the mock Web Push service) and no --push-token")
    } else if ((pushToken == null) != (inbox == null)) {
        throw UsageError("--push-token and --push-inbox go together")
    }
    if (storage.enrolled()) {
        throw UsageError("already enrolled (${storage.loadState().deviceId}); run `phone reset` first")
    }
    storage.wipe()
    val link = if (activation.contains("://")) parseEnrollmentLink(activation, options.linkScheme) else null
    say(if (link != null) "scanned enrollment link: server ${link.serverUrl}, code ${link.activationCode.take(4)}-…"
        else "activation code ${activation.take(4)}-… for ${serverUrl ?: "?"}")
    val keyStore = storage.keyStore()
    // Web Push: the subscription keys (the app's own, like a UnifiedPush app on
    // connector 2.x), an endpoint from the push service, and the token made of both.
    var push: PushRegistration? = null
    if (platform == Platform.WEB_PUSH) {
        val keys = generateWebPushKeys()
        val (subscription, endpoint) = PushInbox.subscribe(inbox!!)
        pushToken = webPushToken(endpoint, keys.p256dh, keys.auth)
        push = PushRegistration(pushToken, inbox, subscription, keys)
        say("web push: subscribed at the push service, endpoint $endpoint; subscription keys made on the phone")
    } else if (pushToken != null) {
        push = PushRegistration(pushToken, inbox!!)
    }
    val started = System.currentTimeMillis()
    val request = EnrollRequest(
        activation = activation, serverUrl = serverUrl, platform = platform, label = label,
        pushToken = pushToken, pushEnvironment = null, options = options,
    )
    val state = runBlocking { enroll(request, keyStore) }
    storage.saveState(state)
    storage.savePush(push)
    say("enrolled in ${ms(started)} ms: device ${state.deviceId} at ${state.serverUrl}")
    say("  pinned server key ${state.serverKid.take(12)}…, issuer ${state.issuer}")
    say("  keys ${keyStore.aliases().joinToString(", ")} in ${storage.describe()}/keystore.bin (SoftwareKeyStore standing in for the Secure Enclave / StrongBox)")
    say("  device key (requests, no prompt), approval key (one biometric prompt per approval), agreement key (push)")
    say(when {
        push?.webPushKeys != null -> "  push: Web Push subscription (endpoint, p256dh, auth) registered with the server"
        push != null -> "  push: FCM token ${push.token.take(16)}… registered with the server"
        else -> "  push: none (the phone will poll)"
    })
}

// ---------------------------------------------------------------- run

/** One delivered push: FCM's data map, or a Web Push message body (still encrypted). */
sealed class Delivery {
    data class Data(val data: Map<String, String>) : Delivery()
    class WebPush(val body: ByteArray) : Delivery()
}

class PushInbox(private val reg: PushRegistration) {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build()

    companion object {
        /** Subscribes at the mock Web Push service: (subscription id, endpoint). */
        fun subscribe(service: String): Pair<String, String> {
            val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build()
            val req = HttpRequest.newBuilder(URI.create("${service.trimEnd('/')}/subscribe"))
                .timeout(Duration.ofSeconds(5)).POST(HttpRequest.BodyPublishers.noBody()).build()
            val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
            if (resp.statusCode() != 201) throw IllegalStateException("web push subscribe: HTTP ${resp.statusCode()}")
            val (id, endpoint) = resp.body().trim().split(' ', limit = 2)
            return id to endpoint
        }
    }

    /** Waits up to `waitMs` for messages to this phone's token or subscription. */
    fun poll(waitMs: Long): List<Delivery> {
        val who = reg.subscription?.let { "sub=${enc(it)}" } ?: "token=${enc(reg.token)}"
        val uri = URI.create("${reg.inbox.trimEnd('/')}/inbox?$who&wait_ms=$waitMs")
        val req = HttpRequest.newBuilder(uri).timeout(Duration.ofMillis(waitMs + 5000)).GET().build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        if (resp.statusCode() != 200) throw IllegalStateException("push inbox: HTTP ${resp.statusCode()}")
        val lines = resp.body().lines().filter { it.isNotBlank() }
        if (reg.subscription != null) {
            return lines.map { Delivery.WebPush(java.util.Base64.getUrlDecoder().decode(it)) }
        }
        return lines.map { line ->
            Delivery.Data(line.split('&').associate { kv -> dec(kv.substringBefore('=')) to dec(kv.substringAfter('=', "")) })
        }
    }

    private fun enc(s: String) = java.net.URLEncoder.encode(s, Charsets.UTF_8)
    private fun dec(s: String) = URLDecoder.decode(s, Charsets.UTF_8)
}

class Session(
    private val client: PushAuthClient,
    private val state: EnrollmentState,
    private val keyStore: FileBackedKeyStore,
    private val auto: Answer?,
) {
    val handled = mutableSetOf<String>()

    /** What the cardholder is asked about. */
    private fun describe(v: ChallengeView): String {
        val amount = v.amountDisplay
        val what = when (v.kind) {
            TransactionKind.Payment -> if (amount != null) amount else "a payment"
            TransactionKind.Recurring -> "a recurring payment" + (amount?.let { " of $it" } ?: "")
            TransactionKind.WalletOperation -> "a wallet operation" + (amount?.let { " of $it" } ?: "")
            is TransactionKind.Other -> "a request (${(v.kind as TransactionKind.Other).name})" + (amount?.let { " of $it" } ?: "")
        }
        return what + (v.payee?.let { " at $it" } ?: "")
    }

    private fun ask(question: String): Answer? {
        if (auto != null) {
            say("$question -> ${auto.word} (--auto)")
            return auto
        }
        while (true) {
            say(question)
            print("> ")
            System.out.flush()
            val line = readLine() ?: return null
            when (line.trim().lowercase()) {
                "y", "yes" -> return Answer.APPROVE
                "n", "no" -> return Answer.DENY
                "x", "not me", "not_me" -> return Answer.NOT_ME
            }
        }
    }

    /** Fetches the signed challenge, asks, answers. Returns true once answered (or closed). */
    suspend fun handle(id: String, seenAt: Long, via: String): Boolean {
        if (!handled.add(id)) return false
        try {
            val fetched = System.currentTimeMillis()
            val view = client.challenge(id)
            val provider = when (val p = view.provider) { is Provider.Other -> p.name; else -> p::class.simpleName!!.lowercase() }
            say("challenge ${short(id)} ($provider, via $via): signature checked against the pinned server key in ${ms(fetched)} ms (device key, no prompt)")
            val left = view.deadline - System.currentTimeMillis() / 1000
            var output: String? = null
            view.processorInput?.let { input ->
                // The processor's own authentication SDK (Adyen) would turn sdkInput into
                // sdkOutput here; the demo has none and returns a recognisable stand-in.
                output = "demo-sdkOutput-for-" + input.length + "-chars"
                say("  processor input (Adyen sdkInput, ${input.length} chars) -> stand-in sdkOutput \"$output\"")
            }
            val answer = ask("Approve ${describe(view)}? [y/n/x=not me]  (expires in $left s)")
            if (answer == null) {
                say("no answer (stdin closed): left pending")
                return true
            }
            val tapped = System.currentTimeMillis()
            val approvalsBefore = keyStore.signatures(KeyPurpose.APPROVAL_SIGNING)
            // The view the user saw is what is signed: approve/deny take it, never an id.
            val outcome = when (answer) {
                Answer.APPROVE -> client.approve(view, output)
                Answer.DENY -> client.deny(view, DenyReason.DECLINED)
                Answer.NOT_ME -> client.deny(view, DenyReason.NOT_ME)
            }
            val prompts = keyStore.signatures(KeyPurpose.APPROVAL_SIGNING) - approvalsBefore
            say("signed the ${answer.word} proof ($prompts approval-key signature${if (prompts == 1uL) "" else "s"}) and sent it: " +
                "server answered $outcome in ${ms(tapped)} ms (${ms(seenAt)} ms after the challenge reached the phone)")
        } catch (e: PushAuthException.ChallengeExpired) {
            say("challenge ${short(id)}: this payment request has expired")
        } catch (e: PushAuthException.AlreadyAnswered) {
            say("challenge ${short(id)}: already answered or cancelled (${e.message})")
        } catch (e: PushAuthException.ChallengeNotFound) {
            say("challenge ${short(id)}: no longer exists")
        }
        return true
    }

    /**
     * A data message from FCM (what FirebaseMessagingService.onMessageReceived gets), or
     * a Web Push message (what a UnifiedPush PushService.onMessage gets).
     */
    suspend fun onPush(delivery: Delivery, webPushKeys: WebPushKeys?): Boolean {
        val at = System.currentTimeMillis()
        // No network, agreement key only: what a Notification Service Extension /
        // FirebaseMessagingService does; for Web Push the subscription keys open the
        // outer RFC 8291 layer first.
        val msg = when (delivery) {
            is Delivery.Data -> parsePush(delivery.data, state, keyStore)
            is Delivery.WebPush -> {
                say("web push message: ${delivery.body.size} bytes of aes128gcm ciphertext")
                parseWebPush(delivery.body, webPushKeys, state, keyStore)
            }
        }
        when (msg) {
            is PushMessage.Challenge -> {
                val cid = msg.challengeId
                val preview = msg.preview
                if (preview == null) {
                    say("push for ${short(cid)} did not open: generic notification")
                    return handle(cid, at, "push")
                }
                val text = if (preview.amountDisplay != null) "Approve ${preview.summary}?" else "${preview.summary}: approve?"
                say("push received for challenge ${short(cid)}: decrypted locally in ${ms(at)} ms -> notification \"$text\"")
                preview.otp?.let { say("  the push carries the processor's one-time code: $it") }
                return handle(cid, at, "push")
            }
            is PushMessage.Dismiss -> say("push: dismiss ${short(msg.challengeId)} (answered elsewhere or closed): notification removed")
            PushMessage.Unknown -> say("push: not for pushauth (or a newer kind): ignored")
        }
        return false
    }
}

fun runCommand(storage: PhoneStorage, args: Args) {
    val auto = args["--auto"]?.let { a -> Answer.entries.firstOrNull { it.word == a } ?: throw UsageError("--auto approve|deny|not_me") }
    val once = args.flag("--once")
    val timeoutSecs = args["--timeout"]?.toLongOrNull()
    val readyFile = args["--ready-file"]
    val push = storage.loadPush()
    val pollMs = args["--poll-ms"]?.toLongOrNull() ?: if (push != null) 10_000 else 1_000
    args.done()
    if (!storage.enrolled()) throw UsageError("not enrolled: run `phone enroll <code or link>` first")
    val state = storage.loadState()
    val keyStore = storage.keyStore()
    val endAt = timeoutSecs?.let { System.currentTimeMillis() + it * 1000 }
    var answered = 0
    PushAuthClient.withOptions(state, keyStore, options).use { client ->
        val session = Session(client, state, keyStore, auto)
        val inbox = push?.let { PushInbox(it) }
        say("device ${short(state.deviceId)} at ${state.serverUrl}: " +
            (if (inbox != null) "waiting for pushes (mock ${if (push?.webPushKeys != null) "Web Push service" else "FCM"}), checking the pending list every ${pollMs / 1000} s"
             else "polling the pending list every $pollMs ms") +
            (timeoutSecs?.let { ", for $it s" } ?: ""))
        runBlocking {
            suspend fun poll(): Boolean {
                val at = System.currentTimeMillis()
                var any = false
                for (c in client.pendingChallenges()) {
                    if (c.id in session.handled) continue
                    if (session.handle(c.id, at, "pending list")) { answered++; any = true }
                    if (once && answered > 0) break
                }
                return any
            }
            poll()  // the app opened: catch up first
            readyFile?.let { File(it).writeText("ready\n") }
            var nextPoll = System.currentTimeMillis() + pollMs
            while (!(once && answered > 0)) {
                val now = System.currentTimeMillis()
                if (endAt != null && now >= endAt) break
                val budget = listOfNotNull(nextPoll - now, endAt?.let { it - now }).minOrNull()!!.coerceIn(0, 1000)
                if (inbox != null) {
                    for (delivery in inbox.poll(budget)) {
                        if (session.onPush(delivery, push?.webPushKeys)) answered++
                        if (once && answered > 0) break
                    }
                } else {
                    Thread.sleep(budget)
                }
                if (System.currentTimeMillis() >= nextPoll && !(once && answered > 0)) {
                    poll()
                    nextPoll = System.currentTimeMillis() + pollMs
                }
            }
        }
    }
    if (answered == 0) {
        say("no challenge within ${timeoutSecs} s")
        exitProcess(3)
    }
}

// ---------------------------------------------------------------- status, reset

fun statusCommand(storage: PhoneStorage, args: Args) {
    args.done()
    if (!storage.enrolled()) {
        say("not enrolled (${storage.describe()})")
        return
    }
    val state = storage.loadState()
    val keyStore = storage.keyStore()
    say("device ${state.deviceId} at ${state.serverUrl}, issuer ${state.issuer}")
    say("keys ${keyStore.aliases().joinToString(", ")}; push ${storage.loadPush()?.token?.take(16)?.plus("…") ?: "none"}")
    PushAuthClient.withOptions(state, keyStore, options).use { client ->
        val pending = runBlocking { client.pendingChallenges() }
        say("${pending.size} pending" + pending.joinToString("") { "\n    ${short(it.id)} ${it.amountDisplay ?: ""} ${it.payee ?: ""}" })
    }
}

fun rotateCommand(storage: PhoneStorage, args: Args) {
    val purpose = when (val which = args.positional.singleOrNull() ?: "device") {
        "device" -> KeyPurpose.DEVICE_SIGNING
        "approval" -> KeyPurpose.APPROVAL_SIGNING
        else -> throw UsageError("rotate device|approval, not $which")
    }
    args.done()
    if (!storage.enrolled()) throw UsageError("not enrolled")
    val keyStore = storage.keyStore()
    PushAuthClient.withOptions(storage.loadState(), keyStore, options).use { client ->
        runBlocking {
            if (client.state().pendingKey == null) {
                val prepared = client.prepareKeyRotation(purpose)
                storage.saveState(prepared) // persisted before anything is sent
                say("new ${purpose.name.lowercase()} key ${prepared.pendingKey!!.alias} created and saved as pending")
            } else {
                say("a rotation is pending (${client.state().pendingKey!!.alias}): completing it")
            }
            val done = client.completeKeyRotation()
            storage.saveState(done)
            say("server switched keys; device ${short(done.deviceId)} now uses ${done.deviceKeyAlias} / ${done.approvalKeyAlias}")
        }
    }
}

fun resetCommand(storage: PhoneStorage, args: Args) {
    args.done()
    if (storage.enrolled()) {
        val state = storage.loadState()
        try {
            PushAuthClient.withOptions(state, storage.keyStore(), options).use { runBlocking { it.unenroll() } }
            say("unenrolled device ${state.deviceId} on the server; keys deleted")
        } catch (e: PushAuthException) {
            say("the server did not take the unenrollment (${e::class.simpleName}): forgetting locally only")
        }
    }
    storage.wipe()
    say("phone reset (${storage.describe()})")
}

fun main(argv: Array<String>) {
    val words = argv.toMutableList()
    var dir = System.getenv("DEMO_PHONE_DIR") ?: ".pushauth-phone"
    val code = try {
        val at = words.indexOf("--dir")
        if (at >= 0) {
            dir = words.getOrNull(at + 1) ?: throw UsageError("--dir needs a value")
            words.removeAt(at)
            words.removeAt(at)
        }
        val command = words.removeFirstOrNull() ?: throw UsageError("no command")
        val storage = PhoneStorage(File(dir))
        when (command) {
            "enroll" -> enrollCommand(storage, Args(words, emptySet()))
            "run" -> runCommand(storage, Args(words, setOf("--once")))
            "status" -> statusCommand(storage, Args(words, emptySet()))
            "rotate" -> rotateCommand(storage, Args(words, emptySet()))
            "reset" -> resetCommand(storage, Args(words, emptySet()))
            "help", "--help", "-h" -> throw UsageError("")
            else -> throw UsageError("unknown command $command")
        }
        0
    } catch (e: UsageError) {
        if (e.message!!.isNotEmpty()) System.err.println("phone: ${e.message}")
        System.err.println(
            """
            usage: phone [--dir DIR] enroll <activation code | pushauth://enroll?… link> [--server URL]
                                     [--platform android|ios|webpush|other] [--label TEXT] [--push-token T --push-inbox URL]
                   phone [--dir DIR] run [--auto approve|deny|not_me] [--once] [--timeout SECS] [--poll-ms MS]
                   phone [--dir DIR] status
                   phone [--dir DIR] rotate [device|approval]
                   phone [--dir DIR] reset
            """.trimIndent(),
        )
        2
    } catch (e: PushAuthException) {
        say("error: ${e::class.simpleName}: ${e.message}")
        1
    } catch (e: Exception) {
        say("error: ${e::class.simpleName}: ${e.message}")
        1
    }
    exitProcess(code)
}
