//! Admin API keys: create (named, read-only or full), list, revoke. A key is shown
//! once, at creation; only its SHA-256 is stored. Revocation holds at once on every
//! instance, since every request looks its key up in the database.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pushauth_store::AdminScope;
use serde::Deserialize;

use super::Admin;
use crate::error::{ApiError, ApiResult, AppJson};
use crate::services::admin_keys;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    name: String,
    #[serde(default = "full")]
    scope: AdminScope,
}

fn full() -> AdminScope {
    AdminScope::Full
}

/// `POST /v1/admin/admin-keys`: 201 with the key (shown once).
pub(super) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<CreateBody>,
) -> ApiResult<Response> {
    let created = admin_keys::create(&state, &admin.actor(), body.name, body.scope).await?;
    Ok((StatusCode::CREATED, AppJson(created)).into_response())
}

/// `GET /v1/admin/admin-keys`: every key, revoked ones included, without secrets.
pub(super) async fn list(State(state): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    let keys = state.store.admin_key_list().await?;
    Ok(AppJson(serde_json::json!({ "keys": keys })).into_response())
}

/// `GET /v1/admin/me`: the key this request presents (`id`, `name`, `scope`, …; never
/// the key), e.g. for the ops console to show who is logged in and whether read-only.
pub(super) async fn me(admin: Admin) -> ApiResult<Response> {
    Ok(AppJson(admin.key).into_response())
}

/// `POST /v1/admin/admin-keys/{id}/revoke`: 204; 404 when unknown or already revoked.
pub(super) async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("admin key"))?;
    admin_keys::revoke(&state, &admin.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
