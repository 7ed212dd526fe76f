// The JNI entry point behind org.pushauth.sdk.PushAuthAndroid.init(context), called on
// the host JVM: the class below declares the same native method as the AAR's
// PushAuthAndroid (bindings/android/src/main/kotlin/org/pushauth/sdk/PushAuthAndroid.kt;
// that file needs android.content.Context, so it is not compiled here), so the symbol
// the AAR binds is the one tested. On the host the function does the JNI work of
// rustls-platform-verifier's init_with_env (class loader, VM, global references).
package org.pushauth.sdk

import java.io.File

object PushAuthAndroid {
    @JvmStatic
    external fun nativeInit(context: Any)
}

/** What an Android Context offers the verifier: its class loader. */
class HostContext {
    fun getClassLoader(): ClassLoader = HostContext::class.java.classLoader
}

fun androidInitTests(r: pushauth.tests.Runner) {
    r.test("android: the JNI init entry point accepts a context and refuses other objects") {
        val dir = System.getProperty("jna.library.path")
        System.load(File(dir, System.mapLibraryName("pushauth")).absolutePath)
        PushAuthAndroid.nativeInit(HostContext())
        PushAuthAndroid.nativeInit(HostContext()) // idempotent
        val refused = try {
            PushAuthAndroid.nativeInit("not a context")
            null
        } catch (e: RuntimeException) {
            e
        }
        pushauth.tests.check(refused != null) { "an object without getClassLoader() must throw" }
        pushauth.tests.check(refused!!.message.orEmpty().contains("Rust error")) { "message: ${refused.message}" }
    }
}
