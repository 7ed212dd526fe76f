//! Issuer events and their deliveries (see `pushauth_store::events`). Events are
//! inserted by the audit append, on the transaction of the change; the fan-out and the
//! claims use `FOR UPDATE SKIP LOCKED`, so several instances share the work.

use pushauth_store::*;
use sqlx::PgConnection;

use crate::PgStore;
use crate::error::{db, parse_enum};

/// Inserts the event `draft` causes, if any, on the caller's transaction.
pub(crate) async fn insert_for(conn: &mut PgConnection, draft: &AuditDraft) -> StoreResult<()> {
    let Some(event) = issuer_event_for(draft)? else {
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO issuer_events (id, type, body, created_at) VALUES ($1, $2, $3, $4)",
        event.id,
        event.event_type.as_str(),
        event.body,
        event.at.0,
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn fan_out(
    s: &PgStore,
    routes: &[EventRoute],
    now: Millis,
    limit: i64,
) -> StoreResult<u64> {
    let mut tx = s.begin().await?;
    let events = sqlx::query!(
        "SELECT seq, type FROM issuer_events WHERE NOT fanned_out ORDER BY seq LIMIT $1
         FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut seqs = Vec::with_capacity(events.len());
    for e in &events {
        let t = parse_enum("issuer_events.type", &e.r#type, IssuerEventType::parse)?;
        for route in routes.iter().filter(|r| r.wants(t)) {
            sqlx::query!(
                "INSERT INTO issuer_event_deliveries (event_seq, endpoint, next_attempt_at, updated_at)
                 VALUES ($1, $2, $3, $3) ON CONFLICT (event_seq, endpoint) DO NOTHING",
                e.seq,
                route.endpoint,
                now.0,
            )
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        seqs.push(e.seq);
    }
    sqlx::query!(
        "UPDATE issuer_events SET fanned_out = TRUE WHERE seq = ANY($1)",
        &seqs
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(seqs.len() as u64)
}

pub(crate) async fn claim(
    s: &PgStore,
    endpoints: &[String],
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> StoreResult<Vec<EventDelivery>> {
    if limit <= 0 || endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        "WITH claimed AS (
             UPDATE issuer_event_deliveries SET leased_until = $2, claim_no = claim_no + 1
             WHERE id IN (SELECT id FROM issuer_event_deliveries
                          WHERE status = 'pending' AND next_attempt_at <= $1
                            AND (leased_until IS NULL OR leased_until < $1)
                            AND endpoint = ANY($4)
                          ORDER BY next_attempt_at, id LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, claim_no, endpoint, attempts, event_seq, next_attempt_at)
         SELECT c.id, c.claim_no, c.endpoint, c.attempts, e.id AS event_id, e.type, e.body, e.created_at
         FROM claimed c JOIN issuer_events e ON e.seq = c.event_seq
         ORDER BY c.next_attempt_at, c.id",
        now.0,
        lease_until.0,
        limit,
        endpoints,
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|r| {
            ClaimedDeliveryRow {
                id: r.id,
                claim_no: r.claim_no,
                endpoint: r.endpoint,
                attempts: i64::from(r.attempts),
                event_id: r.event_id,
                event_type: r.r#type,
                body: r.body,
                created_at: r.created_at,
            }
            .decode()
        })
        .collect()
}

pub(crate) async fn complete(
    s: &PgStore,
    id: i64,
    claim: i64,
    next: DeliveryNext,
    attempt: DeliveryAttempt,
) -> StoreResult<bool> {
    let (status, retry_at) = next.effects();
    let done = sqlx::query!(
        "UPDATE issuer_event_deliveries
         SET status = $3, attempts = attempts + 1, next_attempt_at = COALESCE($4, next_attempt_at),
             leased_until = NULL, last_status = $5, last_error = $6, updated_at = $7
         WHERE id = $1 AND claim_no = $2 AND status = 'pending'",
        id,
        claim,
        status.as_str(),
        retry_at.map(|m| m.0),
        attempt.http_status,
        attempt.error,
        attempt.at.0,
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn orphans_fail(
    s: &PgStore,
    endpoints: &[String],
    due_before: Millis,
    now: Millis,
    reason: &str,
    limit: i64,
) -> StoreResult<u64> {
    if limit <= 0 {
        return Ok(0);
    }
    let done = sqlx::query!(
        "UPDATE issuer_event_deliveries
         SET status = 'failed', leased_until = NULL, claim_no = claim_no + 1, last_error = $4,
             updated_at = $3
         WHERE id IN (SELECT id FROM issuer_event_deliveries
                      WHERE status = 'pending' AND next_attempt_at < $2
                        AND (leased_until IS NULL OR leased_until < $3)
                        AND NOT (endpoint = ANY($1))
                      ORDER BY next_attempt_at, id LIMIT $5
                      FOR UPDATE SKIP LOCKED)",
        endpoints,
        due_before.0,
        now.0,
        reason,
        limit,
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// One statement: the deliveries go in a data-modifying CTE, the events in the main
/// DELETE (the foreign key is checked at the end of the statement). Only fanned-out
/// events with no pending delivery are chosen, and nothing makes such an event
/// pending again, so concurrent fan-outs, claims and completions never meet these rows;
/// two instances purging at once delete each row once.
pub(crate) async fn purge(s: &PgStore, created_before: Millis, limit: i64) -> StoreResult<u64> {
    if limit <= 0 {
        return Ok(0);
    }
    let done = sqlx::query!(
        "WITH old AS (
             SELECT o.seq FROM (SELECT seq, created_at, fanned_out FROM issuer_events
                                ORDER BY seq LIMIT $2) o
             WHERE o.created_at < $1 AND o.fanned_out
               AND NOT EXISTS (SELECT 1 FROM issuer_event_deliveries d
                               WHERE d.event_seq = o.seq AND d.status = 'pending')),
         deliveries AS (DELETE FROM issuer_event_deliveries d USING old WHERE d.event_seq = old.seq)
         DELETE FROM issuer_events e USING old WHERE e.seq = old.seq",
        created_before.0,
        limit,
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

pub(crate) async fn recent(s: &PgStore, limit: i64) -> StoreResult<Vec<IssuerEventView>> {
    let limit = limit.clamp(1, 500);
    let rows = sqlx::query!(
        r#"SELECT e.seq, e.id, e.type, e.created_at, d.endpoint AS "endpoint?", d.status AS "status?",
                  d.attempts AS "attempts?", d.last_status, d.last_error, d.next_attempt_at AS "next_attempt_at?"
           FROM (SELECT seq, id, type, created_at FROM issuer_events ORDER BY seq DESC LIMIT $1) e
           LEFT JOIN issuer_event_deliveries d ON d.event_seq = e.seq
           ORDER BY e.seq DESC, d.endpoint"#,
        limit
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    group_event_views(
        rows.into_iter()
            .map(|r| EventViewRow {
                seq: r.seq,
                id: r.id,
                event_type: r.r#type,
                created_at: r.created_at,
                endpoint: r.endpoint,
                status: r.status,
                attempts: r.attempts.map(i64::from),
                last_status: r.last_status.map(i64::from),
                last_error: r.last_error,
                next_attempt_at: r.next_attempt_at,
            })
            .collect(),
    )
}
