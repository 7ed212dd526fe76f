//! Operations endpoints: liveness, readiness (database reachable), Prometheus metrics
//! and the OpenAPI document (`docs/openapi.json`, served as checked in).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI document, as checked into `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `/healthz`, `/readyz`, `/openapi.json`, and `/metrics` unless `metrics` is false
/// (it is then served on the ops listener only, see [`ops_router`]).
pub fn router(with_metrics: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi));
    if with_metrics {
        r.route("/metrics", get(metrics))
    } else {
        r
    }
}

/// The ops listener's application (`server.ops_listen`): `/metrics`, `/healthz` and
/// `/readyz`, problem+json for anything else.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            crate::error::problem_response(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
                None,
            )
        })
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            axum::Json(serde_json::json!({ "status": "ready", "storage": state.store.backend() }))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::unavailable("storage_unavailable", "the database does not answer")
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
