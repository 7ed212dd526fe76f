//! APNs client: HTTP/2 (`POST {base}/3/device/{token}`) with provider-token
//! authentication. TLS with ALPN `h2` against Apple; cleartext HTTP/2 with prior
//! knowledge when a base URL is `http://` (local mock).
//!
//! - Challenge push: alert with generic text, `mutable-content: 1` so the Notification
//!   Service Extension decrypts `enc` and rewrites the text, `interruption-level:
//!   time-sensitive`, `apns-priority: 10`, `apns-expiration` = challenge deadline.
//! - Dismiss push: background push (`content-available: 1`, `apns-push-type:
//!   background`, `apns-priority: 5`), same `apns-collapse-id`; the app removes the
//!   delivered notification whose identifier is the challenge id.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use pushauth_store::PushEnvironment;
use serde_json::{Value, json};

use super::token::ProviderToken;
use super::{
    PushJob, PushKind, PushResult, PushSender, error_chain, expiry, retry_after, token_prefix,
};

/// Generic alert text and optional localisation keys.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Title shown when the extension does not replace it.
    pub title: String,
    /// Body likewise.
    pub body: String,
    /// `title-loc-key`.
    pub title_loc_key: Option<String>,
    /// `loc-key`.
    pub loc_key: Option<String>,
}

/// The APNs sender.
pub struct ApnsSender {
    http: reqwest::Client,
    production: String,
    sandbox: String,
    topic: String,
    token: ProviderToken,
    alert: Alert,
}

impl fmt::Debug for ApnsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsSender")
            .field("production", &self.production)
            .field("sandbox", &self.sandbox)
            .field("topic", &self.topic)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What one APNs answer means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Final for this attempt.
    Done(PushResult),
    /// `403 ExpiredProviderToken`: renew the token and try again.
    RenewToken,
}

/// Maps an APNs answer (status, `{"reason": …}` body, `Retry-After`) to a result.
pub(crate) fn classify(status: u16, body: &[u8], after: Option<Duration>) -> Verdict {
    let reason = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let reason: String = reason
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let error = if reason.is_empty() {
        format!("APNs {status}")
    } else {
        format!("APNs {status} {reason}")
    };
    let result = match (status, reason.as_str()) {
        (200, _) => PushResult::Sent { http_status: 200 },
        (410, _) | (400, "BadDeviceToken") | (_, "Unregistered") => PushResult::DeadToken {
            http_status: status,
            reason: if reason.is_empty() {
                "Unregistered".into()
            } else {
                reason
            },
        },
        (403, "ExpiredProviderToken") => return Verdict::RenewToken,
        (429, _) | (500..=599, _) => PushResult::Retry {
            http_status: Some(status),
            error,
            after,
        },
        _ => PushResult::Fatal {
            http_status: Some(status),
            error,
        },
    };
    Verdict::Done(result)
}

/// APNs device tokens are hex (32 bytes today; Apple says the length may change).
pub(crate) fn valid_token(token: &str) -> bool {
    (2..=400).contains(&token.len())
        && token.len().is_multiple_of(2)
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ApnsSender {
    /// A sender; `http` must speak HTTP/2 (see [`ApnsSender::client`]).
    pub fn new(
        http: reqwest::Client,
        production: String,
        sandbox: String,
        topic: String,
        token: ProviderToken,
        alert: Alert,
    ) -> Self {
        ApnsSender {
            http,
            production,
            sandbox,
            topic,
            token,
            alert,
        }
    }

    /// An HTTP/2-only client: ALPN `h2` over TLS, prior knowledge over cleartext.
    pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_timeout(Duration::from_secs(20))
            .http2_keep_alive_while_idle(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("APNs HTTP client: {e}"))
    }

    /// The JSON payload for a job.
    pub(crate) fn payload(&self, job: &PushJob<'_>) -> Value {
        let aps = match job.kind {
            PushKind::Challenge => {
                let mut alert = json!({ "title": self.alert.title, "body": self.alert.body });
                if let Some(k) = &self.alert.title_loc_key {
                    alert["title-loc-key"] = json!(k);
                }
                if let Some(k) = &self.alert.loc_key {
                    alert["loc-key"] = json!(k);
                }
                json!({
                    "alert": alert,
                    "sound": "default",
                    "mutable-content": 1,
                    "interruption-level": "time-sensitive",
                    "thread-id": "pushauth",
                })
            }
            PushKind::Dismiss => json!({ "content-available": 1 }),
        };
        let mut payload = json!({ "aps": aps, "cid": job.data.cid, "kind": job.data.kind });
        if let Some(enc) = &job.data.enc {
            payload["enc"] = json!(enc);
        }
        payload
    }

    async fn attempt(
        &self,
        url: &str,
        bearer: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Verdict {
        let mut req = self
            .http
            .post(url)
            .header("authorization", format!("bearer {bearer}"))
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        match req.send().await {
            Err(e) => Verdict::Done(PushResult::Retry {
                http_status: None,
                error: format!("APNs unreachable: {}", error_chain(&e)),
                after: None,
            }),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let body = resp.bytes().await.unwrap_or_default();
                classify(status, &body, after)
            }
        }
    }
}

#[async_trait]
impl PushSender for ApnsSender {
    fn service(&self) -> &'static str {
        "apns"
    }

    async fn send(&self, job: PushJob<'_>) -> PushResult {
        let Some(target) = job.device.push.as_ref() else {
            return PushResult::Fatal {
                http_status: None,
                error: "device has no push token".into(),
            };
        };
        if !valid_token(&target.token) {
            return PushResult::Fatal {
                http_status: None,
                error: "APNs device token is not hex: not sent".into(),
            };
        }
        let Some(expires) = expiry(&job) else {
            return PushResult::Fatal {
                http_status: None,
                error: "deadline passed before sending".into(),
            };
        };
        let base = match target.environment {
            Some(PushEnvironment::Sandbox) => &self.sandbox,
            _ => &self.production,
        };
        let url = format!("{base}/3/device/{}", target.token);
        let (push_type, priority) = match job.kind {
            PushKind::Challenge => ("alert", "10"),
            PushKind::Dismiss => ("background", "5"),
        };
        let headers = [
            ("apns-topic", self.topic.clone()),
            ("apns-push-type", push_type.to_owned()),
            ("apns-priority", priority.to_owned()),
            ("apns-expiration", expires.as_unix_time().0.to_string()),
            ("apns-collapse-id", job.data.cid.clone()),
            ("content-type", "application/json".to_owned()),
        ];
        let body = match serde_json::to_vec(&self.payload(&job)) {
            Ok(b) => b,
            Err(e) => {
                return PushResult::Fatal {
                    http_status: None,
                    error: format!("payload: {e}"),
                };
            }
        };
        let mut bearer = match self.token.current().await {
            Ok(t) => t,
            Err(e) => {
                return PushResult::Fatal {
                    http_status: None,
                    error: e,
                };
            }
        };
        let mut renewed = false;
        let result = loop {
            match self.attempt(&url, &bearer, &headers, &body).await {
                Verdict::Done(result) => break result,
                Verdict::RenewToken if !renewed => {
                    renewed = true;
                    tracing::info!("APNs provider token expired: renewing it and sending again");
                    bearer = match self.token.renew(&bearer).await {
                        Ok(t) => t,
                        Err(e) => {
                            break PushResult::Fatal {
                                http_status: None,
                                error: e,
                            };
                        }
                    };
                }
                Verdict::RenewToken => {
                    break PushResult::Fatal {
                        http_status: Some(403),
                        error: "APNs 403 ExpiredProviderToken right after renewal: check the server clock".into(),
                    };
                }
            }
        };
        let token = token_prefix(&target.token);
        match &result {
            PushResult::Sent { .. } => {
                tracing::debug!(challenge = %job.challenge.id, token, kind = job.data.kind, "APNs accepted")
            }
            PushResult::Fatal { error, .. } => {
                tracing::warn!(challenge = %job.challenge.id, token, error, "APNs refused")
            }
            other => tracing::info!(challenge = %job.challenge.id, token, result = ?other, "APNs"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(status: u16, body: &str) -> PushResult {
        match classify(status, body.as_bytes(), None) {
            Verdict::Done(r) => r,
            Verdict::RenewToken => panic!("renew"),
        }
    }

    #[test]
    fn answers_map_to_results() {
        assert_eq!(done(200, ""), PushResult::Sent { http_status: 200 });
        assert_eq!(
            done(410, r#"{"reason":"Unregistered","timestamp":1}"#),
            PushResult::DeadToken {
                http_status: 410,
                reason: "Unregistered".into()
            }
        );
        assert_eq!(
            done(400, r#"{"reason":"BadDeviceToken"}"#),
            PushResult::DeadToken {
                http_status: 400,
                reason: "BadDeviceToken".into()
            }
        );
        assert!(matches!(
            done(400, r#"{"reason":"BadTopic"}"#),
            PushResult::Fatal {
                http_status: Some(400),
                ..
            }
        ));
        assert!(matches!(
            done(403, r#"{"reason":"InvalidProviderToken"}"#),
            PushResult::Fatal { .. }
        ));
        assert_eq!(
            classify(403, br#"{"reason":"ExpiredProviderToken"}"#, None),
            Verdict::RenewToken
        );
        let after = Some(Duration::from_secs(2));
        assert_eq!(
            classify(429, br#"{"reason":"TooManyRequests"}"#, after),
            Verdict::Done(PushResult::Retry {
                http_status: Some(429),
                error: "APNs 429 TooManyRequests".into(),
                after
            })
        );
        assert!(matches!(
            done(503, r#"{"reason":"ServiceUnavailable"}"#),
            PushResult::Retry {
                http_status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            done(500, "garbage"),
            PushResult::Retry {
                http_status: Some(500),
                ..
            }
        ));
        assert!(matches!(
            done(413, r#"{"reason":"PayloadTooLarge"}"#),
            PushResult::Fatal { .. }
        ));
    }

    #[test]
    fn tokens_must_be_hex() {
        assert!(valid_token(&"ab".repeat(32)));
        assert!(!valid_token("fcm:token-like"));
        assert!(!valid_token("abc"));
        assert!(!valid_token(""));
    }
}
