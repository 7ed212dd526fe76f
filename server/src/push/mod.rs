//! Push notifications. Senders (APNs, FCM) implement [`PushSender`]; the outbox worker
//! calls them for `push` and `dismiss` rows. The payload never carries amount, payee
//! or OTP in clear: only the challenge id and the envelope of protocol §7.

use std::sync::Arc;
use std::time::Duration;

pub mod config;

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
pub fn push_data(challenge: &Challenge, device: &Device, kind: PushKind) -> Result<PushData, pushauth_core::Error> {
    let enc = match kind {
        PushKind::Dismiss => None,
        PushKind::Challenge => {
            let jwk: Jwk = serde_json::from_str(&device.agreement_key.jwk)
                .map_err(|_| pushauth_core::Error::InvalidPublicKey("stored agreement key is not a JWK"))?;
            let key = PublicKey::from_jwk(&jwk)?;
            let details = PushDetails {
                v: 1,
                challenge: challenge.id.clone(),
                txn: challenge.transaction(),
                exp: challenge.deadline.as_unix_time(),
                otp: None,
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
    /// Accepted by APNs/FCM.
    Sent {
        /// HTTP status.
        http_status: u16,
    },
    /// The token is dead (APNs 410 / BadDeviceToken, FCM UNREGISTERED): deactivate it.
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
    /// `apns` or `fcm`.
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
}

impl PushGateway {
    /// The sender for a device's platform, if configured.
    pub fn for_platform(&self, platform: Platform) -> Option<&Arc<dyn PushSender>> {
        match platform {
            Platform::Ios => self.apns.as_ref(),
            Platform::Android => self.fcm.as_ref(),
            Platform::Other => None,
        }
    }
    /// Whether a device can be pushed to.
    pub fn can_push(&self, device: &Device) -> bool {
        device.push.is_some() && self.for_platform(device.platform).is_some()
    }
}

/// Builds the push gateway from `[push]` configuration.
pub fn build_gateway(_config: &config::PushConfig) -> Result<PushGateway, String> {
    Ok(PushGateway::default())
}
