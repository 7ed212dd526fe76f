//! The server's challenge-signing keys: the keyring (one active key, the previous
//! ones kept), their AES-256-GCM envelope under a key-encryption key (KEK), and
//! rotation.
//!
//! A device pins the server key it receives at enrollment (protocol §6.2) and
//! verifies every challenge with it. So after a rotation the new key signs for
//! devices enrolled from then on, and a device enrolled earlier keeps getting its
//! challenges signed by the key that was active when it enrolled (kept as
//! `previous`): rotation never breaks an enrolled device, and pending challenges stay
//! verifiable.
//!
//! Envelope: `"PAKW1" || nonce (12 bytes) || AES-256-GCM(pkcs8) || tag`, with the
//! key's `kid` as associated data, so an envelope cannot be moved to another key's
//! row.

use pushauth_core::keys::SoftwareSigningKey;
use pushauth_store::{Millis, ServerKeyRecord, Store};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::config::SecurityConfig;
use crate::startup::StartupError;
use crate::state::now;

const MAGIC: &[u8] = b"PAKW1";
const NONCE_LEN: usize = 12;

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(…)")
    }
}

impl Kek {
    /// From 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek, String> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| "the key-encryption key must be 32 bytes".to_owned())?;
        Ok(Kek(LessSafeKey::new(key)))
    }

    /// From its text form: 32 bytes as base64url (43 characters) or hex (64).
    pub fn parse(text: &str) -> Result<Kek, String> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 {
            hex::decode(text).map_err(|_| "the key-encryption key is not hex".to_owned())?
        } else {
            pushauth_core::b64::decode(text)
                .ok_or_else(|| "the key-encryption key is not base64url".to_owned())?
        });
        Kek::from_bytes(&bytes)
    }

    /// The KEK configured in `[security]`, if any (file or environment secret).
    pub fn from_config(security: &SecurityConfig) -> Result<Option<Kek>, StartupError> {
        match (
            &security.key_encryption_key_file,
            &security.key_encryption_key,
        ) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(StartupError::Config(
                "set security.key_encryption_key_file or security.key_encryption_key, not both"
                    .into(),
            )),
            (Some(path), None) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    StartupError::Io {
                        what: format!("reading {}", path.display()),
                        source,
                    }
                })?);
                Kek::parse(&text)
                    .map(Some)
                    .map_err(|e| StartupError::Config(format!("{}: {e}", path.display())))
            }
            (None, Some(text)) => Kek::parse(text)
                .map(Some)
                .map_err(|e| StartupError::Config(format!("security.key_encryption_key: {e}"))),
        }
    }

    /// Wraps `pkcs8` for the key `kid`.
    pub fn wrap(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, String> {
        let nonce_bytes: [u8; NONCE_LEN] =
            pushauth_core::keys::random_array().map_err(|e| e.to_string())?;
        let mut sealed = pkcs8.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing failed".to_owned())?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an envelope made by [`Kek::wrap`] for `kid`.
    pub fn unwrap(&self, kid: &str, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let rest = envelope.strip_prefix(MAGIC).ok_or("not a key envelope")?;
        if rest.len() < NONCE_LEN {
            return Err("key envelope too short".into());
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| "the key-encryption key does not open this key (wrong KEK?)")?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }
}

/// One key of the keyring, opened.
#[derive(Debug)]
pub struct RingKey {
    /// The key.
    pub key: SoftwareSigningKey,
    /// Its thumbprint.
    pub kid: String,
    /// When it became active.
    pub created_at: Millis,
    /// When it stopped being active (`None`: active).
    pub retired_at: Option<Millis>,
}

/// The opened keyring: the active key first.
#[derive(Debug)]
pub struct Keyring(Vec<RingKey>);

impl Keyring {
    /// The active key.
    pub fn active(&self) -> &RingKey {
        &self.0[0]
    }

    /// The key a device enrolled at `enrolled_at` pinned: the one active then, if it
    /// is still kept; the active key otherwise.
    pub fn for_device(&self, enrolled_at: Millis) -> &RingKey {
        &self.0[self.index_for_time(enrolled_at)]
    }

    fn index_for_time(&self, enrolled_at: Millis) -> usize {
        self.0
            .iter()
            .position(|k| {
                k.created_at <= enrolled_at && k.retired_at.is_none_or(|r| enrolled_at < r)
            })
            .unwrap_or(0)
    }

    /// The key at `index` (from [`SharedKeyring::for_device`]).
    pub fn key(&self, index: usize) -> &RingKey {
        self.0.get(index).unwrap_or_else(|| self.active())
    }

    /// Every key, active first.
    pub fn keys(&self) -> &[RingKey] {
        &self.0
    }
}

fn open(record: &ServerKeyRecord, kek: Option<&Kek>) -> Result<SoftwareSigningKey, StartupError> {
    let pkcs8 = match (record.wrapped, kek) {
        (false, _) => Zeroizing::new(record.pkcs8.clone()),
        (true, Some(kek)) => kek
            .unwrap(&record.kid, &record.pkcs8)
            .map_err(|e| StartupError::Config(format!("server key {}: {e}", record.kid)))?,
        (true, None) => {
            return Err(StartupError::Config(format!(
                "server key {} is wrapped: configure security.key_encryption_key_file or \
                 PUSHAUTH_SECURITY__KEY_ENCRYPTION_KEY",
                record.kid
            )));
        }
    };
    let key = SoftwareSigningKey::from_pkcs8(&pkcs8)
        .map_err(|e| StartupError::Config(format!("stored server key {}: {e}", record.kid)))?;
    if key.public().thumbprint() != record.kid {
        return Err(StartupError::Config(format!(
            "stored server key {} does not match its kid",
            record.kid
        )));
    }
    Ok(key)
}

/// A new key as it is stored: wrapped when a KEK is configured.
fn new_record(kek: Option<&Kek>) -> Result<ServerKeyRecord, StartupError> {
    let key = SoftwareSigningKey::generate().map_err(|e| StartupError::Config(e.to_string()))?;
    let kid = key.public().thumbprint();
    let pkcs8 = key.to_pkcs8();
    let (material, wrapped) = match kek {
        Some(kek) => (kek.wrap(&kid, &pkcs8).map_err(StartupError::Config)?, true),
        None => (pkcs8.to_vec(), false),
    };
    Ok(ServerKeyRecord {
        kid,
        pkcs8: material,
        wrapped,
        created_at: now(),
        retired_at: None,
    })
}

/// Loads the keyring, creating the first key on first start (several instances
/// starting at once agree on one). With a KEK configured, keys still stored in
/// clear are wrapped in place; without one, a wrapped key fails the start.
pub async fn load(store: &dyn Store, kek: Option<&Kek>) -> Result<Keyring, StartupError> {
    store.server_key_get_or_insert(new_record(kek)?).await?;
    let mut ring = Vec::new();
    for record in store.server_key_list().await? {
        let key = open(&record, kek)?;
        if let (false, Some(kek)) = (record.wrapped, kek) {
            let wrapped = kek
                .wrap(&record.kid, &record.pkcs8)
                .map_err(StartupError::Config)?;
            if store
                .server_key_rewrap(&record.kid, &record.pkcs8, wrapped, true)
                .await?
            {
                tracing::info!(kid = %record.kid, "server key wrapped with the key-encryption key");
            }
        }
        ring.push(RingKey {
            key,
            kid: record.kid,
            created_at: record.created_at,
            retired_at: record.retired_at,
        });
    }
    if ring.first().is_none_or(|k| k.retired_at.is_some()) {
        return Err(StartupError::Config("no active server key".into()));
    }
    Ok(Keyring(ring))
}

/// The keyring of a running server, reloaded from the store when another process
/// rotated the keys: at enrollment when the store's active key is not this instance's,
/// and when a device pinned a key this instance does not hold yet. Every device records
/// the `kid` it pinned, so its challenges are signed with that key whichever instance
/// enrolled it and whenever the instances pick a rotation up.
pub struct SharedKeyring {
    ring: std::sync::RwLock<std::sync::Arc<Keyring>>,
    kek: Option<Kek>,
}

impl std::fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyring")
            .field("active", &self.current().active().kid)
            .finish_non_exhaustive()
    }
}

impl SharedKeyring {
    /// Wraps a loaded keyring; `kek` opens wrapped keys on reload.
    pub fn new(ring: Keyring, kek: Option<Kek>) -> SharedKeyring {
        SharedKeyring {
            ring: std::sync::RwLock::new(std::sync::Arc::new(ring)),
            kek,
        }
    }

    /// The keyring as last loaded.
    pub fn current(&self) -> std::sync::Arc<Keyring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the keyring from the store again and makes it current.
    pub async fn reload(&self, store: &dyn Store) -> Result<std::sync::Arc<Keyring>, StartupError> {
        let ring = std::sync::Arc::new(load(store, self.kek.as_ref()).await?);
        let mut slot = match self.ring.write() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = ring.clone();
        Ok(ring)
    }

    /// The keyring with the store's active key: reloaded first when another process
    /// rotated since this one loaded it. For enrollment (rare), one read of the key list.
    pub async fn with_store_active(
        &self,
        store: &dyn Store,
    ) -> Result<std::sync::Arc<Keyring>, StartupError> {
        let ring = self.current();
        let stored = store.server_key_list().await?;
        match stored.first() {
            Some(active) if active.retired_at.is_none() && active.kid != ring.active().kid => {
                match self.reload(store).await {
                    Ok(ring) => {
                        tracing::info!(kid = %active.kid, "server key rotated by another process: keyring reloaded");
                        Ok(ring)
                    }
                    // e.g. the keys were wrapped by an instance configured with a KEK this
                    // one lacks: keep enrolling with the key this instance holds (still
                    // kept as previous, and recorded with the device), and say so
                    Err(e) => {
                        tracing::warn!(error = %e, kid = %active.kid, "server key rotated by another process, but the keyring could not be reloaded; enrolling with the previous key");
                        Ok(ring)
                    }
                }
            }
            _ => Ok(ring),
        }
    }

    /// The keyring holding the key `device` pinned, and that key's index in it: by the
    /// recorded `kid` (reloading once when this instance does not hold it yet), else by
    /// enrollment time (devices enrolled before kids were recorded).
    pub async fn for_device(
        &self,
        store: &dyn Store,
        device: &pushauth_store::Device,
    ) -> Result<(std::sync::Arc<Keyring>, usize), StartupError> {
        let Some(kid) = device.server_kid.as_deref() else {
            let ring = self.current();
            let i = ring.index_for_time(device.created_at);
            return Ok((ring, i));
        };
        let ring = self.current();
        if let Some(i) = ring.0.iter().position(|k| k.kid == kid) {
            return Ok((ring, i));
        }
        let ring = self.reload(store).await?;
        match ring.0.iter().position(|k| k.kid == kid) {
            Some(i) => Ok((ring, i)),
            None => Err(StartupError::Config(format!(
                "device {} pinned server key {kid}, which the store no longer holds",
                device.id
            ))),
        }
    }
}

/// Rotates: a new active key (wrapped under `kek` when given); the current one is
/// kept as previous for the devices that pinned it. Returns the new kid. Running
/// servers enroll with the new key from their next enrollment on (see
/// [`SharedKeyring`]).
pub async fn rotate(store: &dyn Store, kek: Option<&Kek>) -> Result<String, StartupError> {
    let current = load(store, kek).await?;
    let new = new_record(kek)?;
    let kid = new.kid.clone();
    if !store
        .server_key_rotate(&current.active().kid, new, now())
        .await?
    {
        return Err(StartupError::Config(
            "another rotation happened at the same time; nothing changed".into(),
        ));
    }
    Ok(kid)
}

/// Re-wraps every key under `new` (opening them with `old`, or reading them in clear
/// when not wrapped): how the key-encryption key is changed. Returns how many keys
/// were re-written. Start the servers with the new KEK afterwards.
pub async fn rewrap_all(
    store: &dyn Store,
    old: Option<&Kek>,
    new: &Kek,
) -> Result<usize, StartupError> {
    let mut done = 0;
    for record in store.server_key_list().await? {
        let key = open(&record, old)?;
        let material = new
            .wrap(&record.kid, &key.to_pkcs8())
            .map_err(StartupError::Config)?;
        if store
            .server_key_rewrap(&record.kid, &record.pkcs8, material, true)
            .await?
        {
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envelope_round_trip_and_binding() {
        let kek = Kek::from_bytes(&[7; 32]).unwrap();
        let sealed = kek.wrap("kid-1", b"pkcs8 bytes").unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert_eq!(&*kek.unwrap("kid-1", &sealed).unwrap(), b"pkcs8 bytes");
        assert!(kek.unwrap("kid-2", &sealed).is_err(), "bound to its kid");
        let other = Kek::from_bytes(&[8; 32]).unwrap();
        assert!(other.unwrap("kid-1", &sealed).is_err(), "wrong KEK");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(kek.unwrap("kid-1", &tampered).is_err());
        assert!(Kek::parse(&hex::encode([1u8; 32])).is_ok());
        assert!(Kek::parse(&pushauth_core::b64::encode([1u8; 32])).is_ok());
        assert!(Kek::parse("short").is_err());
    }
}
