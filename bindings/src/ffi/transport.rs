//! The HTTP transport, as a foreign trait: apps can send the SDK's requests with
//! URLSession or OkHttp (their own pinning, Network Security Config, App Attest /
//! Play Integrity headers, proxies). The default is the built-in reqwest client
//! ([`builtin_transport`]).

use std::sync::Arc;

use super::enrollment::ClientOptions;
use super::error::PushAuthError;

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Header name (`Authorization`).
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A request the SDK wants sent. Send it as is: the `Authorization` proof signs the
/// method, the path and query, and the body bytes. Never follow redirects.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<HttpHeader>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// The server's answer, whatever its status (problem responses included).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (may be empty: the SDK reads only the body).
    pub headers: Vec<HttpHeader>,
    /// The body.
    pub body: Vec<u8>,
}

/// No HTTP answer was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// Connection, TLS, timeout, cancelled: the request may or may not have reached
    /// the server. The SDK treats it as a lost answer (retries are idempotent).
    #[error("no answer: {detail}")]
    NoAnswer {
        /// What happened, for logs (no secrets).
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::NoAnswer {
            detail: format!("unexpected transport failure: {}", e.reason),
        }
    }
}

/// Sends the SDK's HTTP requests. Implemented by the app, or [`builtin_transport`].
#[uniffi::export(rust, foreign)]
#[async_trait::async_trait]
pub trait HttpTransport: Send + Sync {
    /// Sends `request` and returns the answer, any status. Throws only when no
    /// answer was received.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// The built-in client (reqwest, rustls, the platform's certificate verifier, no
/// redirects) with `options` (timeout, trusted roots). Apps that wrap it (logging,
/// extra headers) call its `send`.
#[uniffi::export]
pub fn builtin_transport(options: ClientOptions) -> Result<Arc<dyn HttpTransport>, PushAuthError> {
    let settings: crate::device::Settings = options.into();
    Ok(Arc::new(crate::http::ReqwestTransport::new(
        &settings.transport,
    )?))
}
