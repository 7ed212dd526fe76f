//! The write gate's contents and the sqlx write transaction that holds it.

use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

/// What the write gate guards.
///
/// `.0`: the last written audit entry's `(seq, hash)`, once known (committed, unless
/// a batch is open). Only this
/// process's writers, serialised by the gate, change it; an entry appended by another
/// process (a CLI command beside the server) makes the next append collide on `seq`,
/// which re-reads the head from the database (see `audit::append`).
///
/// `.1`: the connection of the direct write path (see the `direct` module), a plain
/// rusqlite connection outside sqlx's pool, so that the hot transactions always run
/// on the same connection, whose page cache and prepared statements stay warm.
///
/// `.2`: the direct path's open batch of writes, if any (see the `group` module). Any
/// holder of the gate that is not a direct writer commits it first ([`flush`]).
#[derive(Debug)]
pub(crate) struct ChainHead(
    pub(crate) Option<(i64, String)>,
    pub(crate) rusqlite::Connection,
    pub(crate) Option<crate::group::Batch>,
);

/// Commits the direct path's open batch, if any, before the gate is used for
/// something else. A failed commit is reported to the batch's members, not here.
pub(crate) fn flush(g: &mut ChainHead) {
    if let Err(e) = crate::group::finish(g) {
        tracing::warn!(error = %e, "committing a batch of direct writes failed");
    }
}

/// A write transaction (`BEGIN IMMEDIATE`) holding the write gate until it commits
/// or is dropped (rolled back).
pub(crate) struct WriteTx {
    // Field order matters: the transaction rolls back (when not committed) before
    // the gate opens for the next writer.
    pub(crate) tx: Transaction<'static, Sqlite>,
    pub(crate) gate: OwnedMutexGuard<ChainHead>,
    /// The chain's head after this transaction's appends, published at commit.
    pub(crate) head: Option<(i64, String)>,
}

impl WriteTx {
    /// The chain head this transaction appends after, if known without a read.
    pub(crate) fn known_head(&self) -> Option<(i64, String)> {
        self.head.clone().or_else(|| self.gate.0.clone())
    }

    /// Commits, publishes the new chain head, then opens the gate.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let WriteTx { tx, mut gate, head } = self;
        match tx.commit().await {
            Ok(()) => {
                if head.is_some() {
                    gate.0 = head;
                }
                Ok(())
            }
            Err(e) => {
                // The commit's outcome is unknown: read the head again next time.
                gate.0 = None;
                Err(e)
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}
