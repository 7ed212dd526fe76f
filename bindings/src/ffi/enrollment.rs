//! Enrollment: the deeplink, the `enroll` call, and the state the app persists.

use std::sync::Arc;
use std::time::Duration;

use pushauth_core::ids::DeviceId;
use serde::{Deserialize, Serialize};

use super::error::PushAuthError;
use super::key_store::KeyStore;
use super::types::{Platform, PushEnvironment, UserVerification};
use crate::api::Transport;
use crate::device::{self, EnrollParams, Settings};
use crate::enrollment::{self, Enrollment, server_url_text};
use crate::error::Error;
use crate::keys::{KeyRef, jwk_json, public_key_from_jwk_json};

/// Current version of [`EnrollmentState`].
const STATE_VERSION: u32 = 1;

/// Everything the SDK needs to remember about an enrolled device. Nothing in it is
/// secret (the private keys stay in the key store), but it identifies the device:
/// keep it in the Keychain / EncryptedSharedPreferences and pass it back to
/// [`super::client::PushAuthClient::new`]. Store it with
/// [`enrollment_state_to_json`]; share it with the Notification Service Extension
/// for [`super::push::decrypt_push`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct EnrollmentState {
    /// Format version (1).
    pub version: u32,
    /// The server's base URL.
    pub server_url: String,
    /// The server's issuer name.
    pub issuer: String,
    /// This device's id.
    pub device_id: String,
    /// The server's challenge-signing key (JWK JSON), pinned at enrollment.
    pub server_key_jwk: String,
    /// Its RFC 7638 thumbprint.
    pub server_kid: String,
    /// Key store alias of the signing key.
    pub signing_key_alias: String,
    /// Public signing key (JWK JSON).
    pub signing_key_jwk: String,
    /// Key store alias of the agreement key.
    pub agreement_key_alias: String,
    /// Public agreement key (JWK JSON).
    pub agreement_key_jwk: String,
}

impl From<&Enrollment> for EnrollmentState {
    fn from(e: &Enrollment) -> Self {
        EnrollmentState {
            version: STATE_VERSION,
            server_url: server_url_text(&e.server),
            issuer: e.issuer.clone(),
            device_id: e.device.as_str().to_owned(),
            server_key_jwk: jwk_json(&e.server_key),
            server_kid: e.server_key.thumbprint(),
            signing_key_alias: e.signing.alias.clone(),
            signing_key_jwk: jwk_json(&e.signing.public),
            agreement_key_alias: e.agreement.alias.clone(),
            agreement_key_jwk: jwk_json(&e.agreement.public),
        }
    }
}

impl TryFrom<&EnrollmentState> for Enrollment {
    type Error = Error;
    fn try_from(s: &EnrollmentState) -> Result<Self, Error> {
        if s.version != STATE_VERSION {
            return Err(Error::Input(
                "enrollment state: unsupported version".to_owned(),
            ));
        }
        let key = |what: &str, json: &str| {
            public_key_from_jwk_json(json).map_err(|e| Error::input(what, &e))
        };
        let server_key = key("server_key_jwk", &s.server_key_jwk)?;
        if server_key.thumbprint() != s.server_kid {
            return Err(Error::Input(
                "enrollment state: server_kid is not the key's thumbprint".to_owned(),
            ));
        }
        Ok(Enrollment {
            server: enrollment::parse_server_url(&s.server_url)?,
            issuer: s.issuer.clone(),
            device: DeviceId::parse(&s.device_id).map_err(|e| Error::input("device_id", &e))?,
            server_key,
            signing: KeyRef {
                alias: s.signing_key_alias.clone(),
                public: key("signing_key_jwk", &s.signing_key_jwk)?,
            },
            agreement: KeyRef {
                alias: s.agreement_key_alias.clone(),
                public: key("agreement_key_jwk", &s.agreement_key_jwk)?,
            },
        })
    }
}

/// Serialises the state as JSON for storage.
#[uniffi::export]
pub fn enrollment_state_to_json(state: EnrollmentState) -> Result<String, PushAuthError> {
    serde_json::to_string(&state).map_err(|_| PushAuthError::Internal {
        detail: "state not serialisable".to_owned(),
    })
}

/// Reads a state stored with [`enrollment_state_to_json`], and checks it.
#[uniffi::export]
pub fn enrollment_state_from_json(json: String) -> Result<EnrollmentState, PushAuthError> {
    let state: EnrollmentState =
        serde_json::from_str(&json).map_err(|_| PushAuthError::InvalidInput {
            reason: "enrollment state: not valid JSON".to_owned(),
        })?;
    Enrollment::try_from(&state)?;
    Ok(state)
}

/// HTTP and proof settings. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// Whole-request timeout in seconds.
    #[uniffi(default = 30)]
    pub timeout_secs: u32,
    /// PEM root certificates to trust instead of the platform's (the issuer's CA;
    /// required on Android, see README). Empty: the platform verifier.
    #[uniffi(default)]
    pub trusted_roots_pem: Vec<String>,
    /// Accepted clock difference with the server, in seconds.
    #[uniffi(default = 30)]
    pub clock_skew_secs: u32,
    /// Lifetime of an approval proof, in seconds (capped by the deadline and 600).
    #[uniffi(default = 120)]
    pub proof_lifetime_secs: u32,
    /// What the signing key's access control verifies (`uv` claim); `Biometric`
    /// when not given.
    #[uniffi(default)]
    pub user_verification: Option<UserVerification>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout_secs: 30,
            trusted_roots_pem: Vec::new(),
            clock_skew_secs: 30,
            proof_lifetime_secs: 120,
            user_verification: None,
        }
    }
}

impl From<ClientOptions> for Settings {
    fn from(o: ClientOptions) -> Self {
        Settings {
            transport: Transport {
                timeout: Some(Duration::from_secs(u64::from(o.timeout_secs.max(1)))),
                trusted_roots_pem: o.trusted_roots_pem,
            },
            skew_secs: i64::from(o.clock_skew_secs),
            proof_lifetime_secs: i64::from(o.proof_lifetime_secs),
            user_verification: o
                .user_verification
                .unwrap_or(UserVerification::Biometric)
                .into(),
        }
    }
}

/// What the app passes to [`enroll`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollRequest {
    /// What the user scanned or typed: the deeplink / QR payload
    /// (`pushauth://enroll?v=1&server=…&code=…`) or a bare activation code.
    pub activation: String,
    /// The server's base URL: required with a bare code; with a link, the link must
    /// point to it (an app that knows its server refuses other servers).
    #[uniffi(default)]
    pub server_url: Option<String>,
    /// This device's platform.
    pub platform: Platform,
    /// A label the cardholder recognises in the issuer's app ("Pixel 8"), at most 64
    /// characters; empty for none.
    #[uniffi(default = "")]
    pub label: String,
    /// The APNs / FCM token, if already known (or later with `update_push_token`).
    #[uniffi(default)]
    pub push_token: Option<String>,
    /// The APNs environment of `push_token`.
    #[uniffi(default)]
    pub push_environment: Option<PushEnvironment>,
    /// HTTP settings for this call.
    #[uniffi(default)]
    pub options: Option<ClientOptions>,
}

/// A parsed enrollment link.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentLink {
    /// The server's base URL.
    pub server_url: String,
    /// The activation code, normalised (`ABCD-EFGH-JKMN-PQRS-TVWX`).
    pub activation_code: String,
}

/// Parses `pushauth://enroll?v=1&server=<base URL>&code=<code>` (protocol §6.2).
#[uniffi::export]
pub fn parse_enrollment_link(link: String) -> Result<EnrollmentLink, PushAuthError> {
    let l = enrollment::parse_link(&link)?;
    Ok(EnrollmentLink {
        server_url: server_url_text(&l.server),
        activation_code: l.code,
    })
}

/// Enrolls this device: creates its two keys in `key_store`, registers them with
/// the server using the activation code, and returns the state to store.
#[uniffi::export(async_runtime = "tokio")]
pub async fn enroll(
    request: EnrollRequest,
    key_store: Arc<dyn KeyStore>,
) -> Result<EnrollmentState, PushAuthError> {
    let link = enrollment::resolve_activation(&request.activation, request.server_url.as_deref())?;
    let settings: Settings = request.options.unwrap_or_default().into();
    let params = EnrollParams {
        link,
        platform: request.platform.wire(),
        label: request.label,
        push_token: request.push_token,
        push_environment: request.push_environment.map(PushEnvironment::wire),
    };
    let enrollment = device::enroll(key_store, params, &settings).await?;
    Ok(EnrollmentState::from(&enrollment))
}
