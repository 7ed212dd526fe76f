//! The transactional outbox: rows written with the change that implies them, claimed
//! by workers under a time lease, completed with one attempt record each.
//!
//! On PostgreSQL a claim is one `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE
//! SKIP LOCKED) RETURNING …`: concurrent claimers, on any instance, skip the rows
//! another claimer has locked, and a row whose lease was just taken by a committed
//! claim is re-checked (READ COMMITTED) and skipped too, so no row is handed out
//! twice while its lease runs. Every claim increments the row's `claim_no`, the fencing
//! token that completion, renewal and the sending mark must present.

use pushauth_core::ids::ChallengeId;
use pushauth_store::*;
use sqlx::PgConnection;

use crate::PgStore;
use crate::audit::append;
use crate::error::{classify, db, parse_enum};
use crate::rows::{AttemptRow, OutboxRow, cardholder_id, challenge_id, device_id};

/// Inserts outbox rows on the caller's transaction (status `pending`, due at
/// `not_before`; claimed when `claimed_until` is set). Returns the ids, in order.
pub(crate) async fn insert_rows(
    conn: &mut PgConnection,
    rows: &[NewOutbox],
    created_at: Millis,
) -> StoreResult<Vec<OutboxId>> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let device = row.device.as_ref().map(|d| d.as_str());
        let id = sqlx::query_scalar!(
            "INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at,
                                 deadline, created_at, claim_no, leased_until)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $8, $9)
             RETURNING id",
            row.kind.as_str(),
            row.challenge.as_str(),
            device,
            row.payload,
            row.not_before.0,
            row.deadline.0,
            created_at.0,
            i64::from(row.claimed_until.is_some()),
            row.claimed_until.map(|m| m.0),
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| classify(e, "outbox row exists", "outbox challenge or device"))?;
        ids.push(OutboxId(id));
    }
    Ok(ids)
}

/// Leases up to `limit` due, unleased rows until `now + lease_ms`, earliest due first.
pub(crate) async fn claim(
    s: &PgStore,
    now: Millis,
    lease_ms: i64,
    limit: i64,
    lane: OutboxLane,
) -> StoreResult<Vec<OutboxItem>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let until = now.plus(lease_ms.max(0)).0;
    let rows = sqlx::query_as!(
        OutboxRow,
        r#"UPDATE outbox SET leased_until = $2, claim_no = claim_no + 1
         WHERE id IN (SELECT id FROM outbox
                      WHERE status = 'pending' AND next_attempt_at <= $1
                        AND (leased_until IS NULL OR leased_until < $1)
                        AND (($4 AND kind IN ('push', 'dismiss')) OR ($5 AND kind = 'upstream'))
                      ORDER BY next_attempt_at, id LIMIT $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline,
                   last_error, created_at, claim_no, sending_since AS "sending_since?""#,
        now.0,
        until,
        limit,
        lane.takes_device_rows(),
        lane.takes_upstream_rows(),
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    Ok(decoded_claims(rows.into_iter().map(|r| (r.id, r.decode()))))
}

/// Records one attempt and applies its consequence. The attempt is always recorded
/// (it happened); the row's status, schedule, lease, sending mark and the challenge's
/// upstream status change only while `claim` is the row's current claim and the row is
/// still pending, so a stale worker whose lease was taken over changes nothing else.
/// The row is locked by the first update, so a concurrent claim waits for this one.
pub(crate) async fn complete(
    s: &PgStore,
    id: OutboxId,
    claim: i64,
    attempt: AttemptRecord,
    next: OutboxNext,
) -> StoreResult<bool> {
    let mut tx = s.begin().await?;
    // The attempt counter, the attempt row and whether the claim is stale, in one
    // statement (the attempt's error says "stale claim" when it is).
    let Some(row) = sqlx::query!(
        r#"WITH r AS (UPDATE outbox SET attempts = attempts + 1 WHERE id = $1
                      RETURNING attempts, status, kind, challenge_id, device_id, claim_no),
                a AS (INSERT INTO outbox_attempts (outbox_id, attempt_no, at, latency_ms, outcome,
                                                   http_status, error)
                      SELECT $1, r.attempts, $3::BIGINT, $4::BIGINT, $5::TEXT, $6::INTEGER,
                             CASE WHEN r.status = 'pending' AND r.claim_no = $2 THEN $7::TEXT
                                  ELSE $8::TEXT END
                      FROM r)
           SELECT attempts AS "attempts!", status AS "status!", kind AS "kind!",
                  challenge_id AS "challenge_id!", device_id, claim_no AS "claim_no!"
           FROM r"#,
        id.0,
        claim,
        attempt.at.0,
        attempt.latency_ms,
        attempt.outcome.as_str(),
        attempt.http_status,
        stale_error(false, attempt.error.as_deref()),
        stale_error(true, attempt.error.as_deref()),
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| classify(e, "attempt number taken", "outbox row"))?
    else {
        return Err(StoreError::NotFound("outbox row"));
    };
    if row.status != OutboxStatus::Pending.as_str() || row.claim_no != claim {
        tx.commit().await.map_err(db)?;
        return Ok(false);
    }
    let (status, retry_at, upstream) = next.effects();
    let retry_at = retry_at.map(|m| m.0);
    let kind = parse_enum("outbox.kind", &row.kind, OutboxKind::parse)?;
    let upstream = match (kind, upstream) {
        (OutboxKind::Upstream, Some(u)) => Some(u.as_str()),
        _ => None,
    };
    // The row's new state, the challenge's upstream status (result rows) and what the
    // audit entry names, in one statement.
    let source = sqlx::query!(
        "WITH o AS (UPDATE outbox
                    SET status = $2, next_attempt_at = COALESCE($3, next_attempt_at), leased_until = NULL,
                        last_error = COALESCE($4, last_error),
                        sending_since = CASE WHEN $5 THEN sending_since END
                    WHERE id = $1 RETURNING challenge_id),
              c AS (UPDATE challenges SET upstream_status = $6
                    WHERE $6::TEXT IS NOT NULL AND id = (SELECT challenge_id FROM o))
         SELECT cardholder_id, provider, provider_ref FROM challenges WHERE id = $7",
        id.0,
        status.as_str(),
        retry_at,
        attempt.error,
        next == OutboxNext::Unknown,
        upstream,
        row.challenge_id,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if status != OutboxStatus::Pending {
        let device = row
            .device_id
            .as_deref()
            .map(|d| device_id("outbox.device_id", d))
            .transpose()?;
        let draft = outbox_final_audit(
            id,
            kind,
            final_action(next, status),
            i64::from(row.attempts),
            &attempt,
            &challenge_id("outbox.challenge_id", &row.challenge_id)?,
            &cardholder_id("challenges.cardholder_id", &source.cardholder_id)?,
            device.as_ref(),
            (&source.provider, &source.provider_ref),
        );
        append(&mut tx, &draft).await?;
        tx.commit().await.map_err(db)?;
    } else {
        tx.commit().await.map_err(db)?;
        // rescheduled: workers may need to wake earlier than they planned
        s.committed(None, true);
    }
    Ok(true)
}

/// Extends the current holder's lease (never shortens it).
pub(crate) async fn renew(
    s: &PgStore,
    id: OutboxId,
    claim: i64,
    until: Millis,
) -> StoreResult<bool> {
    let done = sqlx::query!(
        "UPDATE outbox SET leased_until = GREATEST(COALESCE(leased_until, $3), $3)
         WHERE id = $1 AND claim_no = $2 AND status = 'pending'",
        id.0,
        claim,
        until.0
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

/// Commits the sending mark for the current holder.
pub(crate) async fn mark_sending(
    s: &PgStore,
    id: OutboxId,
    claim: i64,
    at: Millis,
) -> StoreResult<bool> {
    let done = sqlx::query!(
        "UPDATE outbox SET sending_since = $3
         WHERE id = $1 AND claim_no = $2 AND status = 'pending'",
        id.0,
        claim,
        at.0
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn for_challenge(s: &PgStore, id: &ChallengeId) -> StoreResult<Vec<OutboxItem>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        OutboxRow,
        "SELECT id, kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline,
                last_error, created_at, claim_no, sending_since
         FROM outbox WHERE challenge_id = $1 ORDER BY id",
        id
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(OutboxRow::decode).collect()
}

pub(crate) async fn attempts_for_challenge(
    s: &PgStore,
    id: &ChallengeId,
) -> StoreResult<Vec<Attempt>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        AttemptRow,
        "SELECT a.id, a.outbox_id, o.kind, o.device_id, a.attempt_no, a.at, a.latency_ms, a.outcome,
                a.http_status, a.error
         FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id
         WHERE o.challenge_id = $1 ORDER BY a.at, a.id",
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
pub(crate) async fn next_due(s: &PgStore, lane: OutboxLane) -> StoreResult<Option<Millis>> {
    let (devices, upstream) = (lane.takes_device_rows(), lane.takes_upstream_rows());
    let next = sqlx::query_scalar!(
        r#"SELECT MIN(CASE WHEN leased_until IS NOT NULL AND leased_until >= next_attempt_at
                           THEN leased_until + 1 ELSE next_attempt_at END) AS "next: i64"
           FROM outbox WHERE status = 'pending'
             AND (($1 AND kind IN ('push', 'dismiss')) OR ($2 AND kind = 'upstream'))"#,
        devices,
        upstream
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)?;
    Ok(next.map(Millis))
}
