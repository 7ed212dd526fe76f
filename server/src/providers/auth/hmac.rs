//! HMAC-SHA256 keys shared by Paysafe, Adyen and Treezor, and the two header checks.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::AuthError::{self, MalformedSignature};
use super::{MAC_B64_LEN, MAC_LEN};

type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 key whose padded inner and outer states are computed once, at
/// configuration time; each message then costs a clone of that state and the hashing.
#[derive(Clone)]
pub(super) struct MacKey(HmacSha256);

impl MacKey {
    pub(super) fn new(key: &[u8]) -> Result<Self, AuthError> {
        if key.is_empty() {
            return Err(AuthError::BadKey("the key is empty"));
        }
        // HMAC takes keys of any length, so this cannot fail; map it all the same.
        HmacSha256::new_from_slice(key)
            .map(Self)
            .map_err(|_| AuthError::BadKey("HMAC refused the key"))
    }

    pub(super) fn sign_b64(&self, msg: &[u8]) -> String {
        STANDARD.encode(self.0.clone().chain_update(msg).finalize().into_bytes())
    }

    /// Constant-time check (`verify_slice` compares with `subtle`) of a base64 tag.
    pub(super) fn verify_b64(&self, msg: &[u8], signature_b64: &[u8]) -> Result<(), AuthError> {
        let tag = decode_tag(signature_b64)?;
        self.0
            .clone()
            .chain_update(msg)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// Decodes padded standard base64 of exactly [`MAC_LEN`] bytes, without allocating.
fn decode_tag(signature_b64: &[u8]) -> Result<[u8; MAC_LEN], AuthError> {
    if signature_b64.len() != MAC_B64_LEN {
        return Err(MalformedSignature);
    }
    // 44 characters decode to at most 33 bytes; canonical padding makes it exactly 32.
    let mut buf = [0u8; MAC_LEN + 1];
    match STANDARD.decode_slice(signature_b64, &mut buf) {
        Ok(MAC_LEN) => {
            let mut tag = [0u8; MAC_LEN];
            tag.copy_from_slice(&buf[..MAC_LEN]);
            Ok(tag)
        }
        _ => Err(MalformedSignature),
    }
}

// ---------------------------------------------------------------------------------------------
// Paysafe: `Signature` header.
// ---------------------------------------------------------------------------------------------

/// Paysafe's `Signature` header: `base64(HMAC-SHA256(K, message))` where `K` is the shared
/// secret base64-DECODED (Paysafe issues 256 random bytes "base64 encoded as text"; keying
/// with the text does not reproduce Paysafe's published example) and the message is the
/// body's exact bytes, or the URL path for a request without a body.
/// <https://developer.paysafe.com/en/api-docs/embedded-wallets/request-signing/>
pub struct PaysafeVerifier {
    key: MacKey,
}

impl fmt::Debug for PaysafeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaysafeVerifier").finish_non_exhaustive()
    }
}

impl PaysafeVerifier {
    /// `key_b64` is the secret exactly as Paysafe issues it: padded standard base64, with no
    /// surrounding whitespace. Anything else, or an empty key, is refused.
    pub fn new(key_b64: &str) -> Result<Self, AuthError> {
        let key = STANDARD
            .decode(key_b64)
            .map(Zeroizing::new)
            .map_err(|_| AuthError::BadKey("the Paysafe key is not base64"))?;
        Ok(Self {
            key: MacKey::new(&key)?,
        })
    }

    /// Checks the `Signature` header of a request against its raw body, byte for byte as
    /// received: never a re-serialisation.
    pub fn verify(&self, raw_body: &[u8], signature_header: &[u8]) -> Result<(), AuthError> {
        if signature_header.is_empty() {
            return Err(AuthError::MissingHeader);
        }
        self.key.verify_b64(raw_body, signature_header)
    }

    /// Checks the `Signature` header of a request without a body, where Paysafe signs the
    /// URL path as sent (e.g. `/sca/events/{eventId}/attempts`: no scheme, host or query).
    pub fn verify_path(&self, path: &str, signature_header: &[u8]) -> Result<(), AuthError> {
        self.verify(path.as_bytes(), signature_header)
    }

    /// The `Signature` header value for one of our calls to Paysafe: `msg` is the exact body
    /// bytes we send on POST/PUT/PATCH, or the URL path when there is no body.
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> String {
        self.key.sign_b64(msg)
    }
}

// ---------------------------------------------------------------------------------------------
// Adyen: `HmacSignature` header.
// ---------------------------------------------------------------------------------------------

/// Adyen's `HmacSignature` header: `base64(HMAC-SHA256(hex_decode(key), raw body))`, as in
/// Adyen's own `HMACValidator` and the test vector of its Python library.
/// <https://docs.adyen.com/development-resources/webhooks/secure-webhooks/verify-hmac-signatures>
pub struct AdyenHmacVerifier {
    key: MacKey,
}

impl fmt::Debug for AdyenHmacVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdyenHmacVerifier").finish_non_exhaustive()
    }
}

impl AdyenHmacVerifier {
    /// `key_hex` is the key as the Customer Area shows it: hex, either case. Anything else,
    /// or an empty key, is refused.
    pub fn new(key_hex: &str) -> Result<Self, AuthError> {
        let key = hex::decode(key_hex)
            .map(Zeroizing::new)
            .map_err(|_| AuthError::BadKey("the Adyen HMAC key is not hex"))?;
        Ok(Self {
            key: MacKey::new(&key)?,
        })
    }

    /// Checks the `HmacSignature` header against the raw body, byte for byte as received.
    pub fn verify(&self, raw_body: &[u8], signature_header: &[u8]) -> Result<(), AuthError> {
        if signature_header.is_empty() {
            return Err(AuthError::MissingHeader);
        }
        self.key.verify_b64(raw_body, signature_header)
    }
}
