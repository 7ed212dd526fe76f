//! Device key life cycle after enrollment (protocol v2): rotation of the device key or
//! the approval key (§6.3) and migration grants to a new phone (§6.4). Handlers parse
//! and authenticate (request proof signed by the device key); these flows verify the
//! statements with the core and write through the store, which re-checks the device's
//! status in the same transaction.

use pushauth_core::key_statement::{self, Rotation, RotationExpectations};
use pushauth_core::keys::KeyUse;
use pushauth_core::migration::{self, GrantExpectations};
use pushauth_store::{
    AuditDraft, Device, DeviceKey, DeviceStatus, GrantOutcome, KeyHash, Millis, NewActivation,
    NewMigrationGrant, RotateOutcome,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::services::decisions::stored_key;
use crate::services::enrollment::{IssuedCode, deeplink, new_activation_code, normalize_code};
use crate::state::{AppState, now};

/// `POST /v1/device/key` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Which key rotates.
    #[serde(rename = "use")]
    pub key_use: KeyUse,
    /// The statement signed by the new key.
    pub statement: String,
    /// For `use` = `approval`: the same claims signed by the current approval key.
    #[serde(default)]
    pub endorsement: Option<String>,
}

/// The rotation answer (also for a retry of a rotation that already happened).
#[derive(Debug, Serialize)]
pub struct Rotated {
    /// The key use rotated.
    #[serde(rename = "use")]
    pub key_use: KeyUse,
    /// RFC 7638 thumbprint of the (now) current key of that use.
    pub kid: String,
}

fn not_active(status: DeviceStatus) -> ApiError {
    match status {
        DeviceStatus::Revoked => ApiError::unauthorized("unknown_device", "the device is revoked"),
        _ => ApiError::locked("the device is locked"),
    }
}

/// Rotates one of the device's keys (protocol §6.3).
pub async fn rotate(state: &AppState, device: &Device, body: RotateBody) -> ApiResult<Rotated> {
    let t = now();
    let other_use = match body.key_use {
        KeyUse::Device => KeyUse::Approval,
        KeyUse::Approval => KeyUse::Device,
    };
    let current = stored_key(device, body.key_use)?;
    let other = stored_key(device, other_use)?;
    let rotation = key_statement::verify_rotation(
        &body.statement,
        body.endorsement.as_deref(),
        &RotationExpectations {
            audience: &state.issuer,
            device: &device.id,
            key_use: body.key_use,
            current: &current,
            other: &other,
            now: t.as_unix_time(),
            window_secs: state.config.security.request_window_secs,
        },
    )
    .map_err(|e| ApiError::unprocessable(e.code(), format!("key statement refused: {e}")))?;
    let new_key = *rotation.key();
    let kid = new_key.thumbprint();
    let answer = Rotated {
        key_use: body.key_use,
        kid: kid.clone(),
    };
    if let Rotation::AlreadyCurrent(_) = rotation {
        // A retry after a lost answer: nothing to write, the same answer again, unless
        // the device was locked or revoked since.
        if device.status != DeviceStatus::Active {
            return Err(not_active(device.status));
        }
        return Ok(answer);
    }
    let jwk = serde_json::to_string(&new_key.to_jwk()).map_err(ApiError::internal)?;
    let audit = AuditDraft::new(t, format!("device:{}", device.id), "device.key_rotated")
        .device(&device.id)
        .cardholder(&device.cardholder)
        .details(serde_json::json!({
            "use": body.key_use,
            "old": current.thumbprint(),
            "new": kid,
            "endorsed": body.endorsement.is_some(),
        }));
    match state
        .store
        .device_rotate_key(
            &device.id,
            body.key_use,
            &current.thumbprint(),
            DeviceKey {
                jwk,
                thumbprint: kid.clone(),
            },
            audit,
        )
        .await?
    {
        RotateOutcome::Rotated | RotateOutcome::AlreadyCurrent => {
            tracing::info!(device = %device.id, key_use = %body.key_use, "device key rotated");
            Ok(answer)
        }
        RotateOutcome::KeyChanged => Err(ApiError::conflict(
            "key_changed",
            "the key changed concurrently",
        )),
        RotateOutcome::NotActive(status) => Err(not_active(status)),
        RotateOutcome::NotFound => Err(ApiError::not_found("device")),
    }
}

/// `POST /v1/device/migration` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationBody {
    /// The migration grant (`pushauth-migrate+jwt`) signed by the approval key.
    pub grant: String,
}

/// Turns a migration grant into a single-use activation code for the same cardholder
/// (protocol §6.4), valid until the grant's expiry at the latest.
pub async fn migrate(
    state: &AppState,
    device: &Device,
    body: MigrationBody,
) -> ApiResult<IssuedCode> {
    let t = now();
    let approval_key = stored_key(device, KeyUse::Approval)?;
    let grant = migration::verify_grant(
        &body.grant,
        &GrantExpectations {
            device: &device.id,
            approval_key: &approval_key,
            audience: &state.issuer,
            now: t.as_unix_time(),
            skew_secs: state.config.security.clock_skew_secs,
        },
    )
    .map_err(|e| ApiError::unprocessable(e.code(), format!("migration grant refused: {e}")))?;
    let grant_exp = Millis::from_unix_time(grant.exp);
    let expires_at = grant_exp.min(t.plus(state.config.security.activation_ttl_secs * 1000));
    let code = new_activation_code()?;
    let normalized = normalize_code(&code)
        .ok_or_else(|| ApiError::internal("generated code does not normalise"))?;
    let audit = AuditDraft::new(
        t,
        format!("device:{}", device.id),
        "device.migration_granted",
    )
    .device(&device.id)
    .cardholder(&device.cardholder)
    .details(serde_json::json!({ "expires_at": expires_at }));
    let outcome = state
        .store
        .device_migration_grant(
            NewMigrationGrant {
                device: device.id.clone(),
                jti: grant.jti,
                expires_at: grant_exp,
                at: t,
                activation: NewActivation {
                    code_hash: KeyHash::of(normalized.as_bytes()),
                    cardholder: device.cardholder.clone(),
                    expires_at,
                    created_at: t,
                },
            },
            audit,
        )
        .await?;
    match outcome {
        GrantOutcome::Issued => {
            tracing::info!(device = %device.id, "migration code issued");
            Ok(IssuedCode {
                deeplink: deeplink(state, &code),
                code,
                expires_at,
                qr_svg: None,
            })
        }
        GrantOutcome::Reused => Err(ApiError::conflict(
            "grant_reused",
            "this migration grant was already used",
        )),
        GrantOutcome::NotActive(status) => Err(not_active(status)),
        GrantOutcome::CardholderBlocked => Err(ApiError::cardholder_blocked()),
        GrantOutcome::NotFound => Err(ApiError::not_found("device")),
    }
}
