//! Group commit on the direct write path.
//!
//! Every SQLite commit writes each page it changed to the WAL (a 4 KB frame each),
//! and the write gate lets one transaction run at a time. Under load the gate is the
//! SQLite store's bottleneck: during the approval cycle at ~850 approvals/s, ~99 % of
//! the direct writes (about 5,800 a second) found it taken (counted in a throw-away
//! build; docs/benchmarks.md, fourth round). So a direct write that finds other direct
//! writers waiting for the gate does not commit: it leaves its work in the open
//! transaction (a *batch*, each member inside a savepoint of its own) and waits; the
//! next holder of the gate adds its own work and commits, or leaves it open in turn,
//! up to [`MAX_MEMBERS`]. Pages that several members change (the rightmost leaves of
//! the outbox, the audit log, time-ordered indexes) go to the WAL once per batch, and
//! the commit's fixed costs are paid once.
//!
//! Nothing changes for the callers: a write returns only after the commit that holds
//! its work (persist before acknowledging); a member whose own work failed is rolled
//! back to its savepoint and does not affect the others; a failed commit fails every
//! member. Whoever takes the gate for something else (a write on the pooled path, the
//! checkpointer) commits the open batch first. A member that waits also queues for
//! the gate again, so that if nobody else comes, it commits the batch itself.
//!
//! One difference: a caller cancelled while it waits (its future dropped) still has
//! its work committed with the batch, as a caller cancelled just after its own commit
//! would; what it meant to do next (an inline delivery) is left to the outbox workers,
//! after the lease, as after a crash.

use std::sync::atomic::{AtomicUsize, Ordering};

use pushauth_store::{StoreError, StoreResult};
use tokio::sync::watch;

use crate::{ChainHead, SqliteStore};

/// Members at most per batch. 32 against 8: +8–12 % approvals/s in the cycle; 128
/// measured the same as 32 (docs/benchmarks.md, fourth round).
pub(crate) const MAX_MEMBERS: usize = 32;

/// The open batch: a `BEGIN IMMEDIATE` transaction on the direct writer's connection,
/// with the work of `members` writers in it, not yet committed.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) members: usize,
    done: watch::Sender<Option<Result<(), String>>>,
}

/// A writer's membership of a batch it left open: the batch's outcome, once known.
pub(crate) type Member = watch::Receiver<Option<Result<(), String>>>;

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            members: 0,
            done: watch::Sender::new(None),
        }
    }

    pub(crate) fn member(&self) -> Member {
        self.done.subscribe()
    }
}

/// Direct writers waiting for the gate. Only for file databases:
/// an in-memory database's shared cache would let an open batch lock readers out of
/// the tables it wrote.
#[derive(Debug, Default)]
pub(crate) struct Group {
    waiting: AtomicUsize,
}

/// Counts a direct writer as waiting for the gate until dropped.
pub(crate) struct Waiting<'a>(&'a Group);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Group {
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    /// Whether another direct writer is waiting for the gate.
    pub(crate) fn others_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }
}

/// Commits the open batch, if any, and tells its members. On failure the audit
/// chain's head is unknown again.
pub(crate) fn finish(g: &mut ChainHead) -> StoreResult<()> {
    let Some(batch) = g.2.take() else {
        return Ok(());
    };
    let result = match g.1.execute_batch("COMMIT") {
        Ok(()) => Ok(()),
        Err(e) => {
            roll_back(g);
            Err(format!("commit failed: {e}"))
        }
    };
    batch.done.send_replace(Some(result.clone()));
    result.map_err(StoreError::Backend)
}

/// The open transaction is gone or unusable (SQLite rolled it back, or a savepoint
/// failed): every member of the batch fails.
pub(crate) fn abandon(g: &mut ChainHead, why: &StoreError) {
    roll_back(g);
    if let Some(batch) = g.2.take() {
        batch
            .done
            .send_replace(Some(Err(format!("transaction rolled back: {why}"))));
    }
}

/// Rolls back whatever is still open on the writer's connection; the audit chain's
/// head is unknown again (its last entries may be gone).
fn roll_back(g: &mut ChainHead) {
    if !g.1.is_autocommit() {
        let _ = g.1.execute_batch("ROLLBACK");
    }
    g.0 = None;
}

/// Waits until the batch this writer left open is committed: by a later holder of the
/// gate, or by this writer when it gets the gate back with the batch still open. A
/// batch leaves the gate only through `finish` or `abandon`, which both publish its
/// outcome, so a batch without an outcome yet is the open one.
pub(crate) async fn wait(s: &SqliteStore, mut rx: Member) -> StoreResult<()> {
    loop {
        let mut gate = tokio::select! {
            biased;
            done = rx.wait_for(Option::is_some) => {
                return match done {
                    Ok(v) => v.clone().unwrap_or(Ok(())).map_err(StoreError::Backend),
                    Err(_) => Err(StoreError::Backend("write batch lost".into())),
                };
            }
            gate = s.gate.lock() => gate,
        };
        if rx.borrow().is_none() {
            return finish(&mut gate);
        }
        // Finished by another holder: the outcome is in `rx` now.
    }
}

#[cfg(test)]
mod tests {
    //! The batch's own rules, on a scratch database: a refused member leaves the
    //! others' work alone; a commit that fails fails every member.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::direct::{backend, member, open_writer};

    fn scratch() -> (tempfile::TempDir, ChainHead) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY,
                                 parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        drop(conn);
        let writer = open_writer(&path, false, std::time::Duration::from_secs(1), 0).unwrap();
        (dir, ChainHead(Some((1, "head".into())), writer, None))
    }

    fn insert(
        sql: &'static str,
    ) -> impl FnOnce(&mut crate::direct::DirectTx<'_>) -> StoreResult<()> {
        move |tx| tx.exec(sql, []).map(drop).map_err(backend)
    }

    fn count(g: &ChainHead, table: &str) -> i64 {
        g.1.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// One direct write of `sql` as a member of `group`'s batching.
    fn write(group: &Group, g: &mut ChainHead, sql: &'static str) -> StoreResult<Option<Member>> {
        member(Some(group), g, insert(sql)).map(|((), m)| m)
    }

    fn outcome(m: &Member) -> Option<Result<(), String>> {
        m.borrow().clone()
    }

    #[test]
    fn a_refused_member_leaves_the_batch_alone() {
        let (_dir, mut g) = scratch();
        let group = Group::default();
        let waiting = group.waiting();
        let first = write(&group, &mut g, "INSERT INTO parent (id) VALUES (1)")
            .unwrap()
            .expect("left open while another writer waits");
        let refused = write(&group, &mut g, "INSERT INTO parent (id) VALUES (1)");
        assert!(refused.is_err(), "duplicate key refused");
        assert!(g.2.is_some(), "the batch stays open for the waiting writer");
        drop(waiting);
        let last = write(&group, &mut g, "INSERT INTO parent (id) VALUES (2)").unwrap();
        assert!(last.is_none(), "nobody waits: committed");
        assert_eq!(outcome(&first), Some(Ok(())));
        assert!(g.2.is_none() && g.1.is_autocommit());
        assert_eq!(count(&g, "parent"), 2);
        assert_eq!(g.0, Some((1, "head".into())));
    }

    #[test]
    fn a_failed_commit_fails_every_member() {
        let (_dir, mut g) = scratch();
        let group = Group::default();
        let waiting = group.waiting();
        let first = write(&group, &mut g, "INSERT INTO parent (id) VALUES (1)").unwrap();
        // A deferred foreign key: accepted now, refused by the COMMIT.
        let second = write(
            &group,
            &mut g,
            "INSERT INTO child (id, parent) VALUES (1, 99)",
        )
        .unwrap();
        drop(waiting);
        let last = write(&group, &mut g, "INSERT INTO parent (id) VALUES (2)");
        assert!(last.is_err(), "the last member sees the failed commit");
        for m in [first.unwrap(), second.unwrap()] {
            assert!(matches!(outcome(&m), Some(Err(_))), "{:?}", outcome(&m));
        }
        assert!(
            g.2.is_none() && g.1.is_autocommit(),
            "rolled back, nothing open"
        );
        assert_eq!(count(&g, "parent") + count(&g, "child"), 0);
        assert_eq!(g.0, None, "the chain head is unknown after a failed commit");
    }

    #[test]
    fn without_group_every_write_commits_alone() {
        let (_dir, mut g) = scratch();
        let (_, m) = member(None, &mut g, insert("INSERT INTO parent (id) VALUES (1)")).unwrap();
        assert!(m.is_none() && g.2.is_none() && g.1.is_autocommit());
        assert_eq!(count(&g, "parent"), 1);
    }

    /// SQLite's temporary files that this process holds open. They are unlinked as soon
    /// as they are opened, so only the process's descriptors still name them.
    #[cfg(target_os = "linux")]
    fn temporary_files() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|target| target.to_string_lossy().contains("etilqs_"))
            .count()
    }

    /// A member's savepoint keeps the pages it changes first in a statement journal;
    /// past 64 KiB SQLite would spill that journal to a temporary file, and write
    /// every page there as well as to the WAL.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_members_statement_journal_stays_in_memory() {
        let (_dir, mut g) = scratch();
        g.1.execute_batch(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO big (id, b) SELECT i, zeroblob(1000) FROM n;",
        )
        .unwrap();
        let ((), m) = member(None, &mut g, |tx| {
            // ~100 pages that existed before the savepoint: 400 KiB of journal.
            tx.exec("UPDATE big SET b = randomblob(1000)", [])
                .map_err(backend)?;
            assert_eq!(temporary_files(), 0, "statement journal written to a file");
            Ok(())
        })
        .unwrap();
        assert!(m.is_none());
    }
}
