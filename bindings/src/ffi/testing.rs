//! **Not for app use.** Server-side checks exported only so that the binding tests
//! (Python, Kotlin) can check the golden vectors of `core/tests/vectors/` and the
//! proofs the SDK makes, without a server. Each returns `"ok"` or the stable error
//! code of `pushauth_core::Error::code` (the `result` of the vector files).

use pushauth_core::UnixTime;
use pushauth_core::ids::{ChallengeId, DeviceId, Nonce};
use pushauth_core::proof;
use pushauth_core::request::{self, HttpRequest};
use pushauth_core::transaction::TxnDigest;

use super::client::{MigrationCode, PushAuthClient};
use super::error::PushAuthError;
use super::types::{DenyReason, UserVerification};
use crate::error::Error;
use crate::keys::parse_public_key;

/// What the server knows when it checks an approval proof (protocol §4). Tests only.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProofExpectations {
    /// `approval` or `decline`: what the server expects (the key it chose).
    pub kind: String,
    /// Lowest `uv` accepted on an approval.
    pub min_user_verification: UserVerification,
    /// Device id.
    pub device: String,
    /// The key the proof must be signed with, JWK JSON: the approval key for an
    /// approval, the device key for a decline.
    pub key_jwk: String,
    /// The server's issuer.
    pub audience: String,
    /// Challenge id.
    pub challenge: String,
    /// Challenge nonce.
    pub nonce: String,
    /// Digest of the stored transaction.
    pub txn: String,
    /// Challenge deadline.
    pub deadline: i64,
    /// Processor output received with the decision.
    pub processor_output: Option<String>,
    /// Server time.
    pub now: i64,
    /// Accepted skew.
    pub skew_secs: i64,
}

fn code<T>(r: Result<T, pushauth_core::Error>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    }
}

/// **Tests only.** Runs the server's approval proof verification
/// (`pushauth_core::proof::verify`); returns `"ok"` or the error code.
#[uniffi::export]
pub fn verify_approval_proof_for_tests(
    token: String,
    expect: ProofExpectations,
) -> Result<String, PushAuthError> {
    let bad = |what: &str, e: pushauth_core::Error| PushAuthError::from(Error::input(what, &e));
    let device = DeviceId::parse(&expect.device).map_err(|e| bad("device", e))?;
    let key = parse_public_key(expect.key_jwk.as_bytes()).map_err(|e| bad("key_jwk", e))?;
    let kind = match expect.kind.as_str() {
        "approval" => proof::ProofKind::Approval,
        "decline" => proof::ProofKind::Decline,
        _ => return Err(Error::Input("kind: approval or decline".to_owned()).into()),
    };
    let challenge = ChallengeId::parse(&expect.challenge).map_err(|e| bad("challenge", e))?;
    let nonce = Nonce::parse(&expect.nonce).map_err(|e| bad("nonce", e))?;
    let txn = TxnDigest::parse(&expect.txn).map_err(|e| bad("txn", e))?;
    Ok(code(proof::verify(
        &token,
        &proof::Expectations {
            kind,
            device: &device,
            key: &key,
            min_user_verification: expect.min_user_verification.into(),
            audience: &expect.audience,
            challenge: &challenge,
            nonce: &nonce,
            txn: &txn,
            deadline: UnixTime(expect.deadline),
            processor_output: expect.processor_output.as_deref(),
            now: UnixTime(expect.now),
            skew_secs: expect.skew_secs,
        },
    )))
}

/// **Tests only.** Runs the server's request proof verification
/// (`pushauth_core::request::verify`, protocol §6); returns `"ok"` or the error code.
#[uniffi::export]
#[allow(clippy::too_many_arguments)]
pub fn verify_request_proof_for_tests(
    token: String,
    device_id: String,
    device_key_jwk: String,
    audience: String,
    method: String,
    path: String,
    body: String,
    now: i64,
    window_secs: i64,
) -> Result<String, PushAuthError> {
    let bad = |what: &str, e: pushauth_core::Error| PushAuthError::from(Error::input(what, &e));
    let device = DeviceId::parse(&device_id).map_err(|e| bad("device_id", e))?;
    let key = parse_public_key(device_key_jwk.as_bytes()).map_err(|e| bad("device_key_jwk", e))?;
    let expect = request::Expectations {
        audience: &audience,
        request: HttpRequest {
            method: &method,
            path: &path,
            body: body.as_bytes(),
        },
        now: UnixTime(now),
        window_secs,
    };
    Ok(code(request::verify(&token, &device, &key, &expect)))
}

/// **Tests only.** The server's side of Web Push: encrypts `plaintext` to the
/// subscription in `push_token` (RFC 8291, fresh sender key and salt), as the push
/// service would deliver it.
#[uniffi::export]
pub fn encrypt_web_push_for_tests(
    push_token: String,
    plaintext: Vec<u8>,
) -> Result<Vec<u8>, PushAuthError> {
    let bad = |e: pushauth_core::Error| PushAuthError::from(Error::input("push_token", &e));
    let subscription = pushauth_core::webpush::Subscription::parse(&push_token).map_err(bad)?;
    pushauth_core::webpush::encrypt(&subscription, &plaintext).map_err(bad)
}

#[uniffi::export(async_runtime = "tokio")]
impl PushAuthClient {
    /// **Tests only.** Verifies `challenge_token` at `now` and signs the proof
    /// `approve` (no `deny_reason`) or `deny` would send, through the key store,
    /// without a server.
    pub async fn sign_proof_for_tests(
        &self,
        challenge_token: String,
        now: i64,
        deny_reason: Option<DenyReason>,
        processor_output: Option<String>,
    ) -> Result<String, PushAuthError> {
        let verified = self.device().verify(&challenge_token, UnixTime(now))?;
        Ok(self
            .device()
            .sign_decision(
                &verified,
                deny_reason.map(Into::into),
                processor_output.as_deref(),
                UnixTime(now),
            )
            .await?)
    }

    /// **Tests only.** Signs a migration grant issued at `now` valid `lifetime_secs`
    /// (any value, to test the server's refusals) with the approval key.
    pub async fn sign_migration_grant_for_tests(
        &self,
        now: i64,
        lifetime_secs: i64,
    ) -> Result<String, PushAuthError> {
        Ok(self
            .device()
            .sign_migration_grant(UnixTime(now), lifetime_secs)
            .await?)
    }

    /// **Tests only.** Submits a grant (possibly another device's, or used) as this
    /// device.
    pub async fn submit_migration_grant_for_tests(
        &self,
        grant: String,
    ) -> Result<MigrationCode, PushAuthError> {
        Ok(self.device().submit_migration_grant(&grant).await?.into())
    }
}
