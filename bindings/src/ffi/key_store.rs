//! The app's key store, as a foreign trait, and a software implementation.
//!
//! The SDK never holds a device private key: it asks the app's [`KeyStore`] to create
//! keys under an alias, to sign and to do key agreement. On iOS that is the Secure
//! Enclave, on Android the Keystore (StrongBox where present); reference
//! implementations are in `bindings/samples/`. [`SoftwareKeyStore`] keeps keys in
//! memory for tests and the demo, and counts signatures and prompts per purpose.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pushauth_core::b64;
use pushauth_core::keys::{KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::KeyStoreError;

/// What a key is for (protocol v2 §1). The key store chooses its protection from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, uniffi::Enum)]
pub enum KeyPurpose {
    /// The device key: hardware-backed, **no** user presence. Signs request proofs
    /// (listing, fetching, push token, rotation, migration), the enrollment proof and
    /// declines. Must work from background tasks (`onNewToken`).
    DeviceSigning,
    /// The approval key: biometric, user verification **on every use**, no reuse
    /// window. Signs approvals, migration grants and its own key statements; the
    /// key store must show a prompt for every signature (`prompt` is given).
    ApprovalSigning,
    /// The agreement key (ECDH P-256): no user presence, usable while the phone is
    /// locked and from the notification extension, to decrypt push payloads.
    Agreement,
}

/// What the platform prompt shows for an approval-key signature.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SigningPrompt {
    /// Prompt title ("Approve payment").
    pub title: String,
    /// One line of what is signed ("Approve EUR 49.90 at Example Shop").
    pub summary: String,
}

/// The app's key store. Implemented by the app (Swift, Kotlin, Python), or use
/// [`SoftwareKeyStore`]. Every method is async (Swift `async`, Kotlin `suspend`,
/// Python `async def`): a signature with the approval key waits for the user.
#[uniffi::export(rust, foreign)]
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Creates a P-256 key for `purpose` under `alias` and returns its public key:
    /// the 65-byte uncompressed SEC1 point (`SecKeyCopyExternalRepresentation`); a
    /// P-256 SubjectPublicKeyInfo DER (Android `getEncoded()`) or JWK JSON bytes are
    /// accepted too.
    async fn create_key(
        &self,
        alias: String,
        purpose: KeyPurpose,
    ) -> Result<Vec<u8>, KeyStoreError>;

    /// ECDSA P-256 / SHA-256 over `message` (the key store hashes) with the key under
    /// `alias`. Returns DER `ECDSA-Sig-Value` or raw 64-byte r‖s. For
    /// `ApprovalSigning` the key store must verify the user for this very signature
    /// and show `prompt` (always `Some` then); for the other purposes `prompt` is
    /// `None` and no user presence may be required.
    async fn sign(
        &self,
        alias: String,
        purpose: KeyPurpose,
        message: Vec<u8>,
        prompt: Option<SigningPrompt>,
    ) -> Result<Vec<u8>, KeyStoreError>;

    /// ECDH with the agreement key under `alias` and `peer_public_key` (65-byte
    /// uncompressed SEC1 point). Returns the 32-byte shared x coordinate.
    async fn agree(
        &self,
        alias: String,
        peer_public_key: Vec<u8>,
    ) -> Result<Vec<u8>, KeyStoreError>;

    /// Deletes the key under `alias`. Deleting a missing key is not an error.
    async fn delete_key(&self, alias: String) -> Result<(), KeyStoreError>;
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
    Signing(Box<SoftwareSigningKey>, KeyPurpose),
    Agreement(SoftwareAgreementKey),
}

struct Slot {
    entry: Entry,
    invalidated: bool,
}

#[derive(Default)]
struct Counters {
    device: u64,
    approval: u64,
    prompts: Vec<SigningPrompt>,
    /// Errors to return from the next approval-key signatures (user cancels…).
    approval_failures: Vec<KeyStoreError>,
}

/// A key store in memory (ring and p256), for tests, the demo and the CLI. It counts
/// signatures per purpose and keeps the prompts it was given, so tests can check
/// that an approval costs exactly one approval-key signature (one biometric
/// prompt). Its keys can be exported and imported as bytes so a demo can persist
/// them. It offers no protection at all: never use it in a real app.
#[derive(uniffi::Object)]
pub struct SoftwareKeyStore {
    keys: Mutex<BTreeMap<String, Slot>>,
    counters: Mutex<Counters>,
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
    /// `device`, `approval` or `agreement` (`signing` in version 1 = device).
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

    fn counters(&self) -> Result<std::sync::MutexGuard<'_, Counters>, KeyStoreError> {
        self.counters
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

    fn sign_now(
        &self,
        alias: &str,
        purpose: KeyPurpose,
        message: &[u8],
        prompt: Option<SigningPrompt>,
    ) -> Result<Vec<u8>, KeyStoreError> {
        // Like a platform key store: the approval key always prompts, and a prompt
        // can be cancelled; the other keys never prompt.
        match (purpose, prompt) {
            (KeyPurpose::ApprovalSigning, Some(prompt)) => {
                let mut c = self.counters()?;
                c.prompts.push(prompt);
                if !c.approval_failures.is_empty() {
                    return Err(c.approval_failures.remove(0));
                }
            }
            (KeyPurpose::ApprovalSigning, None) => {
                return Err(other("approval key used without a prompt"));
            }
            (_, Some(_)) => return Err(other("prompt given for a key without user presence")),
            (_, None) => {}
        }
        let raw = {
            let keys = self.keys()?;
            let slot = keys.get(alias).ok_or(KeyStoreError::NotFound)?;
            if slot.invalidated {
                return Err(KeyStoreError::KeyInvalidated);
            }
            let Entry::Signing(key, created_for) = &slot.entry else {
                return Err(other("not a signing key"));
            };
            if *created_for != purpose {
                return Err(other("key used for another purpose than created for"));
            }
            key.sign_raw(message).map_err(|_| other("signing failed"))?
        };
        let mut c = self.counters()?;
        match purpose {
            KeyPurpose::ApprovalSigning => c.approval += 1,
            _ => c.device += 1,
        }
        Ok(match self.format {
            SignatureFormat::Raw => raw.to_vec(),
            SignatureFormat::Der => raw_to_der(&raw),
        })
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
            counters: Mutex::new(Counters::default()),
            format,
        })
    }

    /// Restores a key store from [`SoftwareKeyStore::export_state`].
    #[uniffi::constructor]
    pub fn import_state(state: Vec<u8>) -> Result<Arc<Self>, KeyStoreError> {
        let exported: Exported =
            serde_json::from_slice(&state).map_err(|_| other("not a key store export"))?;
        if !matches!(exported.v, 1 | 2) {
            return Err(other("unsupported key store export version"));
        }
        let store = Self::new();
        for key in exported.keys {
            let secret =
                Zeroizing::new(b64::decode(&key.secret).ok_or_else(|| other("bad key encoding"))?);
            let signing = |purpose| -> Result<Entry, KeyStoreError> {
                Ok(Entry::Signing(
                    Box::new(
                        SoftwareSigningKey::from_pkcs8(&secret)
                            .map_err(|_| other("bad signing key"))?,
                    ),
                    purpose,
                ))
            };
            let entry = match key.kind.as_str() {
                "device" | "signing" => signing(KeyPurpose::DeviceSigning)?,
                "approval" => signing(KeyPurpose::ApprovalSigning)?,
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
                Entry::Signing(k, KeyPurpose::ApprovalSigning) => {
                    ("approval", b64::encode(&k.to_pkcs8()[..]))
                }
                Entry::Signing(k, _) => ("device", b64::encode(&k.to_pkcs8()[..])),
                Entry::Agreement(k) => ("agreement", b64::encode(&k.to_bytes()[..])),
            };
            out.push(ExportedKey {
                alias: alias.clone(),
                kind: kind.to_owned(),
                secret,
                invalidated: slot.invalidated,
            });
        }
        serde_json::to_vec(&Exported { v: 2, keys: out }).map_err(|_| other("export failed"))
    }

    /// Imports a signing key (PKCS#8 DER) for `purpose` under `alias`; returns its
    /// SEC1 public key.
    pub fn import_signing_key(
        &self,
        alias: String,
        purpose: KeyPurpose,
        pkcs8: Vec<u8>,
    ) -> Result<Vec<u8>, KeyStoreError> {
        if purpose == KeyPurpose::Agreement {
            return Err(other("not a signing purpose"));
        }
        let key =
            SoftwareSigningKey::from_pkcs8(&pkcs8).map_err(|_| other("not a P-256 PKCS#8 key"))?;
        let public = key.public().to_sec1().to_vec();
        self.insert(alias, Entry::Signing(Box::new(key), purpose))?;
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

    /// How many signatures were made with keys of `purpose` (agreement: 0).
    pub fn signature_count(&self, purpose: KeyPurpose) -> u64 {
        self.counters
            .lock()
            .map(|c| match purpose {
                KeyPurpose::DeviceSigning => c.device,
                KeyPurpose::ApprovalSigning => c.approval,
                KeyPurpose::Agreement => 0,
            })
            .unwrap_or(0)
    }

    /// Every prompt shown so far (one per approval-key signature attempt).
    pub fn prompts(&self) -> Vec<SigningPrompt> {
        self.counters
            .lock()
            .map(|c| c.prompts.clone())
            .unwrap_or_default()
    }

    /// Makes the next approval-key signature fail with `error` (the user cancels the
    /// prompt, the fingerprint does not match…). Queued in order.
    pub fn fail_next_approval(&self, error: KeyStoreError) {
        if let Ok(mut c) = self.counters.lock() {
            c.approval_failures.push(error);
        }
    }
}

#[uniffi::export]
#[async_trait::async_trait]
impl KeyStore for SoftwareKeyStore {
    async fn create_key(
        &self,
        alias: String,
        purpose: KeyPurpose,
    ) -> Result<Vec<u8>, KeyStoreError> {
        if purpose == KeyPurpose::Agreement {
            let key =
                SoftwareAgreementKey::generate().map_err(|_| other("key generation failed"))?;
            let public = key
                .public_key()
                .map_err(|_| other("bad agreement key"))?
                .to_sec1()
                .to_vec();
            self.insert(alias, Entry::Agreement(key))?;
            return Ok(public);
        }
        let key = SoftwareSigningKey::generate().map_err(|_| other("key generation failed"))?;
        let public = key.public().to_sec1().to_vec();
        self.insert(alias, Entry::Signing(Box::new(key), purpose))?;
        Ok(public)
    }

    async fn sign(
        &self,
        alias: String,
        purpose: KeyPurpose,
        message: Vec<u8>,
        prompt: Option<SigningPrompt>,
    ) -> Result<Vec<u8>, KeyStoreError> {
        self.sign_now(&alias, purpose, &message, prompt)
    }

    async fn agree(
        &self,
        alias: String,
        peer_public_key: Vec<u8>,
    ) -> Result<Vec<u8>, KeyStoreError> {
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

    async fn delete_key(&self, alias: String) -> Result<(), KeyStoreError> {
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

    #[tokio::test]
    async fn export_import_count_and_invalidate() {
        let store = SoftwareKeyStore::with_signature_format(SignatureFormat::Der);
        let d = KeyPurpose::DeviceSigning;
        let a = KeyPurpose::ApprovalSigning;
        let public = PublicKey::from_sec1(&store.create_key("s".into(), d).await.unwrap()).unwrap();
        store.create_key("p".into(), a).await.unwrap();
        store
            .create_key("x".into(), KeyPurpose::Agreement)
            .await
            .unwrap();
        assert!(store.create_key("s".into(), d).await.is_err());
        let sig = store
            .sign("s".into(), d, b"m".to_vec(), None)
            .await
            .unwrap();
        public
            .verify(b"m", &normalize_signature(&sig).unwrap())
            .unwrap();
        // The approval key needs a prompt; the device key refuses one; purposes stick.
        assert!(
            store
                .sign("p".into(), a, b"m".to_vec(), None)
                .await
                .is_err()
        );
        assert!(
            store
                .sign("s".into(), a, b"m".to_vec(), Some(prompt()))
                .await
                .is_err()
        );
        assert!(
            store
                .sign("s".into(), d, b"m".to_vec(), Some(prompt()))
                .await
                .is_err()
        );
        store.fail_next_approval(KeyStoreError::UserCancelled);
        assert_eq!(
            store
                .sign("p".into(), a, b"m".to_vec(), Some(prompt()))
                .await,
            Err(KeyStoreError::UserCancelled)
        );
        store
            .sign("p".into(), a, b"m".to_vec(), Some(prompt()))
            .await
            .unwrap();
        assert_eq!(store.signature_count(d), 1);
        assert_eq!(store.signature_count(a), 1);
        assert_eq!(store.prompts().len(), 3);

        let again = SoftwareKeyStore::import_state(store.export_state().unwrap()).unwrap();
        assert_eq!(again.aliases().unwrap(), vec!["p", "s", "x"]);
        let sig = again
            .sign("s".into(), d, b"m".to_vec(), None)
            .await
            .unwrap();
        public
            .verify(b"m", &normalize_signature(&sig).unwrap())
            .unwrap();
        assert!(
            again
                .sign("p".into(), a, b"m".to_vec(), Some(prompt()))
                .await
                .is_ok()
        );

        again.invalidate_key("s".into()).unwrap();
        assert_eq!(
            again.sign("s".into(), d, b"m".to_vec(), None).await,
            Err(KeyStoreError::KeyInvalidated)
        );
        assert_eq!(
            again.sign("z".into(), d, b"m".to_vec(), None).await,
            Err(KeyStoreError::NotFound)
        );
        again.delete_key("s".into()).await.unwrap();
        again.delete_key("s".into()).await.unwrap();
        assert!(!format!("{again:?}").contains("secret"));
    }

    fn prompt() -> SigningPrompt {
        SigningPrompt {
            title: "t".into(),
            summary: "s".into(),
        }
    }
}
