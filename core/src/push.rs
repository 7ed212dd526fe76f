//! Private push payloads (protocol §7). APNs and FCM only ever carry the challenge id
//! and an opaque envelope; amount, merchant and any OTP are encrypted to the
//! device's agreement key:
//!
//! ```text
//! envelope = base64url( 0x01 ‖ epk (65-byte uncompressed P-256 point) ‖ AES-256-GCM(ct ‖ tag) )
//! z        = ECDH(ephemeral private, device agreement public).x       (32 bytes)
//! okm      = HKDF-SHA256(salt = "pushauth-push-v1", ikm = z, info = epk ‖ device public, L = 44)
//! key, iv  = okm[0..32], okm[32..44]
//! aad      = "pushauth-push-v1:" ‖ challenge id
//! ```
//!
//! A fresh ephemeral key per message makes the derived (key, iv) pair unique, so the
//! nonce needs no separate randomness; binding the challenge id as associated data
//! stops an envelope from being replayed under another challenge.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce as AeadNonce, UnboundKey};
use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
use ring::hkdf;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result};
use crate::ids::ChallengeId;
use crate::keys::{KeyAgreement, PublicKey};
use crate::time::UnixTime;
use crate::transaction::ReceivedTransaction;

/// Envelope version byte.
pub const ENVELOPE_V1: u8 = 0x01;
/// HKDF salt and AAD prefix.
const LABEL: &[u8] = b"pushauth-push-v1";
/// Largest plaintext we encrypt: keeps the whole push well under the 4 KiB APNs/FCM
/// payload limits after base64.
pub const MAX_PLAINTEXT: usize = 2_048;

struct OkmLen;
impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        44
    }
}

fn derive(z: &[u8], epk: &[u8; 65], recipient: &[u8; 65]) -> Result<Zeroizing<[u8; 44]>> {
    let mut okm = Zeroizing::new([0u8; 44]);
    let info = [&epk[..], &recipient[..]];
    hkdf::Salt::new(hkdf::HKDF_SHA256, LABEL)
        .extract(z)
        .expand(&info, OkmLen)
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::DecryptFailed)?;
    Ok(okm)
}

fn aad(challenge: &ChallengeId) -> Vec<u8> {
    [LABEL, b":", challenge.as_str().as_bytes()].concat()
}

fn cipher(okm: &[u8; 44]) -> Result<(LessSafeKey, AeadNonce)> {
    let key = UnboundKey::new(&AES_256_GCM, &okm[..32]).map_err(|_| Error::DecryptFailed)?;
    let nonce =
        AeadNonce::try_assume_unique_for_key(&okm[32..]).map_err(|_| Error::DecryptFailed)?;
    Ok((LessSafeKey::new(key), nonce))
}

/// Encrypts `plaintext` to the device agreement key `recipient`, bound to `challenge`.
pub fn seal(recipient: &PublicKey, challenge: &ChallengeId, plaintext: &[u8]) -> Result<String> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(Error::MalformedEnvelope("plaintext too long"));
    }
    let rng = SystemRandom::new();
    let eph = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| Error::Rng)?;
    let epk_bytes = eph.compute_public_key().map_err(|_| Error::Rng)?;
    let mut epk = [0u8; 65];
    epk.copy_from_slice(epk_bytes.as_ref());
    let recipient_bytes = recipient.to_sec1();
    let okm = agree_ephemeral(
        eph,
        &UnparsedPublicKey::new(&ECDH_P256, recipient_bytes),
        |z| derive(z, &epk, &recipient_bytes),
    )
    .map_err(|_| Error::InvalidPublicKey("agreement failed"))??;
    let (key, nonce) = cipher(&okm)?;
    let mut buf = Vec::with_capacity(1 + 65 + plaintext.len() + 16);
    buf.push(ENVELOPE_V1);
    buf.extend_from_slice(&epk);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(nonce, Aad::from(aad(challenge)), &mut body)
        .map_err(|_| Error::MalformedEnvelope("encryption failed"))?;
    buf.extend_from_slice(&body);
    Ok(b64::encode(buf))
}

/// Decrypts an envelope with the device agreement key. Wrong key, wrong challenge
/// and tampering all give [`Error::DecryptFailed`].
pub fn open(
    key: &dyn KeyAgreement,
    challenge: &ChallengeId,
    envelope: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    if envelope.len() > 4 * (1 + 65 + MAX_PLAINTEXT + 16) / 3 + 4 {
        return Err(Error::MalformedEnvelope("envelope too long"));
    }
    let raw = b64::decode(envelope).ok_or(Error::MalformedEnvelope("not base64url"))?;
    let [version, rest @ ..] = raw.as_slice() else {
        return Err(Error::MalformedEnvelope("empty"));
    };
    if *version != ENVELOPE_V1 {
        return Err(Error::MalformedEnvelope("unknown version"));
    }
    if rest.len() < 65 + 16 {
        return Err(Error::MalformedEnvelope("too short"));
    }
    let (epk_bytes, ct) = rest.split_at(65);
    let epk = PublicKey::from_sec1(epk_bytes)
        .map_err(|_| Error::MalformedEnvelope("bad ephemeral key"))?;
    let z = key.agree(&epk)?;
    let recipient = key.public_key()?.to_sec1();
    let okm = derive(&z[..], &epk.to_sec1(), &recipient)?;
    let (cipher, nonce) = cipher(&okm)?;
    let mut body = Zeroizing::new(ct.to_vec());
    let len = cipher
        .open_in_place(nonce, Aad::from(aad(challenge)), &mut body)
        .map_err(|_| Error::DecryptFailed)?
        .len();
    body.truncate(len);
    Ok(body)
}

/// What the encrypted push tells the app before it fetches the signed challenge: just
/// enough to render "Approve EUR 49.90 at Example Shop?" in a notification.
/// Not authoritative: the app must still fetch and verify the server challenge
/// before letting the user sign.
///
/// Forward compatible: unknown fields are ignored and the transaction keeps unknown
/// members (canonical transaction v2), so an app shipped today opens pushes from a
/// newer server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDetails {
    /// Payload format version (1).
    pub v: u32,
    /// The challenge id.
    pub challenge: ChallengeId,
    /// The transaction (canonical members as the server stored them).
    pub txn: ReceivedTransaction,
    /// The deadline.
    pub exp: UnixTime,
    /// A one-time code from the processor to show the user (Paysafe OUTSOURCED), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp: Option<String>,
}

impl PushDetails {
    /// One line for a notification: `EUR 49.90 at Example Shop`, or the parts known
    /// (see [`ReceivedTransaction::summary`]).
    pub fn summary(&self) -> String {
        self.txn.summary()
    }

    /// Serialises and encrypts to the device.
    pub fn seal(&self, recipient: &PublicKey) -> Result<String> {
        let json = serde_json::to_vec(self)
            .map_err(|_| Error::MalformedClaims("push details not serialisable"))?;
        seal(recipient, &self.challenge, &json)
    }

    /// Decrypts and parses; the challenge id inside must equal the one the push named.
    pub fn open(key: &dyn KeyAgreement, challenge: &ChallengeId, envelope: &str) -> Result<Self> {
        let plain = open(key, challenge, envelope)?;
        let details: PushDetails = serde_json::from_slice(&plain)
            .map_err(|_| Error::MalformedEnvelope("payload is not push details"))?;
        if &details.challenge != challenge || details.v != 1 {
            return Err(Error::DecryptFailed);
        }
        Ok(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Provider, ProviderRef};
    use crate::keys::SoftwareAgreementKey;
    use crate::money::{Currency, Money};
    use crate::transaction::{Payee, Transaction, TransactionKind, TxnDetails};

    fn details(challenge: &ChallengeId) -> PushDetails {
        PushDetails {
            v: 1,
            challenge: challenge.clone(),
            txn: Transaction {
                provider: Provider::Enfuce,
                reference: ProviderRef::parse("s-1").unwrap(),
                kind: TransactionKind::Payment,
                amount: Some(Money::from_minor(4990, Currency::parse("EUR").unwrap()).unwrap()),
                payee: Some(Payee::parse("Example Shop").unwrap()),
                details: TxnDetails::default(),
            }
            .received(),
            exp: UnixTime(1_600),
            otp: None,
        }
    }

    #[test]
    fn seal_open_round_trip_hides_details() {
        let device = SoftwareAgreementKey::generate().unwrap();
        let c = ChallengeId::generate().unwrap();
        let d = details(&c);
        let env = d.seal(&device.public_key().unwrap()).unwrap();
        assert!(!env.contains("Example"));
        let raw = b64::decode(&env).unwrap();
        assert!(!raw.windows(4).any(|w| w == b"4990" || w == b"Shop"));
        assert_eq!(PushDetails::open(&device, &c, &env).unwrap(), d);
        assert_eq!(d.summary(), "EUR 49.90 at Example Shop");
    }

    #[test]
    fn refusals() {
        let device = SoftwareAgreementKey::generate().unwrap();
        let other = SoftwareAgreementKey::generate().unwrap();
        let c = ChallengeId::generate().unwrap();
        let env = details(&c).seal(&device.public_key().unwrap()).unwrap();
        assert_eq!(
            PushDetails::open(&other, &c, &env).unwrap_err(),
            Error::DecryptFailed
        );
        let c2 = ChallengeId::generate().unwrap();
        assert_eq!(
            PushDetails::open(&device, &c2, &env).unwrap_err(),
            Error::DecryptFailed
        );
        let mut raw = b64::decode(&env).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            open(&device, &c, &b64::encode(&raw)).unwrap_err(),
            Error::DecryptFailed
        );
        raw[0] = 2;
        assert!(matches!(
            open(&device, &c, &b64::encode(&raw)),
            Err(Error::MalformedEnvelope(_))
        ));
        assert!(matches!(
            open(&device, &c, "AQ"),
            Err(Error::MalformedEnvelope(_))
        ));
        assert!(matches!(
            open(&device, &c, "@@"),
            Err(Error::MalformedEnvelope(_))
        ));
        assert!(seal(&device.public_key().unwrap(), &c, &[0; MAX_PLAINTEXT + 1]).is_err());
    }
}
