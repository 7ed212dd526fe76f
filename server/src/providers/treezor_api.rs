//! Treezor's result leg: an OAuth2 client-credentials token from `{baseUrl}/oauth/token`
//! (cached until shortly before it expires), optionally over mutual TLS, then
//! `PUT {baseUrl}/v1/auth-requests/{authenticationRequestId}/result` with
//! `authenticationResult` and, for `OK`, our approval proof (a JWS) as
//! `authenticationSignature`. Treezor answers 400 for every refusal and tells them apart
//! by `code`; "Authentication result already received" means an earlier attempt of ours
//! landed, so it counts as delivered. Both of Treezor's error shapes are read.
//! <https://docs.treezor.com/guide/api-basics/authentication.html>

use std::time::{Duration, Instant};

use async_trait::async_trait;
use pushauth_core::ids::Provider;
use pushauth_store::Challenge;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::common;
use super::config::{Secret, TreezorConfig, TreezorOnExpiry, check_base_url, require_secret};
use crate::upstream::{Delivery, Job, NOT_SENT, Outcome, Resend, Upstream};

/// Tokens are renewed this long before Treezor says they expire.
const TOKEN_SLACK: Duration = Duration::from_secs(60);

/// The result leg.
#[derive(Debug)]
pub struct TreezorUpstream {
    http: reqwest::Client,
    base: url::Url,
    token_url: url::Url,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    on_expiry: TreezorOnExpiry,
    token: Mutex<Option<CachedToken>>,
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TreezorUpstream {
    /// Builds the connector: its own HTTP client when a client identity (mTLS) or an
    /// extra root certificate is configured, the shared one otherwise.
    pub fn new(cfg: &TreezorConfig, shared: reqwest::Client) -> Result<Self, String> {
        let base = check_base_url("providers.treezor.base_url", &cfg.base_url, cfg.allow_http)?;
        if !cfg.token_path.starts_with('/') {
            return Err("providers.treezor.token_path must start with /".into());
        }
        let token_url = url::Url::parse(&format!(
            "{}{}",
            base.as_str().trim_end_matches('/'),
            cfg.token_path
        ))
        .map_err(|_| "providers.treezor.token_path does not make a URL".to_owned())?;
        if cfg.client_id.trim().is_empty() {
            return Err("providers.treezor.client_id is required".into());
        }
        let client_secret = require_secret(
            &cfg.client_secret,
            &cfg.client_secret_file,
            "providers.treezor.client_secret",
        )?;
        let http = match (&cfg.client_cert_file, &cfg.client_key_file, &cfg.ca_file) {
            (None, None, None) => shared,
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(
                    "providers.treezor: client_cert_file and client_key_file go together".into(),
                );
            }
            (cert, key, ca) => client(cert.as_deref(), key.as_deref(), ca.as_deref())?,
        };
        Ok(TreezorUpstream {
            http,
            base,
            token_url,
            client_id: cfg.client_id.clone(),
            client_secret,
            scope: cfg.scope.clone(),
            on_expiry: cfg.on_expiry,
            token: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one.
    async fn token(&self) -> Result<Secret, Delivery> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let resp = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| Delivery::Retry {
                http_status: None,
                error: format!("{NOT_SENT}token: {}", crate::workers::transport_error(&e)),
                after: None,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let detail = format!(
                "{NOT_SENT}token: {}",
                common::answer_summary(status.as_u16(), None)
            );
            return Err(
                match super::api::classify(status, resp.headers().get(reqwest::header::RETRY_AFTER))
                {
                    Delivery::Retry {
                        http_status, after, ..
                    } => Delivery::Retry {
                        http_status,
                        error: detail,
                        after,
                    },
                    _ => Delivery::Fatal {
                        http_status: Some(status.as_u16()),
                        error: detail,
                    },
                },
            );
        }
        let body = super::transport::read_capped(resp, super::transport::MAX_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| Delivery::Retry {
            http_status: Some(status.as_u16()),
            error: format!("{NOT_SENT}token: the answer has no access_token"),
            after: None,
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_SLACK);
        *cached = Some(CachedToken {
            value: answer.access_token.clone(),
            renew_at,
        });
        Ok(answer.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// The `authenticationResult` for an outcome, if one is sent.
    fn result_for(&self, outcome: Outcome) -> Option<&'static str> {
        match outcome {
            Outcome::Approved => Some("OK"),
            // The cardholder refused, or the issuer cancelled: not authenticated.
            Outcome::Denied { .. } | Outcome::Cancelled => Some("KO_AUTH_FAILED"),
            Outcome::Expired => match self.on_expiry {
                TreezorOnExpiry::None => None,
                TreezorOnExpiry::Fallback => Some("FALLBACK"),
                TreezorOnExpiry::KoTechnical => Some("KO_TECHNICAL"),
            },
        }
    }
}

/// Builds a client with the configured identity and roots.
fn client(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
    ca: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("providers.treezor: {}: {e}", p.display()))
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none());
    if let (Some(cert), Some(key)) = (cert, key) {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            "providers.treezor: the client certificate or key is not usable PEM".to_owned()
        })?;
        builder = builder.identity(identity);
    }
    if let Some(ca) = ca {
        let roots = reqwest::Certificate::from_pem_bundle(&read(ca)?)
            .map_err(|_| "providers.treezor.ca_file is not PEM".to_owned())?;
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder
        .build()
        .map_err(|e| format!("providers.treezor: HTTP client: {e}"))
}

/// Treezor's error, from either shape: `{"errors":[{type,code,message}]}` or the legacy
/// `{"error":"…"}` (or a map of field messages).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TreezorError {
    /// `errors[0].code`.
    pub code: Option<String>,
    /// `errors[0].message`, or the legacy `error`.
    pub message: Option<String>,
}

impl TreezorError {
    /// Parses an error body; unknown shapes give an empty error.
    pub fn parse(body: &[u8]) -> TreezorError {
        #[derive(Deserialize)]
        struct New {
            errors: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        #[derive(Deserialize)]
        struct Legacy {
            error: String,
        }
        if let Ok(New { errors }) = serde_json::from_slice(body)
            && let Some(first) = errors.into_iter().next()
        {
            return TreezorError {
                code: first.code,
                message: first.message,
            };
        }
        if let Ok(Legacy { error }) = serde_json::from_slice(body) {
            return TreezorError {
                code: None,
                message: Some(error),
            };
        }
        TreezorError::default()
    }

    /// "Authentication result already received" / "Authentication Request Already
    /// Processed": the result is in; another one cannot be taken.
    pub fn already_received(&self) -> bool {
        let msg = self
            .message
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let code_ok = self
            .code
            .as_deref()
            .is_none_or(|c| c == "authentication_error");
        code_ok
            && msg.contains("already")
            && (msg.contains("received") || msg.contains("processed"))
    }

    fn summary(&self) -> Option<String> {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => Some(format!("{c}: {m}")),
            (Some(c), None) => Some(c.clone()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        }
    }
}

fn auth_request_id(challenge: &Challenge) -> &str {
    challenge
        .context
        .get("auth_request_id")
        .and_then(|v| v.as_str())
        .unwrap_or(challenge.provider_ref.as_str())
}

#[async_trait]
impl Upstream for TreezorUpstream {
    fn provider(&self) -> Provider {
        Provider::Treezor
    }

    fn wants(&self, _challenge: &Challenge, outcome: Outcome) -> bool {
        self.result_for(outcome).is_some()
    }

    /// Treezor answers a repeat with "Authentication result already received".
    fn resend(&self) -> Resend {
        Resend::Deduplicated
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let Some(result) = self.result_for(job.outcome) else {
            return Delivery::Fatal {
                http_status: None,
                error: "nothing to report for this outcome".into(),
            };
        };
        let mut body = serde_json::json!({ "authenticationResult": result });
        if result == "OK" {
            // "authenticationSignature: SCA proof, optional if the result is not OK".
            let Some(proof) = job.decision.map(|d| d.proof.as_str()) else {
                return Delivery::Fatal {
                    http_status: None,
                    error: "approval without a proof".into(),
                };
            };
            body["authenticationSignature"] = serde_json::Value::String(proof.to_owned());
        }
        let url = match common::join_url(
            &self.base,
            "/v1/auth-requests/{id}/result",
            "{id}",
            auth_request_id(job.challenge),
        ) {
            Ok(u) => u,
            Err(e) => {
                return Delivery::Fatal {
                    http_status: None,
                    error: e,
                };
            }
        };
        let token = match self.token().await {
            Ok(t) => t,
            Err(d) => return d,
        };
        let Ok(bearer) = common::sensitive(&format!("Bearer {}", token.expose())) else {
            self.forget_token().await;
            return Delivery::Retry {
                http_status: None,
                error: format!("{NOT_SENT}token: not a valid header value"),
                after: None,
            };
        };
        let sent = self
            .http
            .put(url)
            .header(reqwest::header::AUTHORIZATION, bearer)
            .json(&body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            // A repeat is harmless: Treezor answers "already received".
            Err(e) => {
                return Delivery::Retry {
                    http_status: None,
                    error: super::transport::failure(&e),
                    after: None,
                };
            }
        };
        let status = resp.status();
        let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).cloned();
        let code = status.as_u16();
        if status.is_success() {
            return Delivery::Delivered { http_status: code };
        }
        let text = super::transport::answer_body(resp).await;
        let error = TreezorError::parse(&text);
        if code == 401 {
            // The token was refused (revoked, rotated): get a new one next time.
            self.forget_token().await;
            return Delivery::Retry {
                http_status: Some(code),
                error: common::answer_summary(code, error.summary().as_deref()),
                after: None,
            };
        }
        if code == 400 && error.already_received() {
            tracing::info!(challenge = %job.challenge.id, "Treezor already had the result");
            return Delivery::Delivered { http_status: code };
        }
        let detail = common::answer_summary(code, error.summary().as_deref());
        match super::api::classify(status, retry_after.as_ref()) {
            Delivery::Retry {
                http_status, after, ..
            } => Delivery::Retry {
                http_status,
                error: detail,
                after,
            },
            _ => Delivery::Fatal {
                http_status: Some(code),
                error: detail,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_shapes() {
        let new = br#"{"errors":[{"type":"invalid_grant","code":"authentication_error","message":"Authentication result already received","requestId":"r","docUrl":"d"}]}"#;
        let e = TreezorError::parse(new);
        assert_eq!(e.code.as_deref(), Some("authentication_error"));
        assert!(e.already_received());
        assert!(
            TreezorError::parse(br#"{"error":"Authentication Request Already Processed"}"#)
                .already_received()
        );
        let other = TreezorError::parse(br#"{"errors":[{"type":"invalid_grant","code":"authentication_error","message":"invalid token"}]}"#);
        assert!(!other.already_received());
        let nf = TreezorError::parse(
            br#"{"error":"Unable to find the authenticationRequestID in our system"}"#,
        );
        assert!(!nf.already_received());
        assert_eq!(TreezorError::parse(br#"{"authenticationResult":["The authenticationResult field is required|invalid."]}"#), TreezorError::default());
        assert_eq!(TreezorError::parse(b"<html>"), TreezorError::default());
    }

    /// A self-signed P-256 test identity (generated for this test, no other use).
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUKTpHv+tJLN5aot6EhWQxnLTgrNwwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUcHVzaGF1dGgtdGVzdC1jbGllbnQwIBcNMjYxMTI0MDUzNjQ0
WhgPMjEyNjEwMzEwNTM2NDRaMB8xHTAbBgNVBAMMFHB1c2hhdXRoLXRlc3QtY2xp
ZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENXD/Wjx/WDgh9TcDsh5O5aZG
QMR5XVXLdKTSjXCFfcNKUEKymZ1KNu6CLw7c1QUMh16cuwwzwn8Xjzp0Dc7nDKNT
MFEwHQYDVR0OBBYEFIkeuhKN3DYA67DQn8JRn5p9OLnWMB8GA1UdIwQYMBaAFIke
uhKN3DYA67DQn8JRn5p9OLnWMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIgZ0ZvsbnRozJsWWPoErNMfusqm1JfdrNXeNiY4n0zxxACIQDjnu+MorvT
e+IFkTJ07HVfZGn+E0w5ngWnHPbur35pLg==
-----END CERTIFICATE-----";
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6UCZjZFKOWNtIKqz
wDZMjjkIORzxsJ6vb65iQzODtauhRANCAAQ1cP9aPH9YOCH1NwOyHk7lpkZAxHld
Vct0pNKNcIV9w0pQQrKZnUo27oIvDtzVBQyHXpy7DDPCfxePOnQNzucM
-----END PRIVATE KEY-----";

    fn config(extra: serde_json::Value) -> TreezorConfig {
        let mut v = serde_json::json!({
            "base_url": "https://treezor.example",
            "client_id": "1",
            "client_secret": "s",
            "webhook_secret": "w",
        });
        if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn mtls_identity_from_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, junk) = (
            dir.path().join("c.pem"),
            dir.path().join("k.pem"),
            dir.path().join("j.pem"),
        );
        std::fs::write(&cert, TEST_CERT).unwrap();
        std::fs::write(&key, TEST_KEY).unwrap();
        std::fs::write(&junk, "not a pem").unwrap();
        let shared = reqwest::Client::new();
        let ok = config(
            serde_json::json!({"client_cert_file": cert, "client_key_file": key, "ca_file": cert}),
        );
        assert!(TreezorUpstream::new(&ok, shared.clone()).is_ok());
        for bad in [
            serde_json::json!({"client_cert_file": cert}),
            serde_json::json!({"client_key_file": key}),
            serde_json::json!({"client_cert_file": cert, "client_key_file": junk}),
            serde_json::json!({"client_cert_file": junk, "client_key_file": junk}),
            serde_json::json!({"client_cert_file": cert, "client_key_file": dir.path().join("missing")}),
        ] {
            assert!(
                TreezorUpstream::new(&config(bad.clone()), shared.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(TreezorUpstream::new(&config(serde_json::json!({})), shared).is_ok());
    }

    #[test]
    fn results_per_outcome() {
        let shared = reqwest::Client::new();
        let up = TreezorUpstream::new(&config(serde_json::json!({})), shared.clone()).unwrap();
        assert_eq!(up.result_for(Outcome::Approved), Some("OK"));
        assert_eq!(
            up.result_for(Outcome::Denied { reason: None }),
            Some("KO_AUTH_FAILED")
        );
        assert_eq!(up.result_for(Outcome::Cancelled), Some("KO_AUTH_FAILED"));
        assert_eq!(up.result_for(Outcome::Expired), None);
        let up = TreezorUpstream::new(
            &config(serde_json::json!({"on_expiry": "ko_technical"})),
            shared,
        )
        .unwrap();
        assert_eq!(up.result_for(Outcome::Expired), Some("KO_TECHNICAL"));
    }
}
