// Calls into libpushauth through the generated bindings after the jar was shrunk and
// obfuscated (check-packaging.sh, "consumer-rules.pro on minified code"). It uses only
// calls whose shape is stable across SDK versions: objects (handles), constructors,
// byte and string buffers both ways, lists, and errors lifted from Rust.

package probe

import uniffi.pushauth.KeyStoreException
import uniffi.pushauth.PushAuthException
import uniffi.pushauth.SoftwareKeyStore
import uniffi.pushauth.jwkThumbprint
import uniffi.pushauth.normalizeSignature
import uniffi.pushauth.publicKeyJwk

/** The P-256 base point, uncompressed SEC1. */
private val G = (
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" +
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    ).chunked(2).map { it.toInt(16).toByte() }.toByteArray()

fun main() {
    val store = SoftwareKeyStore()
    check(store.aliases().isEmpty()) { "a new key store has keys" }
    val again = SoftwareKeyStore.importState(store.exportState())
    check(again.aliases().isEmpty()) { "export/import changed the key store" }

    val jwk = publicKeyJwk(G)
    check(jwk.contains("\"P-256\"")) { "unexpected JWK $jwk" }
    check(jwkThumbprint(jwk).length == 43) { "unexpected thumbprint" }

    try {
        normalizeSignature(byteArrayOf(1, 2, 3))
        error("a 3-byte signature was accepted")
    } catch (e: PushAuthException) {
        // lifted from a RustBuffer through RustCallStatus
    }
    try {
        SoftwareKeyStore.importState("not an export".toByteArray())
        error("a bad export was accepted")
    } catch (e: KeyStoreException) {
        // ditto, another error type
    }
    println("probe: ok")
}
