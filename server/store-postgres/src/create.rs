//! Challenge creation: the plain insert with duplicate collapse, and the planned
//! creation, which reads without a lock, plans, and writes in one checked call
//! (`pushauth_create_challenge_checked`, migration 0010), falling back to planning
//! again inside a transaction that holds the cardholder's row lock when what the plan
//! saw changed before the write.
//!
//! Why two paths: the locked transaction is nine round trips (begin, lock, look-ups,
//! devices, three inserts, commit), and on a small database server each costs more
//! than its statement (docs/benchmarks.md, fifth round: 0.62–0.76 ms of PostgreSQL CPU
//! per webhook against 0.28–0.33 ms for one call). The checked call keeps the locked
//! transaction's semantics: it writes only what the planner decided from the state it
//! compares under the same lock (status, pending count, device row versions, no
//! challenge for the reference), so the pending limit holds under concurrent webhooks.

use pushauth_core::ids::{CardholderId, Provider, ProviderRef};
use pushauth_store::decode::parse_enum;
use pushauth_store::*;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::PgStore;
use crate::audit::append;
use crate::challenges::{find_in, get_in};
use crate::devices::list_in;
use crate::error::{classify, db};
use crate::outbox::insert_rows;
use crate::rows::DeviceRow;

/// `INSERT … ON CONFLICT (provider, provider_ref) DO NOTHING`, then outbox rows and
/// audit; on conflict the existing challenge is returned and nothing is written.
pub(crate) async fn create(
    s: &PgStore,
    new: NewChallenge,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<CreateOutcome> {
    let mut tx = s.begin().await?;
    let (outcome, _) = insert_in(&mut tx, new, &outbox, &audit).await?;
    if let CreateOutcome::Created(c) = &outcome {
        tx.commit().await.map_err(db)?;
        s.committed(Some(&c.cardholder), wakes_workers(&outbox));
    }
    Ok(outcome)
}

/// What one creation looks up, named once for both paths.
struct Target<'a> {
    provider: Provider,
    reference: &'a ProviderRef,
    cardholder: &'a CardholderId,
    now: Millis,
}

/// What the unlocked read saw, for the planner and for the checked write.
enum Seen {
    Existing(String),
    NoCardholder,
    Context {
        context: CreateContext,
        /// The cardholder's status as stored.
        status: String,
        /// `pushauth_devices_seen`: each device row's id and version.
        devices: Option<String>,
    },
}

/// The planned creation: the unlocked read, the plan and the checked write; the locked
/// transaction when the checked write finds the state changed.
pub(crate) async fn create_planned(
    s: &PgStore,
    provider: Provider,
    reference: &ProviderRef,
    cardholder: &CardholderId,
    now: Millis,
    plan: Planner,
) -> StoreResult<PlannedOutcome> {
    let at = Target {
        provider,
        reference,
        cardholder,
        now,
    };
    let (context, status, devices) = match read(s, &at).await? {
        Seen::Existing(id) => {
            let mut conn = s.pool().acquire().await.map_err(db)?;
            return match get_in(&mut conn, &id).await? {
                Some(c) => Ok(PlannedOutcome::Duplicate(c)),
                // Challenges are never deleted; should one be, the locked path decides.
                None => create_locked(s, &at, &plan).await,
            };
        }
        Seen::NoCardholder => return Ok(PlannedOutcome::NoCardholder),
        Seen::Context {
            context,
            status,
            devices,
        } => (context, status, devices),
    };
    let (new, outbox, audit) = match plan(&context) {
        CreatePlan::Refuse(why) => return Ok(PlannedOutcome::Refused(why)),
        CreatePlan::Write { new, outbox, audit } => (new, outbox, audit),
    };
    new.check_planned(provider, reference, cardholder)?;
    let seen = Checked {
        context: &context,
        status: &status,
        devices: devices.as_deref(),
        now,
    };
    let Some(ids) = write_checked(s, &seen, &new, &outbox, &audit).await? else {
        tracing::debug!(%cardholder, "creation: state changed after the read, planning again under the lock");
        return create_locked(s, &at, &plan).await;
    };
    let upstream = upstream_status_for(&outbox);
    let challenge = new.into_created(upstream);
    s.committed(Some(&challenge.cardholder), wakes_workers(&outbox));
    Ok(PlannedOutcome::Created {
        outbox_rows: outbox.len(),
        claimed: claimed_items(outbox, &ids, challenge.created_at),
        challenge,
        devices: context.devices,
    })
}

/// The existing challenge of the reference, or the cardholder's status, pending count
/// and devices, in one statement (one snapshot), without a lock.
async fn read(s: &PgStore, at: &Target<'_>) -> StoreResult<Seen> {
    let row = sqlx::query!(
        r#"SELECT (SELECT x.id FROM challenges x WHERE x.provider = $1 AND x.provider_ref = $2) AS "existing?",
                  (SELECT h.status FROM cardholders h WHERE h.id = $3) AS "status?",
                  (SELECT count(*) FROM challenges x
                    WHERE x.cardholder_id = $3 AND x.status = 'pending' AND x.deadline + 0 > $4) AS "pending!",
                  pushauth_devices_seen($3) AS "devices_seen?",
                  (SELECT json_agg(d ORDER BY d.created_at, d.id)
                     FROM (SELECT id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint,
                                  approval_jwk, approval_thumbprint, agreement_jwk, agreement_thumbprint,
                                  push_token, push_environment, failures, server_kid, created_at, updated_at
                             FROM devices WHERE cardholder_id = $3) d) AS "devices?: Json<Vec<DeviceRow>>""#,
        at.provider.as_str(),
        at.reference.as_str(),
        at.cardholder.as_str(),
        at.now.0,
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)?;
    if let Some(existing) = row.existing {
        return Ok(Seen::Existing(existing));
    }
    let Some(status) = row.status else {
        return Ok(Seen::NoCardholder);
    };
    let devices = row.devices.map(|d| d.0).unwrap_or_default();
    Ok(Seen::Context {
        context: CreateContext {
            cardholder_status: parse_enum("cardholders.status", &status, CardholderStatus::parse)?,
            devices: devices
                .into_iter()
                .map(DeviceRow::decode)
                .collect::<StoreResult<_>>()?,
            pending: row.pending,
        },
        status,
        devices: row.devices_seen,
    })
}

/// What the checked write compares under the lock.
struct Checked<'a> {
    context: &'a CreateContext,
    status: &'a str,
    devices: Option<&'a str>,
    now: Millis,
}

/// The plan's writes if the state still is `seen` under the cardholder's lock: the
/// outbox ids in order, or `None` (nothing written) when it changed.
async fn write_checked(
    s: &PgStore,
    seen: &Checked<'_>,
    new: &NewChallenge,
    outbox: &[NewOutbox],
    audit: &AuditDraft,
) -> StoreResult<Option<Vec<OutboxId>>> {
    let rows = OutboxColumns::of(outbox);
    let event = issuer_event_for(audit)?;
    let details = crate::error::json_text(&audit.details)?;
    let ids = sqlx::query_scalar!(
        r#"SELECT pushauth_create_challenge_checked(
               $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
               $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36) AS "ids""#,
        new.cardholder.as_str(),
        seen.status,
        seen.context.pending,
        seen.devices,
        seen.now.0,
        new.id.as_str(),
        new.provider.as_str(),
        new.provider_ref.as_str(),
        new.kind.as_str(),
        new.amount.map(|m| m.minor()),
        new.amount.map(|m| m.currency().code()),
        new.payee.as_ref().map(|p| p.as_str()),
        new.nonce.as_str(),
        new.txn_digest.to_string(),
        new.deadline.0,
        new.upstream_deadline.0,
        new.processor_input.as_deref(),
        &new.context,
        upstream_status_for(outbox).as_str(),
        new.created_at.0,
        &rows.kind as &[&str],
        &rows.device as &[Option<&str>],
        &rows.payload as &[&serde_json::Value],
        &rows.next_attempt_at as &[i64],
        &rows.deadline as &[i64],
        &rows.leased_until as &[Option<i64>],
        audit.at.0,
        audit.actor,
        audit.action,
        audit.challenge.as_ref().map(|c| c.as_str()),
        audit.device.as_ref().map(|d| d.as_str()),
        audit.cardholder.as_ref().map(|c| c.as_str()),
        details,
        event.as_ref().map(|e| e.id.as_str()),
        event.as_ref().map(|e| e.event_type.as_str()),
        event.as_ref().map(|e| e.body.as_str()),
    )
    .fetch_one(s.pool())
    .await
    .map_err(|e| classify(e, "challenge id exists", "cardholder or device"))?;
    Ok(ids.map(|ids| ids.into_iter().map(OutboxId).collect()))
}

/// The outbox rows as one array per column, for the checked write.
struct OutboxColumns<'a> {
    kind: Vec<&'a str>,
    device: Vec<Option<&'a str>>,
    payload: Vec<&'a serde_json::Value>,
    next_attempt_at: Vec<i64>,
    deadline: Vec<i64>,
    leased_until: Vec<Option<i64>>,
}

impl<'a> OutboxColumns<'a> {
    fn of(rows: &'a [NewOutbox]) -> Self {
        Self {
            kind: rows.iter().map(|r| r.kind.as_str()).collect(),
            device: rows
                .iter()
                .map(|r| r.device.as_ref().map(|d| d.as_str()))
                .collect(),
            payload: rows.iter().map(|r| &r.payload).collect(),
            next_attempt_at: rows.iter().map(|r| r.not_before.0).collect(),
            deadline: rows.iter().map(|r| r.deadline.0).collect(),
            leased_until: rows.iter().map(|r| r.claimed_until.map(|m| m.0)).collect(),
        }
    }
}

/// The locked transaction: the cardholder's row (`FOR NO KEY UPDATE`: creations for one
/// cardholder queue, foreign-key checks of other writers do not), then the duplicate
/// check and pending count, the devices, the plan and the plan's writes.
async fn create_locked(
    s: &PgStore,
    at: &Target<'_>,
    plan: &Planner,
) -> StoreResult<PlannedOutcome> {
    let (provider, reference, cardholder, now) = (at.provider, at.reference, at.cardholder, at.now);
    let (provider_s, reference_s, cardholder_s) =
        (provider.as_str(), reference.as_str(), cardholder.as_str());
    let mut tx = s.begin().await?;
    let status = sqlx::query_scalar!(
        "SELECT status FROM cardholders WHERE id = $1 FOR NO KEY UPDATE",
        cardholder_s
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    // After the lock, so that the count includes every creation that held it before.
    let seen = sqlx::query!(
        r#"SELECT (SELECT id FROM challenges WHERE provider = $1 AND provider_ref = $2) AS "existing?",
                  (SELECT count(*) FROM challenges
                    WHERE cardholder_id = $3 AND status = 'pending' AND deadline + 0 > $4) AS "pending!""#,
        provider_s,
        reference_s,
        cardholder_s,
        now.0,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if let Some(existing) = seen.existing {
        let challenge = get_in(&mut tx, &existing).await?.ok_or_else(|| {
            StoreError::Backend("duplicate challenge vanished inside its transaction".into())
        })?;
        // End the transaction (and the cardholder's row lock) now, not on the
        // connection's next use.
        tx.rollback().await.map_err(db)?;
        return Ok(PlannedOutcome::Duplicate(challenge));
    }
    let Some(status) = status else {
        tx.rollback().await.map_err(db)?;
        return Ok(PlannedOutcome::NoCardholder);
    };
    let mut context = CreateContext {
        cardholder_status: parse_enum("cardholders.status", &status, CardholderStatus::parse)?,
        devices: list_in(&mut tx, cardholder_s).await?,
        pending: seen.pending,
    };
    let (new, outbox, audit) = match plan(&context) {
        CreatePlan::Refuse(why) => {
            tx.rollback().await.map_err(db)?;
            return Ok(PlannedOutcome::Refused(why));
        }
        CreatePlan::Write { new, outbox, audit } => (new, outbox, audit),
    };
    new.check_planned(provider, reference, cardholder)?;
    match insert_in(&mut tx, new, &outbox, &audit).await? {
        (CreateOutcome::Created(c), ids) => {
            tx.commit().await.map_err(db)?;
            s.committed(Some(&c.cardholder), wakes_workers(&outbox));
            let (outbox_rows, at) = (outbox.len(), c.created_at);
            Ok(PlannedOutcome::Created {
                challenge: c,
                outbox_rows,
                claimed: claimed_items(outbox, &ids, at),
                devices: std::mem::take(&mut context.devices),
            })
        }
        (CreateOutcome::Duplicate(c), _) => Ok(PlannedOutcome::Duplicate(c)),
    }
}

/// Inserts the challenge, its outbox rows (their ids are returned) and audit entry on
/// `tx`, or finds the existing challenge of the same (provider, reference). The caller
/// commits a creation and announces it.
async fn insert_in(
    tx: &mut PgConnection,
    new: NewChallenge,
    outbox: &[NewOutbox],
    audit: &AuditDraft,
) -> StoreResult<(CreateOutcome, Vec<OutboxId>)> {
    let (provider, provider_ref) = (new.provider.as_str(), new.provider_ref.as_str());
    let amount = new.amount.map(|m| m.minor());
    let currency = new.amount.map(|m| m.currency().code());
    let payee = new.payee.as_ref().map(|p| p.as_str());
    let digest = new.txn_digest.to_string();
    let upstream = upstream_status_for(outbox);
    let inserted = sqlx::query!(
        "INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee,
                                 nonce, txn_digest, deadline, upstream_deadline, processor_input, context,
                                 status, upstream_status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15, $16)
         ON CONFLICT (provider, provider_ref) DO NOTHING",
        new.id.as_str(),
        new.cardholder.as_str(),
        provider,
        provider_ref,
        new.kind.as_str(),
        amount,
        currency,
        payee,
        new.nonce.as_str(),
        digest,
        new.deadline.0,
        new.upstream_deadline.0,
        new.processor_input,
        new.context,
        upstream.as_str(),
        new.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "challenge id exists", "cardholder"))?;
    if inserted.rows_affected() == 0 {
        let existing = find_in(tx, provider, provider_ref).await?;
        let existing = existing.map(CreateOutcome::Duplicate).ok_or_else(|| {
            StoreError::Backend("challenge conflict without a conflicting row".into())
        })?;
        return Ok((existing, Vec::new()));
    }
    let ids = insert_rows(tx, outbox, new.created_at).await?;
    append(tx, audit).await?;
    Ok((CreateOutcome::Created(new.into_created(upstream)), ids))
}
