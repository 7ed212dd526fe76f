//! Blocking a cardholder: the status change and the cancellation of every pending
//! challenge of theirs, in one transaction. The status update locks the cardholder's
//! row first, so a decision in flight (which share-locks that row before its
//! conditional update, see `challenges::decide`) either committed before, and its
//! challenge is no longer pending, or waits and is then refused.

use pushauth_core::ids::CardholderId;
use pushauth_store::*;

use crate::PgStore;
use crate::audit::append;
use crate::challenges::get_in;
use crate::devices::list_in;
use crate::error::db;
use crate::outbox::insert_rows;

pub(crate) async fn cardholder_block(
    s: &PgStore,
    id: &CardholderId,
    now: Millis,
    audit: AuditDraft,
    cancel: CancelPlanner,
) -> StoreResult<BlockOutcome> {
    let holder = id.as_str();
    let mut tx = s.begin().await?;
    let changed = sqlx::query!(
        "UPDATE cardholders SET status = 'blocked', updated_at = $2 WHERE id = $1",
        holder,
        now.0
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if changed.rows_affected() == 0 {
        return Ok(BlockOutcome::NotFound);
    }
    append(&mut tx, &audit).await?;
    let devices = list_in(&mut tx, holder).await?;
    let pending = sqlx::query_scalar!(
        "SELECT id FROM challenges
         WHERE cardholder_id = $1 AND status = 'pending' AND deadline + 0 >= $2 -- see challenges.rs
         ORDER BY created_at, id FOR UPDATE",
        holder,
        now.0
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let (mut cancelled, mut rows) = (Vec::with_capacity(pending.len()), 0);
    for cid in pending {
        let c = get_in(&mut tx, &cid)
            .await?
            .ok_or(StoreError::NotFound("challenge"))?;
        let (outbox, entry) = cancel(&c, &devices);
        let queue = upstream_status_for(&outbox) == UpstreamStatus::Queued;
        sqlx::query!(
            "UPDATE challenges
             SET status = 'cancelled', closed_at = $2,
                 upstream_status = CASE WHEN $3::BOOLEAN THEN 'queued' ELSE upstream_status END
             WHERE id = $1 AND status = 'pending'",
            cid,
            now.0,
            queue
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_rows(&mut tx, &outbox, now).await?;
        append(&mut tx, &entry).await?;
        rows += outbox.len();
        cancelled.push(
            get_in(&mut tx, &cid)
                .await?
                .ok_or(StoreError::NotFound("challenge"))?,
        );
    }
    tx.commit().await.map_err(db)?;
    s.committed(Some(id), rows > 0);
    Ok(BlockOutcome::Blocked { cancelled })
}
