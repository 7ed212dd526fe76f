// How the suspend `KeyStore.sign` reaches an Activity to show the BiometricPrompt.
//
// The SDK calls `sign(alias, APPROVAL_SIGNING, message, prompt)` from `approve(view)`,
// which the app calls from its approval screen, so an activity is in the foreground. The
// gate tracks the resumed FragmentActivity through ActivityLifecycleCallbacks
// (registered once in Application.onCreate), switches to the main thread, shows one
// BiometricPrompt with the CryptoObject wrapping that one Signature, and suspends until
// the user answers. Cancelling the coroutine (the user leaves the screen) cancels the
// prompt.
//
//   class IssuerApp : Application() {
//       val biometricGate = BiometricGate()
//       override fun onCreate() {
//           super.onCreate()
//           registerActivityLifecycleCallbacks(biometricGate)
//       }
//   }

package com.example.issuer.pushauth

import android.app.Activity
import android.app.Application
import android.os.Bundle
import androidx.biometric.BiometricManager.Authenticators.BIOMETRIC_STRONG
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import java.lang.ref.WeakReference
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withContext
import uniffi.pushauth.KeyStoreException
import uniffi.pushauth.SigningPrompt

class BiometricGate(
    private val cancelLabel: String = "Cancel",
) : Application.ActivityLifecycleCallbacks {
    @Volatile private var resumed: WeakReference<FragmentActivity>? = null

    /**
     * Shows the prompt for one approval-key operation and returns the authorised
     * CryptoObject. Throws `KeyStoreException`: `UserCancelled` (cancel, back, negative
     * button, screen left), `AuthenticationFailed` (timed out without a match: retry),
     * `Unavailable` (lockout, no hardware, no foreground activity).
     */
    suspend fun authenticate(prompt: SigningPrompt, crypto: BiometricPrompt.CryptoObject): BiometricPrompt.CryptoObject =
        withContext(Dispatchers.Main.immediate) {
            val activity = resumed?.get()
                ?: throw KeyStoreException.Unavailable("no activity in the foreground to show the biometric prompt")
            val info = BiometricPrompt.PromptInfo.Builder()
                .setTitle(prompt.title)
                .setSubtitle(prompt.summary) // "Approve EUR 49.90 at Example Shop"
                .setAllowedAuthenticators(BIOMETRIC_STRONG) // what the key accepts; no PIN fallback
                .setNegativeButtonText(cancelLabel)
                .setConfirmationRequired(true) // face unlock: an explicit tap to approve
                .build()
            suspendCancellableCoroutine { continuation ->
                val callback = object : BiometricPrompt.AuthenticationCallback() {
                    override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                        val authorised = result.cryptoObject
                        if (authorised == null) {
                            continuation.resumeWithException(KeyStoreException.Other("prompt returned no CryptoObject"))
                        } else {
                            continuation.resume(authorised)
                        }
                    }

                    override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                        if (continuation.isActive) continuation.resumeWithException(mapError(errorCode))
                    }

                    // onAuthenticationFailed (one rejected finger/face) is not final: the
                    // prompt stays up and lets the user try again.
                }
                val biometricPrompt = BiometricPrompt(activity, ContextCompat.getMainExecutor(activity), callback)
                biometricPrompt.authenticate(info, crypto)
                continuation.invokeOnCancellation { biometricPrompt.cancelAuthentication() }
            }
        }

    private fun mapError(code: Int): KeyStoreException = when (code) {
        BiometricPrompt.ERROR_USER_CANCELED,
        BiometricPrompt.ERROR_NEGATIVE_BUTTON,
        BiometricPrompt.ERROR_CANCELED,
        -> KeyStoreException.UserCancelled()
        BiometricPrompt.ERROR_TIMEOUT -> KeyStoreException.AuthenticationFailed()
        BiometricPrompt.ERROR_LOCKOUT ->
            KeyStoreException.Unavailable("too many attempts: biometrics locked for a while")
        BiometricPrompt.ERROR_LOCKOUT_PERMANENT ->
            KeyStoreException.Unavailable("biometrics locked: unlock the phone with its PIN first")
        BiometricPrompt.ERROR_NO_BIOMETRICS,
        BiometricPrompt.ERROR_HW_NOT_PRESENT,
        BiometricPrompt.ERROR_HW_UNAVAILABLE,
        BiometricPrompt.ERROR_SECURITY_UPDATE_REQUIRED,
        -> KeyStoreException.Unavailable("biometric prompt unavailable (error $code)")
        else -> KeyStoreException.Other("biometric prompt error $code")
    }

    // ---- foreground activity tracking --------------------------------------------------

    override fun onActivityResumed(activity: Activity) {
        if (activity is FragmentActivity) resumed = WeakReference(activity)
    }

    override fun onActivityPaused(activity: Activity) {
        if (resumed?.get() === activity) resumed = null
    }

    override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
    override fun onActivityStarted(activity: Activity) = Unit
    override fun onActivityStopped(activity: Activity) = Unit
    override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
    override fun onActivityDestroyed(activity: Activity) = Unit
}
