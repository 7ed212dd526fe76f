//! The internal error of the device client. It keeps the context a core error came
//! from (a server challenge, a push, a signature), which decides what the app is told;
//! `ffi::error` maps it to the public [`crate::ffi::error::PushAuthError`].

use crate::api::Problem;
use crate::ffi::error::KeyStoreError;
use crate::ffi::key_store::KeyPurpose;

/// Everything that can fail inside the SDK.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An argument from the app was not valid.
    #[error("invalid input: {0}")]
    Input(String),
    /// A server challenge failed verification.
    #[error("server challenge refused: {0}")]
    Challenge(pushauth_core::Error),
    /// A push envelope failed to open.
    #[error("push refused: {0}")]
    Push(pushauth_core::Error),
    /// The app's key store failed, with the key of `purpose`.
    #[error("key store ({purpose:?} key): {error}")]
    KeyStore {
        /// What the key store said.
        error: KeyStoreError,
        /// Which key.
        purpose: KeyPurpose,
    },
    /// The request did not get an HTTP answer (connection, TLS, timeout).
    #[error("network: {0}")]
    Transport(String),
    /// The server answered with a problem.
    #[error("server refused: {} {}", .0.status, .0.reason)]
    Problem(Problem),
    /// A bug or a malformed answer.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An input error from a core parsing failure (`invalid_id`, `invalid_payee`, …).
    pub(crate) fn input(what: &str, e: &pushauth_core::Error) -> Self {
        Error::Input(format!("{what}: {e}"))
    }
}

impl Error {
    /// A core failure while signing that is not the key store's own: a bug.
    pub(crate) fn signing(e: pushauth_core::Error) -> Self {
        Error::Internal(format!("signing failed: {}", e.code()))
    }
}

impl Error {
    /// A key store failure with the key of `purpose`.
    pub(crate) fn key_store(error: KeyStoreError, purpose: KeyPurpose) -> Self {
        Error::KeyStore { error, purpose }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        // Without the URL: it is not secret, but keeps logs short and uniform.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "broken response body"
        } else if e.is_builder() {
            return Error::Input(format!(
                "invalid HTTP client configuration: {}",
                e.without_url()
            ));
        } else {
            "request failed"
        };
        Error::Transport(kind.to_owned())
    }
}
