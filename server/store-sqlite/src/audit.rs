//! The hash-chained audit log. Entries are appended inside the transaction of the
//! change they describe; the write gate and `BEGIN IMMEDIATE` already serialise
//! writers, so the chain's head cannot move under an appender. The head as last
//! committed is kept in the gate, which saves reading it back in every transaction.

use futures::TryStreamExt as _;
use pushauth_core::ids::ChallengeId;
use pushauth_store::{
    AuditDraft, AuditEntry, ChainCheck, GENESIS_HASH, StoreError, StoreResult, entry_hash,
};
use sqlx::SqliteConnection;

use crate::error::{db, json_text};
use crate::rows::AuditRow;
use crate::{SqliteStore, WriteTx};

/// Appends `draft` as the next entry of the chain, on the caller's transaction, with
/// the issuer event it causes (if any).
pub(crate) async fn append(tx: &mut WriteTx, draft: &AuditDraft) -> StoreResult<()> {
    let details = json_text(&draft.details)?;
    let challenge = draft.challenge.as_ref().map(|c| c.as_str());
    let device = draft.device.as_ref().map(|d| d.as_str());
    let cardholder = draft.cardholder.as_ref().map(|c| c.as_str());
    let mut known = tx.known_head();
    // Two rounds at most: a head known from memory that another process has moved
    // on collides on `seq` (the primary key), and the head is then read back.
    for _ in 0..2 {
        let (prev_seq, prev_hash) = match known.take() {
            Some(head) => head,
            None => read_head(tx).await?,
        };
        let seq = prev_seq + 1;
        let hash = entry_hash(&prev_hash, seq, draft);
        let inserted = sqlx::query!(
            "INSERT INTO audit_log (seq, at, actor, action, challenge_id, device_id, cardholder_id, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
        .execute(&mut **tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.head = Some((seq, hash));
                return crate::events::insert_for(tx, draft).await;
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(db(e)),
        }
    }
    Err(StoreError::Backend(
        "audit chain head moved twice during one append".into(),
    ))
}

async fn read_head(conn: &mut SqliteConnection) -> StoreResult<(i64, String)> {
    let last = sqlx::query!("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    Ok(match last {
        Some(row) => (row.seq, row.hash),
        None => (0, GENESIS_HASH.to_owned()),
    })
}

pub(crate) async fn for_challenge(
    s: &SqliteStore,
    id: &ChallengeId,
) -> StoreResult<Vec<AuditEntry>> {
    let id = id.as_str();
    let rows = sqlx::query_as!(
        AuditRow,
        "SELECT seq, at, actor, action, challenge_id, device_id, cardholder_id, details, prev_hash, hash
         FROM audit_log WHERE challenge_id = ?1 ORDER BY seq",
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
pub(crate) async fn verify(s: &SqliteStore) -> StoreResult<ChainCheck> {
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
