//! Push payloads (protocol §7), for a Notification Service Extension (iOS) or a
//! `FirebaseMessagingService` (Android): no network, agreement key only.

use std::collections::HashMap;
use std::sync::Arc;

use pushauth_core::ids::ChallengeId;
use pushauth_core::push::PushDetails;

use super::enrollment::EnrollmentState;
use super::error::PushAuthError;
use super::key_store::KeyStore;
use crate::device;
use crate::enrollment::Enrollment;

/// What a push says, for the notification text ("Approve EUR 49.90 at Example
/// Shop?"). A preview only: the app must fetch and verify the challenge
/// (`PushAuthClient::challenge`) before the user can approve.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushPreview {
    /// The challenge id.
    pub challenge_id: String,
    /// One line: `EUR 49.90 at Example Shop`.
    pub summary: String,
    /// `EUR 49.90`, when there is an amount.
    pub amount_display: Option<String>,
    /// The merchant, when given.
    pub payee: Option<String>,
    /// Deadline, Unix seconds.
    pub deadline: i64,
    /// A one-time code from the processor to show, if any.
    pub otp: Option<String>,
}

impl From<&PushDetails> for PushPreview {
    fn from(d: &PushDetails) -> Self {
        PushPreview {
            challenge_id: d.challenge.as_str().to_owned(),
            summary: d.summary(),
            amount_display: d.txn.display_amount(),
            payee: d.txn.payee().map(|p| p.as_str().to_owned()),
            deadline: d.exp.seconds(),
            otp: d.otp.clone(),
        }
    }
}

/// A push, parsed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushMessage {
    /// A new challenge: show a notification (with `preview` when it decrypted;
    /// otherwise a generic text) and open the app on it.
    Challenge {
        /// The challenge id (notification tag / thread id).
        challenge_id: String,
        /// The decrypted preview, when the push carried one and it opened.
        preview: Option<PushPreview>,
    },
    /// The challenge was answered elsewhere, cancelled or expired: remove its
    /// notification.
    Dismiss {
        /// The challenge id.
        challenge_id: String,
    },
    /// Not a pushauth push (or a kind this SDK does not know): ignore it.
    Unknown,
}

/// Parses a push's data (APNs `userInfo` string members, FCM `RemoteMessage.data`):
/// `{"cid", "kind": "challenge"|"dismiss", "enc"?}`. With the state and key store,
/// a challenge's `enc` is decrypted into its preview (a failure leaves it `None`).
#[uniffi::export(async_runtime = "tokio")]
pub async fn parse_push(
    data: HashMap<String, String>,
    state: Option<EnrollmentState>,
    key_store: Option<Arc<dyn KeyStore>>,
) -> PushMessage {
    let Some(id) = data.get("cid").filter(|c| ChallengeId::parse(c).is_ok()) else {
        return PushMessage::Unknown;
    };
    match data.get("kind").map(String::as_str) {
        Some("dismiss") => PushMessage::Dismiss {
            challenge_id: id.clone(),
        },
        // Servers before `kind` existed sent challenges only.
        Some("challenge") | None => {
            let preview = match (data.get("enc"), state, key_store) {
                (Some(enc), Some(state), Some(store)) => {
                    decrypt_push(state, store, id.clone(), enc.clone())
                        .await
                        .ok()
                }
                _ => None,
            };
            PushMessage::Challenge {
                challenge_id: id.clone(),
                preview,
            }
        }
        Some(_) => PushMessage::Unknown,
    }
}

/// Decrypts the `enc` member of a push with the device's agreement key.
/// `challenge_id` is the push's `cid`: an envelope made for another challenge does
/// not open.
#[uniffi::export(async_runtime = "tokio")]
pub async fn decrypt_push(
    state: EnrollmentState,
    key_store: Arc<dyn KeyStore>,
    challenge_id: String,
    envelope: String,
) -> Result<PushPreview, PushAuthError> {
    let enrollment = Enrollment::try_from(&state)?;
    Ok(PushPreview::from(
        &device::open_push(
            key_store.as_ref(),
            &enrollment.agreement,
            &challenge_id,
            &envelope,
        )
        .await?,
    ))
}
