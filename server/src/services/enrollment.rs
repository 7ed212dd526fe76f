//! Enrollment: activation codes (issued through the admin API, single use, short
//! lived, stored as SHA-256 only) and the device's proof-of-possession enrollment
//! (protocol v2, §6.2): the device key proves possession through the request proof,
//! the approval key through its key statement bound to the device key.

use pushauth_core::ids::{CardholderId, DeviceId};
use pushauth_core::key_statement::{self, EnrollmentExpectations};
use pushauth_core::keys::{Jwk, PublicKey};
use pushauth_core::request::{self, HttpRequest};
use pushauth_core::webpush::Subscription;
use pushauth_store::{
    AuditDraft, CardholderStatus, DeviceKey, EnrollOutcome, KeyHash, Millis, NewActivation,
    NewDevice, Platform, PushEnvironment, PushTarget,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::push::endpoint::EndpointPolicy;
use crate::state::{AppState, now};

/// Crockford base32 alphabet (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh activation code: 100 random bits as 20 Crockford base32 characters,
/// shown in groups of four (`7K3M-…`).
pub fn new_activation_code() -> ApiResult<String> {
    let bytes: [u8; 13] = pushauth_core::keys::random_array().map_err(ApiError::internal)?;
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(b);
    }
    let mut out = String::with_capacity(24);
    for i in 0..20 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let idx = ((bits >> (5 * (19 - i))) & 0x1f) as usize;
        out.push(CROCKFORD[idx] as char);
    }
    Ok(out)
}

/// Normalises a typed or scanned code: case-insensitive, hyphens and spaces ignored,
/// `O`→`0`, `I`/`L`→`1` (Crockford's decoding rules). `None` if it cannot be a code.
pub fn normalize_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(20);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == 20).then_some(out)
}

/// What the admin API returns when issuing a code.
#[derive(Debug, Serialize)]
pub struct IssuedCode {
    /// The code, to show once.
    pub code: String,
    /// Expiry (Unix ms).
    pub expires_at: Millis,
    /// Deeplink for the issuer app / QR code.
    pub deeplink: String,
    /// The deeplink as a QR code (SVG), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
}

/// Issues an activation code for an active cardholder (a blocked one gets 403
/// `cardholder_blocked`; enrollment checks the status again where it writes).
pub async fn issue(
    state: &AppState,
    cardholder: &CardholderId,
    ttl_secs: Option<i64>,
    actor: &str,
) -> ApiResult<IssuedCode> {
    match state.store.cardholder_get(cardholder).await? {
        None => return Err(ApiError::not_found("cardholder")),
        Some(c) if c.status != CardholderStatus::Active => {
            return Err(ApiError::cardholder_blocked());
        }
        Some(_) => {}
    }
    let max = state.config.security.activation_ttl_secs;
    let ttl = ttl_secs.unwrap_or(max);
    if !(30..=max).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("ttl_secs: must be 30 to {max}"),
        ));
    }
    let code = new_activation_code()?;
    let t = now();
    let normalized = normalize_code(&code)
        .ok_or_else(|| ApiError::internal("generated code does not normalise"))?;
    let expires_at = t.plus(ttl * 1000);
    let audit = AuditDraft::new(t, actor, "activation.issued")
        .cardholder(cardholder)
        .details(serde_json::json!({ "expires_at": expires_at }));
    state
        .store
        .activation_create(
            NewActivation {
                code_hash: KeyHash::of(normalized.as_bytes()),
                cardholder: cardholder.clone(),
                expires_at,
                created_at: t,
            },
            audit,
        )
        .await?;
    let deeplink = deeplink(state, &code);
    Ok(IssuedCode {
        code,
        expires_at,
        deeplink,
        qr_svg: None,
    })
}

/// `link` as a QR code, an SVG document (error correction M, 4-module quiet zone,
/// black on white) that the ops console shows for the phone to scan. Made here, so
/// no browser needs a QR library and nothing is fetched at run time.
pub fn qr_svg(link: &str) -> ApiResult<String> {
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The enrollment link for a code: `<[enrollment] deeplink_scheme>://enroll?v=1&server=<public URL>&code=<code>`.
pub fn deeplink(state: &AppState, code: &str) -> String {
    let server = percent_encoding::utf8_percent_encode(
        &state.public_url,
        percent_encoding::NON_ALPHANUMERIC,
    );
    let scheme = &state.config.enrollment.deeplink_scheme;
    format!("{scheme}://enroll?v=1&server={server}&code={code}")
}

/// The enrollment request body (protocol v2, §6.2). The key members are optional here
/// only so that a protocol v1 body (`signing_key`) and a missing key each get their
/// own precise answer instead of a generic parse error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// The activation code as typed or scanned.
    pub activation_code: String,
    /// Platform.
    pub platform: Platform,
    /// Device name.
    #[serde(default)]
    pub label: Option<String>,
    /// Device key (must equal the proof's header `jwk`).
    #[serde(default)]
    pub device_key: Option<Jwk>,
    /// Approval key.
    #[serde(default)]
    pub approval_key: Option<Jwk>,
    /// The approval key's binding to the device key (`pushauth-key+jwt`).
    #[serde(default)]
    pub approval_key_proof: Option<String>,
    /// Protocol v1's single key: present only to be refused precisely.
    #[serde(default)]
    pub signing_key: Option<serde::de::IgnoredAny>,
    /// Agreement key for push payloads.
    pub agreement_key: Jwk,
    /// Push token, if the app has one.
    #[serde(default)]
    pub push_token: Option<String>,
    /// APNs environment.
    #[serde(default)]
    pub push_environment: Option<PushEnvironment>,
}

/// The enrollment answer.
#[derive(Debug, Serialize)]
pub struct Enrolled {
    /// The new device id.
    pub device_id: DeviceId,
    /// Server issuer (pin it).
    pub issuer: String,
    /// Server challenge-signing key (pin it).
    pub server_key: Jwk,
    /// Its thumbprint.
    pub server_kid: String,
}

/// Validates a push token: 1–4096 visible ASCII characters; for a `webpush` device the
/// W3C PushSubscription JSON, whose endpoint must pass `[push.webpush]`'s rules (SSRF
/// guard); it is stored in canonical form.
pub fn push_target(
    token: Option<String>,
    environment: Option<PushEnvironment>,
    platform: Platform,
    endpoints: &EndpointPolicy,
) -> ApiResult<Option<PushTarget>> {
    let Some(token) = token else { return Ok(None) };
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "push_token: 1 to 4096 visible ASCII characters",
        ));
    }
    let token = if platform == Platform::WebPush {
        let subscription = Subscription::parse(&token)
            .map_err(|e| ApiError::bad_request("invalid_field", format!("push_token: {e}")))?;
        endpoints
            .check(subscription.endpoint())
            .map_err(|e| ApiError::bad_request("invalid_field", format!("push_token: {e}")))?;
        subscription.to_token()
    } else if token.contains(' ') {
        return Err(ApiError::bad_request(
            "invalid_field",
            "push_token: 1 to 4096 visible ASCII characters",
        ));
    } else {
        token
    };
    let environment = match platform {
        Platform::Ios => Some(environment.unwrap_or(PushEnvironment::Production)),
        _ => None,
    };
    Ok(Some(PushTarget { token, environment }))
}

/// Validates an optional label (≤ 64 characters, no controls).
pub fn label(label: Option<String>) -> ApiResult<Option<String>> {
    match label {
        Some(l) if l.chars().count() > 64 || l.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                "invalid_field",
                "label: at most 64 characters, no control characters",
            ))
        }
        other => Ok(other),
    }
}

fn device_key_of(jwk: &Jwk, field: &'static str) -> ApiResult<(PublicKey, DeviceKey)> {
    let key = PublicKey::from_jwk(jwk)
        .map_err(|e| ApiError::bad_request("invalid_field", format!("{field}: {e}")))?;
    let text = serde_json::to_string(&key.to_jwk()).map_err(ApiError::internal)?;
    Ok((
        key,
        DeviceKey {
            jwk: text,
            thumbprint: key.thumbprint(),
        },
    ))
}

fn required<T>(value: Option<T>, field: &str) -> ApiResult<T> {
    value.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            format!("{field}: required (protocol v2, §6.2)"),
        )
    })
}

/// Enrolls a device: checks both proofs of possession, consumes the code, creates the device.
pub async fn enroll(state: &AppState, proof: &str, req: HttpRequest<'_>) -> ApiResult<Enrolled> {
    let t = now();
    let expect = |audience| request::Expectations {
        audience,
        request: req,
        now: t.as_unix_time(),
        window_secs: state.config.security.request_window_secs,
    };
    // Before enrollment the device knows only the server URL from the activation link,
    // not the issuer name it will pin: accept either as the audience here (every later
    // proof must name the issuer).
    let (proven, _) = request::verify_enrollment(proof, &expect(&state.issuer))
        .or_else(|e| match e {
            pushauth_core::Error::WrongAudience => {
                request::verify_enrollment(proof, &expect(&state.public_url))
            }
            other => Err(other),
        })
        .map_err(|e| ApiError::unauthorized(e.code(), format!("enrollment proof refused: {e}")))?;
    let body: EnrollBody = crate::error::parse_json(req.body)?;
    if body.signing_key.is_some() {
        return Err(ApiError::bad_request(
            "protocol_v1_enrollment",
            "signing_key is protocol v1 (one key): send device_key, approval_key and \
             approval_key_proof (protocol v2, docs/protocol.md §6.2)",
        ));
    }
    let (device, device_key) =
        device_key_of(&required(body.device_key, "device_key")?, "device_key")?;
    let (approval, approval_key) = device_key_of(
        &required(body.approval_key, "approval_key")?,
        "approval_key",
    )?;
    let approval_proof = required(body.approval_key_proof, "approval_key_proof")?;
    let (agreement, agreement_key) = device_key_of(&body.agreement_key, "agreement_key")?;
    if device != proven {
        return Err(ApiError::bad_request(
            "key_mismatch",
            "device_key differs from the key that signed the proof",
        ));
    }
    key_statement::verify_enrollment_binding(
        &approval_proof,
        &EnrollmentExpectations {
            audiences: &[&state.issuer, &state.public_url],
            device_key: &device,
            approval_key: &approval,
            now: t.as_unix_time(),
            window_secs: state.config.security.request_window_secs,
        },
    )
    .map_err(|e| ApiError::unprocessable(e.code(), format!("approval_key_proof refused: {e}")))?;
    if agreement == device || agreement == approval {
        return Err(ApiError::bad_request(
            "invalid_field",
            "agreement_key must differ from device_key and approval_key",
        ));
    }
    let code = normalize_code(&body.activation_code).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_activation_code",
            "activation_code: not a valid code",
        )
    })?;
    let id = DeviceId::generate().map_err(ApiError::internal)?;
    let push = push_target(
        body.push_token,
        body.push_environment,
        body.platform,
        &state.push.endpoints,
    )?;
    // The key this device will pin: the store's active one (picked up here when another
    // process rotated since this instance started), recorded with the device.
    let ring = state
        .keyring
        .with_store_active(state.store.as_ref())
        .await
        .map_err(ApiError::internal)?;
    let server = ring.active();
    let new = NewDevice {
        id: id.clone(),
        platform: body.platform,
        label: label(body.label)?,
        device_key,
        approval_key,
        agreement_key,
        push,
        server_kid: Some(server.kid.clone()),
        created_at: t,
    };
    let audit = AuditDraft::new(t, format!("device:{id}"), "device.enrolled")
        .device(&id)
        .details(serde_json::json!({
            "platform": body.platform,
            "key": device.thumbprint(),
            "approval_key": approval.thumbprint(),
        }));
    match state
        .store
        .device_enroll(&KeyHash::of(code.as_bytes()), t, new, audit)
        .await?
    {
        EnrollOutcome::Enrolled(device) => {
            tracing::info!(device = %device.id, cardholder = %device.cardholder, "device enrolled");
            Ok(Enrolled {
                device_id: device.id,
                issuer: state.issuer.clone(),
                server_key: server.key.public().to_jwk(),
                server_kid: server.kid.clone(),
            })
        }
        EnrollOutcome::CodeUnknown => Err(ApiError::bad_request(
            "invalid_activation_code",
            "unknown activation code",
        )),
        EnrollOutcome::CodeUsed => Err(ApiError::conflict(
            "activation_code_used",
            "the activation code was already used",
        )),
        EnrollOutcome::CodeExpired => Err(ApiError::gone(
            "activation_code_expired",
            "the activation code expired",
        )),
        EnrollOutcome::CardholderBlocked => Err(ApiError::cardholder_blocked()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_100_bits_and_normalise() {
        let c = new_activation_code().unwrap();
        assert_eq!(c.len(), 24);
        assert_eq!(c.matches('-').count(), 4);
        let n = normalize_code(&c).unwrap();
        assert_eq!(n.len(), 20);
        assert_eq!(
            normalize_code(&c.to_lowercase().replace('-', " ")).unwrap(),
            n
        );
        assert_ne!(new_activation_code().unwrap(), c);
        assert_eq!(
            normalize_code("oooo-iiii-llll-0000-1111").unwrap(),
            "00001111111100001111"
        );
        assert!(normalize_code("UUUU-0000-0000-0000-0000").is_none());
        assert!(normalize_code("0000").is_none());
        assert!(normalize_code("ÄÄÄÄ-0000-0000-0000-0000").is_none());
    }
}
