//! The background WAL checkpointer.

use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::watch;

/// The background WAL checkpointer's off switch (see [`CHECKPOINT_EVERY`]).
#[derive(Debug)]
pub(crate) struct Checkpointer(pub(crate) watch::Sender<bool>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// How often the background checkpointer copies the WAL back into the database.
/// The direct path's connection does not checkpoint itself (`wal_autocheckpoint=0`):
/// a checkpoint `fsync`s the database file, and inside a commit on the direct path that
/// stalled every writer queued behind the gate (measured: single ~100 ms stalls in
/// the cycle's p99). A passive checkpoint on a pooled connection runs on sqlx's
/// connection thread and never blocks writers.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

pub(crate) async fn run_checkpointer(pool: SqlitePool, mut stop: watch::Receiver<bool>) {
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
        }
    }
}
