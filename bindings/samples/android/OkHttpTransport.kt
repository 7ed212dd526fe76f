// The SDK's HTTP through the app's OkHttp client (the `HttpTransport` foreign trait), so
// HTTPS follows the app's rules: the platform trust store and Network Security Config
// (res/xml/network_security_config.xml: trust anchors, <pin-set> with a backup pin and an
// expiration date, no cleartext), optional OkHttp CertificatePinner, proxies, and a Play
// Integrity token header per request. Pass it to the client options (bindings/README.md);
// without it the SDK uses its built-in client (reqwest + rustls with Android's platform
// verifier, which also honours Network Security Config).
//
//   <application android:networkSecurityConfig="@xml/network_security_config" ...>
//
//   <network-security-config>
//     <base-config cleartextTrafficPermitted="false" />
//     <domain-config>
//       <domain includeSubdomains="false">pushauth.bank.example</domain>
//       <pin-set expiration="2027-06-30">
//         <pin digest="SHA-256">base64 SPKI hash of the issuing CA</pin>
//         <pin digest="SHA-256">base64 SPKI hash of the backup CA</pin>
//       </pin-set>
//     </domain-config>
//   </network-security-config>

package com.example.issuer.pushauth

import java.io.IOException
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.suspendCancellableCoroutine
import okhttp3.Call
import okhttp3.Callback
import okhttp3.Headers
import okhttp3.MediaType.Companion.toMediaTypeOrNull
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody.Companion.toRequestBody
import okhttp3.Response
import uniffi.pushauth.HttpHeader
import uniffi.pushauth.HttpRequest
import uniffi.pushauth.HttpResponse
import uniffi.pushauth.HttpTransport
import uniffi.pushauth.TransportException

/**
 * @param client the app's OkHttpClient (shares its connection pool, interceptors, pinner).
 *   Redirects are switched off: a signed request proof binds method and URL, and the SDK
 *   treats a 3xx as an answer, never as a reason to resend the proof elsewhere.
 * @param extraHeaders per-request headers the app adds, e.g. a Play Integrity token bound
 *   to the request ([playIntegrityRequestHash]); must not replace Authorization.
 */
class OkHttpTransport(
    client: OkHttpClient,
    private val extraHeaders: suspend (HttpRequest) -> List<HttpHeader> = { emptyList() },
    private val maxResponseBytes: Long = 1L shl 20,
) : HttpTransport {
    private val client = client.newBuilder()
        .followRedirects(false)
        .followSslRedirects(false)
        .callTimeout(30, TimeUnit.SECONDS)
        .build()

    override suspend fun send(request: HttpRequest): HttpResponse {
        val headers = Headers.Builder()
        request.headers.forEach { headers.add(it.name, it.value) }
        extraHeaders(request).forEach {
            require(!it.name.equals("Authorization", ignoreCase = true)) { "Authorization belongs to the SDK" }
            headers.add(it.name, it.value)
        }
        val body = when {
            request.body.isNotEmpty() ->
                request.body.toRequestBody(headers["Content-Type"]?.toMediaTypeOrNull())
            request.method == "POST" || request.method == "PUT" || request.method == "PATCH" ->
                ByteArray(0).toRequestBody(null)
            else -> null
        }
        val call = client.newCall(
            Request.Builder().url(request.url).headers(headers.build()).method(request.method, body).build(),
        )
        val response = call.await()
        return response.use {
            // OkHttp 4 declares body nullable, OkHttp 5 not: the elvis covers both.
            val bytes = (it.body ?: throw TransportException.NoAnswer("no response body")).source().let { source ->
                if (!source.request(maxResponseBytes + 1)) source.buffer.readByteArray()
                else throw TransportException.NoAnswer("response larger than $maxResponseBytes bytes")
            }
            HttpResponse(
                status = it.code.toUShort(),
                headers = it.headers.map { (name, value) -> HttpHeader(name, value) },
                body = bytes,
            )
        }
    }

    private suspend fun Call.await(): Response = suspendCancellableCoroutine { continuation ->
        enqueue(object : Callback {
            override fun onResponse(call: Call, response: Response) = continuation.resume(response)
            override fun onFailure(call: Call, e: IOException) {
                // No URL, header or body in the message: it may end up in logs.
                continuation.resumeWithException(TransportException.NoAnswer("${e.javaClass.simpleName}"))
            }
        })
        continuation.invokeOnCancellation { cancel() }
    }

    companion object {
        /**
         * The `requestHash` for a Play Integrity standard request bound to this HTTP
         * request (SHA-256 over method, URL and body, base64url): the server recomputes it
         * and compares it with the verdict's requestDetails.requestHash.
         *
         *   val token = integrityProvider.request(
         *       StandardIntegrityTokenRequest.builder()
         *           .setRequestHash(OkHttpTransport.playIntegrityRequestHash(request))
         *           .build()).await().token()
         *   listOf(HttpHeader("X-Play-Integrity", token))
         */
        fun playIntegrityRequestHash(request: HttpRequest): String {
            val digest = MessageDigest.getInstance("SHA-256").run {
                update(request.method.toByteArray())
                update(0)
                update(request.url.toByteArray())
                update(0)
                digest(request.body)
            }
            return android.util.Base64.encodeToString(
                digest,
                android.util.Base64.URL_SAFE or android.util.Base64.NO_WRAP or android.util.Base64.NO_PADDING,
            )
        }
    }
}
