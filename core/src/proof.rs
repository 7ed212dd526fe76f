//! Decision proofs (protocol §4): the cardholder's answer, bound to the challenge
//! (jti, nonce) and to the exact transaction shown (txn digest, PSD2 RTS art. 5).
//!
//! - an **approval proof** (`typ` [`APPROVAL_TYP`], `decision` = `approve`) is signed by
//!   the approval key, behind a fresh biometric for this one signature;
//! - a **decline proof** (`typ` [`DECLINE_TYP`], `decision` = `deny`) is signed by the
//!   device key (no prompt), or by the approval key where the issuer requires it.
//!
//! The server picks the key from the `typ` ([`peek`]) before verifying. The same compact
//! JWS is the evidence stored by the server and the `authenticationSignature` sent to
//! Treezor.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::challenge::VerifiedChallenge;
use crate::error::{Error, Result};
use crate::ids::{ChallengeId, DeviceId, Nonce};
use crate::jws;
use crate::keys::{PublicKey, Signer};
use crate::time::UnixTime;
use crate::transaction::TxnDigest;

/// JWS `typ` of approval proofs (`decision` = `approve`, signed by the approval key).
pub const APPROVAL_TYP: &str = "pushauth-approval+jwt";
/// JWS `typ` of decline proofs (`decision` = `deny`, signed by the device key unless
/// the server requires the approval key).
pub const DECLINE_TYP: &str = "pushauth-decline+jwt";

/// Which kind of decision proof a token is, read from its `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofKind {
    /// [`APPROVAL_TYP`]: an approval, signed by the approval key.
    Approval,
    /// [`DECLINE_TYP`]: a deny / not-me, signed by the device key by default.
    Decline,
}

impl ProofKind {
    /// The kind of proof that carries `decision`.
    pub fn for_decision(decision: Decision) -> Self {
        match decision {
            Decision::Approve => ProofKind::Approval,
            Decision::Deny => ProofKind::Decline,
        }
    }

    /// The JWS `typ` of this kind.
    pub fn typ(self) -> &'static str {
        match self {
            ProofKind::Approval => APPROVAL_TYP,
            ProofKind::Decline => DECLINE_TYP,
        }
    }

    fn from_typ(typ: &str) -> Option<Self> {
        match typ {
            APPROVAL_TYP => Some(ProofKind::Approval),
            DECLINE_TYP => Some(ProofKind::Decline),
            _ => None,
        }
    }
}

/// Longest lifetime (`exp − iat`) of a proof, in seconds.
pub const MAX_PROOF_LIFETIME_SECS: i64 = 600;

/// The cardholder's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The cardholder approves the transaction.
    Approve,
    /// The cardholder refuses it.
    Deny,
}

/// Why the cardholder denied; only allowed with [`Decision::Deny`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// "This was not me": a likely fraud signal, recorded as its own outcome.
    NotMe,
    /// The cardholder declined without saying it was fraud.
    Declined,
}

/// How the user was verified on the device before signing. Ordered
/// `unknown` < `none` < `passcode` < `biometric` (see [`UserVerification::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Face / fingerprint through the platform's biometric prompt.
    Biometric,
    /// The device passcode.
    Passcode,
    /// No user verification (the key does not require it).
    None,
    /// A method this version does not know (a newer SDK); ranks below `none`, so it
    /// passes only a minimum of `none`. Never sent by this version.
    #[serde(other)]
    Unknown,
}

impl UserVerification {
    /// Position in the order `unknown` (0) < `none` (1) < `passcode` (2) < `biometric` (3).
    pub fn rank(self) -> u8 {
        match self {
            UserVerification::Unknown => 0,
            UserVerification::None => 1,
            UserVerification::Passcode => 2,
            UserVerification::Biometric => 3,
        }
    }

    /// True when this method is at least as strong as `minimum`.
    pub fn satisfies(self, minimum: UserVerification) -> bool {
        self.rank() >= minimum.rank()
    }

    /// The wire name (`biometric`, `passcode`, `none`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Biometric => "biometric",
            UserVerification::Passcode => "passcode",
            UserVerification::None => "none",
            UserVerification::Unknown => "unknown",
        }
    }
}

/// Claims of an approval or decline proof (the same members for both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalClaims {
    /// The device id.
    pub iss: DeviceId,
    /// The server's issuer name, as pinned at enrollment.
    pub aud: String,
    /// The challenge id (single use).
    pub jti: ChallengeId,
    /// The challenge nonce.
    pub nonce: Nonce,
    /// Approve or deny.
    pub decision: Decision,
    /// Why denied, when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DenyReason>,
    /// base64url(SHA-256(canonical transaction)) as displayed.
    pub txn: TxnDigest,
    /// base64url(SHA-256(processor SDK output)), when one is forwarded with the
    /// decision (Adyen `sdkOutput`), so it cannot be swapped in transit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pout: Option<String>,
    /// Signing time.
    pub iat: UnixTime,
    /// Expiry; never after the challenge deadline.
    pub exp: UnixTime,
    /// How the user was verified.
    pub uv: UserVerification,
}

/// base64url(SHA-256(output)) of an opaque processor SDK output string.
pub fn processor_output_digest(output: &str) -> String {
    b64::encode(ring::digest::digest(
        &ring::digest::SHA256,
        output.as_bytes(),
    ))
}

/// What the device decided, to be turned into a proof.
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    /// The device id.
    pub device: &'a DeviceId,
    /// Approve or deny.
    pub decision: Decision,
    /// Reason, with deny only.
    pub reason: Option<DenyReason>,
    /// How the user was verified.
    pub uv: UserVerification,
    /// The processor SDK output forwarded with the decision, if any.
    pub processor_output: Option<&'a str>,
    /// Now.
    pub now: UnixTime,
    /// Wanted lifetime in seconds (capped by the deadline and
    /// [`MAX_PROOF_LIFETIME_SECS`]).
    pub lifetime_secs: i64,
}

/// Builds the claims for a decision on a verified challenge. The `txn` digest is the
/// one recomputed from the displayed transaction, never one received from elsewhere.
pub fn claims_for(
    challenge: &VerifiedChallenge,
    input: &DecisionInput<'_>,
) -> Result<ApprovalClaims> {
    if input.decision == Decision::Approve && input.reason.is_some() {
        return Err(Error::MalformedClaims("a reason is only allowed with deny"));
    }
    let c = challenge.claims();
    let lifetime = input.lifetime_secs.clamp(1, MAX_PROOF_LIFETIME_SECS);
    let exp = std::cmp::min(input.now.plus(lifetime), c.exp);
    Ok(ApprovalClaims {
        iss: input.device.clone(),
        aud: c.iss.clone(),
        jti: c.jti.clone(),
        nonce: c.nonce.clone(),
        decision: input.decision,
        reason: input.reason,
        txn: challenge.digest(),
        pout: input.processor_output.map(processor_output_digest),
        iat: input.now,
        exp,
        uv: input.uv,
    })
}

/// Signs decision claims; `kid` = device id, `typ` from the decision (approve →
/// [`APPROVAL_TYP`], deny → [`DECLINE_TYP`]). The caller passes the approval key for
/// an approval and the device key for a decline (or the approval key when the server
/// requires it).
pub fn sign(claims: &ApprovalClaims, signer: &dyn Signer) -> Result<String> {
    jws::sign(
        ProofKind::for_decision(claims.decision).typ(),
        Some(claims.iss.as_str()),
        None,
        claims,
        signer,
    )
}

/// Everything the server knows and the proof must match.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The kind of proof expected (from [`peek`]; it chose `key`).
    pub kind: ProofKind,
    /// The device the proof claims to come from (looked up by `kid`).
    pub device: &'a DeviceId,
    /// The key this kind must be signed with: that device's approval key for an
    /// approval; its device key for a decline (or its approval key when configured).
    pub key: &'a PublicKey,
    /// Lowest `uv` accepted on an approval (declines need no user verification).
    pub min_user_verification: UserVerification,
    /// This server's issuer name.
    pub audience: &'a str,
    /// The challenge being answered.
    pub challenge: &'a ChallengeId,
    /// Its nonce.
    pub nonce: &'a Nonce,
    /// Digest of the stored transaction, computed by the server.
    pub txn: &'a TxnDigest,
    /// The challenge deadline.
    pub deadline: UnixTime,
    /// The processor output received with the decision, if any.
    pub processor_output: Option<&'a str>,
    /// Now, by the server's clock.
    pub now: UnixTime,
    /// Accepted clock skew for `iat`/`exp`, in seconds.
    pub skew_secs: i64,
}

/// A decision whose proof passed every check of [`verify`]. Only `verify` makes one.
#[derive(Debug, Clone)]
pub struct VerifiedDecision {
    claims: ApprovalClaims,
}

impl VerifiedDecision {
    /// The verified claims.
    pub fn claims(&self) -> &ApprovalClaims {
        &self.claims
    }
    /// Approve or deny.
    pub fn decision(&self) -> Decision {
        self.claims.decision
    }
    /// Deny reason.
    pub fn reason(&self) -> Option<DenyReason> {
        self.claims.reason
    }
}

/// Returns the kind (`typ`) and the device id (`kid`) a proof claims without verifying
/// anything else, so the server can pick the key. Structure, `alg` and `typ` are checked.
pub fn peek(token: &str) -> Result<(ProofKind, DeviceId)> {
    let unverified = jws::parse_one_of(token, &[APPROVAL_TYP, DECLINE_TYP])?;
    let kind = ProofKind::from_typ(&unverified.header().typ).ok_or(Error::WrongType {
        expected: APPROVAL_TYP,
    })?;
    let kid = unverified
        .header()
        .kid
        .as_deref()
        .ok_or(Error::WrongKeyId)?;
    let device = DeviceId::parse(kid).map_err(|_| Error::WrongKeyId)?;
    Ok((kind, device))
}

/// The device id a proof claims (`kid`); see [`peek`].
pub fn peek_device(token: &str) -> Result<DeviceId> {
    peek(token).map(|(_, device)| device)
}

/// Verifies a decision proof on the server, rule by rule as in protocol §4, each
/// rule with its own error. Single use (first valid answer wins) is enforced by the
/// server's store, not here.
pub fn verify(token: &str, expect: &Expectations<'_>) -> Result<VerifiedDecision> {
    // §4.1: compact JWS, alg ES256, typ = the expected kind, known header members only.
    let unverified = jws::parse(token, expect.kind.typ())?;
    // §4.2: kid is the device the request came from.
    if unverified.header().kid.as_deref() != Some(expect.device.as_str()) {
        return Err(Error::WrongKeyId);
    }
    // §4.2: the signature verifies with the key of this kind (approval key for approvals).
    let claims: ApprovalClaims = unverified.verify(expect.key)?;
    // §4.3: iss = device.
    if &claims.iss != expect.device {
        return Err(Error::WrongIssuer);
    }
    // §4.3: aud = server issuer.
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    // §4.4: jti = the challenge.
    if &claims.jti != expect.challenge {
        return Err(Error::WrongChallenge);
    }
    // §4.4: nonce = its nonce.
    if &claims.nonce != expect.nonce {
        return Err(Error::WrongNonce);
    }
    // §4.5: txn = digest of the stored transaction (RTS art. 5(1)(c)–(d)).
    if !claims.txn.ct_eq(expect.txn) {
        return Err(Error::TransactionMismatch);
    }
    // §4.6: pout = digest of the processor output received, absent when none.
    match (&claims.pout, expect.processor_output) {
        (None, None) => {}
        (Some(signed), Some(received)) if *signed == processor_output_digest(received) => {}
        _ => return Err(Error::ProcessorOutputMismatch),
    }
    // §4.7: an approval proof approves, a decline proof denies.
    if ProofKind::for_decision(claims.decision) != expect.kind {
        return Err(Error::WrongDecision);
    }
    // §4.7: a reason only with deny.
    if claims.decision == Decision::Approve && claims.reason.is_some() {
        return Err(Error::MalformedClaims("a reason is only allowed with deny"));
    }
    // §4.8: an approval's uv is at least the configured minimum.
    if expect.kind == ProofKind::Approval && !claims.uv.satisfies(expect.min_user_verification) {
        return Err(Error::InsufficientUserVerification);
    }
    // §4.9: now ≤ deadline.
    if expect.now > expect.deadline {
        return Err(Error::PastDeadline);
    }
    // §4.9: iat ≤ now + skew.
    if claims.iat > expect.now.plus(expect.skew_secs) {
        return Err(Error::IssuedInFuture);
    }
    // §4.9: now ≤ exp + skew.
    if expect.now > claims.exp.plus(expect.skew_secs) {
        return Err(Error::Expired);
    }
    // §4.9: exp ≤ deadline + skew and exp − iat ≤ 600 s.
    if claims.exp > expect.deadline.plus(expect.skew_secs)
        || claims.exp.seconds().saturating_sub(claims.iat.seconds()) > MAX_PROOF_LIFETIME_SECS
    {
        return Err(Error::LifetimeTooLong);
    }
    Ok(VerifiedDecision { claims })
}

#[cfg(test)]
mod tests;
