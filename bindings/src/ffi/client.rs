//! `PushAuthClient`: the enrolled device's calls to its server (protocol §6.1).
//! Every method is a few lines of delegation to [`crate::device::Device`] and its
//! flows (`decision`, `rotation`).

use std::sync::Arc;

use pushauth_core::challenge::VerifiedChallenge;

use super::enrollment::{ClientOptions, EnrollmentState};
use super::error::PushAuthError;
use super::key_store::{KeyPurpose, KeyStore};
use super::push::PushPreview;
use super::transaction::{DisplayField, Transaction};
use super::transport::HttpTransport;
use super::types::{DenyReason, Provider, PushEnvironment, TransactionKind};
use crate::device::{self, Device, Settings, now};
use crate::enrollment::Enrollment;
use crate::error::Error;

/// A verified server challenge, ready to show: built only from a challenge whose
/// signature, issuer, audience and deadline were checked against the pinned key.
/// Pass it back unchanged to `approve` / `deny`: they sign exactly this.
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
    /// One line for the screen and the prompt: `EUR 49.90 at Example Shop`.
    pub summary: String,
    /// Every line of the approval screen, in order: amount, payee, merchant country
    /// and address, date, card, operation, then members this SDK version does not
    /// know (all of them are bound by the approval's digest).
    pub details: Vec<DisplayField>,
    /// The whole transaction as received (known fields and unknown members).
    pub transaction: Transaction,
    /// Deadline, Unix seconds: no answer is accepted after it.
    pub deadline: i64,
    /// Opaque input for the processor's own SDK (Adyen `sdkInput`), if any.
    pub processor_input: Option<String>,
    /// The transaction digest the approval will sign (for audit screens).
    pub transaction_digest: String,
    /// The server-signed challenge this view was verified from (what a decision
    /// re-verifies and signs; not secret).
    pub token: String,
}

impl ChallengeView {
    pub(crate) fn new(v: &VerifiedChallenge, token: String) -> Self {
        let c = v.claims();
        ChallengeView {
            id: c.jti.as_str().to_owned(),
            provider: c.txn.provider().into(),
            kind: c.txn.kind().into(),
            amount_display: c.txn.display_amount(),
            currency: c.txn.amount().map(|m| m.currency().code().to_owned()),
            amount_minor: c.txn.amount().map(|m| m.minor()),
            payee: c.txn.payee().map(|p| p.as_str().to_owned()),
            summary: crate::decision::summary(v),
            details: c
                .txn
                .display_fields()
                .iter()
                .map(DisplayField::from)
                .collect(),
            transaction: Transaction::from(&c.txn),
            deadline: c.exp.seconds(),
            processor_input: c.pin.clone(),
            transaction_digest: v.digest().to_string(),
            token,
        }
    }
}

/// The server's answer to a decision.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DecisionOutcome {
    /// The approval was recorded.
    Approved,
    /// The denial was recorded.
    Denied,
    /// A status this SDK version does not know (show it generically).
    Other {
        /// The server's status.
        status: String,
    },
}

fn outcome(status: String) -> DecisionOutcome {
    match status.as_str() {
        "approved" => DecisionOutcome::Approved,
        "denied" => DecisionOutcome::Denied,
        _ => DecisionOutcome::Other { status },
    }
}

/// A single-use activation code for a new device, from a migration grant.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MigrationCode {
    /// The activation code (type it on the new phone).
    pub code: String,
    /// The enrollment deeplink (show it as a QR code to the new phone).
    pub deeplink: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

impl From<crate::api::MigrationAnswer> for MigrationCode {
    fn from(a: crate::api::MigrationAnswer) -> Self {
        MigrationCode {
            code: a.code,
            deeplink: a.deeplink,
            expires_at: a.expires_at,
        }
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
    /// A client with default options and the built-in HTTP client.
    #[uniffi::constructor]
    pub fn new(
        state: EnrollmentState,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, PushAuthError> {
        Self::with_transport(state, key_store, ClientOptions::default(), None)
    }

    /// A client with options (timeouts, trusted roots, proof lifetime…).
    #[uniffi::constructor]
    pub fn with_options(
        state: EnrollmentState,
        key_store: Arc<dyn KeyStore>,
        options: ClientOptions,
    ) -> Result<Arc<Self>, PushAuthError> {
        Self::with_transport(state, key_store, options, None)
    }

    /// A client sending through the app's HTTP transport (URLSession, OkHttp);
    /// `None`: the built-in client.
    #[uniffi::constructor]
    pub fn with_transport(
        state: EnrollmentState,
        key_store: Arc<dyn KeyStore>,
        options: ClientOptions,
        transport: Option<Arc<dyn HttpTransport>>,
    ) -> Result<Arc<Self>, PushAuthError> {
        let settings: Settings = options.into();
        let transport = device::transport_or_builtin(transport, &settings)?;
        let state = Enrollment::try_from(&state)?;
        Ok(Arc::new(Self {
            inner: Device::new(state, key_store, transport, settings),
        }))
    }

    /// The current state; store it whenever a call returns a new one.
    pub fn state(&self) -> Result<EnrollmentState, PushAuthError> {
        Ok(EnrollmentState::from(&self.inner.state()?))
    }

    /// Sends a new APNs / FCM token or Web Push subscription (`web_push_token`)
    /// (device key: no prompt, works in the background).
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

    /// The pending challenges, each verified against the pinned server key (device
    /// key: no prompt). Use it to recover challenges whose push was missed.
    pub async fn pending_challenges(&self) -> Result<Vec<ChallengeView>, PushAuthError> {
        Ok(self
            .inner
            .pending()
            .await?
            .into_iter()
            .map(|(v, token)| ChallengeView::new(&v, token))
            .collect())
    }

    /// Fetches and verifies one challenge (device key: no prompt): what to show
    /// before approve / deny.
    pub async fn challenge(&self, id: String) -> Result<ChallengeView, PushAuthError> {
        let (v, token) = self.inner.challenge(&id).await?;
        Ok(ChallengeView::new(&v, token))
    }

    /// Approves the challenge the user saw: re-verifies `view`, signs an approval
    /// proof over exactly its transaction with the approval key (one biometric
    /// prompt showing `Approve <summary>`) and sends it with the processor SDK's
    /// output, if any. Never fetches.
    pub async fn approve(
        &self,
        view: ChallengeView,
        processor_output: Option<String>,
    ) -> Result<DecisionOutcome, PushAuthError> {
        let verified = self.reverify(&view)?;
        Ok(outcome(
            self.inner.decide(&verified, None, processor_output).await?,
        ))
    }

    /// Denies the challenge the user saw (`NotMe` reports possible fraud). Signed
    /// by the device key: no prompt (unless `decline_requires_approval_key`).
    pub async fn deny(
        &self,
        view: ChallengeView,
        reason: DenyReason,
    ) -> Result<DecisionOutcome, PushAuthError> {
        let verified = self.reverify(&view)?;
        Ok(outcome(
            self.inner
                .decide(&verified, Some(reason.into()), None)
                .await?,
        ))
    }

    /// Denies by id, from a notification action ("Not me") without opening the
    /// app: fetches and verifies the challenge, then declines it (device key).
    pub async fn deny_by_id(
        &self,
        id: String,
        reason: DenyReason,
    ) -> Result<DecisionOutcome, PushAuthError> {
        let (verified, _) = self.inner.challenge(&id).await?;
        Ok(outcome(
            self.inner
                .decide(&verified, Some(reason.into()), None)
                .await?,
        ))
    }

    /// Rotation phase 1: creates a new key for `purpose` (`DeviceSigning` or
    /// `ApprovalSigning`) and returns the state with it pending. **Persist it**, then
    /// call [`PushAuthClient::complete_key_rotation`].
    pub async fn prepare_key_rotation(
        &self,
        purpose: KeyPurpose,
    ) -> Result<EnrollmentState, PushAuthError> {
        Ok(EnrollmentState::from(
            &self.inner.prepare_rotation(purpose).await?,
        ))
    }

    /// Rotation phase 2: sends the pending rotation (approval key: two prompts, new
    /// and old key) and returns the state with the new key; persist it. On a network
    /// error the key stays pending: call again later (idempotent, also from a new
    /// client after a restart). Without a pending rotation it returns the state.
    pub async fn complete_key_rotation(&self) -> Result<EnrollmentState, PushAuthError> {
        Ok(EnrollmentState::from(
            &self.inner.complete_rotation().await?,
        ))
    }

    /// Lets a new phone enroll for the same cardholder: signs a migration grant with
    /// the approval key (one prompt) valid `lifetime_secs` (30–600) and exchanges it
    /// for a single-use activation code. This device stays enrolled.
    pub async fn create_migration_code(
        &self,
        lifetime_secs: u32,
    ) -> Result<MigrationCode, PushAuthError> {
        Ok(self
            .inner
            .create_migration(i64::from(lifetime_secs))
            .await?
            .into())
    }

    /// Revokes this device on the server and deletes its keys. Delete the stored
    /// state afterwards.
    pub async fn unenroll(&self) -> Result<(), PushAuthError> {
        Ok(self.inner.unenroll().await?)
    }

    /// Decrypts a push for this device (see also [`super::push::parse_push`]).
    pub async fn decrypt_push(
        &self,
        challenge_id: String,
        envelope: String,
    ) -> Result<PushPreview, PushAuthError> {
        Ok(PushPreview::from(
            &self.inner.open_push(&challenge_id, &envelope).await?,
        ))
    }
}

impl PushAuthClient {
    pub(crate) fn device(&self) -> &Device {
        &self.inner
    }

    /// Verifies the view's token again and checks the view is exactly what it says.
    fn reverify(&self, view: &ChallengeView) -> Result<VerifiedChallenge, PushAuthError> {
        let verified = self.inner.verify(&view.token, now())?;
        if ChallengeView::new(&verified, view.token.clone()) != *view {
            return Err(Error::Input(
                "challenge view: does not match its signed challenge".to_owned(),
            )
            .into());
        }
        Ok(verified)
    }
}
