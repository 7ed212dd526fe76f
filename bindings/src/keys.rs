//! Bridges from the app's asynchronous [`KeyStore`] (a foreign trait) to the core,
//! whose [`Signer`] and [`KeyAgreement`] traits are synchronous.
//!
//! Signing runs the core twice over in one: the core builds the JWS with a
//! capturing signer that records the exact signing input (`header.payload`) and
//! returns a placeholder; the key store then signs that input asynchronously (it may
//! show a biometric prompt), the signature is checked against the enrolled public
//! key and replaces the placeholder. Key agreement likewise learns the peer key in
//! a first pass, asks the key store, and opens the envelope with the shared secret.

use std::sync::Mutex;

use pushauth_core::b64;
use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, Signer, normalize_signature};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ffi::error::KeyStoreError;
use crate::ffi::key_store::{KeyPurpose, KeyStore, SigningPrompt};

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

/// A signer that records the signing input and returns a placeholder signature.
struct Capture {
    public: PublicKey,
    input: Mutex<Option<Vec<u8>>>,
}

impl Signer for Capture {
    fn sign(&self, message: &[u8]) -> pushauth_core::error::Result<Vec<u8>> {
        let mut slot = self
            .input
            .lock()
            .map_err(|_| pushauth_core::Error::SignerFailed("capture poisoned".to_owned()))?;
        if slot.is_some() {
            return Err(pushauth_core::Error::SignerFailed(
                "one signature per object".to_owned(),
            ));
        }
        *slot = Some(message.to_vec());
        Ok(vec![1u8; 64])
    }

    fn public_key(&self) -> pushauth_core::error::Result<PublicKey> {
        Ok(self.public)
    }
}

/// Signs one JWS that `build` makes with the core, with `key` of `purpose` in the
/// app's key store: exactly one call to [`KeyStore::sign`]. `prompt` is what the
/// platform prompt shows (approval key only).
pub(crate) async fn sign_jws(
    store: &dyn KeyStore,
    key: &KeyRef,
    purpose: KeyPurpose,
    prompt: Option<SigningPrompt>,
    build: impl FnOnce(&dyn Signer) -> pushauth_core::error::Result<String>,
) -> Result<String> {
    let capture = Capture {
        public: key.public,
        input: Mutex::new(None),
    };
    let draft = build(&capture).map_err(Error::signing)?;
    let input = capture
        .input
        .into_inner()
        .ok()
        .flatten()
        .ok_or_else(|| Error::Internal("nothing to sign".to_owned()))?;
    let cut = draft
        .rfind('.')
        .filter(|cut| draft.as_bytes()[..*cut] == input[..])
        .ok_or_else(|| Error::Internal("signing input is not the token's".to_owned()))?;
    let signature = store
        .sign(key.alias.clone(), purpose, input.clone(), prompt)
        .await
        .map_err(|e| Error::key_store(e, purpose))?;
    let raw = normalize_signature(&signature).map_err(|_| {
        Error::key_store(
            KeyStoreError::Other {
                detail: "key store returned a malformed signature".to_owned(),
            },
            purpose,
        )
    })?;
    // Check the key store signed with the enrolled key: an alias that now names
    // another key (recreated after an invalidation) must not produce proofs the
    // server would refuse one by one until the device locks.
    if key.public.verify(&input, &raw).is_err() {
        return Err(Error::key_store(KeyStoreError::KeyInvalidated, purpose));
    }
    Ok(format!("{}.{}", &draft[..cut], b64::encode(raw)))
}

/// First pass of key agreement: records the peer key, fails.
struct Probe {
    public: PublicKey,
    peer: Mutex<Option<PublicKey>>,
}

impl KeyAgreement for Probe {
    fn public_key(&self) -> pushauth_core::error::Result<PublicKey> {
        Ok(self.public)
    }
    fn agree(&self, peer: &PublicKey) -> pushauth_core::error::Result<Zeroizing<[u8; 32]>> {
        if let Ok(mut slot) = self.peer.lock() {
            *slot = Some(*peer);
        }
        Err(pushauth_core::Error::AgreementFailed("probe".to_owned()))
    }
}

/// Second pass: the shared secret the key store computed for that peer.
struct Agreed {
    public: PublicKey,
    peer: PublicKey,
    shared: Zeroizing<[u8; 32]>,
}

impl KeyAgreement for Agreed {
    fn public_key(&self) -> pushauth_core::error::Result<PublicKey> {
        Ok(self.public)
    }
    fn agree(&self, peer: &PublicKey) -> pushauth_core::error::Result<Zeroizing<[u8; 32]>> {
        if *peer != self.peer {
            return Err(pushauth_core::Error::AgreementFailed(
                "another peer key".to_owned(),
            ));
        }
        Ok(self.shared.clone())
    }
}

/// Runs a core operation that needs one key agreement with `key` (push decryption):
/// `op` runs twice, first to learn the peer key, then with the shared secret.
pub(crate) async fn with_agreement<T>(
    store: &dyn KeyStore,
    key: &KeyRef,
    op: impl Fn(&dyn KeyAgreement) -> pushauth_core::error::Result<T>,
) -> Result<T> {
    let probe = Probe {
        public: key.public,
        peer: Mutex::new(None),
    };
    let first = op(&probe);
    let Some(peer) = probe.peer.into_inner().ok().flatten() else {
        // Failed before any agreement (malformed envelope) or needed none.
        return match first {
            Ok(_) => Err(Error::Internal("agreement was not used".to_owned())),
            Err(e) => Err(Error::Push(e)),
        };
    };
    drop(first);
    let bytes = Zeroizing::new(
        store
            .agree(key.alias.clone(), peer.to_sec1().to_vec())
            .await
            .map_err(|e| Error::key_store(e, KeyPurpose::Agreement))?,
    );
    if bytes.len() != 32 {
        return Err(Error::key_store(
            KeyStoreError::Other {
                detail: "shared secret must be 32 bytes".to_owned(),
            },
            KeyPurpose::Agreement,
        ));
    }
    let mut shared = Zeroizing::new([0u8; 32]);
    shared.copy_from_slice(&bytes);
    op(&Agreed {
        public: key.public,
        peer,
        shared,
    })
    .map_err(Error::Push)
}

/// Creates a key for `purpose` under a fresh alias and returns its reference.
pub(crate) async fn create_key(store: &dyn KeyStore, purpose: KeyPurpose) -> Result<KeyRef> {
    let alias = new_alias(purpose)?;
    let bytes = store
        .create_key(alias.clone(), purpose)
        .await
        .map_err(|e| Error::key_store(e, purpose))?;
    let public = match parse_public_key(&bytes) {
        Ok(public) => public,
        Err(e) => {
            let _ = store.delete_key(alias).await;
            return Err(Error::key_store(
                KeyStoreError::Other {
                    detail: format!("key store returned an invalid public key: {e}"),
                },
                purpose,
            ));
        }
    };
    Ok(KeyRef { alias, public })
}

/// Deletes keys, ignoring failures (clean-up).
pub(crate) async fn delete_quietly(store: &dyn KeyStore, aliases: &[&str]) {
    for alias in aliases {
        let _ = store.delete_key((*alias).to_owned()).await;
    }
}

/// A fresh alias: `pushauth.<purpose>.<12 random base64url characters>`.
pub(crate) fn new_alias(purpose: KeyPurpose) -> Result<String> {
    let suffix: [u8; 9] =
        pushauth_core::keys::random_array().map_err(|e| Error::Internal(e.to_string()))?;
    let name = match purpose {
        KeyPurpose::DeviceSigning => "device",
        KeyPurpose::ApprovalSigning => "approval",
        KeyPurpose::Agreement => "agreement",
    };
    Ok(format!("pushauth.{name}.{}", b64::encode(suffix)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::key_store::{SignatureFormat, SoftwareKeyStore};
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
        let a = new_alias(KeyPurpose::ApprovalSigning).unwrap();
        assert!(a.starts_with("pushauth.approval."));
        assert_ne!(a, new_alias(KeyPurpose::ApprovalSigning).unwrap());
    }

    #[tokio::test]
    async fn signs_the_core_token_once_and_checks_the_key() {
        let store = SoftwareKeyStore::with_signature_format(SignatureFormat::Der);
        let key = create_key(store.as_ref(), KeyPurpose::DeviceSigning)
            .await
            .unwrap();
        let token = sign_jws(store.as_ref(), &key, KeyPurpose::DeviceSigning, None, |s| {
            pushauth_core::jws::sign("x+jwt", Some("d"), None, &serde_json::json!({"a":1}), s)
        })
        .await
        .unwrap();
        let parsed = pushauth_core::jws::parse(&token, "x+jwt").unwrap();
        let claims: serde_json::Value = parsed.verify(&key.public).unwrap();
        assert_eq!(claims["a"], 1);
        assert_eq!(store.signature_count(KeyPurpose::DeviceSigning), 1);
        assert_eq!(store.signature_count(KeyPurpose::ApprovalSigning), 0);

        // Another key under the alias: refused as invalidated, not sent.
        let other = create_key(store.as_ref(), KeyPurpose::DeviceSigning)
            .await
            .unwrap();
        let wrong = KeyRef {
            alias: other.alias,
            public: key.public,
        };
        let e = sign_jws(
            store.as_ref(),
            &wrong,
            KeyPurpose::DeviceSigning,
            None,
            |s| pushauth_core::jws::sign("x+jwt", None, None, &1, s),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            e,
            Error::KeyStore {
                error: KeyStoreError::KeyInvalidated,
                ..
            }
        ));
    }
}
