//! # pushauth mobile SDK
//!
//! uniffi bindings (Kotlin, Swift, Python) over [`pushauth_core`], for the issuer's
//! app: enroll the device, receive and decrypt pushes, fetch and verify server
//! challenges, approve or deny behind biometrics, rotate the key, unenroll.
//!
//! Layout (see `bindings/README.md` for the integration guide):
//!
//! - [`ffi`]: every exported type, one module per flow; wrappers and mirrors only;
//! - `device`: the device client (flows in core types), `api`: HTTP (reqwest +
//!   rustls), `keys`: the bridge from the app's [`ffi::key_store::KeyStore`] to the
//!   core's `Signer`/`KeyAgreement`, `enrollment`: state and link parsing;
//! - `error`: the internal error; [`ffi::error::PushAuthError`] is the public one.
//!
//! Private keys never enter this library: the app's key store holds them (Secure
//! Enclave, Android Keystore). The only exception is [`ffi::key_store::SoftwareKeyStore`],
//! for tests and the demo.

uniffi::setup_scaffolding!();

mod api;
mod device;
mod enrollment;
mod error;
pub mod ffi;
mod keys;

pub use ffi::client::{ChallengeView, DecisionOutcome, PushAuthClient};
pub use ffi::enrollment::{
    ClientOptions, EnrollRequest, EnrollmentLink, EnrollmentState, enroll, parse_enrollment_link,
};
pub use ffi::error::{KeyStoreError, PushAuthError};
pub use ffi::key_store::{KeyStore, SignatureFormat, SoftwareKeyStore};
pub use ffi::push::{PushPreview, decrypt_push};
pub use ffi::types::{
    DenyReason, Platform, Provider, PushEnvironment, Transaction, TransactionKind, UserVerification,
};
