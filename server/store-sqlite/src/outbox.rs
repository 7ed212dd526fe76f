//! The transactional outbox: rows written with the change that implies them, claimed
//! by workers under a time lease, completed with one attempt record each.
//!
//! On SQLite a claim is one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`
//! under `BEGIN IMMEDIATE`, so concurrent claimers are serialised and never receive
//! the same row while its lease runs. Every claim increments the row's `claim_no`, the
//! fencing token that completion, renewal and the sending mark must present.

use pushauth_core::ids::ChallengeId;
use pushauth_store::*;

use crate::error::{db, parse_enum};
use crate::rows::{AttemptRow, OutboxRow, cardholder_id, challenge_id, device_id};
use crate::{SqliteStore, direct};

/// Leases up to `limit` due, unleased rows until `now + lease_ms`, earliest due first.
pub(crate) async fn claim(
    s: &SqliteStore,
    now: Millis,
    lease_ms: i64,
    limit: i64,
    lane: OutboxLane,
) -> StoreResult<Vec<OutboxItem>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let until = now.plus(lease_ms.max(0)).0;
    let rows = direct::write(s, |tx| {
        tx.all(
            "UPDATE outbox SET leased_until = ?2, claim_no = claim_no + 1
             WHERE id IN (SELECT id FROM outbox
                          WHERE status = 'pending' AND next_attempt_at <= ?1
                            AND (leased_until IS NULL OR leased_until < ?1)
                            AND ((?4 AND kind IN ('push', 'dismiss')) OR (?5 AND kind = 'upstream'))
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline,
                       last_error, created_at, claim_no, sending_since",
            rusqlite::params![now.0, until, limit, lane.takes_device_rows(), lane.takes_upstream_rows()],
            |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    challenge_id: r.get(2)?,
                    device_id: r.get(3)?,
                    payload: r.get(4)?,
                    status: r.get(5)?,
                    attempts: r.get(6)?,
                    next_attempt_at: r.get(7)?,
                    deadline: r.get(8)?,
                    last_error: r.get(9)?,
                    created_at: r.get(10)?,
                    claim_no: r.get(11)?,
                    sending_since: r.get(12)?,
                })
            },
        )
    })
    .await?;
    Ok(decoded_claims(rows.into_iter().map(|r| (r.id, r.decode()))))
}

/// Records one attempt and applies its consequence. The attempt is always recorded
/// (it happened); the row's status, schedule, lease, sending mark and the challenge's
/// upstream status change only while `claim` is the row's current claim and the row is
/// still pending, so a stale worker whose lease was taken over changes nothing else.
pub(crate) async fn complete(
    s: &SqliteStore,
    id: OutboxId,
    claim: i64,
    attempt: AttemptRecord,
    next: OutboxNext,
) -> StoreResult<bool> {
    let (applied, retry_at) = direct::write(s, |tx| {
        let Some((attempts, status, kind, challenge, device, current)) = tx.one(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1
             RETURNING attempts, status, kind, challenge_id, device_id, claim_no",
            [id.0],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )?
        else {
            return Err(StoreError::NotFound("outbox row"));
        };
        let stale = status != OutboxStatus::Pending.as_str() || current != claim;
        let error = stale_error(stale, attempt.error.as_deref());
        tx.exec(
            "INSERT INTO outbox_attempts (outbox_id, attempt_no, at, latency_ms, outcome, http_status, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                id.0,
                attempts,
                attempt.at.0,
                attempt.latency_ms,
                attempt.outcome.as_str(),
                attempt.http_status,
                error,
            ],
        )
        .map_err(|e| direct::classify(e, "attempt number taken", "outbox row"))?;
        if stale {
            return Ok((false, None));
        }
        let (status, retry_at, upstream) = next.effects();
        let retry_at = retry_at.map(|m| m.0);
        tx.exec(
            "UPDATE outbox
             SET status = ?2, next_attempt_at = COALESCE(?3, next_attempt_at), leased_until = NULL,
                 last_error = COALESCE(?4, last_error),
                 sending_since = CASE WHEN ?5 THEN sending_since END
             WHERE id = ?1",
            rusqlite::params![
                id.0,
                status.as_str(),
                retry_at,
                attempt.error,
                next == OutboxNext::Unknown
            ],
        )
        .map_err(direct::backend)?;
        let kind = parse_enum("outbox.kind", &kind, OutboxKind::parse)?;
        if let (OutboxKind::Upstream, Some(upstream)) = (kind, upstream) {
            tx.exec(
                "UPDATE challenges SET upstream_status = ?2 WHERE id = ?1",
                rusqlite::params![challenge, upstream.as_str()],
            )
            .map_err(direct::backend)?;
        }
        if status != OutboxStatus::Pending {
            let (cardholder, provider, reference) = tx
                .one(
                    "SELECT cardholder_id, provider, provider_ref FROM challenges WHERE id = ?1",
                    [&challenge],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                )?
                .ok_or(StoreError::NotFound("challenge"))?;
            let device = device
                .as_deref()
                .map(|d| device_id("outbox.device_id", d))
                .transpose()?;
            let draft = outbox_final_audit(
                id,
                kind,
                final_action(next, status),
                attempts,
                &attempt,
                &challenge_id("outbox.challenge_id", &challenge)?,
                &cardholder_id("challenges.cardholder_id", &cardholder)?,
                device.as_ref(),
                (&provider, &reference),
            );
            tx.append(&draft)?;
        }
        Ok((true, retry_at))
    })
    .await?;
    if retry_at.is_some() {
        s.emit(StoreEvent::OutboxReady);
    }
    Ok(applied)
}

/// Extends the current holder's lease (never shortens it).
pub(crate) async fn renew(
    s: &SqliteStore,
    id: OutboxId,
    claim: i64,
    until: Millis,
) -> StoreResult<bool> {
    let n = direct::write(s, |tx| {
        tx.exec(
            "UPDATE outbox SET leased_until = MAX(COALESCE(leased_until, ?3), ?3)
             WHERE id = ?1 AND claim_no = ?2 AND status = 'pending'",
            rusqlite::params![id.0, claim, until.0],
        )
        .map_err(direct::backend)
    })
    .await?;
    Ok(n == 1)
}

/// Commits the sending mark for the current holder.
pub(crate) async fn mark_sending(
    s: &SqliteStore,
    id: OutboxId,
    claim: i64,
    at: Millis,
) -> StoreResult<bool> {
    let n = direct::write(s, |tx| {
        tx.exec(
            "UPDATE outbox SET sending_since = ?3
             WHERE id = ?1 AND claim_no = ?2 AND status = 'pending'",
            rusqlite::params![id.0, claim, at.0],
        )
        .map_err(direct::backend)
    })
    .await?;
    Ok(n == 1)
}

pub(crate) async fn for_challenge(
    s: &SqliteStore,
    id: &ChallengeId,
) -> StoreResult<Vec<OutboxItem>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        OutboxRow,
        "SELECT id, kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline,
                last_error, created_at, claim_no, sending_since
         FROM outbox WHERE challenge_id = ?1 ORDER BY id",
        id
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(OutboxRow::decode).collect()
}

pub(crate) async fn attempts_for_challenge(
    s: &SqliteStore,
    id: &ChallengeId,
) -> StoreResult<Vec<Attempt>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        AttemptRow,
        "SELECT a.id, a.outbox_id, o.kind, o.device_id, a.attempt_no, a.at, a.latency_ms, a.outcome,
                a.http_status, a.error
         FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id
         WHERE o.challenge_id = ?1 ORDER BY a.at, a.id",
        id
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(AttemptRow::decode).collect()
}

/// When the next pending row becomes claimable: its `next_attempt_at`, or just after
/// its lease when a worker holds it, so that idle workers sleep through a lease
/// instead of spinning on a row they cannot claim.
pub(crate) async fn next_due(s: &SqliteStore, lane: OutboxLane) -> StoreResult<Option<Millis>> {
    let (devices, upstream) = (lane.takes_device_rows(), lane.takes_upstream_rows());
    let next = sqlx::query_scalar!(
        r#"SELECT MIN(CASE WHEN leased_until IS NOT NULL AND leased_until >= next_attempt_at
                           THEN leased_until + 1 ELSE next_attempt_at END) AS "next: i64"
           FROM outbox WHERE status = 'pending'
             AND ((?1 AND kind IN ('push', 'dismiss')) OR (?2 AND kind = 'upstream'))"#,
        devices,
        upstream
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)?;
    Ok(next.map(Millis))
}
