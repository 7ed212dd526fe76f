//! The Android entry point of the built-in HTTPS client's certificate verification.
//!
//! On Android, `rustls-platform-verifier` (behind reqwest's `rustls` feature) checks
//! server certificates with the platform's `X509TrustManager` (system and user CAs,
//! the app's Network Security Config) by calling into the JVM, so it needs the
//! application `Context` once, before the first request. The AAR's
//! `org.pushauth.sdk.PushAuthAndroid.init(context)` calls this JNI function.
//!
//! Elsewhere (the host, where the JVM test suite calls it) the function does the same
//! JNI work (the context's class loader, a global reference, the VM) and keeps nothing:
//! the platform verifier of those systems needs no initialisation.

use jni::EnvUnowned;
use jni::objects::{JClass, JObject};

/// `org.pushauth.sdk.PushAuthAndroid.nativeInit(Object context)`: initialises the
/// platform verifier with the application context. Idempotent. Throws
/// `java.lang.RuntimeException` (and changes nothing) when `context` has no
/// `getClassLoader()`.
#[allow(
    unsafe_code,
    reason = "a JNI entry point must keep its Java_<class>_<method> symbol name; the body is safe jni-rs"
)]
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pushauth_sdk_PushAuthAndroid_nativeInit<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    unowned
        .with_env(|env| -> Result<(), jni::errors::Error> { init(env, context) })
        .resolve::<jni::errors::ThrowRuntimeExAndDefault>();
}

#[cfg(target_os = "android")]
fn init(env: &mut jni::Env<'_>, context: JObject<'_>) -> Result<(), jni::errors::Error> {
    rustls_platform_verifier::android::init_with_env(env, context)
}

#[cfg(not(target_os = "android"))]
fn init(env: &mut jni::Env<'_>, context: JObject<'_>) -> Result<(), jni::errors::Error> {
    use jni::objects::JClassLoader;
    use jni::{jni_sig, jni_str};
    // What `init_with_env` does with the context before storing it.
    let loader = env
        .call_method(
            &context,
            jni_str!("getClassLoader"),
            jni_sig!(() -> JClassLoader),
            &[],
        )?
        .l()?;
    let loader = env.cast_local::<JClassLoader>(loader)?;
    let _vm = env.get_java_vm()?;
    let _context = env.new_global_ref(context)?;
    let _loader = env.new_global_ref(loader)?;
    Ok(())
}
