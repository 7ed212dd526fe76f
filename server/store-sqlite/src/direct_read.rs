//! The direct read path for the hot reads (a device by id, a challenge by id, a
//! cardholder's devices, a card link by processor key, an outbox lane's next due time):
//! like the direct write path (see `direct`), a rusqlite connection
//! used on the calling thread, with cached statements, instead of sqlx's per-connection
//! worker thread and its two thread wake-ups per statement. Two connections, so the two
//! runtime threads never wait for each other; a reader never waits for the writer (WAL).
//! In-memory databases (tests) read through the pool instead: their shared cache would
//! make readers and the writer lock each other's tables.
//!
//! The statements here are checked by the conformance suite (every read of a device or
//! a challenge goes through them on file databases).

use std::time::Duration;

use pushauth_store::*;
use rusqlite::{Connection, Row};
use tokio::sync::Mutex;

use crate::direct::{backend, open_writer};
use crate::rows::{CardLinkRow, ChallengeRow, DeviceRow};

/// Reader connections.
pub(crate) struct Readers(Vec<Mutex<Connection>>);

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Readers({})", self.0.len())
    }
}

impl Readers {
    /// Opens `n` read connections to the file database at `filename`.
    pub(crate) fn open(
        filename: &std::path::Path,
        n: usize,
        busy_timeout: Duration,
        mmap_size: u64,
    ) -> StoreResult<Readers> {
        (0..n)
            .map(|_| open_writer(filename, false, busy_timeout, mmap_size).map(Mutex::new))
            .collect::<StoreResult<Vec<_>>>()
            .map(Readers)
    }

    /// Runs `f` on a free reader (the first, waiting, when all are busy). One statement
    /// reads one consistent snapshot; `f` must not block on anything but SQLite.
    pub(crate) async fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        for conn in &self.0 {
            if let Ok(conn) = conn.try_lock() {
                return f(&conn);
            }
        }
        let conn = self.0[0].lock().await;
        f(&conn)
    }
}

const CHALLENGE_COLUMNS: &str = "id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce,
     txn_digest, deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
     final_status, created_at";

const DEVICE_COLUMNS: &str = "id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint,
     approval_jwk, approval_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment,
     failures, server_kid, created_at, updated_at";

fn challenge_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.get(0)?,
        cardholder_id: r.get(1)?,
        provider: r.get(2)?,
        provider_ref: r.get(3)?,
        kind: r.get(4)?,
        amount_minor: r.get(5)?,
        currency: r.get(6)?,
        payee: r.get(7)?,
        nonce: r.get(8)?,
        txn_digest: r.get(9)?,
        deadline: r.get(10)?,
        upstream_deadline: r.get(11)?,
        processor_input: r.get(12)?,
        context: r.get(13)?,
        status: r.get(14)?,
        upstream_status: r.get(15)?,
        closed_at: r.get(16)?,
        final_status: r.get(17)?,
        created_at: r.get(18)?,
    })
}

fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: r.get(0)?,
        cardholder_id: r.get(1)?,
        status: r.get(2)?,
        platform: r.get(3)?,
        label: r.get(4)?,
        signing_jwk: r.get(5)?,
        signing_thumbprint: r.get(6)?,
        approval_jwk: r.get(7)?,
        approval_thumbprint: r.get(8)?,
        agreement_jwk: r.get(9)?,
        agreement_thumbprint: r.get(10)?,
        push_token: r.get(11)?,
        push_environment: r.get(12)?,
        failures: r.get(13)?,
        server_kid: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
    })
}

/// A challenge by id (as `challenges::get_in`).
pub(crate) fn challenge_in(conn: &Connection, id: &str) -> StoreResult<Option<Challenge>> {
    let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query_map([id], challenge_row).map_err(backend)?;
    rows.next()
        .transpose()
        .map_err(backend)?
        .map(ChallengeRow::decode)
        .transpose()
}

/// A device by id (as `devices::get`).
pub(crate) fn device_in(conn: &Connection, id: &str) -> StoreResult<Option<Device>> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query_map([id], device_row).map_err(backend)?;
    rows.next()
        .transpose()
        .map_err(backend)?
        .map(DeviceRow::decode)
        .transpose()
}

/// The cardholder's devices, as `devices::list` orders them.
pub(crate) fn devices_in(conn: &Connection, cardholder: &str) -> StoreResult<Vec<Device>> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE cardholder_id = ?1 ORDER BY created_at, id"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt.query_map([cardholder], device_row).map_err(backend)?;
    rows.map(|row| row.map_err(backend).and_then(DeviceRow::decode))
        .collect()
}

/// The card link of a processor's card key (as `parties::card_link_resolve`).
pub(crate) fn card_link_in(
    conn: &Connection,
    provider: &str,
    key: &str,
) -> StoreResult<Option<CardLink>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, cardholder_id, provider, provider_key, label, created_at
             FROM card_links WHERE provider = ?1 AND provider_key = ?2",
        )
        .map_err(backend)?;
    let mut rows = stmt
        .query_map([provider, key], |r| {
            Ok(CardLinkRow {
                id: r.get(0)?,
                cardholder_id: r.get(1)?,
                provider: r.get(2)?,
                provider_key: r.get(3)?,
                label: r.get(4)?,
                created_at: r.get(5)?,
            })
        })
        .map_err(backend)?;
    rows.next()
        .transpose()
        .map_err(backend)?
        .map(CardLinkRow::decode)
        .transpose()
}

/// When an outbox lane has work next (as `outbox::next_due`).
pub(crate) fn next_due_in(conn: &Connection, lane: OutboxLane) -> StoreResult<Option<Millis>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT MIN(CASE WHEN leased_until IS NOT NULL AND leased_until >= next_attempt_at
                             THEN leased_until + 1 ELSE next_attempt_at END)
             FROM outbox WHERE status = 'pending'
               AND ((?1 AND kind IN ('push', 'dismiss')) OR (?2 AND kind = 'upstream'))",
        )
        .map_err(backend)?;
    let next: Option<i64> = stmt
        .query_row(
            [lane.takes_device_rows(), lane.takes_upstream_rows()],
            |r| r.get(0),
        )
        .map_err(backend)?;
    Ok(next.map(Millis))
}
