//! Challenges and decisions: creation with duplicate collapse, first-decision-wins,
//! closing, and the listings the device API, the expiry sweeper and the admin API use.
//!
//! The state changes are conditional updates (`… WHERE status = 'pending' AND …`):
//! the row count says whether this call won, and a losing call writes nothing.

use pushauth_core::ids::{CardholderId, ChallengeId, Provider, ProviderRef};
use pushauth_store::decode::parse_enum;
use pushauth_store::*;
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::audit::append;
use crate::direct;
use crate::error::{db, json_text};
use crate::rows::{ChallengeRow, DecisionRow, cardholder_id, challenge_id};

/// Largest page a listing returns.
const MAX_PAGE: i64 = 500;

async fn get_in(conn: &mut SqliteConnection, id: &str) -> StoreResult<Option<Challenge>> {
    let row = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE id = ?1",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(ChallengeRow::decode).transpose()
}

async fn find_in(
    conn: &mut SqliteConnection,
    provider: &str,
    provider_ref: &str,
) -> StoreResult<Option<Challenge>> {
    let row = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE provider = ?1 AND provider_ref = ?2",
        provider,
        provider_ref
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(ChallengeRow::decode).transpose()
}

/// `INSERT … ON CONFLICT (provider, provider_ref) DO NOTHING`, then outbox rows and
/// audit; on conflict the existing challenge is returned and nothing is written.
pub(crate) async fn create(
    s: &SqliteStore,
    new: NewChallenge,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<CreateOutcome> {
    let (provider, provider_ref) = (new.provider, new.provider_ref.clone());
    let upstream = upstream_status_for(&outbox);
    let created = direct::write(s, |tx| {
        if !tx.insert_challenge(&new, upstream)? {
            return Ok(None);
        }
        tx.insert_outbox(&outbox, new.created_at)?;
        tx.append(&audit)?;
        Ok(Some(new.into_created(upstream)))
    })
    .await?;
    match created {
        Some(challenge) => {
            created_events(s, &challenge, &outbox);
            Ok(CreateOutcome::Created(challenge))
        }
        None => find(s, provider, &provider_ref)
            .await?
            .map(CreateOutcome::Duplicate)
            .ok_or_else(|| {
                StoreError::Backend("challenge conflict without a conflicting row".into())
            }),
    }
}

fn created_events(s: &SqliteStore, challenge: &Challenge, outbox: &[NewOutbox]) {
    s.emit(StoreEvent::Challenge {
        cardholder: challenge.cardholder.clone(),
    });
    if wakes_workers(outbox) {
        s.emit(StoreEvent::OutboxReady);
    }
}

/// The duplicate check, the cardholder's status and pending count and its devices,
/// the plan, then the plan's writes: all in one write transaction, on the direct
/// path (see the `direct` module).
pub(crate) async fn create_planned(
    s: &SqliteStore,
    provider: Provider,
    reference: &ProviderRef,
    cardholder: &CardholderId,
    now: Millis,
    plan: Planner,
) -> StoreResult<PlannedOutcome> {
    enum Done {
        Created(Challenge, Vec<NewOutbox>, Vec<OutboxId>, Vec<Device>),
        Existing(String),
        Other(PlannedOutcome),
    }
    let done = direct::write(s, |tx| {
        let (existing, status, pending) = tx.lookup(
            provider.as_str(),
            reference.as_str(),
            cardholder.as_str(),
            now,
        )?;
        if let Some(existing) = existing {
            return Ok(Done::Existing(existing));
        }
        let Some(status) = status else {
            return Ok(Done::Other(PlannedOutcome::NoCardholder));
        };
        let mut context = CreateContext {
            cardholder_status: parse_enum("cardholders.status", &status, CardholderStatus::parse)?,
            devices: tx.devices(cardholder.as_str())?,
            pending,
        };
        let (new, outbox, audit) = match plan(&context) {
            CreatePlan::Refuse(why) => return Ok(Done::Other(PlannedOutcome::Refused(why))),
            CreatePlan::Write { new, outbox, audit } => (new, outbox, audit),
        };
        new.check_planned(provider, reference, cardholder)?;
        let upstream = upstream_status_for(&outbox);
        // The look-up above holds the write lock: the reference cannot appear since.
        if !tx.insert_challenge(&new, upstream)? {
            return Err(StoreError::Backend(
                "challenge reference appeared under the write lock".into(),
            ));
        }
        let ids = tx.insert_outbox(&outbox, new.created_at)?;
        tx.append(&audit)?;
        let devices = std::mem::take(&mut context.devices);
        Ok(Done::Created(
            new.into_created(upstream),
            outbox,
            ids,
            devices,
        ))
    })
    .await?;
    match done {
        Done::Created(challenge, outbox, ids, devices) => {
            created_events(s, &challenge, &outbox);
            let outbox_rows = outbox.len();
            let at = challenge.created_at;
            Ok(PlannedOutcome::Created {
                challenge,
                outbox_rows,
                claimed: claimed_items(outbox, &ids, at),
                devices,
            })
        }
        // Challenges are never deleted: the one found under the lock is still there.
        Done::Existing(id) => get_by(s, &id)
            .await?
            .map(PlannedOutcome::Duplicate)
            .ok_or_else(|| StoreError::Backend("duplicate challenge vanished".into())),
        Done::Other(outcome) => Ok(outcome),
    }
}

pub(crate) async fn get(s: &SqliteStore, id: &ChallengeId) -> StoreResult<Option<Challenge>> {
    get_by(s, id.as_str()).await
}

async fn get_by(s: &SqliteStore, id: &str) -> StoreResult<Option<Challenge>> {
    let mut conn = s.pool().acquire().await.map_err(db)?;
    get_in(&mut conn, id).await
}

pub(crate) async fn find(
    s: &SqliteStore,
    provider: Provider,
    provider_ref: &ProviderRef,
) -> StoreResult<Option<Challenge>> {
    let mut conn = s.pool().acquire().await.map_err(db)?;
    find_in(&mut conn, provider.as_str(), provider_ref.as_str()).await
}

pub(crate) async fn list(s: &SqliteStore, filter: ChallengeFilter) -> StoreResult<Vec<Challenge>> {
    let status = filter.status.map(|v| v.as_str());
    let cardholder = filter.cardholder.as_ref().map(|c| c.as_str());
    let provider = filter.provider.map(|p| p.as_str());
    let before = filter.before.map(|m| m.0);
    let since = filter.since.map(|m| m.0);
    let limit = filter.limit.clamp(0, MAX_PAGE);
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR cardholder_id = ?2)
           AND (?3 IS NULL OR provider = ?3) AND (?4 IS NULL OR created_at < ?4)
           AND (?6 IS NULL OR created_at >= ?6)
         ORDER BY created_at DESC, id DESC LIMIT ?5",
        status,
        cardholder,
        provider,
        before,
        limit,
        since
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

/// Pending challenges whose deadline is after `now`, oldest first.
pub(crate) async fn pending_for(
    s: &SqliteStore,
    cardholder: &CardholderId,
    now: Millis,
) -> StoreResult<Vec<Challenge>> {
    let cardholder = cardholder.as_str();
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges
         WHERE cardholder_id = ?1 AND status = 'pending' AND deadline > ?2
         ORDER BY created_at, id",
        cardholder,
        now.0
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

pub(crate) async fn count_pending(
    s: &SqliteStore,
    cardholder: &CardholderId,
    now: Millis,
) -> StoreResult<i64> {
    let cardholder = cardholder.as_str();
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM challenges
           WHERE cardholder_id = ?1 AND status = 'pending' AND deadline > ?2"#,
        cardholder,
        now.0
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)
}

/// Pending challenges whose deadline passed, earliest deadline first.
pub(crate) async fn due(s: &SqliteStore, now: Millis, limit: i64) -> StoreResult<Vec<Challenge>> {
    let limit = limit.clamp(0, MAX_PAGE);
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE status = 'pending' AND deadline < ?1
         ORDER BY deadline, id LIMIT ?2",
        now.0,
        limit
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

/// First valid decision wins: the conditional update moves `pending → approved |
/// denied` only while pending and `at ≤ deadline`; the losers read the row to say why.
pub(crate) async fn decide(
    s: &SqliteStore,
    d: NewDecision,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<(DecideOutcome, Vec<OutboxItem>)> {
    let id = d.challenge.as_str();
    let status = match d.decision {
        DecisionKind::Approve => ChallengeStatus::Approved,
        DecisionKind::Deny => ChallengeStatus::Denied,
    };
    let (status, queue) = (
        status.as_str(),
        upstream_status_for(&outbox) == UpstreamStatus::Queued,
    );
    enum Done {
        Accepted(Challenge, CardholderId, Vec<OutboxId>),
        Other(DecideOutcome),
    }
    let device = d.device.as_str();
    let done = direct::write(s, |tx| {
        let won = tx.one(
            "UPDATE challenges
             SET status = ?2, closed_at = ?3,
                 upstream_status = CASE WHEN ?4 THEN 'queued' ELSE upstream_status END
             WHERE id = ?1 AND status = 'pending' AND deadline >= ?3
               AND EXISTS (SELECT 1 FROM devices
                           WHERE devices.id = ?5 AND devices.status = 'active'
                             AND devices.cardholder_id = challenges.cardholder_id)
               AND EXISTS (SELECT 1 FROM cardholders
                           WHERE cardholders.id = challenges.cardholder_id
                             AND cardholders.status = 'active')
             RETURNING cardholder_id",
            rusqlite::params![id, status, d.at.0, queue, device],
            |r| r.get::<_, String>(0),
        )?;
        let Some(cardholder) = won else {
            let Some(c) = tx.challenge(id)? else {
                return Ok(Done::Other(DecideOutcome::NotFound));
            };
            if c.status.is_final() {
                return Ok(Done::Other(DecideOutcome::AlreadyClosed(c)));
            }
            let (device_status, same, holder) = tx
                .one(
                    "SELECT d.status, d.cardholder_id = c.cardholder_id, h.status
                     FROM challenges c JOIN cardholders h ON h.id = c.cardholder_id
                     LEFT JOIN devices d ON d.id = ?2
                     WHERE c.id = ?1",
                    rusqlite::params![id, device],
                    |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, Option<bool>>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )?
                .ok_or(StoreError::NotFound("challenge"))?;
            let device_row = device_status
                .as_deref()
                .map(|st| (st, same.unwrap_or(false)));
            return Ok(Done::Other(match decide_refusal(device_row, &holder)? {
                Some(why) => DecideOutcome::Refused(why),
                None => DecideOutcome::PastDeadline(c),
            }));
        };
        let cardholder = cardholder_id("challenges.cardholder_id", &cardholder)?;
        tx.exec(
            "INSERT INTO decisions (challenge_id, device_id, decision, reason, user_verification, proof,
                                    processor_output, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                id,
                device,
                d.decision.as_str(),
                d.reason.map(|r| r.as_str()),
                d.user_verification,
                d.proof,
                d.processor_output,
                d.at.0,
            ],
        )
        .map_err(|e| direct::classify(e, "decision exists", "device"))?;
        tx.exec(
            "UPDATE devices SET failures = 0, updated_at = ?2 WHERE id = ?1 AND failures <> 0",
            rusqlite::params![device, d.at.0],
        )
        .map_err(direct::backend)?;
        let ids = tx.insert_outbox(&outbox, d.at)?;
        let after = tx.challenge(id)?.ok_or(StoreError::NotFound("challenge"))?;
        tx.append(&audit)?;
        Ok(Done::Accepted(after, cardholder, ids))
    })
    .await?;
    match done {
        Done::Accepted(after, cardholder, ids) => {
            s.emit(StoreEvent::Challenge { cardholder });
            if wakes_workers(&outbox) {
                s.emit(StoreEvent::OutboxReady);
            }
            Ok((
                DecideOutcome::Accepted(after),
                claimed_items(outbox, &ids, d.at),
            ))
        }
        Done::Other(outcome) => Ok((outcome, Vec::new())),
    }
}

/// `pending → expired` (only once the deadline passed) or `pending → cancelled`.
pub(crate) async fn close(
    s: &SqliteStore,
    id: &ChallengeId,
    to: ChallengeStatus,
    now: Millis,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<bool> {
    if !matches!(to, ChallengeStatus::Expired | ChallengeStatus::Cancelled) {
        return Err(StoreError::Conflict(
            "a challenge can only be closed as expired or cancelled",
        ));
    }
    let (id, to, queue) = (
        id.as_str(),
        to.as_str(),
        upstream_status_for(&outbox) == UpstreamStatus::Queued,
    );
    let cardholder = direct::write(s, |tx| {
        let closed = tx.one(
            "UPDATE challenges
             SET status = ?2, closed_at = ?3,
                 upstream_status = CASE WHEN ?4 THEN 'queued' ELSE upstream_status END
             WHERE id = ?1 AND status = 'pending' AND (?2 = 'cancelled' OR deadline < ?3)
             RETURNING cardholder_id",
            rusqlite::params![id, to, now.0, queue],
            |r| r.get::<_, String>(0),
        )?;
        let Some(cardholder) = closed else {
            return Ok(None);
        };
        tx.insert_outbox(&outbox, now)?;
        tx.append(&audit)?;
        Ok(Some(cardholder))
    })
    .await?;
    let Some(cardholder) = cardholder else {
        return Ok(false);
    };
    let cardholder = cardholder_id("challenges.cardholder_id", &cardholder)?;
    s.emit(StoreEvent::Challenge { cardholder });
    if wakes_workers(&outbox) {
        s.emit(StoreEvent::OutboxReady);
    }
    Ok(true)
}

/// Stores the processor's final-status notification. The audit draft gets the
/// challenge and cardholder filled in when the caller left them empty (the caller
/// knows only the processor's reference).
pub(crate) async fn final_status(
    s: &SqliteStore,
    provider: Provider,
    provider_ref: &ProviderRef,
    status: serde_json::Value,
    mut audit: AuditDraft,
) -> StoreResult<bool> {
    let (provider, provider_ref) = (provider.as_str(), provider_ref.as_str());
    let status = json_text(&status)?;
    let mut tx = s.write().await?;
    let row = sqlx::query!(
        "UPDATE challenges SET final_status = ?3 WHERE provider = ?1 AND provider_ref = ?2
         RETURNING id, cardholder_id",
        provider,
        provider_ref,
        status,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(false);
    };
    if audit.challenge.is_none() {
        audit.challenge = Some(challenge_id("challenges.id", &row.id)?);
    }
    if audit.cardholder.is_none() {
        audit.cardholder = Some(cardholder_id(
            "challenges.cardholder_id",
            &row.cardholder_id,
        )?);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(crate) async fn decision_get(
    s: &SqliteStore,
    id: &ChallengeId,
) -> StoreResult<Option<Decision>> {
    let id = id.as_str();
    let row = sqlx::query_as!(
        DecisionRow,
        "SELECT challenge_id, device_id, decision, reason, user_verification, proof, processor_output, at
         FROM decisions WHERE challenge_id = ?1",
        id
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(DecisionRow::decode).transpose()
}
