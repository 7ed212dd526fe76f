//! Web Push sender (RFC 8030): `POST <subscription endpoint>` with the push data
//! encrypted to the subscription (RFC 8291 `aes128gcm`) and a VAPID token (RFC 8292)
//! for the endpoint's origin.
//!
//! - Body: the same push data APNs and FCM carry, `{"cid","kind","enc"?}`, as JSON,
//!   encrypted; the push service sees only ciphertext, the endpoint and the timing.
//! - `TTL`: seconds to the challenge deadline (dismiss: to the later of the deadline
//!   and now + 60 s). `Urgency: high` for a challenge, `normal` for a dismiss.
//! - `Topic`: the same for a challenge's push and its dismiss to one subscription, so a
//!   dismiss replaces a challenge push the service still holds for an offline device;
//!   an HMAC of the challenge id under the subscription's `auth` secret, so the push
//!   service can neither learn the challenge id nor link two subscriptions.
//!
//! Answers: 2xx sent; 404/410 dead subscription; 429/5xx retry (honouring
//! `Retry-After`); 401/403 (VAPID refused) renew the token once and send again;
//! anything else fatal. Endpoints pass the [`EndpointPolicy`] before every send and the
//! client resolves names through [`PublicResolver`]; redirects are not followed.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use pushauth_core::b64;
use pushauth_core::webpush::{self, Subscription};

use super::endpoint::{EndpointPolicy, PublicResolver};
use super::vapid::Vapid;
use super::{PushJob, PushKind, PushResult, PushSender, error_chain, expiry, retry_after};
use crate::state::now;

/// The Web Push sender.
pub struct WebPushSender {
    http: reqwest::Client,
    vapid: Vapid,
    policy: EndpointPolicy,
}

impl fmt::Debug for WebPushSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPushSender")
            .field("vapid", &self.vapid)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What one push service answer means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Final for this attempt.
    Done(PushResult),
    /// 401/403: the VAPID token was refused; renew it and try again.
    RenewToken(u16),
}

/// Maps a push service answer to a result.
pub(crate) fn classify(status: u16, after: Option<Duration>) -> Verdict {
    let result = match status {
        200..=299 => PushResult::Sent {
            http_status: status,
        },
        404 | 410 => PushResult::DeadToken {
            http_status: status,
            reason: if status == 410 { "Gone" } else { "NotFound" }.into(),
        },
        401 | 403 => return Verdict::RenewToken(status),
        429 | 500..=599 => PushResult::Retry {
            http_status: Some(status),
            error: format!("Web Push {status}"),
            after,
        },
        413 => PushResult::Fatal {
            http_status: Some(status),
            error: "Web Push 413: payload too large".into(),
        },
        _ => PushResult::Fatal {
            http_status: Some(status),
            error: format!("Web Push {status}"),
        },
    };
    Verdict::Done(result)
}

/// `Topic` for a challenge and subscription: 24 bytes of HMAC-SHA256(auth,
/// "pushauth-topic:" ‖ challenge id), base64url (32 characters, RFC 8030 §5.4).
pub(crate) fn topic(subscription: &Subscription, challenge: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, subscription.auth());
    let tag = ring::hmac::sign(&key, format!("pushauth-topic:{challenge}").as_bytes());
    b64::encode(&tag.as_ref()[..24])
}

impl WebPushSender {
    /// A sender with `http` (see [`WebPushSender::client`]).
    pub fn new(http: reqwest::Client, vapid: Vapid, policy: EndpointPolicy) -> Self {
        WebPushSender {
            http,
            vapid,
            policy,
        }
    }

    /// The HTTP client: HTTP/1.1 or HTTP/2 (ALPN), names resolved to public addresses
    /// only (unless the policy allows private ones), no redirects.
    pub fn client(timeout: Duration, policy: &EndpointPolicy) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(PublicResolver {
                allow_private: policy.allows_private(),
            })
            .build()
            .map_err(|e| format!("Web Push HTTP client: {e}"))
    }

    /// The VAPID public key (for apps and distributors).
    pub fn vapid_public_key(&self) -> &str {
        self.vapid.public_key()
    }

    async fn attempt(
        &self,
        url: &url::Url,
        authorization: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Verdict {
        let mut req = self
            .http
            .post(url.clone())
            .header("authorization", authorization)
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        match req.send().await {
            Err(e) => Verdict::Done(PushResult::Retry {
                http_status: None,
                error: format!("Web Push service unreachable: {}", error_chain(&e)),
                after: None,
            }),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                classify(status, after)
            }
        }
    }
}

fn fatal(error: impl Into<String>) -> PushResult {
    PushResult::Fatal {
        http_status: None,
        error: error.into(),
    }
}

#[async_trait]
impl PushSender for WebPushSender {
    fn service(&self) -> &'static str {
        "webpush"
    }

    async fn send(&self, job: PushJob<'_>) -> PushResult {
        let Some(target) = job.device.push.as_ref() else {
            return fatal("device has no push token");
        };
        let subscription = match Subscription::parse(&target.token) {
            Ok(s) => s,
            Err(e) => return fatal(format!("push token: {e}")),
        };
        // Checked again at every send: the policy may be stricter than at registration.
        let url = match self.policy.check(subscription.endpoint()) {
            Ok(u) => u,
            Err(e) => return fatal(format!("not sent: {e}")),
        };
        let origin = url.origin().ascii_serialization();
        let Some(expires) = expiry(&job) else {
            return fatal("deadline passed before sending");
        };
        let ttl = ((expires.0 - now().0 + 999) / 1000).max(1);
        let plaintext = match serde_json::to_vec(job.data) {
            Ok(p) => p,
            Err(e) => return fatal(format!("payload: {e}")),
        };
        let body = match webpush::encrypt(&subscription, &plaintext) {
            Ok(b) => b,
            Err(e) => return fatal(format!("payload: {e}")),
        };
        let urgency = match job.kind {
            PushKind::Challenge => "high",
            PushKind::Dismiss => "normal",
        };
        let headers = [
            ("ttl", ttl.to_string()),
            ("urgency", urgency.to_owned()),
            ("topic", topic(&subscription, &job.data.cid)),
            ("content-encoding", "aes128gcm".to_owned()),
            ("content-type", "application/octet-stream".to_owned()),
        ];
        let (mut authorization, mut token) = match self.vapid.authorization(&origin).await {
            Ok(a) => a,
            Err(e) => return fatal(e),
        };
        let mut renewed = false;
        let result = loop {
            match self.attempt(&url, &authorization, &headers, &body).await {
                Verdict::Done(result) => break result,
                Verdict::RenewToken(_) if !renewed => {
                    renewed = true;
                    tracing::info!(origin = %origin, "Web Push service refused the VAPID token: renewing it and sending again");
                    (authorization, token) = match self.vapid.renew(&origin, &token).await {
                        Ok(a) => a,
                        Err(e) => break fatal(e),
                    };
                }
                Verdict::RenewToken(status) => {
                    break PushResult::Fatal {
                        http_status: Some(status),
                        error: format!(
                            "Web Push {status}: VAPID token refused after renewal (check push.webpush.vapid_key_file: the subscription may belong to another application server key)"
                        ),
                    };
                }
            }
        };
        match &result {
            PushResult::Sent { .. } => {
                tracing::debug!(challenge = %job.challenge.id, origin = %origin, kind = job.data.kind, "Web Push accepted")
            }
            PushResult::Fatal { error, .. } => {
                tracing::warn!(challenge = %job.challenge.id, origin = %origin, error, "Web Push refused")
            }
            other => {
                tracing::info!(challenge = %job.challenge.id, origin = %origin, result = ?other, "Web Push")
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::keys::{KeyAgreement as _, SoftwareAgreementKey};

    #[test]
    fn answers_map_to_results() {
        assert_eq!(
            classify(201, None),
            Verdict::Done(PushResult::Sent { http_status: 201 })
        );
        assert_eq!(
            classify(410, None),
            Verdict::Done(PushResult::DeadToken {
                http_status: 410,
                reason: "Gone".into()
            })
        );
        assert!(matches!(
            classify(404, None),
            Verdict::Done(PushResult::DeadToken { .. })
        ));
        let after = Some(Duration::from_secs(9));
        assert_eq!(
            classify(429, after),
            Verdict::Done(PushResult::Retry {
                http_status: Some(429),
                error: "Web Push 429".into(),
                after
            })
        );
        assert!(matches!(
            classify(503, None),
            Verdict::Done(PushResult::Retry { .. })
        ));
        assert_eq!(classify(401, None), Verdict::RenewToken(401));
        assert_eq!(classify(403, None), Verdict::RenewToken(403));
        for status in [400, 413, 301] {
            assert!(matches!(
                classify(status, None),
                Verdict::Done(PushResult::Fatal { .. })
            ));
        }
    }

    #[test]
    fn topic_is_short_stable_and_per_subscription() {
        let sub = |auth: [u8; 16]| {
            let key = SoftwareAgreementKey::generate().unwrap();
            Subscription::new("https://push.example/x", key.public_key().unwrap(), auth).unwrap()
        };
        let (a, b) = (sub([1; 16]), sub([2; 16]));
        let t = topic(&a, "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88");
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(t, topic(&a, "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"));
        assert_ne!(t, topic(&b, "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"));
        assert_ne!(t, topic(&a, "1b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"));
        assert!(!t.contains("0b8f6a3e"));
    }
}
