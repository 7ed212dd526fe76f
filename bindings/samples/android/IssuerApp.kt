// How the pieces are wired in an issuer app (the names the other samples use):
// Application -> BiometricGate (foreground activity for the approval prompt) ->
// AndroidKeystoreKeyStore -> OkHttpTransport -> PushAuthClient; the enrollment state in
// no-backup app storage; the approval screen approving exactly the view it showed.

package com.example.issuer.pushauth

import android.app.Application
import android.app.NotificationChannel
import android.app.NotificationManager
import android.os.Bundle
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import java.io.File
import kotlinx.coroutines.launch
import okhttp3.OkHttpClient
import uniffi.pushauth.ChallengeView
import uniffi.pushauth.ClientOptions
import uniffi.pushauth.DenyReason
import uniffi.pushauth.EnrollmentState
import uniffi.pushauth.PushAuthClient
import uniffi.pushauth.PushAuthException
import uniffi.pushauth.enrollmentStateFromJson
import uniffi.pushauth.enrollmentStateToJson

class IssuerApp : Application() {
    val biometricGate = BiometricGate()
    lateinit var pushAuth: PushAuthSdk
        private set

    override fun onCreate() {
        super.onCreate()
        registerActivityLifecycleCallbacks(biometricGate)
        pushAuth = PushAuthSdk(this, biometricGate)
        getSystemService(NotificationManager::class.java).createNotificationChannel(
            NotificationChannel(PushAuthMessagingService.CHANNEL_ID, "Payment confirmations", NotificationManager.IMPORTANCE_HIGH),
        )
    }
}

class PushAuthSdk(app: Application, gate: BiometricGate) {
    val keyStore = AndroidKeystoreKeyStore(app, gate)
    private val transport = OkHttpTransport(OkHttpClient())

    // The issuer's link scheme (matches the server's [enrollment] deeplink_scheme).
    val options = ClientOptions(linkScheme = "mybank-pushauth")

    // noBackupFilesDir: a restored backup on a new phone must not carry an enrollment
    // whose keys stayed in the old phone's hardware (it would only get 401s). The state
    // holds no key material (aliases, ids, public keys, the pinned server key).
    private val stateFile = File(app.noBackupFilesDir, "pushauth-state.json")

    fun loadState(): EnrollmentState? =
        stateFile.takeIf { it.isFile }?.readText()?.let {
            try {
                enrollmentStateFromJson(it)
            } catch (e: PushAuthException) {
                null
            }
        }

    /** Store every state a call returns (enroll, rotation phases) before doing anything else. */
    fun saveState(state: EnrollmentState) {
        val tmp = File(stateFile.path + ".tmp")
        tmp.writeText(enrollmentStateToJson(state))
        tmp.renameTo(stateFile) // atomic on the same filesystem
    }

    fun forget() {
        stateFile.delete()
    }

    fun client(): PushAuthClient? =
        loadState()?.let { PushAuthClient.withTransport(it, keyStore, options, transport) }
}

/** The approval screen: shows the verified view, approves exactly that view. */
class ApproveActivity : AppCompatActivity() {
    private var shown: ChallengeView? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val id = intent.getStringExtra(EXTRA_CHALLENGE_ID) ?: return finish()
        val sdk = (application as IssuerApp).pushAuth
        lifecycleScope.launch {
            val client = sdk.client() ?: return@launch finish()
            // Device key: no prompt. The view is verified against the pinned server key.
            shown = client.challenge(id).also { render(it) } // amount, payee, merchant…
        }
    }

    /** The Approve button: the only place the approval key (one BiometricPrompt) is used. */
    fun onApprove() {
        val view = shown ?: return
        val sdk = (application as IssuerApp).pushAuth
        lifecycleScope.launch {
            try {
                sdk.client()?.approve(view, null)
                finish()
            } catch (e: PushAuthException.UserCancelled) {
                // Prompt dismissed: nothing was sent, the screen stays.
            } catch (e: PushAuthException.KeyInvalidated) {
                // Biometrics changed: approvals need a migration grant from another
                // enrolled phone or a new enrollment; declining still works.
                showReEnrollment()
            }
        }
    }

    /** "Not me": device key, no prompt. */
    fun onNotMe() {
        val view = shown ?: return
        val sdk = (application as IssuerApp).pushAuth
        lifecycleScope.launch {
            sdk.client()?.deny(view, DenyReason.NOT_ME)
            finish()
        }
    }

    private fun render(view: ChallengeView) = Unit // the app's UI
    private fun showReEnrollment() = Unit // the app's UI

    companion object {
        const val EXTRA_CHALLENGE_ID = "challenge_id"
    }
}
