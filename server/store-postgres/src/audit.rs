//! The hash-chained audit log, linked after commit.
//!
//! A change appends its audit row inside its own transaction, *unchained*: an
//! identity `id`, no `seq`, no hashes. A chainer then links the committed rows in `id`
//! order: it reads the last chained `(seq, hash)`, gives each unchained row the next
//! `seq`, its `prev_hash` and `hash`, and commits. Only one chainer runs at a time per
//! schema, across instances, under a transaction-scoped advisory lock.
//!
//! Why not link inside each transaction: every appender would have to hold that lock
//! from reading the last entry until its commit, including the commit's WAL flush, so
//! all writing transactions of all instances would queue behind one another (measured:
//! the webhook ingest rate was bounded by it, see docs/benchmarks.md). Linking after
//! commit lets writers commit concurrently (PostgreSQL then flushes their commits
//! together) and costs one short transaction per batch of entries.
//!
//! What it changes: chain order is the order in which rows were linked (`seq`), which
//! follows `id` within a batch; a row committed late with a smaller `id` is linked in a
//! later batch. Rows are unchained for a short time after their commit (the chainer
//! runs every [`CHAIN_BUSY`] while there is work and every [`CHAIN_IDLE`] otherwise);
//! reads of the log ([`for_challenge`], [`verify`]) link everything first.

use std::time::Duration;

use futures::TryStreamExt as _;
use pushauth_core::ids::ChallengeId;
use pushauth_store::{
    AuditDraft, AuditEntry, ChainCheck, GENESIS_HASH, StoreError, StoreResult, entry_hash,
};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::PgStore;
use crate::error::{db, json_text};
use crate::rows::{AuditRow, UnchainedRow};

/// First key of the chainer's advisory lock ("pa" + "ud", i.e. pushauth audit).
const AUDIT_LOCK_CLASS: i32 = 0x7061_7564;
/// Most rows linked in one transaction.
const CHAIN_BATCH: i64 = 1_000;
/// Pause between chainer runs while rows keep arriving.
pub(crate) const CHAIN_BUSY: Duration = Duration::from_millis(20);
/// Pause between chainer runs when the last run found nothing.
pub(crate) const CHAIN_IDLE: Duration = Duration::from_millis(250);
/// Pause after a failed run (database unreachable, not migrated yet).
const CHAIN_RETRY: Duration = Duration::from_secs(2);

/// Appends `draft`, unchained, on the caller's transaction, with the issuer event it
/// causes (if any).
pub(crate) async fn append(conn: &mut PgConnection, draft: &AuditDraft) -> StoreResult<()> {
    let details = json_text(&draft.details)?;
    let challenge = draft.challenge.as_ref().map(|c| c.as_str());
    let device = draft.device.as_ref().map(|d| d.as_str());
    let cardholder = draft.cardholder.as_ref().map(|c| c.as_str());
    sqlx::query!(
        "INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        draft.at.0,
        draft.actor,
        draft.action,
        challenge,
        device,
        cardholder,
        details,
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    crate::events::insert_for(conn, draft).await
}

/// How a chainer run treats another instance's chainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Skip the run if another chainer holds the lock (it links our rows too).
    No,
    /// Wait for the lock: everything committed before the call is linked on return.
    Yes,
}

/// What a chainer run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chained {
    /// Rows linked (0 when another chainer held the lock and the run did not wait).
    pub linked: u64,
    /// The `id` of an unchained row that no longer decodes (edited in the database):
    /// linking it would vouch for it, so the chainer stops before it.
    pub stuck_at: Option<i64>,
}

/// Links unchained rows, batch by batch, until none is left (or one cannot be linked).
pub(crate) async fn chain_pending(pool: &PgPool, wait: Wait) -> StoreResult<Chained> {
    let mut linked = 0;
    loop {
        let batch = chain_batch(pool, wait).await?;
        linked += batch.linked;
        if batch.stuck_at.is_some() || batch.linked < CHAIN_BATCH as u64 {
            return Ok(Chained {
                linked,
                stuck_at: batch.stuck_at,
            });
        }
    }
}

/// Links up to [`CHAIN_BATCH`] rows in one transaction.
async fn chain_batch(pool: &PgPool, wait: Wait) -> StoreResult<Chained> {
    let idle = Chained {
        linked: 0,
        stuck_at: None,
    };
    let mut tx = pool.begin().await.map_err(db)?;
    // One lock per schema, so stores in separate schemas of one database (tests,
    // several tenants) do not wait for each other.
    if wait == Wait::Yes {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
            AUDIT_LOCK_CLASS
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    } else {
        let got = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema())) AS "got!""#,
            AUDIT_LOCK_CLASS
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if !got {
            // End the transaction now rather than on the connection's next use.
            tx.rollback().await.map_err(db)?;
            return Ok(idle);
        }
    }
    let rows = sqlx::query_as!(
        UnchainedRow,
        "SELECT id, at, actor, action, challenge_id, device_id, cardholder_id, details
         FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1",
        CHAIN_BATCH
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        // Release the lock now rather than on the connection's next use.
        tx.rollback().await.map_err(db)?;
        return Ok(idle);
    }
    let last = sqlx::query!(
        r#"SELECT seq AS "seq!", hash AS "hash!" FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"#
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let (mut seq, mut prev_hash) = match last {
        Some(row) => (row.seq, row.hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let n = rows.len();
    let (mut ids, mut seqs, mut prevs, mut hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut stuck_at = None;
    for row in rows {
        let id = row.id;
        let Ok(draft) = row.decode() else {
            stuck_at = Some(id);
            break;
        };
        seq += 1;
        let hash = entry_hash(&prev_hash, seq, &draft);
        ids.push(id);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut prev_hash, hash.clone()));
        hashes.push(hash);
    }
    let updated = sqlx::query!(
        "UPDATE audit_log AS a SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash
         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(id, seq, prev_hash, hash)
         WHERE a.id = u.id AND a.seq IS NULL",
        &ids,
        &seqs,
        &prevs,
        &hashes,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if updated.rows_affected() != ids.len() as u64 {
        return Err(StoreError::Backend(format!(
            "audit chainer linked {} of {} rows: another chainer ran without the lock",
            updated.rows_affected(),
            ids.len()
        )));
    }
    tx.commit().await.map_err(db)?;
    Ok(Chained {
        linked: ids.len() as u64,
        stuck_at,
    })
}

/// The chainer task of one store: links rows every [`CHAIN_BUSY`] while there are
/// some, every [`CHAIN_IDLE`] otherwise. Errors are logged and retried. It stops when
/// `stop` says so or its sender is gone, but only between runs: a run is never cut
/// off inside its transaction (an aborted task would leave the connection idle in a
/// transaction, holding its locks, until the pool noticed).
pub(crate) async fn run_chainer(pool: PgPool, mut stop: watch::Receiver<bool>) {
    // The store is usually migrated right after it connects: let that happen first.
    let mut pause = CHAIN_IDLE;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        if *stop.borrow() {
            return;
        }
        pause = match chain_pending(&pool, Wait::No).await {
            Ok(Chained {
                stuck_at: Some(id), ..
            }) => {
                tracing::error!(
                    audit_row = id,
                    "audit row edited before it was chained: the chain stops before it"
                );
                CHAIN_IDLE
            }
            Ok(Chained { linked: 0, .. }) => CHAIN_IDLE,
            Ok(_) => CHAIN_BUSY,
            Err(e) => {
                tracing::error!(error = %e, "audit chainer failed; retrying");
                CHAIN_RETRY
            }
        };
    }
}

/// The chained entries of challenge `id`, in chain order, after linking everything
/// committed so far.
pub(crate) async fn for_challenge(s: &PgStore, id: &ChallengeId) -> StoreResult<Vec<AuditEntry>> {
    chain_pending(s.pool(), Wait::Yes).await?;
    let id = id.as_str();
    let rows = sqlx::query_as!(
        AuditRow,
        r#"SELECT seq AS "seq!", at, actor, action, challenge_id, device_id, cardholder_id, details,
                  prev_hash AS "prev_hash!", hash AS "hash!"
         FROM audit_log WHERE challenge_id = $1 AND seq IS NOT NULL ORDER BY seq"#,
        id
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(AuditRow::decode).collect()
}

/// Links everything committed so far, then re-computes the chain in `seq` order,
/// streaming the rows. The first entry whose sequence number, link or hash does not
/// check out is reported (a missing entry is reported by its sequence number); a row
/// whose columns no longer decode counts as broken too, since only tampering produces
/// one, and so does a row the chainer could not link.
pub(crate) async fn verify(s: &PgStore) -> StoreResult<ChainCheck> {
    let stuck = chain_pending(s.pool(), Wait::Yes).await?.stuck_at.is_some();
    let mut rows = sqlx::query_as!(
        AuditRow,
        r#"SELECT seq AS "seq!", at, actor, action, challenge_id, device_id, cardholder_id, details,
                  prev_hash AS "prev_hash!", hash AS "hash!"
         FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"#
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
    if stuck {
        return Ok(ChainCheck::Broken { seq: expected });
    }
    Ok(ChainCheck::Intact {
        entries: expected - 1,
    })
}
