package org.pushauth.sdk

import android.content.Context

/**
 * Android set-up of the SDK's built-in HTTPS client.
 *
 * The built-in client verifies server certificates with the platform's trust manager
 * (system and user CAs, the app's Network Security Config) through
 * rustls-platform-verifier, which calls into the JVM and needs the application
 * [Context] once. Call [init] in `Application.onCreate()`, before the first SDK call
 * that reaches the network; it is idempotent and thread-safe. Apps that pass their own
 * `HttpTransport` (OkHttp) to the SDK do not need it.
 */
object PushAuthAndroid {
    @Volatile
    private var initialised = false

    /** Initialises certificate verification with the application context. */
    @JvmStatic
    @Synchronized
    fun init(context: Context) {
        if (initialised) return
        // The same library JNA loads for the generated bindings (uniffi cdylib "pushauth").
        System.loadLibrary("pushauth")
        nativeInit(context.applicationContext)
        initialised = true
    }

    /** bindings/src/android.rs; throws RuntimeException when the context is unusable. */
    @JvmStatic
    private external fun nativeInit(context: Any)
}
