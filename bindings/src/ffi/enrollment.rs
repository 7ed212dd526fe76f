//! Enrollment: the deeplink, the `enroll` call, and the state the app persists.

use std::sync::Arc;
use std::time::Duration;

use pushauth_core::ids::DeviceId;
use serde::{Deserialize, Serialize};

use super::error::PushAuthError;
use super::key_store::{KeyPurpose, KeyStore};
use super::transport::HttpTransport;
use super::types::{Platform, PushEnvironment, UserVerification};
use crate::device::{self, Settings};
use crate::enroll::EnrollParams;
use crate::enrollment::{self, Enrollment, PendingKey, server_url_text};
use crate::error::Error;
use crate::http::Transport;
use crate::keys::{KeyRef, jwk_json, public_key_from_jwk_json};

/// Current version of [`EnrollmentState`] (1: one signing key, read and converted).
const STATE_VERSION: u32 = 2;

/// A key created by a rotation whose outcome is not known yet. While it is set,
/// call `PushAuthClient::complete_key_rotation` (after a restart too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct PendingKeyState {
    /// `DeviceSigning` or `ApprovalSigning`.
    pub purpose: KeyPurpose,
    /// Key store alias of the new key.
    pub alias: String,
    /// Its public key (JWK JSON).
    pub jwk: String,
}

/// Everything the SDK needs to remember about an enrolled device. Nothing in it is
/// secret (the private keys stay in the key store), but it identifies the device:
/// keep it in the Keychain / EncryptedSharedPreferences and pass it back to
/// [`super::client::PushAuthClient::new`]. Store it with
/// [`enrollment_state_to_json`] **every time a call returns a new one** (enrollment,
/// both rotation phases); share it with the Notification Service Extension for
/// [`super::push::parse_push`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct EnrollmentState {
    /// Format version (2).
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
    /// Key store alias of the device key (request proofs, declines).
    pub device_key_alias: String,
    /// Public device key (JWK JSON).
    pub device_key_jwk: String,
    /// Key store alias of the approval key (approvals; biometric per use).
    pub approval_key_alias: String,
    /// Public approval key (JWK JSON).
    pub approval_key_jwk: String,
    /// Key store alias of the agreement key.
    pub agreement_key_alias: String,
    /// Public agreement key (JWK JSON).
    pub agreement_key_jwk: String,
    /// A key rotation in progress.
    #[serde(default)]
    pub pending_key: Option<PendingKeyState>,
}

/// The state format of SDK 1 (one signing key for everything).
#[derive(Deserialize)]
struct StateV1 {
    server_url: String,
    issuer: String,
    device_id: String,
    server_key_jwk: String,
    server_kid: String,
    signing_key_alias: String,
    signing_key_jwk: String,
    agreement_key_alias: String,
    agreement_key_jwk: String,
}

impl From<StateV1> for EnrollmentState {
    /// The server's v2 migration gave existing devices both keys = the old signing
    /// key; the same alias serves as device and approval key until rotated.
    fn from(s: StateV1) -> Self {
        EnrollmentState {
            version: STATE_VERSION,
            server_url: s.server_url,
            issuer: s.issuer,
            device_id: s.device_id,
            server_key_jwk: s.server_key_jwk,
            server_kid: s.server_kid,
            device_key_alias: s.signing_key_alias.clone(),
            device_key_jwk: s.signing_key_jwk.clone(),
            approval_key_alias: s.signing_key_alias,
            approval_key_jwk: s.signing_key_jwk,
            agreement_key_alias: s.agreement_key_alias,
            agreement_key_jwk: s.agreement_key_jwk,
            pending_key: None,
        }
    }
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
            device_key_alias: e.device_key.alias.clone(),
            device_key_jwk: jwk_json(&e.device_key.public),
            approval_key_alias: e.approval_key.alias.clone(),
            approval_key_jwk: jwk_json(&e.approval_key.public),
            agreement_key_alias: e.agreement.alias.clone(),
            agreement_key_jwk: jwk_json(&e.agreement.public),
            pending_key: e.pending.as_ref().map(|p| PendingKeyState {
                purpose: p.purpose,
                alias: p.key.alias.clone(),
                jwk: jwk_json(&p.key.public),
            }),
        }
    }
}

impl TryFrom<&EnrollmentState> for Enrollment {
    type Error = Error;
    fn try_from(s: &EnrollmentState) -> Result<Self, Error> {
        if s.version != STATE_VERSION {
            return Err(Error::Input(
                "enrollment state: unsupported version (read it with enrollment_state_from_json)"
                    .to_owned(),
            ));
        }
        let key = |what: &str, alias: &str, json: &str| -> Result<KeyRef, Error> {
            Ok(KeyRef {
                alias: alias.to_owned(),
                public: public_key_from_jwk_json(json).map_err(|e| Error::input(what, &e))?,
            })
        };
        let server_key = public_key_from_jwk_json(&s.server_key_jwk)
            .map_err(|e| Error::input("server_key_jwk", &e))?;
        if server_key.thumbprint() != s.server_kid {
            return Err(Error::Input(
                "enrollment state: server_kid is not the key's thumbprint".to_owned(),
            ));
        }
        let pending = match &s.pending_key {
            None => None,
            Some(p) if p.purpose == KeyPurpose::Agreement => {
                return Err(Error::Input(
                    "enrollment state: the agreement key does not rotate".to_owned(),
                ));
            }
            Some(p) => Some(PendingKey {
                purpose: p.purpose,
                key: key("pending_key", &p.alias, &p.jwk)?,
            }),
        };
        Ok(Enrollment {
            server: enrollment::parse_server_url(&s.server_url)?,
            issuer: s.issuer.clone(),
            device: DeviceId::parse(&s.device_id).map_err(|e| Error::input("device_id", &e))?,
            server_key,
            device_key: key("device_key_jwk", &s.device_key_alias, &s.device_key_jwk)?,
            approval_key: key(
                "approval_key_jwk",
                &s.approval_key_alias,
                &s.approval_key_jwk,
            )?,
            agreement: key(
                "agreement_key_jwk",
                &s.agreement_key_alias,
                &s.agreement_key_jwk,
            )?,
            pending,
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

/// Reads a state stored with [`enrollment_state_to_json`] (by this SDK or SDK 1),
/// and checks it.
#[uniffi::export]
pub fn enrollment_state_from_json(json: String) -> Result<EnrollmentState, PushAuthError> {
    let bad = || PushAuthError::InvalidInput {
        reason: "enrollment state: not valid JSON".to_owned(),
    };
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|_| bad())?;
    let state: EnrollmentState = if value.get("version") == Some(&serde_json::json!(1)) {
        serde_json::from_value::<StateV1>(value)
            .map_err(|_| bad())?
            .into()
    } else {
        serde_json::from_value(value).map_err(|_| bad())?
    };
    Enrollment::try_from(&state)?;
    Ok(state)
}

/// HTTP and proof settings. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// Whole-request timeout in seconds.
    #[uniffi(default = 30)]
    pub timeout_secs: u32,
    /// Built-in client only: PEM root certificates to trust instead of the
    /// platform's (pins the issuer's own CA). Empty: the platform verifier (on
    /// Android after the JNI initialisation described in the README).
    #[uniffi(default)]
    pub trusted_roots_pem: Vec<String>,
    /// Accepted clock difference with the server, in seconds.
    #[uniffi(default = 30)]
    pub clock_skew_secs: u32,
    /// Lifetime of an approval proof, in seconds (capped by the deadline and 600).
    #[uniffi(default = 120)]
    pub proof_lifetime_secs: u32,
    /// What the approval key's access control verifies (`uv` claim); `Biometric`
    /// when not given.
    #[uniffi(default)]
    pub user_verification: Option<UserVerification>,
    /// The issuer app's enrollment link scheme (`mybank-pushauth`); links with
    /// another scheme are refused. Matches the server's
    /// `[enrollment] deeplink_scheme`.
    #[uniffi(default = "pushauth")]
    pub link_scheme: String,
    /// Sign declines with the approval key (prompt) instead of the device key: set
    /// it when the server has `[devices] decline_requires_approval_key = true`.
    #[uniffi(default = false)]
    pub decline_requires_approval_key: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout_secs: 30,
            trusted_roots_pem: Vec::new(),
            clock_skew_secs: 30,
            proof_lifetime_secs: 120,
            user_verification: None,
            link_scheme: crate::enrollment::DEFAULT_LINK_SCHEME.to_owned(),
            decline_requires_approval_key: false,
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
            decline_with_approval_key: o.decline_requires_approval_key,
            link_scheme: o.link_scheme,
        }
    }
}

/// What the app passes to [`enroll`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollRequest {
    /// What the user scanned or typed: the deeplink / QR payload
    /// (`<link_scheme>://enroll?v=1&server=…&code=…`) or a bare activation code.
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
    /// The APNs / FCM token or, for `Platform::WebPush`, the subscription
    /// (`web_push_token`), if already known (or later with `update_push_token`).
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

/// Parses `<scheme>://enroll?v=1&server=<base URL>&code=<code>` (protocol §6.2);
/// `scheme` is the issuer app's own (`pushauth` by default on the server).
#[uniffi::export]
pub fn parse_enrollment_link(
    link: String,
    scheme: String,
) -> Result<EnrollmentLink, PushAuthError> {
    let l = enrollment::parse_link(&link, &scheme)?;
    Ok(EnrollmentLink {
        server_url: server_url_text(&l.server),
        activation_code: l.code,
    })
}

/// Enrolls this device with the built-in HTTP client: creates its device, approval
/// and agreement keys in `key_store` (one approval-key prompt), registers them with
/// the server using the activation code, and returns the state to store.
#[uniffi::export(async_runtime = "tokio")]
pub async fn enroll(
    request: EnrollRequest,
    key_store: Arc<dyn KeyStore>,
) -> Result<EnrollmentState, PushAuthError> {
    enroll_with_transport(request, key_store, None).await
}

/// [`enroll`] through the app's HTTP transport (`None`: the built-in client).
#[uniffi::export(async_runtime = "tokio")]
pub async fn enroll_with_transport(
    request: EnrollRequest,
    key_store: Arc<dyn KeyStore>,
    transport: Option<Arc<dyn HttpTransport>>,
) -> Result<EnrollmentState, PushAuthError> {
    let settings: Settings = request.options.unwrap_or_default().into();
    let link = enrollment::resolve_activation(
        &request.activation,
        request.server_url.as_deref(),
        &settings.link_scheme,
    )?;
    let transport = device::transport_or_builtin(transport, &settings)?;
    let params = EnrollParams {
        link,
        platform: request.platform.wire(),
        label: request.label,
        push_token: request.push_token,
        push_environment: request.push_environment.map(PushEnvironment::wire),
    };
    let enrollment = crate::enroll::enroll(key_store, transport, params, &settings).await?;
    Ok(EnrollmentState::from(&enrollment))
}
