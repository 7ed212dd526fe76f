//! Issuer events and their deliveries (read-only): what was sent to which endpoint,
//! with the state of each delivery, so an operator can see failed deliveries.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Admin;
use crate::error::{ApiResult, AppJson};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/admin/events?limit=N` (default 50, at most 500): the latest events, newest
/// first, each with one delivery per endpoint that wants it, and the configured
/// endpoints (names and type filters; never URLs' credentials or secrets).
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    let items = state
        .store
        .issuer_events_recent(q.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let endpoints: Vec<_> = state
        .events
        .endpoints
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "origin": e.url.origin().ascii_serialization(),
                "types": e.types.as_ref().map(|t| t.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            })
        })
        .collect();
    Ok(AppJson(serde_json::json!({ "items": items, "endpoints": endpoints })).into_response())
}
