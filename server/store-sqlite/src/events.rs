//! Issuer events and their deliveries (see `pushauth_store::events`). Events are
//! inserted by the audit append, on the transaction of the change (both the sqlx and
//! the direct write path); fan-out, claims and completions run on the direct path
//! under the write gate, so they are serialised with every other writer.

use pushauth_store::*;
use rusqlite::params;

use crate::SqliteStore;
use crate::direct::{self, DirectTx, backend};
use crate::error::db;

const INSERT_EVENT: &str =
    "INSERT INTO issuer_events (id, type, body, created_at) VALUES (?1, ?2, ?3, ?4)";

/// Inserts the event `draft` causes, if any, on a sqlx write transaction.
pub(crate) async fn insert_for(tx: &mut crate::WriteTx, draft: &AuditDraft) -> StoreResult<()> {
    let Some(event) = issuer_event_for(draft)? else {
        return Ok(());
    };
    sqlx::query(INSERT_EVENT)
        .bind(&event.id)
        .bind(event.event_type.as_str())
        .bind(&event.body)
        .bind(event.at.0)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Inserts the event `draft` causes, if any, on a direct write transaction.
pub(crate) fn insert_for_direct(tx: &DirectTx<'_>, draft: &AuditDraft) -> StoreResult<()> {
    let Some(event) = issuer_event_for(draft)? else {
        return Ok(());
    };
    tx.exec(
        INSERT_EVENT,
        params![event.id, event.event_type.as_str(), event.body, event.at.0],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn fan_out(
    s: &SqliteStore,
    routes: &[EventRoute],
    now: Millis,
    limit: i64,
) -> StoreResult<u64> {
    let routes = routes.to_vec();
    direct::write(s, move |tx| {
        let events = tx.all(
            "SELECT seq, type FROM issuer_events WHERE fanned_out = 0 ORDER BY seq LIMIT ?1",
            params![limit],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        for (seq, t) in &events {
            let t = pushauth_store::decode::parse_enum("issuer_events.type", t, IssuerEventType::parse)?;
            for route in routes.iter().filter(|r| r.wants(t)) {
                tx.exec(
                    "INSERT INTO issuer_event_deliveries (event_seq, endpoint, next_attempt_at, updated_at)
                     VALUES (?1, ?2, ?3, ?3) ON CONFLICT (event_seq, endpoint) DO NOTHING",
                    params![seq, route.endpoint, now.0],
                )
                .map_err(backend)?;
            }
            tx.exec(
                "UPDATE issuer_events SET fanned_out = 1 WHERE seq = ?1",
                params![seq],
            )
            .map_err(backend)?;
        }
        Ok(events.len() as u64)
    })
    .await
}

pub(crate) async fn claim(
    s: &SqliteStore,
    endpoints: &[String],
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> StoreResult<Vec<EventDelivery>> {
    if limit <= 0 || endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let names = serde_json::to_string(endpoints).map_err(|e| StoreError::Backend(e.to_string()))?;
    let rows = direct::write(s, move |tx| {
        tx.all(
            "UPDATE issuer_event_deliveries SET leased_until = ?2, claim_no = claim_no + 1
             WHERE id IN (SELECT id FROM issuer_event_deliveries
                          WHERE status = 'pending' AND next_attempt_at <= ?1
                            AND (leased_until IS NULL OR leased_until < ?1)
                            AND endpoint IN (SELECT value FROM json_each(?4))
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, claim_no, endpoint, attempts, event_seq, next_attempt_at",
            params![now.0, lease_until.0, limit, names],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )?
        .into_iter()
        .map(|(id, claim_no, endpoint, attempts, seq, due)| {
            let (event_id, event_type, body, created_at) = tx
                .one(
                    "SELECT id, type, body, created_at FROM issuer_events WHERE seq = ?1",
                    params![seq],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?
                .ok_or(StoreError::NotFound("issuer event"))?;
            Ok((
                (due, id),
                ClaimedDeliveryRow {
                    id,
                    claim_no,
                    endpoint,
                    attempts,
                    event_id,
                    event_type,
                    body,
                    created_at,
                },
            ))
        })
        .collect::<StoreResult<Vec<_>>>()
    })
    .await?;
    let mut rows = rows;
    rows.sort_by_key(|(order, _)| *order);
    rows.into_iter().map(|(_, r)| r.decode()).collect()
}

pub(crate) async fn complete(
    s: &SqliteStore,
    id: i64,
    claim: i64,
    next: DeliveryNext,
    attempt: DeliveryAttempt,
) -> StoreResult<bool> {
    let (status, retry_at) = next.effects();
    direct::write(s, move |tx| {
        let changed = tx
            .exec(
                "UPDATE issuer_event_deliveries
                 SET status = ?3, attempts = attempts + 1, next_attempt_at = COALESCE(?4, next_attempt_at),
                     leased_until = NULL, last_status = ?5, last_error = ?6, updated_at = ?7
                 WHERE id = ?1 AND claim_no = ?2 AND status = 'pending'",
                params![
                    id,
                    claim,
                    status.as_str(),
                    retry_at.map(|m| m.0),
                    attempt.http_status,
                    attempt.error,
                    attempt.at.0
                ],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    })
    .await
}

pub(crate) async fn orphans_fail(
    s: &SqliteStore,
    endpoints: &[String],
    due_before: Millis,
    now: Millis,
    reason: &str,
    limit: i64,
) -> StoreResult<u64> {
    if limit <= 0 {
        return Ok(0);
    }
    let names = serde_json::to_string(endpoints).map_err(|e| StoreError::Backend(e.to_string()))?;
    let reason = reason.to_owned();
    direct::write(s, move |tx| {
        let changed = tx
            .exec(
                "UPDATE issuer_event_deliveries
                 SET status = 'failed', leased_until = NULL, claim_no = claim_no + 1, last_error = ?4,
                     updated_at = ?3
                 WHERE id IN (SELECT id FROM issuer_event_deliveries
                              WHERE status = 'pending' AND next_attempt_at < ?2
                                AND (leased_until IS NULL OR leased_until < ?3)
                                AND endpoint NOT IN (SELECT value FROM json_each(?1))
                              ORDER BY next_attempt_at, id LIMIT ?5)",
                params![names, due_before.0, now.0, reason, limit],
            )
            .map_err(backend)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    })
    .await
}

pub(crate) async fn purge(s: &SqliteStore, created_before: Millis, limit: i64) -> StoreResult<u64> {
    if limit <= 0 {
        return Ok(0);
    }
    direct::write(s, move |tx| {
        let seqs = tx.all(
            "SELECT o.seq FROM (SELECT seq, created_at, fanned_out FROM issuer_events
                                ORDER BY seq LIMIT ?2) o
             WHERE o.created_at < ?1 AND o.fanned_out = 1
               AND NOT EXISTS (SELECT 1 FROM issuer_event_deliveries d
                               WHERE d.event_seq = o.seq AND d.status = 'pending')",
            params![created_before.0, limit],
            |r| r.get::<_, i64>(0),
        )?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let seqs = serde_json::to_string(&seqs).map_err(|e| StoreError::Backend(e.to_string()))?;
        tx.exec(
            "DELETE FROM issuer_event_deliveries WHERE event_seq IN (SELECT value FROM json_each(?1))",
            params![seqs],
        )
        .map_err(backend)?;
        let gone = tx
            .exec(
                "DELETE FROM issuer_events WHERE seq IN (SELECT value FROM json_each(?1))",
                params![seqs],
            )
            .map_err(backend)?;
        Ok(u64::try_from(gone).unwrap_or(u64::MAX))
    })
    .await
}

pub(crate) async fn recent(s: &SqliteStore, limit: i64) -> StoreResult<Vec<IssuerEventView>> {
    use sqlx::Row as _;
    let limit = limit.clamp(1, 500);
    let rows = sqlx::query(
        "SELECT e.seq, e.id, e.type, e.created_at, d.endpoint, d.status, d.attempts, d.last_status,
                d.last_error, d.next_attempt_at
         FROM (SELECT seq, id, type, created_at FROM issuer_events ORDER BY seq DESC LIMIT ?1) e
         LEFT JOIN issuer_event_deliveries d ON d.event_seq = e.seq
         ORDER BY e.seq DESC, d.endpoint",
    )
    .bind(limit)
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    let rows = rows
        .into_iter()
        .map(|r| {
            Ok(EventViewRow {
                seq: r.try_get(0)?,
                id: r.try_get(1)?,
                event_type: r.try_get(2)?,
                created_at: r.try_get(3)?,
                endpoint: r.try_get(4)?,
                status: r.try_get(5)?,
                attempts: r.try_get(6)?,
                last_status: r.try_get(7)?,
                last_error: r.try_get(8)?,
                next_attempt_at: r.try_get(9)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db)?;
    group_event_views(rows)
}
