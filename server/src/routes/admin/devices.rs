//! Devices: list, inspect, lock, unlock, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pushauth_core::ids::{CardholderId, DeviceId};
use pushauth_store::{AuditDraft, DeviceStatus, Platform, PushTarget};

use super::{Admin, parse_id};
use crate::error::{ApiError, ApiResult, AppJson};
use crate::state::{AppState, now};

/// `GET /v1/admin/cardholders/{id}/devices`.
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    if state.store.cardholder_get(&id).await?.is_none() {
        return Err(ApiError::not_found("cardholder"));
    }
    Ok(
        AppJson(serde_json::json!({ "devices": state.store.device_list(&id).await? }))
            .into_response(),
    )
}

/// `GET /v1/admin/devices/{id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, DeviceId::parse, "device")?;
    let d = state
        .store
        .device_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let push = d.push.as_ref().map(|p| push_summary(d.platform, p));
    Ok(AppJson(serde_json::json!({ "device": d, "push": push })).into_response())
}

/// What the admin API shows of a push target: never the whole token; for a Web Push
/// subscription the push service's origin (the endpoint's path identifies the device,
/// and the subscription's keys are secrets).
fn push_summary(platform: Platform, p: &PushTarget) -> serde_json::Value {
    if platform == Platform::WebPush {
        let origin = pushauth_core::webpush::Subscription::parse(&p.token)
            .ok()
            .and_then(|s| reqwest::Url::parse(s.endpoint()).ok())
            .map(|u| u.origin().ascii_serialization());
        return serde_json::json!({ "environment": p.environment, "endpoint_origin": origin });
    }
    serde_json::json!({
        "environment": p.environment,
        "token_prefix": p.token.chars().take(8).collect::<String>(),
    })
}

async fn set(
    state: &AppState,
    admin: &Admin,
    id: &str,
    to: DeviceStatus,
    allowed_from: &[DeviceStatus],
) -> ApiResult<StatusCode> {
    let id = parse_id(id, DeviceId::parse, "device")?;
    let d = state
        .store
        .device_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    if !allowed_from.contains(&d.status) {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("device is {} and cannot become {to}", d.status),
        )
        .with(serde_json::json!({ "device_status": d.status })));
    }
    let audit = AuditDraft::new(now(), admin.actor(), format!("device.{to}"))
        .device(&id)
        .cardholder(&d.cardholder);
    state.store.device_set_status(&id, to, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/devices/{id}/lock`.
pub(super) async fn lock(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    set(
        &state,
        &admin,
        &id,
        DeviceStatus::Locked,
        &[DeviceStatus::Active, DeviceStatus::Locked],
    )
    .await
}

/// `POST /v1/admin/devices/{id}/unlock` (also resets the failure counter).
pub(super) async fn unlock(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    set(
        &state,
        &admin,
        &id,
        DeviceStatus::Active,
        &[DeviceStatus::Active, DeviceStatus::Locked],
    )
    .await
}

/// `POST /v1/admin/devices/{id}/revoke` (final).
pub(super) async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    set(
        &state,
        &admin,
        &id,
        DeviceStatus::Revoked,
        &[
            DeviceStatus::Active,
            DeviceStatus::Locked,
            DeviceStatus::Revoked,
        ],
    )
    .await
}
