//! The direct write path for the hot transactions: challenge creation (one per
//! processor webhook), decisions, request nonces and the outbox's claims and
//! completions (several per approval).
//!
//! sqlx runs each SQLite connection on its own worker thread and hands every
//! statement to it and every result back through channels: two thread wake-ups per
//! statement. On the reference machine (a 2-vCPU VM) a wake-up costs tens of
//! microseconds, so a webhook's transaction (begin, look-ups, inserts, audit, commit)
//! spent most of its ~0.5 ms in the scheduler while holding the write lock, and that
//! bounded ingest throughput (measured; docs/benchmarks.md). Here the transaction
//! runs on the calling thread instead, on a rusqlite connection of its own (no
//! hand-off at all), with prepared statements cached, inside the same write gate as
//! every other writer. (Borrowing a pooled connection's raw handle with sqlx's
//! `lock_handle` was tried first: after some 17,000 hand-backs in a tight loop it hung
//! in sqlx's unlock/relock handshake, so the path owns its connection instead.)
//!
//! The statements here are checked by the conformance suite rather than at compile
//! time (sqlx's macros only cover sqlx's own execution).

use std::path::Path;
use std::time::Duration;

use pushauth_store::*;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension as _, Params, Row, params};

use crate::error::json_text;
use crate::{ChainHead, SqliteStore, TEMP_STORE, group};

/// Prepared statements kept per direct connection.
const STATEMENT_CACHE: usize = 128;

/// A write transaction on the calling thread (one member's part of it, see `group`).
pub(crate) struct DirectTx<'c> {
    tx: &'c Connection,
    /// The chain head as last written (from the write gate), if known.
    committed_head: Option<(i64, String)>,
    /// The chain head after this transaction's appends.
    head: Option<(i64, String)>,
}

/// Opens the direct path's connection to the database the pool uses: the same file,
/// or, for an in-memory database, sqlx's shared-cache database of that name. Same
/// settings as the pool's connections.
pub(crate) fn open_writer(
    filename: &Path,
    in_memory: bool,
    busy_timeout: Duration,
    mmap_size: u64,
) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if in_memory {
        let uri = format!("{}?mode=memory&cache=shared", filename.display());
        Connection::open_with_flags(
            uri,
            flags | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
        )
    } else {
        Connection::open_with_flags(filename, flags)
    }
    .map_err(backend)?;
    conn.busy_timeout(busy_timeout).map_err(backend)?;
    // Room for every hot statement (rusqlite keeps 16 by default; the writer's
    // connection alone runs more than that per approval, and an evicted statement is
    // parsed and planned again).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(backend)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(backend)?;
    conn.pragma_update(None, "temp_store", TEMP_STORE)
        .map_err(backend)?;
    if !in_memory {
        // Checkpoints run in the background (see `CHECKPOINT_EVERY`), not in our commits.
        conn.pragma_update_and_check(None, "wal_autocheckpoint", 0, |_| Ok(()))
            .map_err(backend)?;
        // When this connection starts the WAL over, it cuts the file back to this size.
        conn.pragma_update_and_check(
            None,
            "journal_size_limit",
            crate::checkpoint::WAL_SIZE_LIMIT,
            |_| Ok(()),
        )
        .map_err(backend)?;
        conn.pragma_update_and_check(
            None,
            "mmap_size",
            i64::try_from(mmap_size).unwrap_or(i64::MAX),
            |_| Ok(()),
        )
        .map_err(backend)?;
    }
    Ok(conn)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction on the direct path's connection, on
/// this thread, holding the write gate, inside a savepoint of its own; its work is
/// committed (perhaps with other writers', see `group`) before this returns `Ok`, and
/// rolled back when `f` returns an error. Nothing here awaits once the gate is held:
/// `f` must not block on anything but SQLite (whose busy timeout only runs out when
/// another process holds the write lock).
pub(crate) async fn write<T>(
    s: &SqliteStore,
    f: impl FnOnce(&mut DirectTx<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let (value, member) = {
        let waiting = s.group.as_deref().map(group::Group::waiting);
        let mut gate = s.gate.lock().await;
        drop(waiting);
        member(s.group.as_deref(), &mut gate, f)?
    };
    match member {
        Some(member) => group::wait(s, member).await.map(|()| value),
        None => Ok(value),
    }
}

/// Runs `f` as a member of the open batch (opening one if needed); then commits the
/// batch, or, when other direct writers wait for the gate, leaves it open and returns
/// the membership to wait on.
pub(crate) fn member<T>(
    group: Option<&group::Group>,
    g: &mut ChainHead,
    f: impl FnOnce(&mut DirectTx<'_>) -> StoreResult<T>,
) -> StoreResult<(T, Option<group::Member>)> {
    let others_waiting = || group.is_some_and(group::Group::others_waiting);
    if g.2.is_none() {
        g.1.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
        g.2 = Some(group::Batch::new());
    }
    if let Err(e) = g.1.execute_batch("SAVEPOINT direct_write") {
        let e = backend(e);
        group::abandon(g, &e);
        return Err(e);
    }
    let mut d = DirectTx {
        tx: &g.1,
        committed_head: g.0.clone(),
        head: None,
    };
    let result = f(&mut d);
    let appended = d.head;
    let released = result.and_then(|v| {
        g.1.execute_batch("RELEASE direct_write")
            .map(|()| v)
            .map_err(backend)
    });
    let value = match released {
        Ok(v) => v,
        Err(e) => {
            // SQLite rolls the whole transaction back after some errors (a full disk,
            // an I/O error): then every member fails. Otherwise only this one's work goes.
            if g.1.is_autocommit()
                || g.1
                    .execute_batch("ROLLBACK TO direct_write; RELEASE direct_write")
                    .is_err()
            {
                group::abandon(g, &e);
            } else if !others_waiting() {
                // Earlier members' work stays: commit it, unless a waiting writer will.
                let _ = group::finish(g);
            }
            return Err(e);
        }
    };
    if appended.is_some() {
        g.0 = appended;
    }
    let Some(batch) = g.2.as_mut() else {
        return Err(StoreError::Backend("write batch missing".into()));
    };
    batch.members += 1;
    if batch.members < group::MAX_MEMBERS && others_waiting() {
        return Ok((value, Some(batch.member())));
    }
    group::finish(g).map(|()| (value, None))
}

impl DirectTx<'_> {
    /// Runs a statement; the number of rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// The first row of a query, mapped, if any.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row(params, map).optional())
            .map_err(backend)
    }

    /// Every row of a query, mapped.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Vec<T>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(backend)?;
        let rows = stmt.query_map(params, map).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(backend)
    }

    /// A challenge by id (as `challenges::get_in`).
    pub(crate) fn challenge(&self, id: &str) -> StoreResult<Option<Challenge>> {
        crate::direct_read::challenge_in(self.tx, id)
    }

    /// What `challenge_create_planned` reads first: the id of an existing challenge
    /// with this reference, the cardholder's status, its pending count.
    pub(crate) fn lookup(
        &self,
        provider: &str,
        reference: &str,
        cardholder: &str,
        now: Millis,
    ) -> StoreResult<(Option<String>, Option<String>, i64)> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT (SELECT id FROM challenges WHERE provider = ?1 AND provider_ref = ?2),
                        (SELECT status FROM cardholders WHERE id = ?3),
                        (SELECT COUNT(*) FROM challenges
                          WHERE cardholder_id = ?3 AND status = 'pending' AND deadline > ?4)",
            )
            .map_err(backend)?;
        stmt.query_row(params![provider, reference, cardholder, now.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(backend)
    }

    /// The cardholder's devices, as `devices::list` orders them.
    pub(crate) fn devices(&self, cardholder: &str) -> StoreResult<Vec<Device>> {
        crate::direct_read::devices_in(self.tx, cardholder)
    }

    /// Inserts a challenge, `ON CONFLICT (provider, provider_ref) DO NOTHING`; false
    /// when it conflicted.
    pub(crate) fn insert_challenge(
        &self,
        new: &NewChallenge,
        upstream: UpstreamStatus,
    ) -> StoreResult<bool> {
        let context = json_text(&new.context)?;
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee,
                                         nonce, txn_digest, deadline, upstream_deadline, processor_input, context,
                                         status, upstream_status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', ?15, ?16)
                 ON CONFLICT (provider, provider_ref) DO NOTHING",
            )
            .map_err(backend)?;
        let inserted = stmt
            .execute(params![
                new.id.as_str(),
                new.cardholder.as_str(),
                new.provider.as_str(),
                new.provider_ref.as_str(),
                new.kind.as_str(),
                new.amount.map(|m| m.minor()),
                new.amount.map(|m| m.currency().code()),
                new.payee.as_ref().map(|p| p.as_str()),
                new.nonce.as_str(),
                new.txn_digest.to_string(),
                new.deadline.0,
                new.upstream_deadline.0,
                new.processor_input,
                context,
                upstream.as_str(),
                new.created_at.0,
            ])
            .map_err(|e| classify(e, "challenge id exists", "cardholder"))?;
        Ok(inserted == 1)
    }

    /// Inserts outbox rows (status `pending`, due at `not_before`; claimed when
    /// `claimed_until` is set). Returns the ids, in order.
    pub(crate) fn insert_outbox(
        &self,
        rows: &[NewOutbox],
        created_at: Millis,
    ) -> StoreResult<Vec<OutboxId>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at,
                                     deadline, created_at, claim_no, leased_until)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(backend)?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            stmt.execute(params![
                row.kind.as_str(),
                row.challenge.as_str(),
                row.device.as_ref().map(|d| d.as_str()),
                json_text(&row.payload)?,
                row.not_before.0,
                row.deadline.0,
                created_at.0,
                i64::from(row.claimed_until.is_some()),
                row.claimed_until.map(|m| m.0),
            ])
            .map_err(|e| classify(e, "outbox row exists", "outbox challenge or device"))?;
            ids.push(OutboxId(self.tx.last_insert_rowid()));
        }
        Ok(ids)
    }

    /// Appends `draft` as the next entry of the audit chain, with the issuer event it
    /// causes (see `audit::append`).
    pub(crate) fn append(&mut self, draft: &AuditDraft) -> StoreResult<()> {
        let details = json_text(&draft.details)?;
        let mut known = self.head.clone().or_else(|| self.committed_head.clone());
        for _ in 0..2 {
            let (prev_seq, prev_hash) = match known.take() {
                Some(head) => head,
                None => self.read_head()?,
            };
            let seq = prev_seq + 1;
            let hash = entry_hash(&prev_hash, seq, draft);
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO audit_log (seq, at, actor, action, challenge_id, device_id, cardholder_id, details,
                                            prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(backend)?;
            let inserted = stmt.execute(params![
                seq,
                draft.at.0,
                draft.actor,
                draft.action,
                draft.challenge.as_ref().map(|c| c.as_str()),
                draft.device.as_ref().map(|d| d.as_str()),
                draft.cardholder.as_ref().map(|c| c.as_str()),
                details,
                prev_hash,
                hash,
            ]);
            match inserted {
                Ok(_) => {
                    self.head = Some((seq, hash));
                    return crate::events::insert_for_direct(self, draft);
                }
                // another process appended since the head was known
                Err(e) if is_primary_key_violation(&e) => continue,
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Backend(
            "audit chain head moved twice during one append".into(),
        ))
    }

    fn read_head(&self) -> StoreResult<(i64, String)> {
        let last = self
            .tx
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        Ok(last.unwrap_or((0, GENESIS_HASH.to_owned())))
    }
}

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// As `error::classify`, for rusqlite: unique violations → `Conflict`, foreign-key
/// violations → `NotFound`, anything else → `Backend`.
pub(crate) fn classify(
    e: rusqlite::Error,
    conflict: &'static str,
    missing: &'static str,
) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == ErrorCode::ConstraintViolation
    {
        match f.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Conflict(conflict);
            }
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::NotFound(missing),
            _ => {}
        }
    }
    backend(e)
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}
