//! Activation codes, devices and device request nonces.

use pushauth_core::ids::{CardholderId, DeviceId};
use pushauth_store::*;

use crate::PgStore;
use crate::audit::append;
use crate::error::{classify, db, parse_enum};
use crate::rows::{DeviceRow, cardholder_id};
use sqlx::PgConnection;

pub(crate) async fn activation_create(
    s: &PgStore,
    new: NewActivation,
    audit: AuditDraft,
) -> StoreResult<()> {
    let (hash, cardholder) = (new.code_hash.to_hex(), new.cardholder.as_str());
    let mut tx = s.begin().await?;
    sqlx::query!(
        "INSERT INTO activations (code_hash, cardholder_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        hash,
        cardholder,
        new.expires_at.0,
        new.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "activation code exists", "cardholder"))?;
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)
}

/// Consumes the code with a conditional update (`used_at IS NULL`, not expired, the
/// code's cardholder active) and creates the device in the same transaction. A code
/// is valid up to and including its `expires_at`. The audit draft gets the cardholder
/// filled in when the caller left it empty (only the code knows it).
///
/// Authorisation at commit, as in `challenges::decide`: the code's cardholder row is
/// share-locked first (cardholder before device, the order every writer uses), so a
/// block committed before is seen by the conditional update and one that comes later
/// waits for this commit.
pub(crate) async fn enroll(
    s: &PgStore,
    code_hash: &KeyHash,
    now: Millis,
    device: NewDevice,
    mut audit: AuditDraft,
) -> StoreResult<EnrollOutcome> {
    let (hash, device_id) = (code_hash.to_hex(), device.id.as_str());
    let mut tx = s.begin().await?;
    let holder = sqlx::query_scalar!(
        "SELECT h.status FROM activations a JOIN cardholders h ON h.id = a.cardholder_id
         WHERE a.code_hash = $1 FOR SHARE OF h",
        hash
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    if holder.is_none() {
        return Ok(EnrollOutcome::CodeUnknown);
    }
    let consumed = sqlx::query_scalar!(
        "UPDATE activations SET used_at = $2, device_id = $3
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at >= $2
           AND EXISTS (SELECT 1 FROM cardholders
                       WHERE cardholders.id = activations.cardholder_id
                         AND cardholders.status = 'active')
         RETURNING cardholder_id",
        hash,
        now.0,
        device_id,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(cardholder) = consumed else {
        let code = sqlx::query!(
            "SELECT used_at, expires_at FROM activations WHERE code_hash = $1",
            hash
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        return Ok(match code {
            None => EnrollOutcome::CodeUnknown,
            Some(c) if c.used_at.is_some() => EnrollOutcome::CodeUsed,
            Some(c) if c.expires_at < now.0 => EnrollOutcome::CodeExpired,
            // a live code: the only condition left is its cardholder's (locked) status
            Some(_) => EnrollOutcome::CardholderBlocked,
        });
    };
    let cardholder = cardholder_id("activations.cardholder_id", &cardholder)?;
    let push_token = device.push.as_ref().map(|p| p.token.as_str());
    let push_env = device
        .push
        .as_ref()
        .and_then(|p| p.environment)
        .map(|e| e.as_str());
    sqlx::query!(
        "INSERT INTO devices (id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint,
                              approval_jwk, approval_thumbprint, agreement_jwk, agreement_thumbprint,
                              push_token, push_environment, failures, server_kid, created_at, updated_at)
         VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $14, $13, $13)",
        device_id,
        cardholder.as_str(),
        device.platform.as_str(),
        device.label,
        device.device_key.jwk,
        device.device_key.thumbprint,
        device.approval_key.jwk,
        device.approval_key.thumbprint,
        device.agreement_key.jwk,
        device.agreement_key.thumbprint,
        push_token,
        push_env,
        device.created_at.0,
        device.server_kid,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "device id exists", "cardholder"))?;
    if audit.cardholder.is_none() {
        audit.cardholder = Some(cardholder.clone());
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(EnrollOutcome::Enrolled(device.into_enrolled(cardholder)))
}

pub(crate) async fn get(s: &PgStore, id: &DeviceId) -> StoreResult<Option<Device>> {
    let id = id.as_str();
    let row = sqlx::query_as!(
        DeviceRow,
        "SELECT id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint, approval_jwk,
                approval_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment, failures,
                server_kid, created_at, updated_at
         FROM devices WHERE id = $1",
        id
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(DeviceRow::decode).transpose()
}

pub(crate) async fn list(s: &PgStore, cardholder: &CardholderId) -> StoreResult<Vec<Device>> {
    let mut conn = s.pool().acquire().await.map_err(db)?;
    list_in(&mut conn, cardholder.as_str()).await
}

/// The devices of `cardholder`, on the caller's connection.
pub(crate) async fn list_in(conn: &mut PgConnection, cardholder: &str) -> StoreResult<Vec<Device>> {
    let rows = sqlx::query_as!(
        DeviceRow,
        "SELECT id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint, approval_jwk,
                approval_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment, failures,
                server_kid, created_at, updated_at
         FROM devices WHERE cardholder_id = $1 ORDER BY created_at, id",
        cardholder
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.into_iter().map(DeviceRow::decode).collect()
}

/// Revoked is final: a revoked device keeps its status (false), except that revoking
/// it again is accepted. Unlocking (→ active) resets the failure counter.
pub(crate) async fn set_status(
    s: &PgStore,
    id: &DeviceId,
    status: DeviceStatus,
    audit: AuditDraft,
) -> StoreResult<bool> {
    let (id, status) = (id.as_str(), status.as_str());
    let mut tx = s.begin().await?;
    let done = sqlx::query!(
        "UPDATE devices
         SET status = $2, failures = CASE WHEN $2 = 'active' THEN 0 ELSE failures END, updated_at = $3
         WHERE id = $1 AND (status <> 'revoked' OR $2 = 'revoked')",
        id,
        status,
        audit.at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Only an active device may change its push token: the status is part of the
/// conditional update, so a lock or revocation committed first wins.
pub(crate) async fn set_push_token(
    s: &PgStore,
    id: &DeviceId,
    token: Option<PushTarget>,
    audit: AuditDraft,
) -> StoreResult<DeviceWrite> {
    let id_text = id.as_str();
    let push_token = token.as_ref().map(|p| p.token.as_str());
    let push_env = token
        .as_ref()
        .and_then(|p| p.environment)
        .map(|e| e.as_str());
    let mut tx = s.begin().await?;
    let done = sqlx::query!(
        "UPDATE devices SET push_token = $2, push_environment = $3, updated_at = $4
         WHERE id = $1 AND status = 'active'",
        id_text,
        push_token,
        push_env,
        audit.at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        let status = sqlx::query_scalar!("SELECT status FROM devices WHERE id = $1", id_text)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        return Ok(match status {
            None => DeviceWrite::NotFound,
            Some(st) => {
                DeviceWrite::NotActive(parse_enum("devices.status", &st, DeviceStatus::parse)?)
            }
        });
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(DeviceWrite::Done)
}

/// Clears the push target only while it still is `token`, so a token the app
/// re-registered in the meantime survives a late "dead token" report.
pub(crate) async fn push_token_dead(
    s: &PgStore,
    id: &DeviceId,
    token: &str,
    audit: AuditDraft,
) -> StoreResult<bool> {
    let id = id.as_str();
    let mut tx = s.begin().await?;
    let done = sqlx::query!(
        "UPDATE devices SET push_token = NULL, push_environment = NULL, updated_at = $3
         WHERE id = $1 AND push_token = $2",
        id,
        token,
        audit.at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Compare-and-swap on the thumbprint of the key of `key_use`, only for an active
/// device; a retry whose new key already is current writes nothing.
pub(crate) async fn rotate_key(
    s: &PgStore,
    id: &DeviceId,
    key_use: KeyUse,
    old: &str,
    new: DeviceKey,
    audit: AuditDraft,
) -> StoreResult<RotateOutcome> {
    let id_text = id.as_str();
    let mut tx = s.begin().await?;
    let done = match key_use {
        KeyUse::Device => sqlx::query!(
            "UPDATE devices SET signing_jwk = $3, signing_thumbprint = $4, updated_at = $5
             WHERE id = $1 AND signing_thumbprint = $2 AND status = 'active'",
            id_text,
            old,
            new.jwk,
            new.thumbprint,
            audit.at.0,
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?,
        KeyUse::Approval => sqlx::query!(
            "UPDATE devices SET approval_jwk = $3, approval_thumbprint = $4, updated_at = $5
             WHERE id = $1 AND approval_thumbprint = $2 AND status = 'active'",
            id_text,
            old,
            new.jwk,
            new.thumbprint,
            audit.at.0,
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?,
    };
    if done.rows_affected() == 1 {
        append(&mut tx, &audit).await?;
        tx.commit().await.map_err(db)?;
        return Ok(RotateOutcome::Rotated);
    }
    let current = sqlx::query!(
        "SELECT status, signing_thumbprint, approval_thumbprint FROM devices WHERE id = $1",
        id_text
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(current) = current else {
        return Ok(RotateOutcome::NotFound);
    };
    let status = parse_enum("devices.status", &current.status, DeviceStatus::parse)?;
    let thumbprint = match key_use {
        KeyUse::Device => current.signing_thumbprint,
        KeyUse::Approval => current.approval_thumbprint,
    };
    Ok(RotateOutcome::after_miss(status, &thumbprint, &new))
}

/// Consumes the grant's `jti` and creates the activation code, in one transaction,
/// only while the device is active and belongs to the activation's cardholder (the
/// device row is locked, so a concurrent revocation waits or wins), and that
/// cardholder is active (its row is share-locked first, cardholder before device, so
/// a concurrent block waits or wins).
pub(crate) async fn migration_grant(
    s: &PgStore,
    grant: NewMigrationGrant,
    audit: AuditDraft,
) -> StoreResult<GrantOutcome> {
    let id_text = grant.device.as_str();
    let mut tx = s.begin().await?;
    let holder = sqlx::query_scalar!(
        "SELECT h.status FROM devices d JOIN cardholders h ON h.id = d.cardholder_id
         WHERE d.id = $1 FOR SHARE OF h",
        id_text
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let device = sqlx::query!(
        "SELECT status, cardholder_id FROM devices WHERE id = $1 FOR UPDATE",
        id_text
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(device) = device else {
        return Ok(GrantOutcome::NotFound);
    };
    if device.cardholder_id != grant.activation.cardholder.as_str() {
        return Ok(GrantOutcome::NotFound);
    }
    let status = parse_enum("devices.status", &device.status, DeviceStatus::parse)?;
    if status != DeviceStatus::Active {
        return Ok(GrantOutcome::NotActive(status));
    }
    if holder.as_deref() != Some(CardholderStatus::Active.as_str()) {
        return Ok(GrantOutcome::CardholderBlocked);
    }
    let (hash, cardholder) = (
        grant.activation.code_hash.to_hex(),
        grant.activation.cardholder.as_str(),
    );
    sqlx::query!(
        "INSERT INTO activations (code_hash, cardholder_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        hash,
        cardholder,
        grant.activation.expires_at.0,
        grant.activation.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "activation code exists", "cardholder"))?;
    let inserted = sqlx::query!(
        "INSERT INTO migration_grants (device_id, jti, expires_at, used_at, code_hash)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id, jti) DO NOTHING",
        id_text,
        grant.jti,
        grant.expires_at.0,
        grant.at.0,
        hash,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if inserted.rows_affected() == 0 {
        // dropping the transaction rolls the activation back
        return Ok(GrantOutcome::Reused);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(GrantOutcome::Issued)
}

/// Increments the counter atomically and locks an active device once it reaches
/// `lock_after`. When this call is the one that locks the device, a second audit
/// entry `device.locked` (actor `system`) records the transition, since the caller
/// cannot know in advance that its failure will be the locking one.
pub(crate) async fn record_failure(
    s: &PgStore,
    id: &DeviceId,
    lock_after: i32,
    now: Millis,
    audit: AuditDraft,
) -> StoreResult<FailureOutcome> {
    let id_text = id.as_str();
    let mut tx = s.begin().await?;
    let Some(before) = sqlx::query!(
        "SELECT status, cardholder_id FROM devices WHERE id = $1 FOR UPDATE",
        id_text
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?
    else {
        return Err(StoreError::NotFound("device"));
    };
    let after = sqlx::query!(
        "UPDATE devices
         SET failures = failures + 1,
             status = CASE WHEN status = 'active' AND failures + 1 >= $2 THEN 'locked' ELSE status END,
             updated_at = $3
         WHERE id = $1
         RETURNING failures, status",
        id_text,
        lock_after,
        now.0,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let outcome = FailureOutcome {
        failures: after.failures,
        locked: after.status == DeviceStatus::Locked.as_str(),
    };
    append(&mut tx, &audit).await?;
    if outcome.locked && before.status == DeviceStatus::Active.as_str() {
        let cardholder = cardholder_id("devices.cardholder_id", &before.cardholder_id)?;
        let locked = AuditDraft::new(now, "system", "device.locked")
            .device(id)
            .cardholder(&cardholder)
            .details(serde_json::json!({ "failures": outcome.failures, "lock_after": lock_after }));
        append(&mut tx, &locked).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

pub(crate) async fn nonce_use(
    s: &PgStore,
    device: &DeviceId,
    jti: &str,
    expires_at: Millis,
) -> StoreResult<bool> {
    let device = device.as_str();
    let done = sqlx::query!(
        "INSERT INTO request_nonces (device_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (device_id, jti) DO NOTHING",
        device,
        jti,
        expires_at.0,
    )
    .execute(s.pool())
    .await
    .map_err(|e| classify(e, "request nonce", "device"))?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn nonce_purge(s: &PgStore, now: Millis) -> StoreResult<u64> {
    let done = sqlx::query!("DELETE FROM request_nonces WHERE expires_at < $1", now.0)
        .execute(s.pool())
        .await
        .map_err(db)?;
    Ok(done.rows_affected())
}
