//! HTTP routes, one module per actor: `ops` (health, metrics, OpenAPI), `device` (the
//! SDK's API), `admin` (the issuer's backend), `console` (the ops console's page, when
//! enabled), and the processors' webhooks in `crate::providers`.

pub mod admin;
pub mod console;
pub mod device;
pub mod ops;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, problem_only, problem_response};
use crate::state::AppState;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.server;
    Router::new()
        .merge(
            ops::router(state.config.server.ops_listen.is_none()).layer(map_response(problem_only)),
        )
        .nest(
            "/v1/admin",
            admin::router().layer(map_response(problem_only)),
        )
        .nest(
            "/v1/device",
            device::router().layer(map_response(problem_only)),
        )
        .merge(crate::providers::router(&state.config))
        .merge(if state.config.console.enabled {
            console::router()
        } else {
            Router::new()
        })
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn fallback() -> Response {
    problem_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None)
}

async fn method_not_allowed() -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
        None,
    )
}
