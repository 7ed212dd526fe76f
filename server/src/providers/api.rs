//! Result leg of the generic challenge API: when a challenge was created with a
//! `callback_url`, its outcome is POSTed there, signed so the issuer can trust it:
//!
//! ```text
//! PushAuth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(callback_secret, "<t>.<body>")>
//! ```
//!
//! Callback hosts must be allow-listed (`[api] callback_hosts`), which keeps the
//! server from being used to reach arbitrary internal addresses (SSRF).

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use pushauth_core::ids::Provider;
use pushauth_store::Challenge;
use sha2::Sha256;

use crate::config::ApiProviderConfig;
use crate::error::{ApiError, ApiResult};
use crate::state::now;
use crate::upstream::{Delivery, Job, NOT_SENT, Outcome, Upstream};

/// Checks a callback URL against the configuration: absolute `https` URL (or `http`
/// when allowed), no credentials, host (and port) in the allow-list.
pub fn validate_callback(cfg: &ApiProviderConfig, raw: &str) -> ApiResult<String> {
    check_callback(cfg, raw).map_err(|why| {
        ApiError::bad_request("invalid_callback_url", format!("callback_url: {why}"))
    })
}

/// [`validate_callback`]'s rules; the error says which one failed.
fn check_callback(cfg: &ApiProviderConfig, raw: &str) -> Result<String, &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if cfg.allow_http_callbacks => {}
        _ => return Err("must be https"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    let host = url.host_str().ok_or("no host")?.to_ascii_lowercase();
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    let allowed = cfg.callback_hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(&host)
            || with_port
                .as_deref()
                .is_some_and(|hp| h.eq_ignore_ascii_case(hp))
    });
    if !allowed {
        return Err("host is not in the allow-list ([api] callback_hosts)");
    }
    Ok(url.to_string())
}

/// Computes the `PushAuth-Signature` header value.
pub fn signature_header(secret: &[u8], unix: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
}

// HMAC accepts keys of any length; this cannot happen.
#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 accepts any key length")
}

/// The generic API's upstream.
pub struct ApiUpstream {
    http: reqwest::Client,
    secret: Vec<u8>,
    /// `[api]`, to check a stored callback URL again before each call: the allow-list
    /// may have been narrowed since the challenge was created.
    policy: ApiProviderConfig,
}

impl std::fmt::Debug for ApiUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiUpstream")
            .field("callback_hosts", &self.policy.callback_hosts)
            .finish_non_exhaustive()
    }
}

impl ApiUpstream {
    /// Creates the connector.
    pub fn new(http: reqwest::Client, secret: &str, policy: ApiProviderConfig) -> Self {
        ApiUpstream {
            http,
            secret: secret.as_bytes().to_vec(),
            policy,
        }
    }
}

fn callback_url(challenge: &Challenge) -> Option<&str> {
    challenge
        .context
        .get("callback_url")
        .and_then(|v| v.as_str())
}

/// Maps an HTTP answer to a delivery result: 2xx delivered; 408, 429 and 5xx retried
/// (honouring `Retry-After`, seconds or an HTTP-date); other 4xx refused for good.
pub fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<&reqwest::header::HeaderValue>,
) -> Delivery {
    let code = status.as_u16();
    if status.is_success() {
        Delivery::Delivered { http_status: code }
    } else if code == 408 || code == 429 || status.is_server_error() {
        let after = retry_after.and_then(crate::push::retry_after_value);
        Delivery::Retry {
            http_status: Some(code),
            error: format!("HTTP {code}"),
            after,
        }
    } else {
        Delivery::Fatal {
            http_status: Some(code),
            error: format!("HTTP {code}"),
        }
    }
}

#[async_trait]
impl Upstream for ApiUpstream {
    fn provider(&self) -> Provider {
        Provider::Api
    }

    fn wants(&self, challenge: &Challenge, _outcome: Outcome) -> bool {
        callback_url(challenge).is_some()
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let Some(url) = callback_url(job.challenge) else {
            return Delivery::Fatal {
                http_status: None,
                error: "no callback_url".into(),
            };
        };
        if let Err(why) = check_callback(&self.policy, url) {
            return Delivery::Fatal {
                http_status: None,
                error: format!("{NOT_SENT}callback_url no longer allowed: {why}"),
            };
        }
        let c = job.challenge;
        let body = serde_json::json!({
            "challenge_id": c.id,
            "reference": c.provider_ref,
            "outcome": job.outcome,
            "amount": c.amount,
            "payee": c.payee,
            "decided_at": job.decision.map(|d| d.at),
            "device_id": job.decision.map(|d| &d.device),
            "proof": job.decision.map(|d| &d.proof),
        });
        let Ok(bytes) = serde_json::to_vec(&body) else {
            return Delivery::Fatal {
                http_status: None,
                error: "cannot serialise callback".into(),
            };
        };
        let sig = signature_header(&self.secret, now().as_unix_time().seconds(), &bytes);
        let result = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("PushAuth-Signature", sig)
            .header("Idempotency-Key", c.id.as_str())
            .body(bytes)
            .send()
            .await;
        match result {
            Ok(resp) => classify(
                resp.status(),
                resp.headers().get(reqwest::header::RETRY_AFTER),
            ),
            Err(e) => Delivery::Retry {
                http_status: None,
                error: super::transport::failure(&e),
                after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hosts: &[&str], http: bool) -> ApiProviderConfig {
        ApiProviderConfig {
            callback_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            callback_secret: Some(crate::providers::config::Secret::new("s")),
            allow_http_callbacks: http,
        }
    }

    #[test]
    fn callback_allow_list() {
        let c = cfg(&["issuer.example", "127.0.0.1:9000"], false);
        assert!(validate_callback(&c, "https://issuer.example/cb").is_ok());
        assert!(validate_callback(&c, "https://ISSUER.example/cb").is_ok());
        assert!(validate_callback(&c, "http://issuer.example/cb").is_err());
        assert!(validate_callback(&c, "https://evil.example/cb").is_err());
        assert!(validate_callback(&c, "https://issuer.example.evil.example/cb").is_err());
        assert!(validate_callback(&c, "https://user:pw@issuer.example/cb").is_err());
        assert!(validate_callback(&c, "https://127.0.0.1:9000/cb").is_ok());
        assert!(validate_callback(&c, "https://127.0.0.1:9001/cb").is_err());
        assert!(validate_callback(&c, "/relative").is_err());
        assert!(validate_callback(&cfg(&[], true), "https://issuer.example/cb").is_err());
        assert!(
            validate_callback(&cfg(&["127.0.0.1:9000"], true), "http://127.0.0.1:9000/cb").is_ok()
        );
    }

    /// A challenge created when its callback host was allowed, delivered after the
    /// allow-list was narrowed: refused before any request is made.
    #[tokio::test]
    async fn a_callback_no_longer_allowed_is_not_called() {
        use pushauth_core::ids::{CardholderId, ChallengeId, Nonce, ProviderRef};
        use pushauth_core::transaction::TransactionKind;
        let new = pushauth_store::NewChallenge {
            id: ChallengeId::generate().unwrap(),
            cardholder: CardholderId::generate().unwrap(),
            provider: Provider::Api,
            provider_ref: ProviderRef::parse("pay-1").unwrap(),
            kind: TransactionKind::Payment,
            amount: None,
            payee: None,
            nonce: Nonce::generate().unwrap(),
            txn_digest: pushauth_core::transaction::TxnDigest::from_bytes([7; 32]),
            deadline: pushauth_store::Millis(0),
            upstream_deadline: pushauth_store::Millis(0),
            processor_input: None,
            context: serde_json::json!({ "callback_url": "https://old.example/cb" }),
            created_at: pushauth_store::Millis(0),
        };
        let c = new.into_created(pushauth_store::UpstreamStatus::Queued);
        let up = ApiUpstream::new(
            reqwest::Client::new(),
            "callback-secret-value",
            cfg(&["issuer.example"], false),
        );
        let job = |c| Job {
            challenge: c,
            decision: None,
            outcome: Outcome::Expired,
            attempt: 1,
            sent_before: 0,
            in_flight: false,
        };
        match up.deliver(job(&c)).await {
            Delivery::Fatal {
                http_status: None,
                error,
            } => assert!(
                error.starts_with(NOT_SENT) && error.contains("no longer allowed"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(!format!("{up:?}").contains("callback-secret-value"));
    }

    #[test]
    fn signature_is_hmac_of_t_dot_body() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'key',b'1700000000.{}',hashlib.sha256).hexdigest())"
        assert_eq!(
            signature_header(b"key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn classification() {
        use reqwest::StatusCode as S;
        assert_eq!(
            classify(S::OK, None),
            Delivery::Delivered { http_status: 200 }
        );
        assert!(matches!(
            classify(S::SERVICE_UNAVAILABLE, None),
            Delivery::Retry { .. }
        ));
        let ra = reqwest::header::HeaderValue::from_static("7");
        assert!(
            matches!(classify(S::TOO_MANY_REQUESTS, Some(&ra)), Delivery::Retry { after: Some(d), .. } if d.as_secs() == 7)
        );
        // an HTTP-date (here in the past: no wait) is read too
        let date = reqwest::header::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(matches!(
            classify(S::SERVICE_UNAVAILABLE, Some(&date)),
            Delivery::Retry { after: Some(d), .. } if d.is_zero()
        ));
        assert!(matches!(
            classify(S::BAD_REQUEST, None),
            Delivery::Fatal { .. }
        ));
    }
}
