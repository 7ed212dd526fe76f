// FirebaseMessagingService for pushauth: a few lines around the SDK's `parsePush`.
//
// - onMessageReceived: `parsePush` opens the private push with the AGREEMENT key only (no
//   prompt, works while locked, no network): a challenge becomes a notification with the
//   preview ("Approve EUR 49.90 at Example Shop?") that opens the approval screen; a
//   dismiss removes it (answered on another device, cancelled, expired). The approval
//   screen then fetches and verifies the server-signed challenge with the DEVICE key and
//   only the approve button asks for the biometric (APPROVAL key): the preview is never
//   what gets signed.
// - onNewToken: the new FCM token goes to the server from a WorkManager job with the
//   DEVICE key (no prompt), retried with backoff when offline.
//
//   <service android:name=".pushauth.PushAuthMessagingService" android:exported="false">
//       <intent-filter><action android:name="com.google.firebase.MESSAGING_EVENT" /></intent-filter>
//   </service>

package com.example.issuer.pushauth

import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import androidx.core.app.NotificationCompat
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import androidx.work.workDataOf
import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.pushauth.PushAuthException
import uniffi.pushauth.PushMessage
import uniffi.pushauth.parsePush

class PushAuthMessagingService : FirebaseMessagingService() {
    // Called on a background thread; parsePush needs no network (the agreement key
    // only), so waiting for it here is short. The timeout keeps a stuck key store from
    // holding the service past its few seconds.
    override fun onMessageReceived(message: RemoteMessage) {
        val sdk = (application as IssuerApp).pushAuth
        val state = sdk.loadState() // null: not enrolled (any more); parsePush still sorts the kind
        val parsed = runBlocking {
            withTimeoutOrNull(8_000) { parsePush(message.data, state, sdk.keyStore) }
        } ?: PushMessage.Unknown
        when (parsed) {
            is PushMessage.Challenge ->
                notify(
                    tag = parsed.challengeId,
                    // No preview (not decrypted): a generic text; the app fetches and
                    // verifies the challenge itself when opened.
                    text = parsed.preview?.let { "Approve ${it.summary}?" } ?: "You have a payment to confirm",
                    challengeId = parsed.challengeId,
                )
            is PushMessage.Dismiss -> notificationManager().cancel(parsed.challengeId, NOTIFICATION_ID)
            is PushMessage.Unknown -> Unit // not ours, or a newer server's kind: nothing to show
        }
    }

    override fun onNewToken(token: String) {
        WorkManager.getInstance(this).enqueueUniqueWork(
            "pushauth-push-token",
            ExistingWorkPolicy.REPLACE,
            OneTimeWorkRequestBuilder<PushTokenWorker>()
                .setInputData(workDataOf(PushTokenWorker.TOKEN to token))
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build(),
        )
    }

    private fun notify(tag: String, text: String, challengeId: String?) {
        val open = Intent(this, ApproveActivity::class.java)
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TOP)
            .apply { challengeId?.let { putExtra(ApproveActivity.EXTRA_CHALLENGE_ID, it) } }
        val pending = PendingIntent.getActivity(
            this, tag.hashCode(), open, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        val notification = NotificationCompat.Builder(this, CHANNEL_ID)
            .setSmallIcon(R.drawable.ic_notification)
            .setContentTitle("Payment confirmation")
            .setContentText(text)
            .setCategory(NotificationCompat.CATEGORY_MESSAGE)
            .setPriority(NotificationCompat.PRIORITY_HIGH)
            .setVisibility(NotificationCompat.VISIBILITY_PRIVATE) // amount hidden on the lock screen
            .setAutoCancel(true)
            .setContentIntent(pending)
            .build()
        notificationManager().notify(tag, NOTIFICATION_ID, notification)
    }

    private fun notificationManager() = getSystemService(Context.NOTIFICATION_SERVICE) as NotificationManager

    companion object {
        const val CHANNEL_ID = "pushauth-approvals" // created in IssuerApp.onCreate
        private const val NOTIFICATION_ID = 1
    }
}

/** Sends a new FCM token with the device key; no user interaction, safe in the background. */
class PushTokenWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val token = inputData.getString(TOKEN) ?: return Result.failure()
        val sdk = (applicationContext as IssuerApp).pushAuth
        val client = sdk.client() ?: return Result.success() // not enrolled: nothing to update
        return try {
            client.updatePushToken(token, null) // FCM has no APNs environment
            Result.success()
        } catch (e: PushAuthException.Network) {
            Result.retry()
        } catch (e: PushAuthException) {
            Result.failure() // locked, revoked or not enrolled: the app shows it on next open
        }
    }

    companion object {
        const val TOKEN = "token"
    }
}
