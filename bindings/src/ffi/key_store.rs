//! The app's key store, as a foreign trait, and a software implementation.
//!
//! The SDK never holds a device private key: it asks the app's [`KeyStore`] to create
//! keys under an alias, to sign and to do key agreement. On iOS that is the Secure
//! Enclave, on Android the Keystore (StrongBox where present); reference
//! implementations are in `bindings/samples/`. [`SoftwareKeyStore`] keeps keys in
//! memory for tests and the demo.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pushauth_core::b64;
use pushauth_core::keys::{KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::KeyStoreError;

/// The app's key store. Implemented by the app (Swift, Kotlin, Python), or use
/// [`SoftwareKeyStore`].
///
/// Two keys per device: a **signing** key (ECDSA P-256 / SHA-256) that should require
/// the user (biometrics) for every use, and an **agreement** key (ECDH P-256) that
/// must be usable while the phone is locked, from a Notification Service Extension or
/// a `FirebaseMessagingService`, to decrypt push payloads.
///
/// Every method may be called on a background thread and may block (for example
/// while a biometric prompt is shown). Never block it on the main thread.
#[uniffi::export(rust, foreign)]
pub trait KeyStore: Send + Sync {
    /// Creates a new P-256 signing key under `alias` and returns its public key: SEC1
    /// (65-byte uncompressed point, `SecKeyCopyExternalRepresentation`), a P-256
    /// SubjectPublicKeyInfo DER (Android `PublicKey.getEncoded()`) or JWK JSON bytes.
    fn create_signing_key(&self, alias: String) -> Result<Vec<u8>, KeyStoreError>;

    /// Signs `message` with the key under `alias` (ECDSA P-256 with SHA-256: the key
    /// store hashes). Returns a DER `ECDSA-Sig-Value` or the raw 64-byte r‖s.
    /// Throws `KeyInvalidated` when biometrics changed and the platform invalidated
    /// the key, `UserCancelled` when the user dismissed the prompt.
    fn sign(&self, alias: String, message: Vec<u8>) -> Result<Vec<u8>, KeyStoreError>;

    /// Creates a new P-256 key-agreement key under `alias`, usable without user
    /// presence, and returns its public key (same encodings as signing keys).
    fn create_agreement_key(&self, alias: String) -> Result<Vec<u8>, KeyStoreError>;

    /// ECDH with the key under `alias` and `peer_public_key` (65-byte uncompressed
    /// SEC1 point). Returns the 32-byte shared x coordinate.
    fn agree(&self, alias: String, peer_public_key: Vec<u8>) -> Result<Vec<u8>, KeyStoreError>;

    /// Deletes the key under `alias`. Deleting a missing key is not an error.
    fn delete_key(&self, alias: String) -> Result<(), KeyStoreError>;
}

/// Signature encoding produced by a [`SoftwareKeyStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignatureFormat {
    /// 64-byte r‖s (CryptoKit).
    Raw,
    /// DER `ECDSA-Sig-Value` (Android Keystore, `SecKeyCreateSignature`).
    Der,
}

enum Entry {
    Signing(Box<SoftwareSigningKey>),
    Agreement(SoftwareAgreementKey),
}

struct Slot {
    entry: Entry,
    invalidated: bool,
}

/// A key store in memory (ring and p256), for tests, the demo and the CLI. Its
/// state can be exported and imported as bytes so a demo can persist it. It offers
/// no protection at all: never use it in a real app.
#[derive(uniffi::Object)]
pub struct SoftwareKeyStore {
    keys: Mutex<BTreeMap<String, Slot>>,
    format: SignatureFormat,
}

impl std::fmt::Debug for SoftwareKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.keys.lock().map(|k| k.len()).unwrap_or(0);
        write!(
            f,
            "SoftwareKeyStore({count} keys, {:?} signatures)",
            self.format
        )
    }
}

/// Versioned export format of a software key store.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exported {
    v: u32,
    keys: Vec<ExportedKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedKey {
    alias: String,
    kind: String,
    /// PKCS#8 (signing) or the 32-byte scalar (agreement), base64url.
    secret: String,
    #[serde(default)]
    invalidated: bool,
}

fn other(detail: &str) -> KeyStoreError {
    KeyStoreError::Other {
        detail: detail.to_owned(),
    }
}

impl SoftwareKeyStore {
    fn keys(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Slot>>, KeyStoreError> {
        self.keys
            .lock()
            .map_err(|_| other("key store lock poisoned"))
    }

    fn insert(&self, alias: String, entry: Entry) -> Result<(), KeyStoreError> {
        let mut keys = self.keys()?;
        if keys.contains_key(&alias) {
            return Err(other("a key already exists under this alias"));
        }
        keys.insert(
            alias,
            Slot {
                entry,
                invalidated: false,
            },
        );
        Ok(())
    }
}

#[uniffi::export]
impl SoftwareKeyStore {
    /// An empty key store producing raw signatures.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Self::with_signature_format(SignatureFormat::Raw)
    }

    /// An empty key store producing signatures in `format` (DER exercises the
    /// normalisation a hardware key store needs).
    #[uniffi::constructor]
    pub fn with_signature_format(format: SignatureFormat) -> Arc<Self> {
        Arc::new(Self {
            keys: Mutex::new(BTreeMap::new()),
            format,
        })
    }

    /// Restores a key store from [`SoftwareKeyStore::export_state`].
    #[uniffi::constructor]
    pub fn import_state(state: Vec<u8>) -> Result<Arc<Self>, KeyStoreError> {
        let exported: Exported =
            serde_json::from_slice(&state).map_err(|_| other("not a key store export"))?;
        if exported.v != 1 {
            return Err(other("unsupported key store export version"));
        }
        let store = Self::new();
        for key in exported.keys {
            let secret =
                Zeroizing::new(b64::decode(&key.secret).ok_or_else(|| other("bad key encoding"))?);
            let entry = match key.kind.as_str() {
                "signing" => Entry::Signing(Box::new(
                    SoftwareSigningKey::from_pkcs8(&secret)
                        .map_err(|_| other("bad signing key"))?,
                )),
                "agreement" => Entry::Agreement(
                    SoftwareAgreementKey::from_bytes(&secret)
                        .map_err(|_| other("bad agreement key"))?,
                ),
                _ => return Err(other("unknown key kind")),
            };
            store.keys()?.insert(
                key.alias,
                Slot {
                    entry,
                    invalidated: key.invalidated,
                },
            );
        }
        Ok(store)
    }

    /// Exports every key, private halves included, as versioned JSON bytes. Handle
    /// them as secrets.
    pub fn export_state(&self) -> Result<Vec<u8>, KeyStoreError> {
        let keys = self.keys()?;
        let mut out = Vec::with_capacity(keys.len());
        for (alias, slot) in keys.iter() {
            let (kind, secret) = match &slot.entry {
                Entry::Signing(k) => ("signing", b64::encode(&k.to_pkcs8()[..])),
                Entry::Agreement(k) => ("agreement", b64::encode(&k.to_bytes()[..])),
            };
            out.push(ExportedKey {
                alias: alias.clone(),
                kind: kind.to_owned(),
                secret,
                invalidated: slot.invalidated,
            });
        }
        serde_json::to_vec(&Exported { v: 1, keys: out }).map_err(|_| other("export failed"))
    }

    /// Imports a signing key (PKCS#8 DER) under `alias`; returns its SEC1 public key.
    pub fn import_signing_key(
        &self,
        alias: String,
        pkcs8: Vec<u8>,
    ) -> Result<Vec<u8>, KeyStoreError> {
        let key =
            SoftwareSigningKey::from_pkcs8(&pkcs8).map_err(|_| other("not a P-256 PKCS#8 key"))?;
        let public = key.public().to_sec1().to_vec();
        self.insert(alias, Entry::Signing(Box::new(key)))?;
        Ok(public)
    }

    /// Imports an agreement key (32-byte private scalar) under `alias`; returns its
    /// SEC1 public key.
    pub fn import_agreement_key(
        &self,
        alias: String,
        scalar: Vec<u8>,
    ) -> Result<Vec<u8>, KeyStoreError> {
        let key =
            SoftwareAgreementKey::from_bytes(&scalar).map_err(|_| other("not a P-256 scalar"))?;
        let public = key
            .public_key()
            .map_err(|_| other("bad agreement key"))?
            .to_sec1()
            .to_vec();
        self.insert(alias, Entry::Agreement(key))?;
        Ok(public)
    }

    /// Simulates what a platform does when biometrics change: the key stays but every
    /// use fails with `KeyInvalidated`.
    pub fn invalidate_key(&self, alias: String) -> Result<(), KeyStoreError> {
        let mut keys = self.keys()?;
        let slot = keys.get_mut(&alias).ok_or(KeyStoreError::NotFound)?;
        slot.invalidated = true;
        Ok(())
    }

    /// The aliases held, sorted.
    pub fn aliases(&self) -> Result<Vec<String>, KeyStoreError> {
        Ok(self.keys()?.keys().cloned().collect())
    }
}

#[uniffi::export]
impl KeyStore for SoftwareKeyStore {
    fn create_signing_key(&self, alias: String) -> Result<Vec<u8>, KeyStoreError> {
        let key = SoftwareSigningKey::generate().map_err(|_| other("key generation failed"))?;
        let public = key.public().to_sec1().to_vec();
        self.insert(alias, Entry::Signing(Box::new(key)))?;
        Ok(public)
    }

    fn sign(&self, alias: String, message: Vec<u8>) -> Result<Vec<u8>, KeyStoreError> {
        let keys = self.keys()?;
        let slot = keys.get(&alias).ok_or(KeyStoreError::NotFound)?;
        if slot.invalidated {
            return Err(KeyStoreError::KeyInvalidated);
        }
        let Entry::Signing(key) = &slot.entry else {
            return Err(other("not a signing key"));
        };
        let raw = key
            .sign_raw(&message)
            .map_err(|_| other("signing failed"))?;
        Ok(match self.format {
            SignatureFormat::Raw => raw.to_vec(),
            SignatureFormat::Der => raw_to_der(&raw),
        })
    }

    fn create_agreement_key(&self, alias: String) -> Result<Vec<u8>, KeyStoreError> {
        let key = SoftwareAgreementKey::generate().map_err(|_| other("key generation failed"))?;
        let public = key
            .public_key()
            .map_err(|_| other("bad agreement key"))?
            .to_sec1()
            .to_vec();
        self.insert(alias, Entry::Agreement(key))?;
        Ok(public)
    }

    fn agree(&self, alias: String, peer_public_key: Vec<u8>) -> Result<Vec<u8>, KeyStoreError> {
        let keys = self.keys()?;
        let slot = keys.get(&alias).ok_or(KeyStoreError::NotFound)?;
        if slot.invalidated {
            return Err(KeyStoreError::KeyInvalidated);
        }
        let Entry::Agreement(key) = &slot.entry else {
            return Err(other("not an agreement key"));
        };
        let peer = PublicKey::from_sec1(&peer_public_key)
            .map_err(|_| other("peer key is not a P-256 point"))?;
        let shared = key
            .agree(&peer)
            .map_err(|_| other("key agreement failed"))?;
        Ok(shared.to_vec())
    }

    fn delete_key(&self, alias: String) -> Result<(), KeyStoreError> {
        self.keys()?.remove(&alias);
        Ok(())
    }
}

/// Encodes a raw r‖s signature as a minimal DER `ECDSA-Sig-Value`.
fn raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
    fn integer(magnitude: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
        let mut value = if trimmed.is_empty() { vec![0] } else { trimmed };
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        // At most 33 bytes: the length fits one byte.
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    }
    let mut body = integer(&raw[..32]);
    body.extend(integer(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::keys::normalize_signature;

    #[test]
    fn der_round_trips_through_core() {
        let mut leading_zeros = [0x42u8; 64];
        leading_zeros[..3].copy_from_slice(&[0, 0, 0x7f]);
        leading_zeros[32] = 0;
        for raw in [leading_zeros, [0xffu8; 64], [0x01u8; 64]] {
            let der = raw_to_der(&raw);
            assert_eq!(normalize_signature(&der).unwrap(), raw);
        }
    }

    #[test]
    fn export_import_and_invalidate() {
        let store = SoftwareKeyStore::with_signature_format(SignatureFormat::Der);
        let public = PublicKey::from_sec1(&store.create_signing_key("s".into()).unwrap()).unwrap();
        store.create_agreement_key("a".into()).unwrap();
        assert!(store.create_signing_key("s".into()).is_err());
        let sig = store.sign("s".into(), b"m".to_vec()).unwrap();
        public
            .verify(b"m", &normalize_signature(&sig).unwrap())
            .unwrap();

        let again = SoftwareKeyStore::import_state(store.export_state().unwrap()).unwrap();
        assert_eq!(
            again.aliases().unwrap(),
            vec!["a".to_owned(), "s".to_owned()]
        );
        let sig = again.sign("s".into(), b"m".to_vec()).unwrap();
        public
            .verify(b"m", &normalize_signature(&sig).unwrap())
            .unwrap();

        again.invalidate_key("s".into()).unwrap();
        assert_eq!(
            again.sign("s".into(), b"m".to_vec()),
            Err(KeyStoreError::KeyInvalidated)
        );
        assert_eq!(
            again.sign("x".into(), b"m".to_vec()),
            Err(KeyStoreError::NotFound)
        );
        again.delete_key("s".into()).unwrap();
        again.delete_key("s".into()).unwrap();
        assert!(!format!("{again:?}").contains("secret"));
    }
}
