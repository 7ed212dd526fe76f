//! The hash-chained audit log. Entries are appended inside the transaction of the
//! change they describe, as its last statement. Appenders, from any instance,
//! serialise on a transaction-scoped advisory lock taken just before the last
//! `(seq, hash)` is read; it is released at commit, after which (READ COMMITTED)
//! the next appender's read sees the new entry. Keeping the append last keeps
//! the lock short.

use futures::TryStreamExt as _;
use pushauth_core::ids::ChallengeId;
use pushauth_store::{AuditDraft, AuditEntry, ChainCheck, GENESIS_HASH, StoreResult, entry_hash};
use sqlx::PgConnection;

use crate::PgStore;
use crate::error::{db, json_text};
use crate::rows::AuditRow;

/// First key of the audit appenders' advisory lock ("pa" + "ud", i.e. pushauth audit).
const AUDIT_LOCK_CLASS: i32 = 0x7061_7564;

/// Appends `draft` as the next entry of the chain, on the caller's transaction.
pub(crate) async fn append(conn: &mut PgConnection, draft: &AuditDraft) -> StoreResult<()> {
    // One lock per schema, so stores in separate schemas of one database (tests,
    // several tenants) do not wait for each other.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        AUDIT_LOCK_CLASS
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let last = sqlx::query!("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    let (prev_seq, prev_hash) = match last {
        Some(row) => (row.seq, row.hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let seq = prev_seq + 1;
    let hash = entry_hash(&prev_hash, seq, draft);
    let details = json_text(&draft.details)?;
    let challenge = draft.challenge.as_ref().map(|c| c.as_str());
    let device = draft.device.as_ref().map(|d| d.as_str());
    let cardholder = draft.cardholder.as_ref().map(|c| c.as_str());
    sqlx::query!(
        "INSERT INTO audit_log (seq, at, actor, action, challenge_id, device_id, cardholder_id, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        seq,
        draft.at.0,
        draft.actor,
        draft.action,
        challenge,
        device,
        cardholder,
        details,
        prev_hash,
        hash,
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn for_challenge(s: &PgStore, id: &ChallengeId) -> StoreResult<Vec<AuditEntry>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        AuditRow,
        "SELECT seq, at, actor, action, challenge_id, device_id, cardholder_id, details, prev_hash, hash
         FROM audit_log WHERE challenge_id = $1 ORDER BY seq",
        id
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(AuditRow::decode).collect()
}

/// Re-computes the chain in `seq` order, streaming the rows. The first entry whose
/// sequence number, link or hash does not check out is reported (a missing entry is
/// reported by its sequence number); a row whose columns no longer decode counts as
/// broken too, since only tampering produces one.
pub(crate) async fn verify(s: &PgStore) -> StoreResult<ChainCheck> {
    let mut rows = sqlx::query_as!(
        AuditRow,
        "SELECT seq, at, actor, action, challenge_id, device_id, cardholder_id, details, prev_hash, hash
         FROM audit_log ORDER BY seq"
    )
    .fetch(s.pool());
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut expected: i64 = 1;
    while let Some(row) = rows.try_next().await.map_err(db)? {
        if row.seq != expected || row.prev_hash != prev_hash {
            return Ok(ChainCheck::Broken {
                seq: expected.min(row.seq),
            });
        }
        let seq = row.seq;
        let stored_hash = row.hash.clone();
        let Ok(entry) = row.decode() else {
            return Ok(ChainCheck::Broken { seq });
        };
        if entry_hash(&prev_hash, seq, &entry.draft) != stored_hash {
            return Ok(ChainCheck::Broken { seq });
        }
        prev_hash = stored_hash;
        expected += 1;
    }
    Ok(ChainCheck::Intact {
        entries: expected - 1,
    })
}
