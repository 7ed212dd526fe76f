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
//! 1. passive checkpoints on a pooled connection, beside the writers (on sqlx's
//!    connection thread): they copy the bulk of the frames and `fsync` the database;
//!    one more pass while the last one still found many new frames (at most three);
//! 2. a passive checkpoint on the direct writer's connection, holding the write gate:
//!    no frame can be appended meanwhile, so it copies what phase 1 left (frames
//!    written during its last pass) and completes, and the next write starts the WAL
//!    over.
//!
//! Phase 2 holds the gate for a small copy and two `fsync`s: on the reference machine,
//! during the approval cycle at ~900 approvals/s, 5.6-5.8 ms median, 8 ms p90 (one
//! round every 100 ms; `RUST_LOG=pushauth_store_sqlite=debug` logs each round). Writers
//! wait for it; readers do not, and it runs on a blocking thread, not on one of the
//! runtime's. With one phase 1 pass every 250 ms it was 21 ms median
//! (the phase 1 pass took 64 ms, and phase 2 copied all that was written meanwhile).

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
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Phase 1 passes at most per round.
const MAX_PASSES: usize = 3;

/// Phase 1 stops once a pass found fewer new frames than this (~2 MB): what phase 2,
/// under the gate, then has to copy.
const FEW_FRAMES: i64 = 500;

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
        // Phase 1, beside the writers: passes until one finds few new frames.
        let mut last = None;
        for _ in 0..MAX_PASSES {
            let log = match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await
            {
                Ok((_, log, _)) => log,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    break;
                }
            };
            let appended = last.map_or(log, |l| log - l);
            last = Some(log);
            if appended < FEW_FRAMES {
                break;
            }
        }
        // Phase 2, under the gate: the rest, then the next write starts the WAL over.
        // On a blocking thread: the runtime's threads keep serving requests (and reads)
        // meanwhile; only writers wait, on the gate.
        let gate = Arc::clone(&gate).lock_owned().await;
        let done = tokio::task::spawn_blocking(move || {
            let mut gate = gate;
            let held = std::time::Instant::now();
            crate::gate::flush(&mut gate);
            let done = gate.1.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
            drop(gate);
            (done, held.elapsed())
        })
        .await;
        let Ok((done, held)) = done else {
            tracing::warn!("WAL checkpoint under the write gate panicked; retrying");
            continue;
        };
        let held_us = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        match done {
            Ok((log, copied)) => {
                tracing::debug!(log, copied, held_us, "WAL checkpoint under the write gate");
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint under the write gate failed; retrying");
            }
        }
    }
}
