//! # pushauth-core
//!
//! The sans-I/O heart of pushauth, shared by the server and the mobile SDK so that
//! both produce and check *the same bytes*:
//!
//! - [`keys`]: P-256 device and server keys (ring), JWK and RFC 7638 thumbprints,
//!   and normalisation of hardware-key-store signatures (DER or raw r‖s);
//! - [`money`]: ISO 4217 currencies and exact integer minor-unit amounts;
//! - [`transaction`]: the canonical transaction (RFC 8785 JCS) and its SHA-256 digest,
//!   the anchor of PSD2 dynamic linking;
//! - [`challenge`]: the server-signed challenge the device verifies and displays;
//! - [`proof`]: the approval proof (approval key) and decline proof (device key) the
//!   server verifies;
//! - [`request`]: device request JWS (DPoP-like, device key) authenticating device API calls;
//! - [`key_statement`]: `pushauth-key+jwt` statements binding the approval key at
//!   enrollment and rotating either key;
//! - [`migration`]: migration grants authorising a new phone's enrollment;
//! - [`push`]: private push payloads (ECDH P-256 + HKDF-SHA256 + AES-256-GCM);
//! - [`webpush`]: Web Push subscriptions and RFC 8291 `aes128gcm` message encryption.
//!
//! Nothing here opens a socket, reads a clock or touches a file: time is passed in
//! as [`UnixTime`], randomness comes from the OS through `ring::rand::SystemRandom`.
//! The byte formats are specified in `docs/protocol.md`; golden vectors live in
//! `core/tests/vectors/`.

pub mod b64;
pub mod challenge;
pub mod error;
pub mod ids;
pub mod json;
pub mod jws;
pub mod key_statement;
pub mod keys;
pub mod migration;
pub mod money;
pub mod proof;
pub mod push;
pub mod request;
pub mod time;
pub mod transaction;
pub mod webpush;

pub use error::Error;
pub use ids::{ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
pub use keys::{KeyUse, PublicKey, Signer, SoftwareSigningKey};
pub use money::{Currency, Money, MoneyError};
pub use time::UnixTime;
pub use transaction::{
    Named, Payee, ReceivedTransaction, Transaction, TransactionKind, TxnDetails, TxnDigest,
};
