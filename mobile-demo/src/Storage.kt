// What the virtual phone keeps between runs, in one directory (mode 0700):
//
//   keystore.bin      the keys: SoftwareKeyStore.exportState(), standing in for the
//                     Secure Enclave / Android Keystore (where keys persist by themselves)
//   enrollment.json   enrollmentStateToJson(state): Keychain / EncryptedSharedPreferences
//   push.properties   the push registration: the FCM token, or the Web Push
//                     subscription (token, subscription id, its keys), and where the
//                     mock FCM / mock Web Push service delivers
//
// Only public SDK calls are used: the KeyStore interface, SoftwareKeyStore and its
// export/import, enrollmentStateToJson / enrollmentStateFromJson.

package pushauth.demo

import java.io.File
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermissions
import java.util.Properties
import uniffi.pushauth.*

/** Writes `bytes` to `file` atomically, readable by the owner only. */
fun writePrivate(file: File, bytes: ByteArray) {
    file.parentFile.mkdirs()
    val tmp = File(file.parentFile, file.name + ".tmp")
    tmp.writeBytes(bytes)
    runCatching { Files.setPosixFilePermissions(tmp.toPath(), PosixFilePermissions.fromString("rw-------")) }
    Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
}

/**
 * The app's KeyStore: a SoftwareKeyStore whose keys are written to `file` whenever they
 * change, so that they survive a restart as hardware-backed keys do. A real app
 * implements the same four suspend methods on the Secure Enclave or Android Keystore
 * (bindings/samples/). An approval-key signature is where a real phone shows the
 * biometric prompt: the virtual phone prints the prompt instead.
 */
class FileBackedKeyStore(private val file: File) : KeyStore {
    private val inner: SoftwareKeyStore =
        if (file.exists()) SoftwareKeyStore.importState(file.readBytes()) else SoftwareKeyStore()

    override suspend fun createKey(alias: String, purpose: KeyPurpose): ByteArray =
        inner.createKey(alias, purpose).also { save() }
    override suspend fun sign(alias: String, purpose: KeyPurpose, message: ByteArray, prompt: SigningPrompt?): ByteArray {
        prompt?.let { say("  [biometric prompt] ${it.title}: ${it.summary} -> fingerprint accepted") }
        return inner.sign(alias, purpose, message, prompt)
    }
    override suspend fun agree(alias: String, peerPublicKey: ByteArray): ByteArray = inner.agree(alias, peerPublicKey)
    override suspend fun deleteKey(alias: String) {
        inner.deleteKey(alias)
        save()
    }

    fun aliases(): List<String> = inner.aliases()
    fun signatures(purpose: KeyPurpose): ULong = inner.signatureCount(purpose)

    @Synchronized
    private fun save() {
        try {
            writePrivate(file, inner.exportState())
        } catch (e: Exception) {
            throw KeyStoreException.Other("cannot persist the key store: ${e.message}")
        }
    }
}

/**
 * Push registration: the token the server sends to, and the mock service's device
 * side. For Web Push also the subscription id at the mock and the subscription keys
 * (what a UnifiedPush app keeps in its private storage).
 */
data class PushRegistration(
    val token: String,
    val inbox: String,
    val subscription: String? = null,
    val webPushKeys: WebPushKeys? = null,
)

class PhoneStorage(val dir: File) {
    private val keysFile = File(dir, "keystore.bin")
    private val stateFile = File(dir, "enrollment.json")
    private val pushFile = File(dir, "push.properties")

    fun enrolled(): Boolean = stateFile.exists() && keysFile.exists()

    fun keyStore(): FileBackedKeyStore {
        dir.mkdirs()
        runCatching { Files.setPosixFilePermissions(dir.toPath(), PosixFilePermissions.fromString("rwx------")) }
        return FileBackedKeyStore(keysFile)
    }

    fun loadState(): EnrollmentState = enrollmentStateFromJson(stateFile.readText())

    fun saveState(state: EnrollmentState) = writePrivate(stateFile, enrollmentStateToJson(state).toByteArray())

    fun loadPush(): PushRegistration? {
        if (!pushFile.exists()) return null
        val p = Properties().apply { pushFile.inputStream().use { load(it) } }
        val token = p.getProperty("token") ?: return null
        val keys = p.getProperty("p256dh")?.let {
            WebPushKeys(p256dh = it, auth = p.getProperty("auth"), privateKey = p.getProperty("private_key"))
        }
        return PushRegistration(token, p.getProperty("inbox") ?: return null, p.getProperty("subscription"), keys)
    }

    fun savePush(push: PushRegistration?) {
        if (push == null) {
            pushFile.delete()
            return
        }
        val p = Properties().apply {
            setProperty("token", push.token)
            setProperty("inbox", push.inbox)
            push.subscription?.let { setProperty("subscription", it) }
            push.webPushKeys?.let {
                setProperty("p256dh", it.p256dh)
                setProperty("auth", it.auth)
                setProperty("private_key", it.privateKey)
            }
        }
        val out = java.io.ByteArrayOutputStream().also { p.store(it, "push registration of the virtual phone") }
        writePrivate(pushFile, out.toByteArray())
    }

    /** Forgets everything: state, keys, push registration. */
    fun wipe() {
        listOf(stateFile, keysFile, pushFile).forEach { it.delete() }
    }

    fun describe(): String = dir.path
}
