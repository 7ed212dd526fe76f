//! Bridges from the app's [`KeyStore`] (a foreign trait) to the core's [`Signer`] and
//! [`KeyAgreement`] traits, so that `pushauth-core` signs and decrypts with keys it
//! never sees.
//!
//! The core traits return `pushauth_core::Error`, which cannot carry the key store's
//! own error (the user cancelled, the key was invalidated). Each bridge therefore
//! keeps the last [`KeyStoreError`] and [`run`] hands it back after the core call.

use std::sync::{Arc, Mutex};

use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, Signer, normalize_signature};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ffi::error::KeyStoreError;
use crate::ffi::key_store::KeyStore;

/// DER prefix of a P-256 SubjectPublicKeyInfo (RFC 5480) holding an uncompressed
/// point: what Android's `PublicKey.getEncoded()` returns.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Parses a public key as a key store returns it: SEC1 (65 bytes uncompressed, as
/// `SecKeyCopyExternalRepresentation`, or 33 compressed), a P-256
/// SubjectPublicKeyInfo DER (Android `getEncoded()`), or JWK JSON bytes.
pub(crate) fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, pushauth_core::Error> {
    if bytes.first() == Some(&b'{') {
        let jwk: Jwk = serde_json::from_slice(bytes)
            .map_err(|_| pushauth_core::Error::InvalidPublicKey("not a JWK"))?;
        return PublicKey::from_jwk(&jwk);
    }
    match bytes.strip_prefix(&SPKI_P256_PREFIX[..]) {
        Some(point) if point.len() == 65 => PublicKey::from_sec1(point),
        _ => PublicKey::from_sec1(bytes),
    }
}

/// The public key as a JWK JSON string.
pub(crate) fn jwk_json(key: &PublicKey) -> String {
    // A JWK of four short strings always serialises.
    serde_json::to_string(&key.to_jwk()).unwrap_or_default()
}

/// Parses a JWK JSON string into a public key.
pub(crate) fn public_key_from_jwk_json(json: &str) -> Result<PublicKey, pushauth_core::Error> {
    parse_public_key(json.as_bytes())
}

/// A key in the app's key store, by alias, with its public half (kept in the
/// enrollment state, so no key store round trip is needed to know it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRef {
    /// The key store alias.
    pub alias: String,
    /// The public key.
    pub public: PublicKey,
}

/// Remembers the key store's error across a core call.
#[derive(Debug, Default)]
struct Failure(Mutex<Option<KeyStoreError>>);

impl Failure {
    fn keep(&self, e: KeyStoreError) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(e);
        }
    }
    fn take(&self) -> Option<KeyStoreError> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The device signing key in the app's key store, as a core [`Signer`].
pub(crate) struct KeyStoreSigner {
    store: Arc<dyn KeyStore>,
    key: KeyRef,
    failure: Failure,
}

impl KeyStoreSigner {
    pub(crate) fn new(store: Arc<dyn KeyStore>, key: KeyRef) -> Self {
        Self {
            store,
            key,
            failure: Failure::default(),
        }
    }
}

impl std::fmt::Debug for KeyStoreSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyStoreSigner({}, {:?})",
            self.key.alias, self.key.public
        )
    }
}

impl Signer for KeyStoreSigner {
    fn sign(&self, message: &[u8]) -> pushauth_core::error::Result<Vec<u8>> {
        let signature = self
            .store
            .sign(self.key.alias.clone(), message.to_vec())
            .map_err(|e| {
                self.failure.keep(e);
                pushauth_core::Error::SignerFailed("key store refused to sign".to_owned())
            })?;
        // Check the key store signed with the enrolled key: an alias that now names
        // another key (recreated after an invalidation) must not produce proofs the
        // server would refuse one by one until the device locks.
        let raw = normalize_signature(&signature)?;
        if self.key.public.verify(message, &raw).is_err() {
            self.failure.keep(KeyStoreError::KeyInvalidated);
            return Err(pushauth_core::Error::SignerFailed(
                "signature does not match the enrolled key".to_owned(),
            ));
        }
        Ok(raw.to_vec())
    }

    fn public_key(&self) -> pushauth_core::error::Result<PublicKey> {
        Ok(self.key.public)
    }
}

/// The device agreement key in the app's key store, as a core [`KeyAgreement`].
pub(crate) struct KeyStoreAgreement {
    store: Arc<dyn KeyStore>,
    key: KeyRef,
    failure: Failure,
}

impl KeyStoreAgreement {
    pub(crate) fn new(store: Arc<dyn KeyStore>, key: KeyRef) -> Self {
        Self {
            store,
            key,
            failure: Failure::default(),
        }
    }
}

impl std::fmt::Debug for KeyStoreAgreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyStoreAgreement({}, {:?})",
            self.key.alias, self.key.public
        )
    }
}

impl KeyAgreement for KeyStoreAgreement {
    fn public_key(&self) -> pushauth_core::error::Result<PublicKey> {
        Ok(self.key.public)
    }

    fn agree(&self, peer: &PublicKey) -> pushauth_core::error::Result<Zeroizing<[u8; 32]>> {
        let shared = Zeroizing::new(
            self.store
                .agree(self.key.alias.clone(), peer.to_sec1().to_vec())
                .map_err(|e| {
                    self.failure.keep(e);
                    pushauth_core::Error::AgreementFailed(
                        "key store refused key agreement".to_owned(),
                    )
                })?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        if shared.len() != 32 {
            return Err(pushauth_core::Error::AgreementFailed(
                "shared secret must be 32 bytes".to_owned(),
            ));
        }
        out.copy_from_slice(&shared);
        Ok(out)
    }
}

/// Something that remembers a key store failure.
pub(crate) trait Bridge {
    /// The key store error kept during the last call, if any.
    fn take_failure(&self) -> Option<KeyStoreError>;
}

impl Bridge for KeyStoreSigner {
    fn take_failure(&self) -> Option<KeyStoreError> {
        self.failure.take()
    }
}

impl Bridge for KeyStoreAgreement {
    fn take_failure(&self) -> Option<KeyStoreError> {
        self.failure.take()
    }
}

/// Runs a core operation with a bridge; a failure of the key store wins over the
/// core error it caused, other core errors are wrapped by `context`.
pub(crate) fn run<B: Bridge, T>(
    bridge: &B,
    context: impl FnOnce(pushauth_core::Error) -> Error,
    op: impl FnOnce(&B) -> pushauth_core::error::Result<T>,
) -> Result<T> {
    op(bridge).map_err(|e| match bridge.take_failure() {
        Some(k) => Error::KeyStore(k),
        None => context(e),
    })
}

/// Creates a signing key and returns its reference.
pub(crate) fn create_signing_key(store: &dyn KeyStore, alias: &str) -> Result<KeyRef> {
    let bytes = store.create_signing_key(alias.to_owned())?;
    let public = parse_public_key(&bytes).map_err(|e| {
        Error::KeyStore(KeyStoreError::Other {
            detail: format!("key store returned an invalid public key: {e}"),
        })
    })?;
    Ok(KeyRef {
        alias: alias.to_owned(),
        public,
    })
}

/// Creates an agreement key and returns its reference.
pub(crate) fn create_agreement_key(store: &dyn KeyStore, alias: &str) -> Result<KeyRef> {
    let bytes = store.create_agreement_key(alias.to_owned())?;
    let public = parse_public_key(&bytes).map_err(|e| {
        Error::KeyStore(KeyStoreError::Other {
            detail: format!("key store returned an invalid public key: {e}"),
        })
    })?;
    Ok(KeyRef {
        alias: alias.to_owned(),
        public,
    })
}

/// A fresh alias: `pushauth.<purpose>.<12 random base64url characters>`.
pub(crate) fn new_alias(purpose: &str) -> Result<String> {
    let suffix: [u8; 9] =
        pushauth_core::keys::random_array().map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!(
        "pushauth.{purpose}.{}",
        pushauth_core::b64::encode(suffix)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::keys::SoftwareSigningKey;

    #[test]
    fn public_key_forms() {
        let key = SoftwareSigningKey::generate().unwrap().public();
        let sec1 = key.to_sec1();
        assert_eq!(parse_public_key(&sec1).unwrap(), key);
        let spki = [&SPKI_P256_PREFIX[..], &sec1[..]].concat();
        assert_eq!(parse_public_key(&spki).unwrap(), key);
        assert_eq!(parse_public_key(jwk_json(&key).as_bytes()).unwrap(), key);
        assert!(parse_public_key(&sec1[..64]).is_err());
        assert!(parse_public_key(b"{}").is_err());
    }

    #[test]
    fn aliases_are_unique() {
        let a = new_alias("signing").unwrap();
        assert!(a.starts_with("pushauth.signing."));
        assert_ne!(a, new_alias("signing").unwrap());
    }
}
