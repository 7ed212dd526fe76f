//! Private push payloads (protocol §7), for a Notification Service Extension (iOS)
//! or a `FirebaseMessagingService` (Android): synchronous, no network.

use std::sync::Arc;

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
            payee: d.txn.payee.as_ref().map(|p| p.as_str().to_owned()),
            deadline: d.exp.seconds(),
            otp: d.otp.clone(),
        }
    }
}

/// Decrypts the `enc` member of a push (`{"cid": …, "enc": …}`) with the device's
/// agreement key. `challenge_id` is the push's `cid`: an envelope made for another
/// challenge does not open.
#[uniffi::export]
pub fn decrypt_push(
    state: EnrollmentState,
    key_store: Arc<dyn KeyStore>,
    challenge_id: String,
    envelope: String,
) -> Result<PushPreview, PushAuthError> {
    let enrollment = Enrollment::try_from(&state)?;
    Ok(PushPreview::from(&device::open_push(
        key_store,
        enrollment.agreement,
        &challenge_id,
        &envelope,
    )?))
}
