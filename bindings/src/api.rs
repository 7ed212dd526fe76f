//! The device API over HTTP (protocol §6.1): URLs, the `Authorization: PushAuth`
//! header, JSON bodies, problem responses. reqwest with rustls, no redirects (a
//! signed request names its exact path), bounded response bodies.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

/// Largest response body read (pending lists of a few signed challenges are ~ KiB).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

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

/// Transport settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transport {
    /// Whole-request timeout.
    pub timeout: Option<Duration>,
    /// PEM root certificates to trust instead of the platform's.
    pub trusted_roots_pem: Vec<String>,
}

/// A device API client for one server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
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
    /// Builds the client. With trusted roots, only those are trusted (the issuer's
    /// own CA, which also pins it); otherwise the platform verifier is used.
    pub(crate) fn new(base: &Url, transport: &Transport) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pushauth-sdk/", env!("CARGO_PKG_VERSION")))
            .timeout(transport.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(10));
        if transport.trusted_roots_pem.is_empty() {
            // rustls-platform-verifier needs a JNI initialisation on Android that this
            // library does not do; without it the first TLS handshake would panic.
            if cfg!(target_os = "android") && base.scheme() == "https" {
                return Err(Error::Input(
                    "on Android pass ClientOptions.trusted_roots_pem (see bindings/README.md)"
                        .to_owned(),
                ));
            }
        } else {
            let mut certs = Vec::new();
            for pem in &transport.trusted_roots_pem {
                let found =
                    reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| {
                        Error::Input("trusted_roots_pem: not PEM certificates".to_owned())
                    })?;
                if found.is_empty() {
                    return Err(Error::Input(
                        "trusted_roots_pem: no certificate found".to_owned(),
                    ));
                }
                certs.extend(found);
            }
            builder = builder.tls_certs_only(certs);
        }
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            http: builder.build()?,
            base,
        })
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
        method: Method,
        target: Target,
        authorization: &str,
        body: Option<Vec<u8>>,
        kind: EndpointKind,
    ) -> Result<Vec<u8>> {
        let mut request = self
            .http
            .request(method, target.url)
            .header(AUTHORIZATION, format!("PushAuth {authorization}"))
            .header(ACCEPT, "application/json, application/problem+json");
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let mut response = request.send().await?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::Transport("response too large".to_owned()));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(Error::Problem(problem(status, &bytes, kind)))
        }
    }
}

fn problem(status: StatusCode, body: &[u8], kind: EndpointKind) -> Problem {
    let parsed: Option<ProblemBody> = serde_json::from_slice(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|p| p.reason.clone())
        .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_else(|| format!("http_{}", status.as_u16()));
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
        status: status.as_u16(),
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

/// `POST /v1/device/enroll` body.
#[derive(Debug, Serialize)]
pub(crate) struct EnrollBody<'a> {
    pub activation_code: &'a str,
    pub platform: &'a str,
    pub label: Option<&'a str>,
    pub signing_key: pushauth_core::keys::Jwk,
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

/// `POST /v1/device/key` body.
#[derive(Debug, Serialize)]
pub(crate) struct RotationBody<'a> {
    pub rotation: &'a str,
}

/// `POST /v1/device/key` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct RotationAnswer {
    pub kid: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_the_base_path() {
        let api = Api::new(
            &Url::parse("https://bank.example/pa").unwrap(),
            &Transport::default(),
        )
        .unwrap();
        let t = api.target("v1/device/challenges/abc/decision").unwrap();
        assert_eq!(
            t.url.as_str(),
            "https://bank.example/pa/v1/device/challenges/abc/decision"
        );
        assert_eq!(t.htu, "/pa/v1/device/challenges/abc/decision");
        let api = Api::new(
            &Url::parse("http://127.0.0.1:8080").unwrap(),
            &Transport::default(),
        )
        .unwrap();
        assert_eq!(
            api.target("v1/device/enroll").unwrap().htu,
            "/v1/device/enroll"
        );
    }

    /// A self-signed P-256 root (test only, no private key kept).
    const TEST_ROOT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBjzCCATWgAwIBAgIUU9QQQxuGIDHV6S6TCaMMFRhFAJ8wCgYIKoZIzj0EAwIw\n\
HTEbMBkGA1UEAwwScHVzaGF1dGggdGVzdCByb290MB4XDTI2MTEyNDA0NTU0OFoX\n\
DTM2MTEyMTA0NTU0OFowHTEbMBkGA1UEAwwScHVzaGF1dGggdGVzdCByb290MFkw\n\
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVKVuW/0nzRJgRlrz/AzZiA1ntk8FpJrn\n\
ySoWsubod+qOfBNP5M6yMTre69XqBikK3dbLN656tqo69FTgxSzpwqNTMFEwHQYD\n\
VR0OBBYEFNkpW+O6osU8uAYP7dB+gyzikhBuMB8GA1UdIwQYMBaAFNkpW+O6osU8\n\
uAYP7dB+gyzikhBuMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg\n\
RGcbqnMN7EA2FWIvzL89GquBNxmXGOd8cv01p6biIsoCIQDQfkS8ZB2mwc7HWUrQ\n\
76ttCwgFIcdtlkWwQjGmghvYgw==\n\
-----END CERTIFICATE-----";

    #[test]
    fn trusted_roots_are_parsed() {
        let base = Url::parse("https://bank.example").unwrap();
        let transport = Transport {
            timeout: None,
            trusted_roots_pem: vec![TEST_ROOT.to_owned()],
        };
        assert!(Api::new(&base, &transport).is_ok());
        let bad = Transport {
            timeout: None,
            trusted_roots_pem: vec!["not a certificate".to_owned()],
        };
        assert!(matches!(Api::new(&base, &bad), Err(Error::Input(_))));
    }

    #[test]
    fn problems_parse() {
        let p = problem(
            StatusCode::CONFLICT,
            br#"{"type":"urn:x","status":"approved","reason":"already_answered"}"#,
            EndpointKind::Challenge,
        );
        assert_eq!(p.reason, "already_answered");
        assert_eq!(p.challenge_status.as_deref(), Some("approved"));
        let p = problem(
            StatusCode::CONFLICT,
            br#"{"status":409,"reason":"challenge_closed","challenge_status":"denied"}"#,
            EndpointKind::Challenge,
        );
        assert_eq!(p.challenge_status.as_deref(), Some("denied"));
        let p = problem(StatusCode::BAD_GATEWAY, b"<html>", EndpointKind::Device);
        assert_eq!(p.reason, "http_502");
        let p = problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"status":422,"reason":"bad reason!"}"#,
            EndpointKind::Device,
        );
        assert_eq!(p.reason, "http_422");
        assert_eq!(p.challenge_status, None);
    }
}
