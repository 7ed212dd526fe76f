//! Announcing committed changes: to this store's subscribers at once, to other
//! instances by `NOTIFY`, sent after the commit and coalesced.
//!
//! Why not `pg_notify` inside the writing transaction: PostgreSQL serialises the
//! commits of all transactions that queued a notification, database-wide (the notify
//! queue's lock is taken before the commit record and held until after its WAL flush),
//! so every creation and decision of every instance waited for the previous one's
//! `fsync` and commits could not be flushed together. Measured on the reference
//! machine: see docs/benchmarks.md ("Third round").
//!
//! What it changes: a notification is sent after its change committed (never for a
//! rolled-back change, as before), by one task per store that sends everything queued
//! meanwhile in one statement on its own connection (no WAL flush: a transaction that
//! only notifies writes no WAL). If the process dies between a commit and that
//! statement, other instances miss a wake-up, as they already could when their LISTEN
//! connection drops; their workers poll every `[workers] idle_poll_ms` and device
//! streams re-read on their own interval, so nothing is lost, only later. This
//! instance's subscribers hear of the change immediately, without the round trip
//! through the database, and the listener skips the notifications this store sent.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pushauth_core::ids::CardholderId;
use pushauth_store::StoreEvent;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use tokio::sync::{Notify, broadcast};
use tokio::task::AbortHandle;

use crate::listen::Channels;

/// First and longest wait before retrying after the notifying connection failed.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// Notifications waiting for the sender task.
#[derive(Debug, Default)]
struct Queue {
    outbox: bool,
    /// Deduplicated: PostgreSQL would fold identical notifications of one
    /// transaction anyway.
    cardholders: BTreeSet<String>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        !self.outbox && self.cardholders.is_empty()
    }

    fn merge(&mut self, other: Queue) {
        self.outbox |= other.outbox;
        self.cardholders.extend(other.cardholders);
    }
}

/// The announcing side of a store: cheap to share, see the module docs.
#[derive(Debug)]
pub(crate) struct Announcer {
    events: broadcast::Sender<StoreEvent>,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Backend process id of the notifying connection (0 before it connected); the
    /// listener drops notifications from it, which this store already delivered.
    own_pid: AtomicU32,
}

impl Announcer {
    pub(crate) fn new(events: broadcast::Sender<StoreEvent>) -> Arc<Self> {
        Arc::new(Announcer {
            events,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            own_pid: AtomicU32::new(0),
        })
    }

    /// Announces a committed change: a challenge of `cardholder` was created or
    /// closed, and/or outbox rows were written or rescheduled. Call after the commit.
    pub(crate) fn committed(&self, cardholder: Option<&CardholderId>, outbox: bool) {
        if let Some(c) = cardholder {
            let _ = self.events.send(StoreEvent::Challenge {
                cardholder: c.clone(),
            });
        }
        if outbox {
            let _ = self.events.send(StoreEvent::OutboxReady);
        }
        {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cardholder {
                q.cardholders.insert(c.as_str().to_owned());
            }
            q.outbox |= outbox;
        }
        self.wake.notify_one();
    }

    /// Whether a notification came from this store's own notifying connection.
    pub(crate) fn is_own(&self, process_id: u32) -> bool {
        process_id != 0 && self.own_pid.load(Ordering::Relaxed) == process_id
    }

    fn take(&self) -> Queue {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn put_back(&self, q: Queue) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(q);
    }
}

/// Spawns the task that sends queued notifications until aborted.
pub(crate) fn start(
    options: PgConnectOptions,
    channels: Channels,
    announcer: Arc<Announcer>,
) -> AbortHandle {
    // Named, so that operators (and tests) can tell it in `pg_stat_activity`.
    let options = options.application_name(&format!("pushauth notify {}", channels.outbox));
    tokio::spawn(send_loop(options, channels, announcer)).abort_handle()
}

async fn send_loop(options: PgConnectOptions, channels: Channels, a: Arc<Announcer>) {
    let mut conn: Option<PgConnection> = None;
    let mut backoff = BACKOFF.0;
    loop {
        a.wake.notified().await;
        let batch = a.take();
        if batch.is_empty() {
            continue;
        }
        match send(&mut conn, &options, &channels, &a, &batch).await {
            Ok(()) => backoff = BACKOFF.0,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "sending notifications to other instances failed");
                conn = None;
                a.put_back(batch);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                a.wake.notify_one();
            }
        }
    }
}

async fn send(
    conn: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    channels: &Channels,
    a: &Announcer,
    batch: &Queue,
) -> Result<(), sqlx::Error> {
    if conn.is_none() {
        let mut fresh = PgConnection::connect_with(options).await?;
        let pid = sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#)
            .fetch_one(&mut fresh)
            .await?;
        a.own_pid
            .store(u32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
        *conn = Some(fresh);
    }
    let Some(c) = conn.as_mut() else {
        return Ok(());
    };
    let (mut names, mut payloads) = (Vec::new(), Vec::new());
    if batch.outbox {
        names.push(channels.outbox.clone());
        payloads.push(String::new());
    }
    for holder in &batch.cardholders {
        names.push(channels.challenge.clone());
        payloads.push(holder.clone());
    }
    sqlx::query!(
        "SELECT pg_notify(n.channel, n.payload) FROM unnest($1::TEXT[], $2::TEXT[]) AS n(channel, payload)",
        &names,
        &payloads
    )
    .execute(c)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_merges_and_deduplicates() {
        let (tx, mut rx) = broadcast::channel(8);
        let a = Announcer::new(tx);
        let c = CardholderId::from_random_bytes([7; 16]);
        a.committed(Some(&c), false);
        a.committed(Some(&c), true);
        assert!(matches!(rx.try_recv(), Ok(StoreEvent::Challenge { .. })));
        assert!(matches!(rx.try_recv(), Ok(StoreEvent::Challenge { .. })));
        assert!(matches!(rx.try_recv(), Ok(StoreEvent::OutboxReady)));
        let q = a.take();
        assert!(q.outbox);
        assert_eq!(q.cardholders.len(), 1);
        assert!(a.take().is_empty());
        a.put_back(q);
        assert!(!a.take().is_empty());
        assert!(!a.is_own(0));
    }
}
