//! Push notifications. Senders (APNs, FCM, Web Push) implement [`PushSender`]; the
//! outbox worker calls them for `push` and `dismiss` rows. The payload never carries
//! amount, payee or OTP in clear: only the challenge id and the envelope of protocol §7.
//!
//! [`apns`] and [`fcm`] are small clients on reqwest with configurable base URLs (the
//! `a2` and `fcm` crates cannot serve: see `docs/push.md`); [`token`] holds their
//! cached credentials. [`webpush`] posts RFC 8291-encrypted messages to the endpoints
//! of Web Push subscriptions with [`vapid`] tokens, within the [`endpoint`] policy
//! (SSRF guard). [`build_gateway`] reads the keys at start.

use std::sync::Arc;
use std::time::Duration;

pub mod apns;
pub mod config;
pub mod endpoint;
pub mod fcm;
pub mod token;
pub mod vapid;
pub mod webpush;

use async_trait::async_trait;
use pushauth_core::keys::{Jwk, PublicKey};
use pushauth_core::push::PushDetails;
use pushauth_store::{Challenge, Device, Platform};
use serde::Serialize;

/// Why a push is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// A new challenge: alert the user.
    Challenge,
    /// The challenge was answered elsewhere or closed: remove the prompt silently.
    Dismiss,
}

/// The data part of every push (protocol §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushData {
    /// Challenge id.
    pub cid: String,
    /// `challenge` or `dismiss`.
    pub kind: &'static str,
    /// Encrypted details (challenge pushes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
}

/// Builds the push data for a device: the challenge details encrypted to the device's
/// agreement key.
pub fn push_data(
    challenge: &Challenge,
    device: &Device,
    kind: PushKind,
) -> Result<PushData, pushauth_core::Error> {
    let enc = match kind {
        PushKind::Dismiss => None,
        PushKind::Challenge => {
            let jwk: Jwk = serde_json::from_str(&device.agreement_key.jwk).map_err(|_| {
                pushauth_core::Error::InvalidPublicKey("stored agreement key is not a JWK")
            })?;
            let key = PublicKey::from_jwk(&jwk)?;
            let details = PushDetails {
                v: 1,
                challenge: challenge.id.clone(),
                // Never a transaction other than the one created (see bound_transaction).
                txn: challenge
                    .bound_transaction()
                    .ok_or(pushauth_core::Error::MalformedClaims(
                        "stored transaction does not match its digest",
                    ))?
                    .received(),
                exp: challenge.deadline.as_unix_time(),
                // Paysafe OUTSOURCED: the processor's one-time code, only ever inside this envelope.
                otp: crate::providers::push_otp(challenge),
            };
            Some(details.seal(&key)?)
        }
    };
    Ok(PushData {
        cid: challenge.id.to_string(),
        kind: match kind {
            PushKind::Challenge => "challenge",
            PushKind::Dismiss => "dismiss",
        },
        enc,
    })
}

/// One push to send.
#[derive(Debug)]
pub struct PushJob<'a> {
    /// Target device (has a push target).
    pub device: &'a Device,
    /// The challenge.
    pub challenge: &'a Challenge,
    /// Why.
    pub kind: PushKind,
    /// The data to carry.
    pub data: &'a PushData,
}

/// Result of one push attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Accepted by the push service.
    Sent {
        /// HTTP status.
        http_status: u16,
    },
    /// The token is dead (APNs 410 / BadDeviceToken, FCM UNREGISTERED, Web Push
    /// 404/410): deactivate it.
    DeadToken {
        /// HTTP status.
        http_status: u16,
        /// The service's reason.
        reason: String,
    },
    /// Retry later.
    Retry {
        /// HTTP status, if any.
        http_status: Option<u16>,
        /// Why.
        error: String,
        /// Requested delay.
        after: Option<Duration>,
    },
    /// Give up.
    Fatal {
        /// HTTP status, if any.
        http_status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// A push service client.
#[async_trait]
pub trait PushSender: Send + Sync + std::fmt::Debug {
    /// `apns`, `fcm` or `webpush`.
    fn service(&self) -> &'static str;
    /// Sends one push.
    async fn send(&self, job: PushJob<'_>) -> PushResult;
}

/// The configured push services.
#[derive(Debug, Default, Clone)]
pub struct PushGateway {
    /// APNs, for iOS devices.
    pub apns: Option<Arc<dyn PushSender>>,
    /// FCM, for Android devices.
    pub fcm: Option<Arc<dyn PushSender>>,
    /// Web Push, for `webpush` devices.
    pub webpush: Option<Arc<dyn PushSender>>,
    /// Which Web Push endpoints may be registered (`[push.webpush]`; checked whether
    /// or not Web Push is enabled).
    pub endpoints: endpoint::EndpointPolicy,
}

impl PushGateway {
    /// The sender for a device's platform, if configured.
    pub fn for_platform(&self, platform: Platform) -> Option<&Arc<dyn PushSender>> {
        match platform {
            Platform::Ios => self.apns.as_ref(),
            Platform::Android => self.fcm.as_ref(),
            Platform::WebPush => self.webpush.as_ref(),
            Platform::Other => None,
        }
    }
    /// Whether a device can be pushed to.
    pub fn can_push(&self, device: &Device) -> bool {
        device.push.is_some() && self.for_platform(device.platform).is_some()
    }
}

/// Builds the push gateway from `[push]` configuration: a service is enabled when its
/// keys are all set; its key file is read and proven usable now, so a wrong path or
/// key fails the start with the key named rather than the first push.
pub fn build_gateway(config: &config::PushConfig) -> Result<PushGateway, String> {
    if config.request_timeout_ms == 0 {
        return Err("push.request_timeout_ms must be positive".into());
    }
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let mut gateway = PushGateway {
        endpoints: endpoint::EndpointPolicy::from_config(&config.webpush)?,
        ..PushGateway::default()
    };
    if let Some(s) = config.apns()? {
        let pem = read_secret("apns_key_file", &s.key_file)?;
        let token = token::ProviderToken::new(
            &pem,
            &s.key_id,
            &s.team_id,
            Duration::from_secs(s.refresh_secs),
        )
        .map_err(|e| format!("push.apns_key_file {}: {e}", s.key_file.display()))?;
        for url in [&s.production, &s.sandbox] {
            if url.starts_with("http://") {
                tracing::warn!(url = %url, "APNs endpoint without TLS (cleartext HTTP/2): for tests against a mock only");
            }
        }
        let alert = apns::Alert {
            title: config.apns_alert_title.clone(),
            body: config.apns_alert_body.clone(),
            title_loc_key: config.apns_alert_title_loc_key.clone(),
            loc_key: config.apns_alert_loc_key.clone(),
        };
        tracing::info!(topic = %s.topic, key_id = %s.key_id, production = %s.production, sandbox = %s.sandbox, "APNs enabled");
        let sender = apns::ApnsSender::new(
            apns::ApnsSender::client(timeout)?,
            s.production,
            s.sandbox,
            s.topic,
            token,
            alert,
        );
        gateway.apns = Some(Arc::new(sender));
    }
    if let Some(s) = config.fcm()? {
        let file = s.service_account_file.display();
        let text = read_secret("fcm_service_account_file", &s.service_account_file)?;
        let account: token::ServiceAccount = serde_json::from_slice(&text).map_err(|e| {
            format!("push.fcm_service_account_file {file}: not a service-account key file: {e}")
        })?;
        let project = match s.project_id.or_else(|| account.project_id.clone()) {
            Some(p) if config::valid_project_id(&p) => p,
            Some(_) => {
                return Err(format!(
                    "push.fcm_service_account_file {file}: project_id is not a project id"
                ));
            }
            None => {
                return Err(format!(
                    "push.fcm_project_id is required: {file} has no project_id"
                ));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("FCM HTTP client: {e}"))?;
        let token = token::OAuthToken::new(http.clone(), &account)
            .map_err(|e| format!("push.fcm_service_account_file {file}: {e}"))?;
        if s.base_url.starts_with("http://") {
            tracing::warn!(url = %s.base_url, "FCM endpoint without TLS: for tests against a mock only");
        }
        tracing::info!(project = %project, base = %s.base_url, "FCM enabled");
        gateway.fcm = Some(Arc::new(fcm::FcmSender::new(
            http,
            &s.base_url,
            &project,
            token,
        )));
    }
    if let Some(s) = config.webpush.settings()? {
        let file = s.vapid_key_file.display();
        let text = read_secret("webpush.vapid_key_file", &s.vapid_key_file)?;
        let key = vapid::parse_key(&text)
            .map_err(|e| format!("push.webpush.vapid_key_file {file}: {e}"))?;
        let vapid = vapid::Vapid::new(key, &s.subject)
            .map_err(|e| format!("push.webpush.vapid_key_file {file}: {e}"))?;
        if config.webpush.allow_http || config.webpush.allow_private_addresses {
            tracing::warn!(
                "push.webpush allows http or private endpoints: for tests against a mock only"
            );
        }
        tracing::info!(vapid_public_key = %vapid.public_key(), subject = %s.subject, allowed_hosts = ?config.webpush.allowed_hosts, "Web Push enabled");
        let http = webpush::WebPushSender::client(timeout, &gateway.endpoints)?;
        gateway.webpush = Some(Arc::new(webpush::WebPushSender::new(
            http,
            vapid,
            gateway.endpoints.clone(),
        )));
    }
    if gateway.apns.is_none() && gateway.fcm.is_none() && gateway.webpush.is_none() {
        tracing::info!(
            "no push service configured: apps find challenges by polling or the event stream"
        );
    }
    Ok(gateway)
}

fn read_secret(key: &str, path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("push.{key}: cannot read {}: {e}", path.display()))
}

/// When a push stops being worth delivering: the challenge deadline for a challenge
/// push (`None` once passed), for a dismiss the later of the deadline and one minute
/// from now (the prompt may still be on screen after the deadline).
pub(crate) fn expiry(job: &PushJob<'_>) -> Option<pushauth_store::Millis> {
    let now = crate::state::now();
    match job.kind {
        PushKind::Challenge => (job.challenge.deadline > now).then_some(job.challenge.deadline),
        PushKind::Dismiss => Some(job.challenge.deadline.max(now.plus(60_000))),
    }
}

/// The first 8 characters of a device token: all that may be logged.
pub(crate) fn token_prefix(token: &str) -> &str {
    token
        .char_indices()
        .nth(8)
        .map_or(token, |(i, _)| &token[..i])
}

/// A reqwest error without its URL (an APNs URL holds the device token).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Retry-After`: delta-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_value(headers.get(reqwest::header::RETRY_AFTER)?)
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds (at most a day) or an
/// HTTP-date (a date in the past: no wait).
pub(crate) fn retry_after_value(value: &reqwest::header::HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = http_date(value)?;
    let now = crate::state::now().0 / 1000;
    Some(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)))
}

/// Parses an IMF-fixdate to Unix seconds.
fn http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)?).ok()? + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sat, 29 Feb 2020 12:00:00 GMT"),
            Some(1_582_977_600)
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn token_prefix_is_short() {
        assert_eq!(token_prefix("0123456789abcdef"), "01234567");
        assert_eq!(token_prefix("abc"), "abc");
    }

    #[test]
    fn gateway_errors_name_the_key() {
        let e = build_gateway(&config::PushConfig {
            apns_key_file: Some("/nonexistent/AuthKey.p8".into()),
            apns_key_id: Some("KEY1234567".into()),
            apns_team_id: Some("TEAM123456".into()),
            apns_topic: Some("com.example.bank".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("push.apns_key_file") && e.contains("cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.p8");
        std::fs::write(
            &f,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = build_gateway(&config::PushConfig {
            apns_key_file: Some(f.clone()),
            apns_key_id: Some("KEY1234567".into()),
            apns_team_id: Some("TEAM123456".into()),
            apns_topic: Some("com.example.bank".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("push.apns_key_file") && e.contains("not a PKCS#8"),
            "{e}"
        );
        std::fs::write(&f, "{\"type\": \"service_account\"}").unwrap();
        let e = build_gateway(&config::PushConfig {
            fcm_service_account_file: Some(f),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("push.fcm_service_account_file") && e.contains("private_key"),
            "{e}"
        );
        assert!(
            build_gateway(&config::PushConfig::default())
                .unwrap()
                .apns
                .is_none()
        );
    }
}
