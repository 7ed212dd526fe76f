//! # pushauth mobile SDK
//!
//! uniffi bindings (Kotlin, Swift, Python) over [`pushauth_core`], for the issuer's
//! app: enroll the device (device, approval and agreement keys), receive and decrypt
//! pushes (APNs, FCM, Web Push), fetch and verify server challenges, approve (one
//! biometric prompt) or
//! decline, rotate keys crash-safely, migrate to a new phone, unenroll.
//!
//! Layout (see `bindings/README.md` for the integration guide):
//!
//! - [`ffi`]: every exported type, one module per flow; wrappers and mirrors only;
//! - `device`: the device client (requests with the device key), `enroll`,
//!   `decision` (approvals, declines, migration grants), `rotation` (two-phase key
//!   rotation), `protocol` (the v2 objects and which key signs them);
//! - `api`: the device API over the [`ffi::transport::HttpTransport`], `http`: the
//!   built-in reqwest client; `keys`: the bridge from the app's async
//!   [`ffi::key_store::KeyStore`] to the core's `Signer`/`KeyAgreement`;
//!   `enrollment`: state and link parsing;
//! - `error`: the internal error; [`ffi::error::PushAuthError`] is the public one.
//!
//! Private keys never enter this library: the app's key store holds them (Secure
//! Enclave, Android Keystore). The only exception is [`ffi::key_store::SoftwareKeyStore`],
//! for tests and the demo.

uniffi::setup_scaffolding!();

#[cfg(not(target_vendor = "apple"))]
mod android;
mod api;
mod decision;
mod device;
mod enroll;
mod enrollment;
mod error;
pub mod ffi;
mod http;
mod keys;
mod protocol;
mod rotation;

pub use ffi::client::{ChallengeView, DecisionOutcome, MigrationCode, PushAuthClient};
pub use ffi::enrollment::{
    ClientOptions, EnrollRequest, EnrollmentLink, EnrollmentState, PendingKeyState, enroll,
    enroll_with_transport, parse_enrollment_link,
};
pub use ffi::error::{KeyStoreError, PushAuthError};
pub use ffi::key_store::{KeyPurpose, KeyStore, SignatureFormat, SigningPrompt, SoftwareKeyStore};
pub use ffi::push::{PushMessage, PushPreview, decrypt_push, parse_push};
pub use ffi::transaction::{
    DisplayField, Transaction, TxnMember, TxnMemberValue, canonical_transaction_json,
    transaction_digest, transaction_display_fields,
};
pub use ffi::transport::{
    HttpHeader, HttpRequest, HttpResponse, HttpTransport, TransportError, builtin_transport,
};
pub use ffi::types::{
    DenyReason, Platform, Provider, PushEnvironment, TransactionKind, UserVerification,
};
pub use ffi::webpush::{
    WebPushKeys, decrypt_web_push, generate_web_push_keys, parse_web_push, web_push_token,
};
