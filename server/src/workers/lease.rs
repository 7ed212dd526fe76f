//! Lease heartbeat: while a worker performs an outbox row, its lease is renewed every
//! third of `workers.lease_ms`, so that leases can be short (a dead holder's rows come
//! back within one lease) and a slow delivery never outlives its lease. Renewal is
//! fenced by the claim number: once another worker has taken the row over, renewal
//! fails and the holder knows it lost the row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pushauth_store::OutboxItem;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::state::{AppState, now};

/// A running heartbeat for one claimed row.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Starts renewing the lease of `item` (held under `item.claim`), taken at
    /// `leased_at`: every third of a lease after that. A row that waited that long for
    /// a delivery slot is renewed before this returns, so that work never starts on a
    /// lease about to run out (check [`Heartbeat::lost`] before starting).
    pub async fn start(
        state: &AppState,
        item: &OutboxItem,
        leased_at: tokio::time::Instant,
    ) -> Heartbeat {
        let lease_ms = state.config.workers.lease_ms.max(1);
        let every = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1).max(1));
        let lost = Arc::new(AtomicBool::new(false));
        let (store, id, claim, flag) = (state.store.clone(), item.id, item.claim, lost.clone());
        let renew = move || {
            let (store, flag) = (store.clone(), flag.clone());
            async move {
                match store.outbox_renew(id, claim, now().plus(lease_ms)).await {
                    Ok(true) => true,
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        tracing::warn!(
                            outbox = id.0,
                            claim,
                            "outbox row taken over by another worker while in progress"
                        );
                        false
                    }
                    Err(e) => {
                        tracing::warn!(outbox = id.0, error = %e, "renewing an outbox lease failed");
                        true
                    }
                }
            }
        };
        let mut next = leased_at + every;
        let mut held = true;
        if next <= tokio::time::Instant::now() {
            next = tokio::time::Instant::now() + every;
            held = renew().await;
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = held.then(|| {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep_until(next) => {}
                    }
                    next = tokio::time::Instant::now() + every;
                    if !renew().await {
                        break;
                    }
                }
            })
        });
        Heartbeat {
            stop: Some(stop),
            task,
            lost,
        }
    }

    /// Whether another worker took the row over.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing, and waits until no renewal is under way (so that a renewal can
    /// never follow the completion that cleared the lease).
    pub async fn stop(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
