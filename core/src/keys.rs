//! P-256 keys: device signing keys (ECDSA, ring), push agreement keys (ECDH), public
//! keys as SEC1 points and JWKs, RFC 7638 thumbprints, and the normalisation of
//! signatures coming from hardware key stores.
//!
//! Why three device keys (protocol v2, §1): the *device key* (use `device`) is
//! hardware-backed without user presence and signs requests, enrollment and declines;
//! the *approval key* (use `approval`) needs a fresh biometric for every signature and
//! signs only approvals, migration grants and its own key statements, so the user sees
//! exactly one prompt per approval, after the amount is on screen. Push payloads are
//! encrypted to a third, agreement-only key that the app may use while locked.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result};

/// Fills an array from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| Error::Rng)?;
    Ok(out)
}

/// What a device signing key is for (the `use` of key statements, protocol §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUse {
    /// The device key: request proofs, enrollment proof of possession, declines.
    Device,
    /// The approval key: approval proofs, migration grants, its own key statements.
    Approval,
}

impl KeyUse {
    /// The wire name, `device` or `approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Device => "device",
            KeyUse::Approval => "approval",
        }
    }
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A P-256 public key, held as the 65-byte uncompressed SEC1 point and checked to be
/// on the curve when constructed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 65]);

impl PublicKey {
    /// Parses a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes), and
    /// refuses points that are not on the curve or the identity.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = p256::PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| Error::InvalidPublicKey("not a P-256 point"))?;
        let point = key.to_encoded_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(point.as_bytes());
        Ok(Self(out))
    }

    /// The uncompressed SEC1 encoding (0x04 ‖ x ‖ y).
    pub fn to_sec1(&self) -> [u8; 65] {
        self.0
    }

    /// The public key as a JWK (RFC 7517/7518 §6.2.1).
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: b64::encode(&self.0[1..33]),
            y: b64::encode(&self.0[33..65]),
            d: None,
        }
    }

    /// Parses a public JWK: `kty` EC, `crv` P-256, 32-byte `x` and `y`, and no `d`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        if jwk.d.is_some() {
            return Err(Error::InvalidPublicKey("JWK carries private key material"));
        }
        if jwk.kty != "EC" || jwk.crv != "P-256" {
            return Err(Error::InvalidPublicKey(
                "only kty EC with crv P-256 is supported",
            ));
        }
        let x = b64::decode(&jwk.x).ok_or(Error::InvalidPublicKey("x is not base64url"))?;
        let y = b64::decode(&jwk.y).ok_or(Error::InvalidPublicKey("y is not base64url"))?;
        if x.len() != 32 || y.len() != 32 {
            return Err(Error::InvalidPublicKey("x and y must be 32 bytes"));
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..33].copy_from_slice(&x);
        sec1[33..].copy_from_slice(&y);
        Self::from_sec1(&sec1)
    }

    /// RFC 7638 JWK thumbprint: base64url(SHA-256(`{"crv":"P-256","kty":"EC","x":…,"y":…}`)).
    pub fn thumbprint(&self) -> String {
        let jwk = self.to_jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.x, jwk.y
        );
        b64::encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// Verifies a raw (r‖s) ES256 signature over `message`.
    pub fn verify(&self, message: &[u8], signature_raw: &[u8; 64]) -> Result<()> {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.0[..])
            .verify(message, signature_raw)
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(P-256, {})", self.thumbprint())
    }
}

/// A JSON Web Key for a P-256 public key. `d` is only present so that a JWK carrying a
/// private key can be *refused* rather than silently accepted; it is never emitted.
#[derive(Clone, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `EC`.
    pub kty: String,
    /// Curve, `P-256`.
    pub crv: String,
    /// base64url x coordinate (32 bytes).
    pub x: String,
    /// base64url y coordinate (32 bytes).
    pub y: String,
    /// Private scalar: must be absent from public keys.
    #[serde(default, skip_serializing)]
    pub d: Option<serde::de::IgnoredAny>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Jwk({} {} x={} y={})",
            self.kty, self.crv, self.x, self.y
        )
    }
}

/// Something that can produce an ECDSA P-256/SHA-256 signature: a software key here,
/// or the app's hardware key store behind the SDK's foreign trait.
///
/// Implementations may return either the raw 64-byte r‖s form (JWS, CryptoKit) or a
/// DER `ECDSA-Sig-Value` (Android Keystore, `SecKeyCreateSignature`); the core
/// normalises with [`normalize_signature`].
pub trait Signer {
    /// Signs `message` (the signer hashes it with SHA-256).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// The public key matching the private key.
    fn public_key(&self) -> Result<PublicKey>;
}

/// A software P-256 signing key (ring), for tests, the demo and the server's own
/// challenge-signing key. Hardware keys implement [`Signer`] instead.
pub struct SoftwareSigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl SoftwareSigningKey {
    /// Generates a new key.
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::Rng)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Imports a PKCS#8 v1/v2 document (DER) holding a P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| Error::InvalidPrivateKey)?;
        let public = PublicKey::from_sec1(pair.public_key().as_ref())?;
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
        })
    }

    /// Exports the PKCS#8 document (DER). Handle with care: this is the private key.
    pub fn to_pkcs8(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// Signs and returns the raw 64-byte r‖s signature.
    pub fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64]> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| Error::SignerFailed("ECDSA signing failed".to_owned()))?;
        normalize_signature(sig.as_ref())
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }
}

impl Signer for SoftwareSigningKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.sign_raw(message)?.to_vec())
    }
    fn public_key(&self) -> Result<PublicKey> {
        Ok(self.public)
    }
}

impl fmt::Debug for SoftwareSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareSigningKey(P-256, {})", self.public.thumbprint())
    }
}

/// Normalises an ECDSA P-256 signature to the 64-byte r‖s form JWS requires
/// (RFC 7518 §3.4): 64 bytes are taken as raw; anything else must be a strict,
/// minimally encoded DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`.
pub fn normalize_signature(sig: &[u8]) -> Result<[u8; 64]> {
    if sig.len() == 64 {
        let mut out = [0u8; 64];
        out.copy_from_slice(sig);
        return Ok(out);
    }
    let body = match sig {
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x30, ..] => return Err(Error::MalformedSignature("bad SEQUENCE length")),
        _ => return Err(Error::MalformedSignature("neither 64 raw bytes nor DER")),
    };
    let (r, rest) = der_integer(body)?;
    let (s, rest) = der_integer(rest)?;
    if !rest.is_empty() {
        return Err(Error::MalformedSignature(
            "trailing bytes after DER signature",
        ));
    }
    let mut out = [0u8; 64];
    out[32 - r.len()..32].copy_from_slice(r);
    out[64 - s.len()..].copy_from_slice(s);
    Ok(out)
}

/// Reads one strict DER INTEGER holding a positive value of at most 32 bytes;
/// returns its magnitude without the sign byte, and the remaining input.
fn der_integer(input: &[u8]) -> Result<(&[u8], &[u8])> {
    let [0x02, len, rest @ ..] = input else {
        return Err(Error::MalformedSignature("expected INTEGER"));
    };
    let len = usize::from(*len);
    if len == 0 || len > 33 || rest.len() < len {
        return Err(Error::MalformedSignature("bad INTEGER length"));
    }
    let (value, rest) = rest.split_at(len);
    if value[0] & 0x80 != 0 {
        return Err(Error::MalformedSignature("negative INTEGER"));
    }
    let magnitude = if value[0] == 0 {
        if len == 1 || value[1] & 0x80 == 0 {
            return Err(Error::MalformedSignature("non-minimal INTEGER"));
        }
        &value[1..]
    } else {
        value
    };
    if magnitude.len() > 32 {
        return Err(Error::MalformedSignature(
            "INTEGER larger than the curve order",
        ));
    }
    Ok((magnitude, rest))
}

/// Something that can do ECDH P-256 with a private key it holds: a software key
/// here, or the app's key store (`SecKeyCopyKeyExchangeResult`, Android `KeyAgreement`).
pub trait KeyAgreement {
    /// The public half of the agreement key (what the server encrypts to).
    fn public_key(&self) -> Result<PublicKey>;
    /// Returns the x coordinate of `private × peer` (32 bytes).
    fn agree(&self, peer: &PublicKey) -> Result<Zeroizing<[u8; 32]>>;
}

/// A software P-256 agreement key for push payload decryption.
pub struct SoftwareAgreementKey {
    secret: p256::SecretKey,
}

impl SoftwareAgreementKey {
    /// Generates a new key.
    pub fn generate() -> Result<Self> {
        loop {
            let bytes = Zeroizing::new(random_array::<32>()?);
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes[..]) {
                return Ok(Self { secret });
            }
        }
    }

    /// Imports the 32-byte big-endian private scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let secret = p256::SecretKey::from_slice(bytes).map_err(|_| Error::InvalidPrivateKey)?;
        Ok(Self { secret })
    }

    /// Exports the 32-byte private scalar. Handle with care.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.secret.to_bytes().to_vec())
    }
}

impl KeyAgreement for SoftwareAgreementKey {
    fn public_key(&self) -> Result<PublicKey> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        PublicKey::from_sec1(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    fn agree(&self, peer: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
        let peer = p256::PublicKey::from_sec1_bytes(&peer.to_sec1())
            .map_err(|_| Error::InvalidPublicKey("not a P-256 point"))?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&shared.raw_secret_bytes()[..]);
        Ok(out)
    }
}

impl fmt::Debug for SoftwareAgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.public_key() {
            Ok(p) => write!(f, "SoftwareAgreementKey(P-256, {})", p.thumbprint()),
            Err(_) => f.write_str("SoftwareAgreementKey(P-256)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_round_trip_and_sign_verify() {
        let key = SoftwareSigningKey::generate().unwrap();
        let again = SoftwareSigningKey::from_pkcs8(&key.to_pkcs8()).unwrap();
        assert_eq!(key.public(), again.public());
        let sig = again.sign_raw(b"hello").unwrap();
        key.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            key.public().verify(b"hellO", &sig),
            Err(Error::BadSignature)
        );
        assert!(SoftwareSigningKey::from_pkcs8(b"not a key").is_err());
    }

    #[test]
    fn jwk_round_trip_and_refusals() {
        let key = SoftwareSigningKey::generate().unwrap().public();
        let jwk = key.to_jwk();
        assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), key);
        let json = serde_json::to_string(&jwk).unwrap();
        assert!(!json.contains("\"d\""));

        let mut other = jwk.clone();
        other.crv = "P-384".into();
        assert!(PublicKey::from_jwk(&other).is_err());
        let mut off_curve = jwk.clone();
        off_curve.y = b64::encode([7u8; 32]);
        assert!(PublicKey::from_jwk(&off_curve).is_err());
        let with_d: Jwk = serde_json::from_str(&json.replace('}', r#","d":"AAAA"}"#)).unwrap();
        assert_eq!(
            PublicKey::from_jwk(&with_d),
            Err(Error::InvalidPublicKey("JWK carries private key material"))
        );
    }

    #[test]
    fn compressed_points_are_accepted() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = SoftwareSigningKey::generate().unwrap().public();
        let p = p256::PublicKey::from_sec1_bytes(&key.to_sec1()).unwrap();
        let compressed = p.to_encoded_point(true);
        assert_eq!(PublicKey::from_sec1(compressed.as_bytes()).unwrap(), key);
        assert!(PublicKey::from_sec1(&[0u8; 65]).is_err());
    }

    /// RFC 7638 §3.1 worked example uses RSA; this checks the EC member order
    /// against a value computed independently (python: hashlib + json with sorted keys).
    #[test]
    fn thumbprint_matches_canonical_json() {
        let key = SoftwareSigningKey::generate().unwrap().public();
        let jwk = key.to_jwk();
        let expected = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.x, jwk.y
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, expected.as_bytes());
        assert_eq!(key.thumbprint(), b64::encode(digest));
        assert_eq!(key.thumbprint().len(), 43);
    }

    fn to_der(raw: &[u8; 64]) -> Vec<u8> {
        fn int(v: &[u8]) -> Vec<u8> {
            let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
            if v.is_empty() || v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            let mut out = vec![2, v.len() as u8];
            out.extend(v);
            out
        }
        let mut body = int(&raw[..32]);
        body.extend(int(&raw[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn der_signatures_normalise_and_verify() {
        let key = SoftwareSigningKey::generate().unwrap();
        for _ in 0..32 {
            let raw = key.sign_raw(b"m").unwrap();
            let der = to_der(&raw);
            assert_eq!(normalize_signature(&der).unwrap(), raw);
        }
    }

    #[test]
    fn malformed_der_is_refused() {
        let mut raw = [0x11u8; 64];
        raw[0] = 0x80;
        let good = to_der(&raw);
        assert!(normalize_signature(&good).is_ok());
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x30],
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            {
                let mut g = good.clone();
                g[1] += 1;
                g
            },
            // non-minimal: leading zero before a byte without the high bit
            vec![0x30, 0x08, 0x02, 0x02, 0x00, 0x01, 0x02, 0x02, 0x00, 0x01],
            // negative r
            vec![0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01],
            // r of 33 magnitude bytes
            [
                vec![0x30, 0x26, 0x02, 0x22, 0x00],
                vec![0x80; 33],
                vec![0x02, 0x01, 0x01],
            ]
            .concat(),
        ];
        for c in cases {
            assert!(normalize_signature(&c).is_err(), "{c:02x?}");
        }
    }

    #[test]
    fn ecdh_agrees_with_ring_ephemeral() {
        let device = SoftwareAgreementKey::generate().unwrap();
        let again = SoftwareAgreementKey::from_bytes(&device.to_bytes()).unwrap();
        assert_eq!(device.public_key().unwrap(), again.public_key().unwrap());
        let rng = SystemRandom::new();
        let eph = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng)
            .unwrap();
        let eph_pub = PublicKey::from_sec1(eph.compute_public_key().unwrap().as_ref()).unwrap();
        let server_side = ring::agreement::agree_ephemeral(
            eph,
            &ring::agreement::UnparsedPublicKey::new(
                &ring::agreement::ECDH_P256,
                device.public_key().unwrap().to_sec1(),
            ),
            |s| s.to_vec(),
        )
        .unwrap();
        assert_eq!(&device.agree(&eph_pub).unwrap()[..], &server_side[..]);
    }
}
