//! Blocking a cardholder: the status change and the cancellation of every pending
//! challenge of theirs, in one write transaction on the direct path.

use pushauth_core::ids::CardholderId;
use pushauth_store::*;
use rusqlite::params;

use crate::SqliteStore;
use crate::direct;

pub(crate) async fn cardholder_block(
    s: &SqliteStore,
    id: &CardholderId,
    now: Millis,
    audit: AuditDraft,
    cancel: CancelPlanner,
) -> StoreResult<BlockOutcome> {
    let holder = id.as_str();
    let done = direct::write(s, |tx| {
        let changed = tx
            .exec(
                "UPDATE cardholders SET status = 'blocked', updated_at = ?2 WHERE id = ?1",
                params![holder, now.0],
            )
            .map_err(direct::backend)?;
        if changed == 0 {
            return Ok(None);
        }
        tx.append(&audit)?;
        let devices = tx.devices(holder)?;
        let pending = tx.all(
            "SELECT id FROM challenges
             WHERE cardholder_id = ?1 AND status = 'pending' AND deadline >= ?2
             ORDER BY created_at, id",
            params![holder, now.0],
            |r| r.get::<_, String>(0),
        )?;
        let (mut cancelled, mut rows) = (Vec::with_capacity(pending.len()), 0);
        for cid in pending {
            let c = tx
                .challenge(&cid)?
                .ok_or(StoreError::NotFound("challenge"))?;
            let (outbox, entry) = cancel(&c, &devices);
            let queue = upstream_status_for(&outbox) == UpstreamStatus::Queued;
            tx.exec(
                "UPDATE challenges
                 SET status = 'cancelled', closed_at = ?2,
                     upstream_status = CASE WHEN ?3 THEN 'queued' ELSE upstream_status END
                 WHERE id = ?1 AND status = 'pending'",
                params![cid, now.0, queue],
            )
            .map_err(direct::backend)?;
            tx.insert_outbox(&outbox, now)?;
            tx.append(&entry)?;
            rows += outbox.len();
            cancelled.push(
                tx.challenge(&cid)?
                    .ok_or(StoreError::NotFound("challenge"))?,
            );
        }
        Ok(Some((cancelled, rows)))
    })
    .await?;
    let Some((cancelled, rows)) = done else {
        return Ok(BlockOutcome::NotFound);
    };
    s.emit(StoreEvent::Challenge {
        cardholder: id.clone(),
    });
    if rows > 0 {
        s.emit(StoreEvent::OutboxReady);
    }
    Ok(BlockOutcome::Blocked { cancelled })
}
