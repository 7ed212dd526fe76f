//! The device API (protocol §6.1), used by the mobile SDK. Every call is
//! authenticated by a request proof signed with the device key ([`DeviceCall`]; a
//! proof signed by the approval key fails its signature check: 401); enrollment by
//! proofs of possession of the new device key and approval key.

mod auth;
mod stream;

pub use auth::DeviceCall;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use bytes::Bytes;
use pushauth_core::challenge::{self, ChallengeClaims};
use pushauth_core::ids::ChallengeId;
use pushauth_core::request::HttpRequest;
use pushauth_store::{AuditDraft, Challenge, Device, DeviceStatus, DeviceWrite, PushEnvironment};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, AppJson, parse_json};
use crate::services::{decisions, device_keys, enrollment};
use crate::state::{AppState, now};

/// Device API routes, nested under `/v1/device`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enroll", post(enroll))
        .route("/push-token", put(push_token))
        .route("/challenges", get(pending))
        .route("/challenges/{id}", get(get_challenge))
        .route("/challenges/{id}/decision", post(decide))
        .route("/stream", get(stream::stream))
        .route("/key", post(rotate_key))
        .route("/migration", post(migration))
        .route("/", delete(unenroll))
}

/// Reads `Authorization: PushAuth <jws>`.
pub(crate) fn proof_header(headers: &HeaderMap) -> ApiResult<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("PushAuth "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_proof",
                "expected Authorization: PushAuth <request proof>",
            )
        })
}

/// `POST /v1/device/enroll` (protocol §6.2).
async fn enroll(
    State(state): State<AppState>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let proof = proof_header(&headers)?;
    let path = uri.0.path_and_query().map_or("/", |p| p.as_str());
    let enrolled = enrollment::enroll(
        &state,
        proof,
        HttpRequest {
            method: method.as_str(),
            path,
            body: &body,
        },
    )
    .await
    .inspect_err(|e| {
        if e.status() == StatusCode::UNAUTHORIZED {
            state
                .metrics
                .auth_failures
                .get_or_create(&crate::metrics::AuthFailure {
                    surface: "device",
                    reason: e.reason(),
                })
                .inc();
        }
    })?;
    Ok((StatusCode::CREATED, AppJson(enrolled)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushTokenBody {
    push_token: Option<String>,
    #[serde(default)]
    push_environment: Option<PushEnvironment>,
}

/// `PUT /v1/device/push-token`: only an active device (the store checks the status in
/// the same transaction as the write).
async fn push_token(State(state): State<AppState>, call: DeviceCall) -> ApiResult<StatusCode> {
    let body: PushTokenBody = parse_json(&call.body)?;
    let target = enrollment::push_target(
        body.push_token,
        body.push_environment,
        call.device.platform,
        &state.push.endpoints,
    )?;
    let audit =
        AuditDraft::new(now(), call.actor(), "device.push_token_updated").device(&call.device.id);
    match state
        .store
        .device_set_push_token(&call.device.id, target, audit)
        .await?
    {
        DeviceWrite::Done => Ok(StatusCode::NO_CONTENT),
        DeviceWrite::NotActive(DeviceStatus::Revoked) => Err(ApiError::unauthorized(
            "unknown_device",
            "the device is revoked",
        )),
        DeviceWrite::NotActive(_) => Err(ApiError::locked("the device is locked")),
        DeviceWrite::NotFound => Err(ApiError::not_found("device")),
    }
}

/// A challenge as the device API returns it.
#[derive(Debug, Serialize)]
pub(crate) struct ChallengeItem {
    id: ChallengeId,
    status: pushauth_store::ChallengeStatus,
    token: String,
}

/// Signs a challenge for a device (protocol §5), showing `txn`, its transaction as
/// created (`Challenge::bound_transaction`).
async fn sign_for(
    state: &AppState,
    challenge: &Challenge,
    txn: pushauth_core::transaction::Transaction,
    device: &Device,
) -> ApiResult<ChallengeItem> {
    let claims = ChallengeClaims {
        iss: state.issuer.clone(),
        aud: device.id.clone(),
        jti: challenge.id.clone(),
        nonce: challenge.nonce.clone(),
        txn: txn.received(),
        iat: now().as_unix_time(),
        exp: challenge.deadline.as_unix_time(),
        pin: challenge.processor_input.clone(),
    };
    let (ring, index) = state
        .keyring
        .for_device(state.store.as_ref(), device)
        .await
        .map_err(ApiError::internal)?;
    let token = challenge::sign(&claims, &ring.key(index).key).map_err(ApiError::internal)?;
    Ok(ChallengeItem {
        id: challenge.id.clone(),
        status: challenge.status,
        token,
    })
}

/// Loads a challenge the device may see: unknown and other cardholders' challenges
/// get the same 404.
async fn load_own(state: &AppState, device: &Device, id: &str) -> ApiResult<Challenge> {
    let id = ChallengeId::parse(id).map_err(|_| ApiError::not_found("challenge"))?;
    match state.store.challenge_get(&id).await? {
        Some(c) if c.cardholder == device.cardholder => Ok(c),
        _ => Err(ApiError::not_found("challenge")),
    }
}

/// Pending challenges of the device's cardholder, each signed for this device. One
/// that cannot be shown as created (see `Challenge::bound_transaction`) is left out,
/// logged, so that the others are still listed; fetched by id it is a 500.
pub(crate) async fn pending_items(
    state: &AppState,
    device: &Device,
) -> ApiResult<Vec<ChallengeItem>> {
    let pending = state
        .store
        .challenge_pending_for(&device.cardholder, now())
        .await?;
    let mut items = Vec::with_capacity(pending.len());
    for c in &pending {
        let Some(txn) = c.bound_transaction() else {
            tracing::error!(challenge = %c.id, "stored transaction does not match its digest: not listed");
            continue;
        };
        items.push(sign_for(state, c, txn, device).await?);
    }
    Ok(items)
}

/// `GET /v1/device/challenges` (423 for a locked device).
async fn pending(State(state): State<AppState>, call: DeviceCall) -> ApiResult<Response> {
    let items = pending_items(&state, call.require_active()?).await?;
    Ok(AppJson(serde_json::json!({ "challenges": items })).into_response())
}

/// `GET /v1/device/challenges/{id}` (423 for a locked device).
async fn get_challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: DeviceCall,
) -> ApiResult<Response> {
    let device = call.require_active()?;
    let c = load_own(&state, device, &id).await?;
    if c.status.is_final() {
        return Err(ApiError::conflict(
            "already_closed",
            format!("the challenge is already {}", c.status),
        )
        .with(serde_json::json!({ "challenge_status": c.status })));
    }
    if now() > c.deadline {
        return Err(ApiError::gone(
            "challenge_expired",
            "the challenge deadline has passed",
        ));
    }
    let txn = crate::services::decisions::bound_transaction(&c)?;
    Ok(AppJson(sign_for(&state, &c, txn, device).await?).into_response())
}

/// `POST /v1/device/challenges/{id}/decision`.
async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: DeviceCall,
) -> ApiResult<Response> {
    let c = load_own(&state, &call.device, &id).await?;
    let body: decisions::DecisionBody = parse_json(&call.body)?;
    let status = decisions::decide(&state, &call.device, c, body).await?;
    Ok(AppJson(serde_json::json!({ "status": status })).into_response())
}

/// `POST /v1/device/key` (protocol §6.3): rotates the device key or the approval key.
async fn rotate_key(State(state): State<AppState>, call: DeviceCall) -> ApiResult<Response> {
    let body: device_keys::RotateBody = parse_json(&call.body)?;
    let rotated = device_keys::rotate(&state, &call.device, body).await?;
    Ok(AppJson(rotated).into_response())
}

/// `POST /v1/device/migration` (protocol §6.4): a migration grant for a new phone.
async fn migration(State(state): State<AppState>, call: DeviceCall) -> ApiResult<Response> {
    let body: device_keys::MigrationBody = parse_json(&call.body)?;
    let issued = device_keys::migrate(&state, &call.device, body).await?;
    Ok((StatusCode::CREATED, AppJson(issued)).into_response())
}

/// `DELETE /v1/device`: the device unenrolls itself.
async fn unenroll(State(state): State<AppState>, call: DeviceCall) -> ApiResult<StatusCode> {
    let audit = AuditDraft::new(now(), call.actor(), "device.unenrolled")
        .device(&call.device.id)
        .cardholder(&call.device.cardholder);
    state
        .store
        .device_set_status(&call.device.id, DeviceStatus::Revoked, audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
