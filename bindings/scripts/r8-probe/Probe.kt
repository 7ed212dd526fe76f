package probe

import uniffi.pushauth.*

fun main() {
    val store = SoftwareKeyStore()
    val public = store.createSigningKey("probe")
    val signature = store.sign("probe", "message".toByteArray())
    val raw = normalizeSignature(signature)
    check(public.size == 65 && raw.size == 64)
    try {
        parseEnrollmentLink("not a link")
        error("accepted a bad link")
    } catch (e: PushAuthException.InvalidInput) {
        // error lifted through RustBuffer + RustCallStatus
    }
    println("probe: ok")
}
