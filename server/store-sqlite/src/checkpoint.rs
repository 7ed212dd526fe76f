//! The background WAL checkpointer.
//!
//! SQLite starts the WAL file over (a *restart*) only when a writer begins while every
//! frame of the WAL has been copied back into the database and no reader still uses
//! the WAL. A passive checkpoint beside the writers never gets there under sustained
//! load: frames are appended while it copies, so it always ends a few frames short,
//! and the WAL grows for as long as the load lasts (measured: 2.4 GB after 18 s of the
//! SQLite approval cycle, 130 MB/s, every new frame landing on a freshly allocated
//! and zeroed file page: the kernel's `zero_user_segments` was 11 % of the server's
//! CPU). So each round has two phases:
//!
//! 1. a passive checkpoint on a pooled connection, beside the writers: it copies the
//!    bulk of the frames and `fsync`s the database, on sqlx's connection thread;
//! 2. a passive checkpoint on the direct writer's connection, holding the write gate:
//!    no frame can be appended meanwhile, so it copies what phase 1 left (frames
//!    written during phase 1) and completes, and the next write starts the WAL over.
//!
//! Phase 2 holds the gate for one small copy and two `fsync`s (measured on the
//! reference machine's disk: ~0.15 ms each). Writers wait for it; readers do not.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::{Mutex, watch};

use crate::ChainHead;

/// The background WAL checkpointer's off switch (see [`CHECKPOINT_EVERY`]).
#[derive(Debug)]
pub(crate) struct Checkpointer(pub(crate) watch::Sender<bool>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// How often the background checkpointer copies the WAL back into the database.
/// The direct path's connection does not checkpoint in its commits
/// (`wal_autocheckpoint=0`): a checkpoint `fsync`s the database file, and inside a
/// commit on the direct path that stalled every writer queued behind the gate
/// (measured: single ~100 ms stalls in the cycle's p99, when the WAL had grown large).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The size the WAL file is cut back to when it starts over (SQLite's
/// `journal_size_limit`): room for a few checkpoint intervals of sustained load, so
/// that frames overwrite pages the file already has.
pub(crate) const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

pub(crate) async fn run_checkpointer(
    pool: SqlitePool,
    gate: Arc<Mutex<ChainHead>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            continue;
        }
        let gate = gate.lock().await;
        let done = gate.1.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        drop(gate);
        match done {
            Ok((log, copied)) if log != copied => {
                tracing::debug!(
                    log,
                    copied,
                    "WAL checkpoint left frames a reader still uses"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint under the write gate failed; retrying")
            }
        }
    }
}
