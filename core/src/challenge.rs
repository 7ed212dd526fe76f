//! The server-signed challenge (protocol §5): what the device shows the cardholder.
//! The server signs one copy per device fetch (`aud` = device id); the SDK verifies
//! it against the server key pinned at enrollment, recomputes the transaction digest
//! from the very fields it displays, and only then lets the app show the prompt.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ChallengeId, DeviceId, Nonce};
use crate::jws;
use crate::keys::{PublicKey, Signer};
use crate::time::UnixTime;
use crate::transaction::{ReceivedTransaction, TxnDigest};

/// JWS `typ` of server challenges.
pub const CHALLENGE_TYP: &str = "pushauth-challenge+jwt";

/// Longest processor SDK input carried to the app (Adyen `sdkInput` is a few KiB).
pub const MAX_PROCESSOR_INPUT: usize = 8 * 1024;

/// Claims of a server challenge. Claims this version does not know are ignored (a
/// newer server may add optional ones; the signature still covers them): a shipped app
/// keeps working. A change of meaning takes a new `typ`, which this version refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    /// The server's issuer name; devices also use it as the `aud` of their proofs.
    pub iss: String,
    /// The device this copy was issued to.
    pub aud: DeviceId,
    /// The challenge id.
    pub jti: ChallengeId,
    /// The challenge nonce the approval proof must echo.
    pub nonce: Nonce,
    /// What to show and sign: every member as received (canonical transaction v2,
    /// unknown members kept and covered by the digest). The server builds it with
    /// `Transaction::received()`.
    pub txn: ReceivedTransaction,
    /// When this copy was signed.
    pub iat: UnixTime,
    /// The challenge deadline: no decision is accepted after it.
    pub exp: UnixTime,
    /// Opaque input for the processor's own device SDK (Adyen `sdkInput`), passed to
    /// the app unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// Signs a challenge with the server key; `kid` is the key's RFC 7638 thumbprint.
pub fn sign(claims: &ChallengeClaims, server_key: &dyn Signer) -> Result<String> {
    if claims
        .pin
        .as_ref()
        .is_some_and(|p| p.len() > MAX_PROCESSOR_INPUT)
    {
        return Err(Error::MalformedClaims("processor input too long"));
    }
    let kid = server_key.public_key()?.thumbprint();
    jws::sign(CHALLENGE_TYP, Some(&kid), None, claims, server_key)
}

/// A challenge whose signature, issuer, audience and deadline have been checked.
/// Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedChallenge {
    claims: ChallengeClaims,
    digest: TxnDigest,
}

impl VerifiedChallenge {
    /// The verified claims.
    pub fn claims(&self) -> &ChallengeClaims {
        &self.claims
    }
    /// Digest of the transaction as displayed, recomputed on this side.
    pub fn digest(&self) -> TxnDigest {
        self.digest
    }
}

/// Verifies a server challenge on the device:
/// 1. compact JWS, `alg` ES256, `typ` [`CHALLENGE_TYP`];
/// 2. `kid` equals the pinned server key's thumbprint, and the signature verifies;
/// 3. `iss` equals the issuer pinned at enrollment, `aud` equals this device;
/// 4. `iat` ≤ now + skew and now ≤ `exp` (the deadline) + skew.
pub fn verify(
    token: &str,
    pinned_server_key: &PublicKey,
    expected_issuer: &str,
    device: &DeviceId,
    now: UnixTime,
    skew_secs: i64,
) -> Result<VerifiedChallenge> {
    let unverified = jws::parse(token, CHALLENGE_TYP)?;
    if unverified.header().kid.as_deref() != Some(pinned_server_key.thumbprint().as_str()) {
        return Err(Error::WrongKeyId);
    }
    let claims: ChallengeClaims = unverified.verify(pinned_server_key)?;
    if claims.iss != expected_issuer {
        return Err(Error::WrongIssuer);
    }
    if &claims.aud != device {
        return Err(Error::WrongAudience);
    }
    if claims.iat > now.plus(skew_secs) {
        return Err(Error::IssuedInFuture);
    }
    if now > claims.exp.plus(skew_secs) {
        return Err(Error::PastDeadline);
    }
    if claims
        .pin
        .as_ref()
        .is_some_and(|p| p.len() > MAX_PROCESSOR_INPUT)
    {
        return Err(Error::MalformedClaims("processor input too long"));
    }
    let digest = claims.txn.digest();
    Ok(VerifiedChallenge { claims, digest })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::{Provider, ProviderRef};
    use crate::keys::SoftwareSigningKey;
    use crate::money::{Currency, Money};
    use crate::transaction::{Payee, Transaction, TransactionKind, TxnDetails};

    pub(crate) fn claims(device: &DeviceId) -> ChallengeClaims {
        ChallengeClaims {
            iss: "https://pushauth.example".into(),
            aud: device.clone(),
            jti: ChallengeId::generate().unwrap(),
            nonce: Nonce::generate().unwrap(),
            txn: Transaction {
                provider: Provider::Adyen,
                reference: ProviderRef::parse("auth-123").unwrap(),
                kind: TransactionKind::Payment,
                amount: Some(Money::from_minor(4990, Currency::parse("EUR").unwrap()).unwrap()),
                payee: Some(Payee::parse("Example Shop").unwrap()),
                details: TxnDetails::default(),
            }
            .received(),
            iat: UnixTime(1_000),
            exp: UnixTime(1_600),
            pin: Some("c2RrSW5wdXQ".into()),
        }
    }

    #[test]
    fn sign_and_verify() {
        let server = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let c = claims(&device);
        let t = sign(&c, &server).unwrap();
        let v = verify(&t, &server.public(), &c.iss, &device, UnixTime(1_100), 30).unwrap();
        assert_eq!(v.claims(), &c);
        assert_eq!(v.digest(), c.txn.digest());
    }

    #[test]
    fn refusals() {
        let server = SoftwareSigningKey::generate().unwrap();
        let rogue = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let c = claims(&device);
        let t = sign(&c, &server).unwrap();
        let p = server.public();
        assert_eq!(
            verify(&t, &rogue.public(), &c.iss, &device, UnixTime(1_100), 30).unwrap_err(),
            Error::WrongKeyId
        );
        assert_eq!(
            verify(&t, &p, "https://other", &device, UnixTime(1_100), 30).unwrap_err(),
            Error::WrongIssuer
        );
        let other = DeviceId::generate().unwrap();
        assert_eq!(
            verify(&t, &p, &c.iss, &other, UnixTime(1_100), 30).unwrap_err(),
            Error::WrongAudience
        );
        assert_eq!(
            verify(&t, &p, &c.iss, &device, UnixTime(1_631), 30).unwrap_err(),
            Error::PastDeadline
        );
        assert_eq!(
            verify(&t, &p, &c.iss, &device, UnixTime(969), 30).unwrap_err(),
            Error::IssuedInFuture
        );
        // a rogue key that claims the server's kid still fails on the signature
        let forged = {
            struct Lying<'a>(&'a SoftwareSigningKey, PublicKey);
            impl Signer for Lying<'_> {
                fn sign(&self, m: &[u8]) -> Result<Vec<u8>> {
                    self.0.sign(m)
                }
                fn public_key(&self) -> Result<PublicKey> {
                    Ok(self.1)
                }
            }
            sign(&c, &Lying(&rogue, p)).unwrap()
        };
        assert_eq!(
            verify(&forged, &p, &c.iss, &device, UnixTime(1_100), 30).unwrap_err(),
            Error::BadSignature
        );
        let mut long = c.clone();
        long.pin = Some("x".repeat(MAX_PROCESSOR_INPUT + 1));
        assert!(sign(&long, &server).is_err());
    }

    #[test]
    fn a_newer_servers_claims_are_tolerated() {
        let server = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let c = claims(&device);
        let mut newer = serde_json::to_value(&c).unwrap();
        newer["display_hint"] = serde_json::json!({"style": "compact"});
        let kid = server.public().thumbprint();
        let t = jws::sign(CHALLENGE_TYP, Some(&kid), None, &newer, &server).unwrap();
        let v = verify(&t, &server.public(), &c.iss, &device, UnixTime(1_100), 30).unwrap();
        assert_eq!(v.claims(), &c);
        // the known claims are still required
        newer.as_object_mut().unwrap().remove("nonce");
        let t = jws::sign(CHALLENGE_TYP, Some(&kid), None, &newer, &server).unwrap();
        assert!(verify(&t, &server.public(), &c.iss, &device, UnixTime(1_100), 30).is_err());
    }
}
