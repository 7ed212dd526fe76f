//! Paysafe's result leg: one SCA attempt per approval,
//! `POST {base}/sca/events/{eventId}/attempts` (Bearer + `Signature`), with the attempt
//! budget and retry rules described in [`super::paysafe`].

use async_trait::async_trait;
use pushauth_core::ids::Provider;
use pushauth_store::Challenge;
use serde::Deserialize;

use super::auth::PaysafeVerifier;
use super::common::{self, lenient_enum};
use super::config::{PaysafeConfig, check_base_url, require_secret, resolve_secret};
use super::paysafe_attempt::AttemptShape;
use crate::upstream::{Delivery, Job, Outcome, Resend, Upstream};

const PROVIDER: Provider = Provider::Paysafe;

lenient_enum! {
    /// Status of a submitted attempt.
    enum AttemptStatus {
        /// The attempt verified the user.
        Verified = ["VERIFIED"],
        /// The user rejected.
        Rejected = ["REJECTED"],
        /// Failed (see `statusReason`).
        Failed = ["FAILED"],
    }
}

/// The result leg: one attempt per approval.
#[derive(Debug)]
pub struct PaysafeUpstream {
    http: reqwest::Client,
    base: url::Url,
    path: String,
    attempt: AttemptShape,
    authorization: reqwest::header::HeaderValue,
    signer: PaysafeVerifier,
    allowable_attempts: i32,
}

impl PaysafeUpstream {
    /// Builds the connector from configuration.
    pub fn new(cfg: &PaysafeConfig, http: reqwest::Client) -> Result<Self, String> {
        let base = check_base_url("providers.paysafe.base_url", &cfg.base_url, cfg.allow_http)?;
        if !cfg.attempts_path.starts_with('/') || !cfg.attempts_path.contains("{eventId}") {
            return Err(
                "providers.paysafe.attempts_path must start with / and contain {eventId}".into(),
            );
        }
        let token = require_secret(
            &cfg.api_token,
            &cfg.api_token_file,
            "providers.paysafe.api_token",
        )?;
        let signing = match resolve_secret(
            &cfg.api_signing_key,
            &cfg.api_signing_key_file,
            "providers.paysafe.api_signing_key",
        )? {
            Some(k) => k,
            None => require_secret(
                &cfg.webhook_key,
                &cfg.webhook_key_file,
                "providers.paysafe.webhook_key",
            )?,
        };
        let signer = PaysafeVerifier::new(signing.expose())
            .map_err(|e| format!("providers.paysafe.api_signing_key: {e}"))?;
        Ok(PaysafeUpstream {
            http,
            base,
            path: cfg.attempts_path.clone(),
            attempt: AttemptShape::new(cfg)?,
            authorization: common::sensitive(&format!("Bearer {}", token.expose()))?,
            signer,
            allowable_attempts: match i32::try_from(cfg.allowable_attempts) {
                Ok(n) if n >= 1 => n,
                _ => return Err("providers.paysafe.allowable_attempts must be 1 or more".into()),
            },
        })
    }
}

#[derive(Debug, Deserialize)]
struct AttemptAnswer {
    #[serde(default)]
    status: Option<AttemptStatus>,
    #[serde(rename = "statusReason", default)]
    status_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[async_trait]
impl Upstream for PaysafeUpstream {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    /// Only an approval is submitted. A deny is not: Paysafe documents no way to
    /// say "the user refused" in OUTSOURCED mode, and the wallet operation stays
    /// blocked until the SCA process expires, which is what a deny means.
    fn wants(&self, _challenge: &Challenge, outcome: Outcome) -> bool {
        outcome == Outcome::Approved
    }

    fn resend(&self) -> Resend {
        Resend::Budgeted
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let c = job.challenge;
        let Some(body) = self.attempt.body(c) else {
            return Delivery::Fatal {
                http_status: None,
                error: "challenge has no walletOperationId or verification method".into(),
            };
        };
        let url =
            match common::join_url(&self.base, &self.path, "{eventId}", c.provider_ref.as_str()) {
                Ok(u) => u,
                Err(e) => {
                    return Delivery::Fatal {
                        http_status: None,
                        error: e,
                    };
                }
            };
        let Ok(bytes) = serde_json::to_vec(&body) else {
            return Delivery::Fatal {
                http_status: None,
                error: "cannot serialise the attempt".into(),
            };
        };
        // Every attempt that may have reached Paysafe used one of its attempts.
        let budget = self.allowable_attempts;
        if job.sent_before >= budget {
            return Delivery::Unknown {
                http_status: None,
                error: format!(
                    "Paysafe attempt budget used up ({} of {budget}) by calls whose answers were lost or errors; Paysafe offers no lookup of an event's attempts",
                    job.sent_before
                ),
            };
        }
        let signature = self.signer.sign(&bytes);
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Signature", signature)
            .body(bytes)
            .send()
            .await;
        classify_attempt(sent, job.sent_before + 1, budget).await
    }
}

/// What Paysafe's answer to an attempt means. `used`: attempts that may have counted,
/// this one included.
async fn classify_attempt(
    sent: Result<reqwest::Response, reqwest::Error>,
    used: i32,
    budget: i32,
) -> Delivery {
    let repeat = |http_status: Option<u16>, what: String, after| {
        if used < budget {
            Delivery::Retry {
                http_status,
                error: format!(
                    "{what}; resent within the attempt budget ({used} of {budget} used)"
                ),
                after,
            }
        } else {
            Delivery::Unknown {
                http_status,
                error: format!("{what}; attempt budget used up ({used} of {budget})"),
            }
        }
    };
    let resp = match sent {
        Ok(r) => r,
        // Nothing reached Paysafe: safe to try again, costs no attempt.
        Err(e) if e.is_connect() => {
            return Delivery::Retry {
                http_status: None,
                error: super::transport::failure(&e),
                after: None,
            };
        }
        // Timeout or reset after sending: the attempt may have counted (and verified).
        Err(e) => return repeat(None, crate::workers::transport_error(&e), None),
    };
    let status = resp.status().as_u16();
    let retry_after = crate::push::retry_after(resp.headers());
    let text = super::transport::answer_body(resp).await;
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<ErrorAnswer>(&text)
            .ok()
            .and_then(|e| e.error.code)
            .map(|c| match c {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        let summary = common::answer_summary(status, code.as_deref());
        // 5xx and 429: transient. Any other answer is Paysafe's decision.
        if status >= 500 || status == 429 {
            return repeat(Some(status), summary, retry_after);
        }
        return Delivery::Fatal {
            http_status: Some(status),
            error: format!("{summary}; not resent"),
        };
    }
    match serde_json::from_slice::<AttemptAnswer>(&text) {
        Ok(AttemptAnswer {
            status: Some(s @ (AttemptStatus::Failed | AttemptStatus::Rejected)),
            status_reason,
        }) => {
            let reason = status_reason.unwrap_or_default();
            Delivery::Fatal {
                http_status: Some(status),
                error: common::answer_summary(
                    status,
                    Some(&format!("attempt {} {reason}", s.as_str())),
                ),
            }
        }
        _ => Delivery::Delivered {
            http_status: status,
        },
    }
}
