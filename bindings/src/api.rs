//! The device API over HTTP (protocol §6.1): URLs, the `Authorization: PushAuth`
//! header, JSON bodies, problem responses, through the app's or the built-in
//! [`HttpTransport`].

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::ffi::transport::{HttpRequest, HttpTransport};

/// Largest response body read (pending lists of a few signed challenges are ~ KiB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Which kind of endpoint answered, to read its status codes (a 404 on a
/// challenge is an unknown challenge, on the device endpoints an unknown device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointKind {
    /// `POST /v1/device/enroll`.
    Enroll,
    /// The device itself: push token, pending list, key rotation, revocation.
    Device,
    /// One challenge: fetch or decision.
    Challenge,
}

/// A problem response (RFC 9457) from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// HTTP status.
    pub status: u16,
    /// The stable `reason` code (or `http_<status>` when the body had none).
    pub reason: String,
    /// The challenge's current `status`, when the server adds it (409).
    pub challenge_status: Option<String>,
    /// The endpoint kind.
    pub kind: EndpointKind,
}

#[derive(Deserialize)]
struct ProblemBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    challenge_status: Option<String>,
}

/// A device API client for one server.
#[derive(Clone)]
pub(crate) struct Api {
    transport: Arc<dyn HttpTransport>,
    base: Url,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Api({})", self.base)
    }
}

/// One request to send: where, and the `htu` its proof must name.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The full URL.
    pub url: Url,
    /// Path and query exactly as sent (protocol §6, `htu`).
    pub htu: String,
}

impl Api {
    /// A client for the server at `base`.
    pub(crate) fn new(base: &Url, transport: Arc<dyn HttpTransport>) -> Self {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Self { transport, base }
    }

    /// The target for a path relative to the base URL (`v1/device/enroll`).
    pub(crate) fn target(&self, relative: &str) -> Result<Target> {
        let url = self
            .base
            .join(relative)
            .map_err(|_| Error::Internal("bad endpoint path".to_owned()))?;
        let htu = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(Target { url, htu })
    }

    /// Sends a request with its `Authorization: PushAuth <jws>` header and returns the
    /// body of a 2xx answer; any other status becomes a [`Problem`].
    pub(crate) async fn send(
        &self,
        method: &str,
        target: Target,
        authorization: &str,
        body: Option<Vec<u8>>,
        kind: EndpointKind,
    ) -> Result<Vec<u8>> {
        let request = HttpRequest {
            method: method.to_owned(),
            url: target.url.to_string(),
            headers: crate::http::headers(authorization, body.is_some()),
            body: body.unwrap_or_default(),
        };
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        if response.body.len() > MAX_RESPONSE_BYTES {
            return Err(Error::Transport("response too large".to_owned()));
        }
        if (200..300).contains(&response.status) {
            Ok(response.body)
        } else {
            Err(Error::Problem(problem(
                response.status,
                &response.body,
                kind,
            )))
        }
    }
}

fn problem(status: u16, body: &[u8], kind: EndpointKind) -> Problem {
    let parsed: Option<ProblemBody> = serde_json::from_slice(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|p| p.reason.clone())
        .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_else(|| format!("http_{status}"));
    // `status` in a problem is the HTTP status number (RFC 9457), so the 409 of a
    // closed challenge (protocol §6.1) is read from `challenge_status`, or from a
    // string `status` for a server that puts it there.
    let challenge_status = parsed
        .and_then(|p| {
            p.challenge_status
                .or_else(|| p.status.and_then(|s| s.as_str().map(str::to_owned)))
        })
        .filter(|s| s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    Problem {
        status,
        reason,
        challenge_status,
        kind,
    }
}

/// Serialises a request body.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|_| Error::Internal("request body not serialisable".to_owned()))
}

/// Parses a 2xx answer body.
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|_| Error::Internal(format!("unexpected {what} answer from the server")))
}

// Wire types of docs/protocol.md §6.1. Answers ignore unknown members (servers may add).

/// `POST /v1/device/enroll` body (protocol v2: two signing keys).
#[derive(Debug, Serialize)]
pub(crate) struct EnrollBody<'a> {
    pub activation_code: &'a str,
    pub platform: &'a str,
    pub label: Option<&'a str>,
    pub device_key: pushauth_core::keys::Jwk,
    pub approval_key: pushauth_core::keys::Jwk,
    pub approval_key_proof: &'a str,
    pub agreement_key: pushauth_core::keys::Jwk,
    pub push_token: Option<&'a str>,
    pub push_environment: Option<&'a str>,
}

/// `POST /v1/device/enroll` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct EnrollAnswer {
    pub device_id: String,
    pub issuer: String,
    pub server_key: pushauth_core::keys::Jwk,
    pub server_kid: String,
}

/// `PUT /v1/device/push-token` body.
#[derive(Debug, Serialize)]
pub(crate) struct PushTokenBody<'a> {
    pub push_token: &'a str,
    pub push_environment: Option<&'a str>,
}

/// One challenge as listed or fetched.
#[derive(Debug, Deserialize)]
pub(crate) struct ChallengeRef {
    pub id: String,
    pub token: String,
}

/// `GET /v1/device/challenges` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChallengeList {
    pub challenges: Vec<ChallengeRef>,
}

/// `POST /v1/device/challenges/{id}/decision` body.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionBody<'a> {
    pub proof: &'a str,
    pub processor_output: Option<&'a str>,
}

/// `POST /v1/device/challenges/{id}/decision` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct DecisionAnswer {
    pub status: String,
}

/// `POST /v1/device/key` body (protocol v2).
#[derive(Debug, Serialize)]
pub(crate) struct RotationBody<'a> {
    #[serde(rename = "use")]
    pub key_use: &'a str,
    pub statement: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<&'a str>,
}

/// `POST /v1/device/key` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct RotationAnswer {
    pub kid: String,
}

/// `POST /v1/device/migration` body.
#[derive(Debug, Serialize)]
pub(crate) struct MigrationBody<'a> {
    pub grant: &'a str,
}

/// `POST /v1/device/migration` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct MigrationAnswer {
    pub code: String,
    pub deeplink: String,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nowhere;

    #[async_trait::async_trait]
    impl HttpTransport for Nowhere {
        async fn send(
            &self,
            _: HttpRequest,
        ) -> Result<crate::ffi::transport::HttpResponse, crate::ffi::transport::TransportError>
        {
            Err(crate::ffi::transport::TransportError::NoAnswer {
                detail: "nowhere".into(),
            })
        }
    }

    #[test]
    fn targets_keep_the_base_path() {
        let api = Api::new(
            &Url::parse("https://bank.example/pa").unwrap(),
            Arc::new(Nowhere),
        );
        let t = api.target("v1/device/challenges/abc/decision").unwrap();
        assert_eq!(
            t.url.as_str(),
            "https://bank.example/pa/v1/device/challenges/abc/decision"
        );
        assert_eq!(t.htu, "/pa/v1/device/challenges/abc/decision");
        let api = Api::new(
            &Url::parse("http://127.0.0.1:8080").unwrap(),
            Arc::new(Nowhere),
        );
        assert_eq!(
            api.target("v1/device/enroll").unwrap().htu,
            "/v1/device/enroll"
        );
    }

    #[test]
    fn problems_parse() {
        let p = problem(
            409,
            br#"{"type":"urn:x","status":"approved","reason":"already_answered"}"#,
            EndpointKind::Challenge,
        );
        assert_eq!(p.reason, "already_answered");
        assert_eq!(p.challenge_status.as_deref(), Some("approved"));
        let p = problem(
            409,
            br#"{"status":409,"reason":"challenge_closed","challenge_status":"denied"}"#,
            EndpointKind::Challenge,
        );
        assert_eq!(p.challenge_status.as_deref(), Some("denied"));
        let p = problem(502, b"<html>", EndpointKind::Device);
        assert_eq!(p.reason, "http_502");
        let p = problem(
            422,
            br#"{"status":422,"reason":"bad reason!"}"#,
            EndpointKind::Device,
        );
        assert_eq!(p.reason, "http_422");
        assert_eq!(p.challenge_status, None);
    }
}
