//! Decisions (protocol v2 §4) and migration grants.
//!
//! An approval signs exactly the verified challenge the user saw: the caller hands
//! the verified challenge in (re-verified from the view's token), never an id to
//! fetch and sign. It costs exactly one approval-key signature, with the amount and
//! payee in the prompt. A decline (deny / not me) is signed by the device key, no
//! prompt, unless the issuer's server requires the approval key.

use pushauth_core::UnixTime;
use pushauth_core::challenge::VerifiedChallenge;
use pushauth_core::proof::{self, Decision, DecisionInput, DenyReason, UserVerification};

use crate::api::{self, EndpointKind};
use crate::device::{Device, now};
use crate::error::{Error, Result};
use crate::ffi::key_store::{KeyPurpose, SigningPrompt};
use crate::keys;
use crate::protocol;

/// One line of what is approved: `EUR 49.90 at Example Shop`.
pub(crate) fn summary(verified: &VerifiedChallenge) -> String {
    verified.claims().txn.summary()
}

/// The approval prompt: `Approve EUR 49.90 at Example Shop`.
pub(crate) fn approval_prompt(verified: &VerifiedChallenge) -> SigningPrompt {
    SigningPrompt {
        title: "Approve payment".to_owned(),
        summary: format!("Approve {}", summary(verified)),
    }
}

impl Device {
    /// Builds and signs a decision proof for a verified challenge at `now`:
    /// approval with the approval key (one prompt), decline with the device key (or
    /// the approval key when configured).
    pub(crate) async fn sign_decision(
        &self,
        verified: &VerifiedChallenge,
        reason: Option<DenyReason>,
        processor_output: Option<&str>,
        now: UnixTime,
    ) -> Result<String> {
        let state = self.state()?;
        let decision = if reason.is_some() {
            Decision::Deny
        } else {
            Decision::Approve
        };
        // A decline signed with the device key involved no user verification: say so
        // (the claim is what the issuer's evidence shows), never the approval key's.
        let uv = if decision == Decision::Deny && !self.settings.decline_with_approval_key {
            UserVerification::None
        } else {
            self.settings.user_verification
        };
        let input = DecisionInput {
            device: &state.device,
            decision,
            reason,
            uv,
            processor_output,
            now,
            lifetime_secs: self.settings.proof_lifetime_secs,
        };
        let claims =
            proof::claims_for(verified, &input).map_err(|e| Error::Input(e.to_string()))?;
        let store = self.store.as_ref();
        match decision {
            Decision::Approve => {
                keys::sign_jws(
                    store,
                    &state.approval_key,
                    KeyPurpose::ApprovalSigning,
                    Some(approval_prompt(verified)),
                    |s| proof::sign(&claims, s),
                )
                .await
            }
            Decision::Deny if self.settings.decline_with_approval_key => {
                let prompt = SigningPrompt {
                    title: "Decline payment".to_owned(),
                    summary: format!("Decline {}", summary(verified)),
                };
                keys::sign_jws(
                    store,
                    &state.approval_key,
                    KeyPurpose::ApprovalSigning,
                    Some(prompt),
                    |s| proof::sign(&claims, s),
                )
                .await
            }
            Decision::Deny => {
                keys::sign_jws(
                    store,
                    &state.device_key,
                    KeyPurpose::DeviceSigning,
                    None,
                    |s| proof::sign(&claims, s),
                )
                .await
            }
        }
    }

    /// Signs and posts a decision on a verified challenge; returns the server's
    /// `status` (`approved`, `denied`, or a newer status the app shows generically).
    pub(crate) async fn decide(
        &self,
        verified: &VerifiedChallenge,
        reason: Option<DenyReason>,
        processor_output: Option<String>,
    ) -> Result<String> {
        let token = self
            .sign_decision(verified, reason, processor_output.as_deref(), now())
            .await?;
        let body = api::to_json(&api::DecisionBody {
            proof: &token,
            processor_output: processor_output.as_deref(),
        })?;
        let path = format!(
            "v1/device/challenges/{}/decision",
            verified.claims().jti.as_str()
        );
        let answer = self
            .call("POST", &path, Some(body), EndpointKind::Challenge)
            .await?;
        let answer: api::DecisionAnswer = api::from_json(&answer, "decision")?;
        Ok(answer.status)
    }

    /// Signs a migration grant with the approval key (one prompt).
    pub(crate) async fn sign_migration_grant(
        &self,
        now: UnixTime,
        lifetime_secs: i64,
    ) -> Result<String> {
        let state = self.state()?;
        let prompt = SigningPrompt {
            title: "Move to a new phone".to_owned(),
            summary: "Allow a new device to take over payment approvals".to_owned(),
        };
        keys::sign_jws(
            self.store.as_ref(),
            &state.approval_key,
            KeyPurpose::ApprovalSigning,
            Some(prompt),
            |s| protocol::sign_migration_grant(s, &state.device, &state.issuer, now, lifetime_secs),
        )
        .await
    }

    /// `POST /v1/device/migration` with a grant: a single-use activation code for the
    /// new device.
    pub(crate) async fn submit_migration_grant(&self, grant: &str) -> Result<api::MigrationAnswer> {
        let body = api::to_json(&api::MigrationBody { grant })?;
        let answer = self
            .call(
                "POST",
                "v1/device/migration",
                Some(body),
                EndpointKind::Device,
            )
            .await?;
        api::from_json(&answer, "migration")
    }

    /// Signs a grant valid `lifetime_secs` (at most 600) and submits it.
    pub(crate) async fn create_migration(
        &self,
        lifetime_secs: i64,
    ) -> Result<api::MigrationAnswer> {
        let lifetime = lifetime_secs.clamp(30, protocol::MAX_GRANT_SECS);
        let grant = self.sign_migration_grant(now(), lifetime).await?;
        self.submit_migration_grant(&grant).await
    }
}
