//! Devices as stored: their keys, push target, status changes, rotation and migration
//! outcomes.

use std::fmt;

use pushauth_core::ids::{CardholderId, DeviceId};
use serde::Serialize;

use crate::model::{Millis, NewActivation};
use crate::states::*;

/// A device public key as stored: the JWK JSON and its RFC 7638 thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceKey {
    /// Public JWK, JSON text.
    pub jwk: String,
    /// RFC 7638 thumbprint.
    pub thumbprint: String,
}

/// Where to push.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PushTarget {
    /// APNs device token (hex) or FCM registration token.
    pub token: String,
    /// APNs environment (iOS only).
    pub environment: Option<PushEnvironment>,
}

impl fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.token.chars().take(8).collect();
        write!(f, "PushTarget({shown}…, {:?})", self.environment)
    }
}

/// A device to create at enrollment.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Id (chosen by the server).
    pub id: DeviceId,
    /// Platform.
    pub platform: Platform,
    /// User-visible name ("Anna's iPhone").
    pub label: Option<String>,
    /// Device key (ECDSA, no user presence): request proofs, declines.
    pub device_key: DeviceKey,
    /// Approval key (ECDSA, biometric per use): approval proofs, migration grants.
    pub approval_key: DeviceKey,
    /// ECDH key push payloads are encrypted to.
    pub agreement_key: DeviceKey,
    /// Push token, when the app has one.
    pub push: Option<PushTarget>,
    /// `kid` of the server key given to the device at enrollment (the key it pins and
    /// verifies challenges with).
    pub server_kid: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Owner.
    pub cardholder: CardholderId,
    /// Status.
    pub status: DeviceStatus,
    /// Platform.
    pub platform: Platform,
    /// Label.
    pub label: Option<String>,
    /// Device key (request proofs, declines). Column `signing_*`.
    pub device_key: DeviceKey,
    /// Approval key (approval proofs, migration grants). Devices enrolled under
    /// protocol v1 have approval key = device key until they rotate.
    pub approval_key: DeviceKey,
    /// Agreement key.
    pub agreement_key: DeviceKey,
    /// Push target; `None` when never given or declared dead by APNs/FCM.
    #[serde(skip)]
    pub push: Option<PushTarget>,
    /// Consecutive refused proofs.
    pub failures: i32,
    /// `kid` of the server key the device pinned at enrollment; `None` for devices
    /// enrolled before it was recorded (their key is found by enrollment time).
    pub server_kid: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// Result of consuming an activation code.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per enrollment; boxing buys nothing"
)]
pub enum EnrollOutcome {
    /// The device was created.
    Enrolled(Device),
    /// No such code.
    CodeUnknown,
    /// The code was used before.
    CodeUsed,
    /// The code expired.
    CodeExpired,
    /// The code's cardholder is blocked (read in the same transaction); the code
    /// stays unused and no device is created.
    CardholderBlocked,
}

/// Result of a write that only an active device may make (push token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceWrite {
    /// Written.
    Done,
    /// The device is locked or revoked (checked in the same transaction); nothing written.
    NotActive(DeviceStatus),
    /// No such device.
    NotFound,
}

/// Result of a key rotation (compare-and-swap on the current key of one use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The key was replaced.
    Rotated,
    /// The key of that use already is the new key (a retry): nothing written.
    AlreadyCurrent,
    /// The current key is neither the expected old key nor the new key.
    KeyChanged,
    /// The device is locked or revoked (checked in the same transaction); nothing written.
    NotActive(DeviceStatus),
    /// No such device.
    NotFound,
}

impl RotateOutcome {
    /// Why a rotation's conditional update (active device, current thumbprint = old)
    /// changed nothing, from the row read in the same transaction: the device is not
    /// active, or the key already is the new one (a retry), or it is another key.
    pub fn after_miss(status: DeviceStatus, current_thumbprint: &str, new: &DeviceKey) -> Self {
        if status != DeviceStatus::Active {
            RotateOutcome::NotActive(status)
        } else if current_thumbprint == new.thumbprint {
            RotateOutcome::AlreadyCurrent
        } else {
            RotateOutcome::KeyChanged
        }
    }
}

/// A verified migration grant to consume, and the activation code it produces.
#[derive(Debug, Clone)]
pub struct NewMigrationGrant {
    /// The granting device (its cardholder gets the code).
    pub device: DeviceId,
    /// The grant's one-time id.
    pub jti: String,
    /// The grant's expiry.
    pub expires_at: Millis,
    /// Now.
    pub at: Millis,
    /// The activation code to create (its `cardholder` must be the device's).
    pub activation: NewActivation,
}

/// Result of consuming a migration grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The grant was consumed and the activation code created.
    Issued,
    /// This grant (`jti`) was used before; nothing written.
    Reused,
    /// The device is locked or revoked; nothing written.
    NotActive(DeviceStatus),
    /// The device's cardholder is blocked (read in the same transaction); nothing
    /// written, the grant's `jti` is not consumed.
    CardholderBlocked,
    /// No such device, or the activation is for another cardholder.
    NotFound,
}

/// Result of recording a refused proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Consecutive failures after this one.
    pub failures: i32,
    /// Whether the device is locked now.
    pub locked: bool,
}

impl NewDevice {
    /// The record as it stands right after enrollment: active, no failures.
    pub fn into_enrolled(self, cardholder: CardholderId) -> Device {
        Device {
            id: self.id,
            cardholder,
            status: DeviceStatus::Active,
            platform: self.platform,
            label: self.label,
            device_key: self.device_key,
            approval_key: self.approval_key,
            agreement_key: self.agreement_key,
            push: self.push,
            failures: 0,
            server_kid: self.server_kid,
            created_at: self.created_at,
            updated_at: self.created_at,
        }
    }
}
