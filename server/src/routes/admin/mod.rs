//! The admin API, for the issuer's backend and operators: cardholders and their
//! processor links, activation codes, devices, challenges (including the generic
//! challenge API) and the audit trail. Authenticated by an API key
//! (`Authorization: Bearer <key>`), stored only as SHA-256.

mod cardholders;
mod challenges;
mod devices;
mod events;
mod keys;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use pushauth_store::{AdminKey, AdminScope, KeyHash};

use crate::error::ApiError;
use crate::metrics::AuthFailure;
use crate::state::AppState;

/// Admin routes, nested under `/v1/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/cardholders",
            post(cardholders::create).get(cardholders::list),
        )
        .route("/cardholders/{id}", get(cardholders::get))
        .route("/cardholders/{id}/block", post(cardholders::block))
        .route("/cardholders/{id}/unblock", post(cardholders::unblock))
        .route(
            "/cardholders/{id}/links",
            post(cardholders::link).get(cardholders::links),
        )
        .route(
            "/cardholders/{id}/activation-codes",
            post(cardholders::activation_code),
        )
        .route("/cardholders/{id}/devices", get(devices::list))
        .route("/links/{id}", delete(cardholders::unlink))
        .route("/devices/{id}", get(devices::get))
        .route("/devices/{id}/lock", post(devices::lock))
        .route("/devices/{id}/unlock", post(devices::unlock))
        .route("/devices/{id}/revoke", post(devices::revoke))
        .route(
            "/challenges",
            post(challenges::create).get(challenges::list),
        )
        .route("/challenges/{id}", get(challenges::get))
        .route("/challenges/{id}/cancel", post(challenges::cancel))
        .route("/audit/verify", get(challenges::audit_verify))
        .route("/events", get(events::list))
        .route("/admin-keys", post(keys::create).get(keys::list))
        .route("/admin-keys/{id}/revoke", post(keys::revoke))
        .route("/me", get(keys::me))
}

/// An authenticated admin caller.
#[derive(Debug)]
pub struct Admin {
    /// The key used.
    pub key: AdminKey,
}

impl Admin {
    /// Audit actor.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.key.name)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refuse = |reason: &'static str, detail: &str| {
            state
                .metrics
                .auth_failures
                .get_or_create(&AuthFailure {
                    surface: "admin",
                    reason,
                })
                .inc();
            ApiError::unauthorized(reason, detail)
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                refuse(
                    "missing_credentials",
                    "expected Authorization: Bearer <admin key>",
                )
            })?;
        // The lookup is by SHA-256 of the presented key: timing reveals nothing about
        // the stored keys, and the keys themselves are never stored.
        match state
            .store
            .admin_key_find(&KeyHash::of(presented.as_bytes()))
            .await?
        {
            // A read-only key may only read; checked before any handler runs.
            Some(key) if key.scope == AdminScope::Read && !parts.method.is_safe() => {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "this admin key is read-only",
                ))
            }
            Some(key) => Ok(Admin { key }),
            None => Err(refuse("bad_credentials", "unknown or revoked admin key")),
        }
    }
}

/// Parses an id path segment, answering 404 for a malformed one.
pub(crate) fn parse_id<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, pushauth_core::Error>,
    what: &'static str,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError::not_found(what))
}
