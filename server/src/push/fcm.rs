//! FCM HTTP v1 client: `POST {base}/v1/projects/{project}/messages:send` with an OAuth2
//! bearer from the service account.
//!
//! Every message is a data message (no `notification` block): the app's
//! `FirebaseMessagingService.onMessageReceived` gets `cid`, `kind` and `enc`, decrypts
//! `enc` and posts its own notification (tag = challenge id); a `kind: dismiss`
//! message cancels it. `android.collapse_key` = challenge id, so a dismiss replaces a
//! challenge message FCM still holds for an offline phone.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::token::OAuthToken;
use super::{
    PushJob, PushKind, PushResult, PushSender, error_chain, expiry, retry_after, token_prefix,
};
use crate::state::now;

/// The FCM sender.
pub struct FcmSender {
    http: reqwest::Client,
    send_url: String,
    token: OAuthToken,
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("send_url", &self.send_url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What one FCM answer means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Final for this attempt.
    Done(PushResult),
    /// `401`: renew the access token and try again.
    RenewToken,
}

/// Maps an FCM answer (status, `{"error": {status, message, details[]}}`,
/// `Retry-After`) to a result.
pub(crate) fn classify(status: u16, body: &[u8], after: Option<Duration>) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Done(PushResult::Sent {
            http_status: status,
        });
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = &v["error"];
    let details = err["details"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let fcm_code = details
        .iter()
        .filter(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"))
        })
        .find_map(|d| d["errorCode"].as_str());
    let violations: Vec<&str> = details
        .iter()
        .flat_map(|d| d["fieldViolations"].as_array().into_iter().flatten())
        .filter_map(|f| f["field"].as_str())
        .collect();
    let about_token = err["message"]
        .as_str()
        .is_some_and(|m| m.to_ascii_lowercase().contains("token"));
    let code = fcm_code
        .or_else(|| err["status"].as_str())
        .unwrap_or_default();
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    let error = if code.is_empty() {
        format!("FCM {status}")
    } else {
        format!("FCM {status} {code}")
    };
    let dead = |reason: &str| PushResult::DeadToken {
        http_status: status,
        reason: reason.to_owned(),
    };
    let result = match status {
        401 => return Verdict::RenewToken,
        404 => dead(if code.is_empty() {
            "UNREGISTERED"
        } else {
            &code
        }),
        _ if code == "UNREGISTERED" => dead("UNREGISTERED"),
        // INVALID_ARGUMENT also covers our own mistakes (a bad TTL, a reserved data
        // key, a message too big): only a complaint about the token itself kills the
        // token, lest a bug of ours wipe every device's token. FCM names the token
        // either as a field violation on `message.token` or, with an FcmError detail
        // and no violation, in the message ("The registration token is not a valid
        // FCM registration token").
        400 if code == "INVALID_ARGUMENT"
            && (violations.contains(&"message.token")
                || (fcm_code.is_some() && violations.is_empty() && about_token)) =>
        {
            dead("INVALID_ARGUMENT")
        }
        429 | 500..=599 => PushResult::Retry {
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

impl FcmSender {
    /// A sender for `project` at `base`.
    pub fn new(http: reqwest::Client, base: &str, project: &str, token: OAuthToken) -> Self {
        FcmSender {
            http,
            send_url: format!("{base}/v1/projects/{project}/messages:send"),
            token,
        }
    }

    /// The request body for a job.
    pub(crate) fn message(job: &PushJob<'_>, token: &str, ttl_secs: i64) -> Value {
        let mut data = json!({ "cid": job.data.cid, "kind": job.data.kind });
        if let Some(enc) = &job.data.enc {
            data["enc"] = json!(enc);
        }
        let priority = match job.kind {
            PushKind::Challenge => "HIGH",
            PushKind::Dismiss => "NORMAL",
        };
        json!({
            "message": {
                "token": token,
                "data": data,
                "android": {
                    "priority": priority,
                    "ttl": format!("{ttl_secs}s"),
                    "collapse_key": job.data.cid,
                },
            }
        })
    }

    async fn attempt(&self, bearer: &str, body: &[u8]) -> Verdict {
        let req = self
            .http
            .post(&self.send_url)
            .bearer_auth(bearer)
            .header("content-type", "application/json")
            .body(body.to_vec());
        match req.send().await {
            Err(e) => Verdict::Done(PushResult::Retry {
                http_status: None,
                error: format!("FCM unreachable: {}", error_chain(&e)),
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
impl PushSender for FcmSender {
    fn service(&self) -> &'static str {
        "fcm"
    }

    async fn send(&self, job: PushJob<'_>) -> PushResult {
        let Some(target) = job.device.push.as_ref() else {
            return PushResult::Fatal {
                http_status: None,
                error: "device has no push token".into(),
            };
        };
        let Some(expires) = expiry(&job) else {
            return PushResult::Fatal {
                http_status: None,
                error: "deadline passed before sending".into(),
            };
        };
        // Whole seconds left, rounded up, at least 1 (0 would mean "now or never").
        let ttl = ((expires.0 - now().0 + 999) / 1000).max(1);
        let body = match serde_json::to_vec(&Self::message(&job, &target.token, ttl)) {
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
            Err(result) => return result,
        };
        let mut renewed = false;
        let result = loop {
            match self.attempt(&bearer, &body).await {
                Verdict::Done(result) => break result,
                Verdict::RenewToken if !renewed => {
                    renewed = true;
                    tracing::info!("FCM refused the access token: renewing it and sending again");
                    bearer = match self.token.renew(&bearer).await {
                        Ok(t) => t,
                        Err(result) => break result,
                    };
                }
                Verdict::RenewToken => {
                    break PushResult::Fatal {
                        http_status: Some(401),
                        error: "FCM 401 with a fresh access token: check the service account's permissions".into(),
                    };
                }
            }
        };
        let token = token_prefix(&target.token);
        match &result {
            PushResult::Sent { .. } => {
                tracing::debug!(challenge = %job.challenge.id, token, kind = job.data.kind, "FCM accepted")
            }
            PushResult::Fatal { error, .. } => {
                tracing::warn!(challenge = %job.challenge.id, token, error, "FCM refused")
            }
            other => tracing::info!(challenge = %job.challenge.id, token, result = ?other, "FCM"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(status: u16, body: Value) -> PushResult {
        match classify(status, body.to_string().as_bytes(), None) {
            Verdict::Done(r) => r,
            Verdict::RenewToken => panic!("renew"),
        }
    }

    fn fcm_error(code: &str, status: &str) -> Value {
        json!({"error": {"code": 0, "message": "The registration token is not a valid FCM registration token", "status": status, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        ]}})
    }

    #[test]
    fn answers_map_to_results() {
        assert_eq!(
            done(200, json!({"name": "projects/p/messages/1"})),
            PushResult::Sent { http_status: 200 }
        );
        assert_eq!(
            done(404, fcm_error("UNREGISTERED", "NOT_FOUND")),
            PushResult::DeadToken {
                http_status: 404,
                reason: "UNREGISTERED".into()
            }
        );
        assert_eq!(
            done(400, fcm_error("INVALID_ARGUMENT", "INVALID_ARGUMENT")),
            PushResult::DeadToken {
                http_status: 400,
                reason: "INVALID_ARGUMENT".into()
            }
        );
        // An FcmError INVALID_ARGUMENT that is not about the token.
        let too_big = json!({"error": {"code": 400, "message": "Message is too big", "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}
        ]}});
        assert!(matches!(
            done(400, too_big),
            PushResult::Fatal {
                http_status: Some(400),
                ..
            }
        ));
        // A bad field of ours is not a dead token.
        let bad_field = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.android.ttl"}]}
        ]}});
        assert!(matches!(
            done(400, bad_field),
            PushResult::Fatal {
                http_status: Some(400),
                ..
            }
        ));
        let bad_token = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.token"}]}
        ]}});
        assert!(matches!(done(400, bad_token), PushResult::DeadToken { .. }));
        assert_eq!(classify(401, b"{}", None), Verdict::RenewToken);
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            classify(
                429,
                fcm_error("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED")
                    .to_string()
                    .as_bytes(),
                after
            ),
            Verdict::Done(PushResult::Retry {
                http_status: Some(429),
                error: "FCM 429 QUOTA_EXCEEDED".into(),
                after
            })
        );
        assert!(matches!(
            done(503, fcm_error("UNAVAILABLE", "UNAVAILABLE")),
            PushResult::Retry {
                http_status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            done(403, fcm_error("SENDER_ID_MISMATCH", "PERMISSION_DENIED")),
            PushResult::Fatal { .. }
        ));
    }
}
