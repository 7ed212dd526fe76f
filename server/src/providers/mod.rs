//! Processor connectors: each turns a processor's webhook into a challenge and the
//! cardholder's decision into the processor's result call. `auth` holds the exact
//! webhook-authentication checks; `api` is the generic challenge API's result leg
//! (signed callbacks).

pub mod api;
pub mod config;
pub mod auth;

use axum::Router;

use crate::state::AppState;

/// Routes of the processors' webhooks.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// Registers the result legs of the configured processor connectors.
pub fn build_connectors(
    _config: &crate::config::Config,
    _http: &reqwest::Client,
    _connectors: &mut crate::upstream::Connectors,
) -> Result<(), String> {
    Ok(())
}
