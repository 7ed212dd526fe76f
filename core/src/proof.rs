//! The approval proof (protocol §4): the cardholder's decision, signed by the device
//! key behind biometrics and bound to the challenge (jti, nonce) and to the exact
//! transaction shown (txn digest, PSD2 RTS art. 5). The same compact JWS is the
//! evidence stored by the server and the `authenticationSignature` sent to Treezor.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::challenge::VerifiedChallenge;
use crate::error::{Error, Result};
use crate::ids::{ChallengeId, DeviceId, Nonce};
use crate::jws;
use crate::keys::{PublicKey, Signer};
use crate::time::UnixTime;
use crate::transaction::TxnDigest;

/// JWS `typ` of approval proofs, version 1.
pub const APPROVAL_TYP: &str = "pushauth-approval+jwt";

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

/// How the user was verified on the device before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Face / fingerprint through the platform's biometric prompt.
    Biometric,
    /// The device passcode.
    Passcode,
    /// No user verification (the key does not require it).
    None,
}

/// Claims of an approval proof.
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

/// Signs approval claims with the device signer; `kid` = device id.
pub fn sign(claims: &ApprovalClaims, signer: &dyn Signer) -> Result<String> {
    jws::sign(
        APPROVAL_TYP,
        Some(claims.iss.as_str()),
        None,
        claims,
        signer,
    )
}

/// Everything the server knows and the proof must match.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The device the proof claims to come from (looked up by `kid`).
    pub device: &'a DeviceId,
    /// That device's current public signing key.
    pub device_key: &'a PublicKey,
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

/// Returns the device id a proof claims (`kid`) without verifying anything else, so
/// the server can look up the key. Structure, `alg` and `typ` are checked.
pub fn peek_device(token: &str) -> Result<DeviceId> {
    let unverified = jws::parse(token, APPROVAL_TYP)?;
    let kid = unverified
        .header()
        .kid
        .as_deref()
        .ok_or(Error::WrongKeyId)?;
    DeviceId::parse(kid).map_err(|_| Error::WrongKeyId)
}

/// Verifies an approval proof on the server. Each rule is its own error:
/// 1. compact JWS, `alg` ES256 (never `none`/HS*/RS*), `typ` [`APPROVAL_TYP`];
/// 2. `kid` is the expected device, and the ES256 signature verifies with its key;
/// 3. `iss` = device, `aud` = this server, `jti` = challenge, `nonce` = challenge nonce;
/// 4. `txn` equals the digest of the stored transaction (RTS art. 5(1)(c)–(d));
/// 5. `pout` equals the digest of the processor output received, if any, and is
///    absent otherwise;
/// 6. a reason only with deny;
/// 7. time: now ≤ deadline; `iat` ≤ now + skew; now ≤ `exp` + skew;
///    `exp` ≤ deadline + skew; `exp − iat` ≤ [`MAX_PROOF_LIFETIME_SECS`].
///
/// Single use (first valid answer wins) is enforced by the server's store, not here.
pub fn verify(token: &str, expect: &Expectations<'_>) -> Result<VerifiedDecision> {
    let unverified = jws::parse(token, APPROVAL_TYP)?;
    if unverified.header().kid.as_deref() != Some(expect.device.as_str()) {
        return Err(Error::WrongKeyId);
    }
    let claims: ApprovalClaims = unverified.verify(expect.device_key)?;
    if &claims.iss != expect.device {
        return Err(Error::WrongIssuer);
    }
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    if &claims.jti != expect.challenge {
        return Err(Error::WrongChallenge);
    }
    if &claims.nonce != expect.nonce {
        return Err(Error::WrongNonce);
    }
    if !claims.txn.ct_eq(expect.txn) {
        return Err(Error::TransactionMismatch);
    }
    match (&claims.pout, expect.processor_output) {
        (None, None) => {}
        (Some(signed), Some(received)) if *signed == processor_output_digest(received) => {}
        _ => return Err(Error::ProcessorOutputMismatch),
    }
    if claims.decision == Decision::Approve && claims.reason.is_some() {
        return Err(Error::MalformedClaims("a reason is only allowed with deny"));
    }
    if expect.now > expect.deadline {
        return Err(Error::PastDeadline);
    }
    if claims.iat > expect.now.plus(expect.skew_secs) {
        return Err(Error::IssuedInFuture);
    }
    if expect.now > claims.exp.plus(expect.skew_secs) {
        return Err(Error::Expired);
    }
    if claims.exp > expect.deadline.plus(expect.skew_secs)
        || claims.exp.seconds().saturating_sub(claims.iat.seconds()) > MAX_PROOF_LIFETIME_SECS
    {
        return Err(Error::LifetimeTooLong);
    }
    Ok(VerifiedDecision { claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge;
    use crate::keys::SoftwareSigningKey;

    struct Fixture {
        server: SoftwareSigningKey,
        device_key: SoftwareSigningKey,
        device: DeviceId,
        challenge: VerifiedChallenge,
    }

    fn fixture() -> Fixture {
        let server = SoftwareSigningKey::generate().unwrap();
        let device_key = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let c = challenge::tests::claims(&device);
        let token = challenge::sign(&c, &server).unwrap();
        let challenge = challenge::verify(
            &token,
            &server.public(),
            &c.iss,
            &device,
            UnixTime(1_100),
            30,
        )
        .unwrap();
        Fixture {
            server,
            device_key,
            device,
            challenge,
        }
    }

    fn input(f: &Fixture, decision: Decision) -> DecisionInput<'_> {
        DecisionInput {
            device: &f.device,
            decision,
            reason: None,
            uv: UserVerification::Biometric,
            processor_output: Some("sdk-output"),
            now: UnixTime(1_100),
            lifetime_secs: 120,
        }
    }

    fn expect<'a>(f: &'a Fixture, key: &'a PublicKey) -> Expectations<'a> {
        let c = f.challenge.claims();
        Expectations {
            device: &f.device,
            device_key: key,
            audience: &c.iss,
            challenge: &c.jti,
            nonce: &c.nonce,
            txn: Box::leak(Box::new(c.txn.digest())),
            deadline: c.exp,
            processor_output: Some("sdk-output"),
            now: UnixTime(1_105),
            skew_secs: 30,
        }
    }

    #[test]
    fn approve_round_trip() {
        let f = fixture();
        let claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
        assert_eq!(claims.exp, UnixTime(1_220));
        let token = sign(&claims, &f.device_key).unwrap();
        assert_eq!(peek_device(&token).unwrap(), f.device);
        let key = f.device_key.public();
        let v = verify(&token, &expect(&f, &key)).unwrap();
        assert_eq!(v.decision(), Decision::Approve);
        assert_eq!(v.claims(), &claims);
        let _ = &f.server;
    }

    #[test]
    fn exp_is_capped_by_deadline() {
        let f = fixture();
        let mut i = input(&f, Decision::Deny);
        i.now = UnixTime(1_590);
        i.reason = Some(DenyReason::NotMe);
        let claims = claims_for(&f.challenge, &i).unwrap();
        assert_eq!(claims.exp, UnixTime(1_600));
        assert!(
            claims_for(
                &f.challenge,
                &DecisionInput {
                    reason: Some(DenyReason::NotMe),
                    ..input(&f, Decision::Approve)
                }
            )
            .is_err()
        );
    }

    #[test]
    fn every_mismatch_is_refused() {
        let f = fixture();
        let key = f.device_key.public();
        let claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
        let token = sign(&claims, &f.device_key).unwrap();
        let base = expect(&f, &key);

        let other_key = SoftwareSigningKey::generate().unwrap().public();
        let other_device = DeviceId::generate().unwrap();
        let other_challenge = ChallengeId::generate().unwrap();
        let other_nonce = Nonce::generate().unwrap();
        let other_txn = TxnDigest::from_bytes([9; 32]);
        let cases: Vec<(Expectations<'_>, Error)> = vec![
            (
                Expectations {
                    device_key: &other_key,
                    ..base.clone()
                },
                Error::BadSignature,
            ),
            (
                Expectations {
                    device: &other_device,
                    ..base.clone()
                },
                Error::WrongKeyId,
            ),
            (
                Expectations {
                    audience: "https://other",
                    ..base.clone()
                },
                Error::WrongAudience,
            ),
            (
                Expectations {
                    challenge: &other_challenge,
                    ..base.clone()
                },
                Error::WrongChallenge,
            ),
            (
                Expectations {
                    nonce: &other_nonce,
                    ..base.clone()
                },
                Error::WrongNonce,
            ),
            (
                Expectations {
                    txn: &other_txn,
                    ..base.clone()
                },
                Error::TransactionMismatch,
            ),
            (
                Expectations {
                    processor_output: Some("swapped"),
                    ..base.clone()
                },
                Error::ProcessorOutputMismatch,
            ),
            (
                Expectations {
                    processor_output: None,
                    ..base.clone()
                },
                Error::ProcessorOutputMismatch,
            ),
            (
                Expectations {
                    now: UnixTime(1_601),
                    ..base.clone()
                },
                Error::PastDeadline,
            ),
            (
                Expectations {
                    now: UnixTime(1_000),
                    skew_secs: 0,
                    ..base.clone()
                },
                Error::IssuedInFuture,
            ),
            (
                Expectations {
                    deadline: UnixTime(1_150),
                    now: UnixTime(1_140),
                    ..base.clone()
                },
                Error::LifetimeTooLong,
            ),
        ];
        for (e, err) in cases {
            assert_eq!(verify(&token, &e).unwrap_err(), err);
        }
        // expired: proof lifetime over while the challenge is still open
        let mut short = input(&f, Decision::Approve);
        short.lifetime_secs = 10;
        let t = sign(&claims_for(&f.challenge, &short).unwrap(), &f.device_key).unwrap();
        assert_eq!(
            verify(
                &t,
                &Expectations {
                    now: UnixTime(1_141),
                    ..base.clone()
                }
            )
            .unwrap_err(),
            Error::Expired
        );
    }

    #[test]
    fn iss_must_match_kid() {
        let f = fixture();
        let key = f.device_key.public();
        let mut claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
        let real = f.device.clone();
        claims.iss = DeviceId::generate().unwrap();
        let token = jws::sign(
            APPROVAL_TYP,
            Some(real.as_str()),
            None,
            &claims,
            &f.device_key,
        )
        .unwrap();
        assert_eq!(
            verify(&token, &expect(&f, &key)).unwrap_err(),
            Error::WrongIssuer
        );
    }
}
