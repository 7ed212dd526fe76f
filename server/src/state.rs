//! The shared application state: configuration, store, server key, connectors, push
//! gateway and metrics. Cheap to clone (one `Arc`); nothing in it is state another
//! instance would need, so several instances can share one PostgreSQL database.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pushauth_core::keys::Jwk;
use pushauth_store::{Millis, Store};

use crate::config::Config;
use crate::keyring::SharedKeyring;
use crate::metrics::Metrics;
use crate::push::PushGateway;
use crate::upstream::Connectors;

/// Current time in Unix milliseconds.
pub fn now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Everything handlers and workers share.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Configuration.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The challenge-signing keys (the active one signs for devices enrolled since
    /// it became active; see `crate::keyring`).
    pub keyring: SharedKeyring,
    /// The active key's public JWK (given to enrolling devices).
    pub server_jwk: Jwk,
    /// Its RFC 7638 thumbprint (`kid`).
    pub server_kid: String,
    /// `iss` of challenges, `aud` of device proofs.
    pub issuer: String,
    /// Base URL for enrollment links.
    pub public_url: String,
    /// Processor connectors.
    pub connectors: Connectors,
    /// Push services.
    pub push: PushGateway,
    /// Metrics.
    pub metrics: Metrics,
    /// Outbound HTTP client (callbacks).
    pub http: reqwest::Client,
    /// Issuer-event endpoints (`[events]`), keys loaded.
    pub events: crate::events::Events,
    /// Delivery slots per outbox lane (`[workers] concurrency` each), shared by the
    /// lane's worker and the deliveries requests start themselves.
    pub lanes: crate::workers::outbox::LanePermits,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .field("server_kid", &self.server_kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
