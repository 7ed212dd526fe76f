//! Pure helpers over the core: key encodings, signature normalisation and server
//! challenge verification without a client (for tests and custom transports).

use pushauth_core::UnixTime;
use pushauth_core::challenge;
use pushauth_core::ids::DeviceId;
use pushauth_core::keys;

use super::client::ChallengeView;
use super::error::PushAuthError;
use crate::error::Error;
use crate::keys::{jwk_json, parse_public_key};

/// Clock skew accepted by [`verify_server_challenge`], as the client's default.
const DEFAULT_SKEW_SECS: i64 = 30;

/// Normalises an ECDSA P-256 signature (strict DER or raw) to the 64-byte r‖s.
#[uniffi::export]
pub fn normalize_signature(signature: Vec<u8>) -> Result<Vec<u8>, PushAuthError> {
    keys::normalize_signature(&signature)
        .map(|raw| raw.to_vec())
        .map_err(|e| Error::input("signature", &e).into())
}

/// A public key (SEC1, P-256 SubjectPublicKeyInfo DER, or JWK JSON bytes) as JWK
/// JSON.
#[uniffi::export]
pub fn public_key_jwk(public_key: Vec<u8>) -> Result<String, PushAuthError> {
    let key = parse_public_key(&public_key).map_err(|e| Error::input("public key", &e))?;
    Ok(jwk_json(&key))
}

/// The RFC 7638 thumbprint of a public JWK (a key id).
#[uniffi::export]
pub fn jwk_thumbprint(jwk: String) -> Result<String, PushAuthError> {
    let key = parse_public_key(jwk.as_bytes()).map_err(|e| Error::input("jwk", &e))?;
    Ok(key.thumbprint())
}

/// Verifies a server challenge (protocol §5) against a pinned server key (JWK
/// JSON), the issuer and this device, at `now` (Unix seconds), with 30 s of clock
/// skew. Throws `InvalidChallenge { reason }` or `ChallengeExpired`.
#[uniffi::export]
pub fn verify_server_challenge(
    token: String,
    pinned_server_jwk: String,
    issuer: String,
    device_id: String,
    now: i64,
) -> Result<ChallengeView, PushAuthError> {
    let key = parse_public_key(pinned_server_jwk.as_bytes())
        .map_err(|e| Error::input("pinned_server_jwk", &e))?;
    let device = DeviceId::parse(&device_id).map_err(|e| Error::input("device_id", &e))?;
    let verified = challenge::verify(
        &token,
        &key,
        &issuer,
        &device,
        UnixTime(now),
        DEFAULT_SKEW_SECS,
    )
    .map_err(Error::Challenge)?;
    Ok(ChallengeView::new(&verified, token))
}
