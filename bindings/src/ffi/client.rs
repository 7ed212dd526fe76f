//! `PushAuthClient`: the enrolled device's calls to its server (protocol §6.1).
//! Every method is one line of delegation to [`crate::device::Device`].

use std::sync::Arc;

use pushauth_core::challenge::VerifiedChallenge;
use pushauth_core::proof::Decision;

use super::enrollment::{ClientOptions, EnrollmentState};
use super::error::PushAuthError;
use super::key_store::KeyStore;
use super::push::PushPreview;
use super::types::{DenyReason, Provider, PushEnvironment, TransactionKind};
use crate::device::Device;
use crate::enrollment::Enrollment;

/// A verified server challenge, ready to show: built only from a challenge whose
/// signature, issuer, audience and deadline were checked against the pinned key.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChallengeView {
    /// The challenge id.
    pub id: String,
    /// Where it came from.
    pub provider: Provider,
    /// What is authenticated.
    pub kind: TransactionKind,
    /// `EUR 49.90`, when the processor gave an amount.
    pub amount_display: Option<String>,
    /// ISO 4217 code, with the amount.
    pub currency: Option<String>,
    /// Amount in minor units, with the currency.
    pub amount_minor: Option<i64>,
    /// The merchant, when given.
    pub payee: Option<String>,
    /// Deadline, Unix seconds: no answer is accepted after it.
    pub deadline: i64,
    /// Opaque input for the processor's own SDK (Adyen `sdkInput`), if any.
    pub processor_input: Option<String>,
    /// The transaction digest the approval will sign (for audit screens).
    pub transaction_digest: String,
}

impl From<&VerifiedChallenge> for ChallengeView {
    fn from(v: &VerifiedChallenge) -> Self {
        let c = v.claims();
        ChallengeView {
            id: c.jti.as_str().to_owned(),
            provider: c.txn.provider.into(),
            kind: c.txn.kind.into(),
            amount_display: c.txn.display_amount(),
            currency: c.txn.amount.map(|m| m.currency().code().to_owned()),
            amount_minor: c.txn.amount.map(|m| m.minor()),
            payee: c.txn.payee.as_ref().map(|p| p.as_str().to_owned()),
            deadline: c.exp.seconds(),
            processor_input: c.pin.clone(),
            transaction_digest: v.digest().to_string(),
        }
    }
}

/// The server's answer to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DecisionOutcome {
    /// The approval was recorded.
    Approved,
    /// The denial was recorded.
    Denied,
}

fn outcome(status: &str) -> Result<DecisionOutcome, PushAuthError> {
    match status {
        "approved" => Ok(DecisionOutcome::Approved),
        "denied" => Ok(DecisionOutcome::Denied),
        _ => Err(PushAuthError::Internal {
            detail: "unexpected decision status from the server".to_owned(),
        }),
    }
}

/// An enrolled device. Create it from the stored [`EnrollmentState`] and the app's
/// [`KeyStore`]; every network method is async (Kotlin `suspend`, Swift `async`,
/// Python `async def`).
#[derive(Debug, uniffi::Object)]
pub struct PushAuthClient {
    inner: Device,
}

#[uniffi::export(async_runtime = "tokio")]
impl PushAuthClient {
    /// A client with default options.
    #[uniffi::constructor]
    pub fn new(
        state: EnrollmentState,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, PushAuthError> {
        Self::with_options(state, key_store, ClientOptions::default())
    }

    /// A client with options (timeouts, trusted roots, proof lifetime…).
    #[uniffi::constructor]
    pub fn with_options(
        state: EnrollmentState,
        key_store: Arc<dyn KeyStore>,
        options: ClientOptions,
    ) -> Result<Arc<Self>, PushAuthError> {
        Ok(Arc::new(Self {
            inner: Device::new(Enrollment::try_from(&state)?, key_store, options.into())?,
        }))
    }

    /// The current state; store it again after [`PushAuthClient::rotate_key`].
    pub fn state(&self) -> Result<EnrollmentState, PushAuthError> {
        Ok(EnrollmentState::from(&self.inner.state()?))
    }

    /// Sends a new APNs / FCM token (`PUT /v1/device/push-token`).
    pub async fn update_push_token(
        &self,
        push_token: String,
        environment: Option<PushEnvironment>,
    ) -> Result<(), PushAuthError> {
        Ok(self
            .inner
            .update_push_token(&push_token, environment.map(PushEnvironment::wire))
            .await?)
    }

    /// The pending challenges, each verified against the pinned server key.
    pub async fn pending_challenges(&self) -> Result<Vec<ChallengeView>, PushAuthError> {
        Ok(self
            .inner
            .pending()
            .await?
            .iter()
            .map(ChallengeView::from)
            .collect())
    }

    /// Fetches and verifies one challenge: what to show before approve / deny.
    pub async fn challenge(&self, id: String) -> Result<ChallengeView, PushAuthError> {
        Ok(ChallengeView::from(&self.inner.challenge(&id).await?))
    }

    /// Approves: signs the approval proof over the challenge as shown (the key store
    /// asks for biometrics) and sends it, with the processor SDK's output if any.
    pub async fn approve(
        &self,
        id: String,
        processor_output: Option<String>,
    ) -> Result<DecisionOutcome, PushAuthError> {
        outcome(
            &self
                .inner
                .decide(&id, Decision::Approve, None, processor_output)
                .await?,
        )
    }

    /// Denies, with a reason (`NotMe` reports possible fraud).
    pub async fn deny(
        &self,
        id: String,
        reason: DenyReason,
    ) -> Result<DecisionOutcome, PushAuthError> {
        outcome(
            &self
                .inner
                .decide(&id, Decision::Deny, Some(reason.into()), None)
                .await?,
        )
    }

    /// Replaces the signing key (both keys sign the change). Returns the new state,
    /// which the app must store.
    pub async fn rotate_key(&self) -> Result<EnrollmentState, PushAuthError> {
        Ok(EnrollmentState::from(&self.inner.rotate_key().await?))
    }

    /// Revokes this device on the server and deletes its keys. Delete the stored
    /// state afterwards.
    pub async fn unenroll(&self) -> Result<(), PushAuthError> {
        Ok(self.inner.unenroll().await?)
    }

    /// Decrypts a push for this device (see also the free function
    /// [`super::push::decrypt_push`] for notification extensions).
    pub fn decrypt_push(
        &self,
        challenge_id: String,
        envelope: String,
    ) -> Result<PushPreview, PushAuthError> {
        Ok(PushPreview::from(
            &self.inner.open_push(&challenge_id, &envelope)?,
        ))
    }
}

impl PushAuthClient {
    pub(crate) fn device(&self) -> &Device {
        &self.inner
    }
}
