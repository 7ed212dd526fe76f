//! The outbox worker: claims due rows, performs them (push, dismiss, upstream result)
//! with bounded concurrency, and records each attempt with its consequence in one
//! transaction. A retry is scheduled with backoff only while it can still land before
//! the row's deadline; after that the row is `too_late` (or "outcome unknown" for an
//! upstream call that may have landed, see [`super::deliver`]).
//!
//! Claims are fenced: each claim carries the row's claim number, and the completion,
//! the lease renewal (a heartbeat while the row is worked on, [`super::lease`]) and the
//! sending mark apply only for the current claim. A worker that lost its row (another
//! took it over) has its attempt recorded and changes nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_store::{
    AttemptOutcome, AttemptRecord, AuditDraft, Challenge, Decision, Device, DeviceStatus,
    OutboxItem, OutboxKind, OutboxLane, OutboxNext, StoreEvent,
};
use tokio::sync::{Semaphore, watch};

use crate::metrics::PushLabel;
use crate::push::{PushJob, PushKind, PushResult, push_data};
use crate::state::{AppState, now};

pub(super) const BASE: Duration = Duration::from_millis(500);
pub(super) const CAP: Duration = Duration::from_secs(30);

/// Runs until shutdown: one claiming loop per lane, each with its own
/// `workers.concurrency` permits, so that slow processor calls cannot hold up pushes
/// (measured before the split: with a 2 s upstream, webhook→push rose to ~2 s) and a
/// burst of pushes cannot delay results the processor waits for.
pub async fn run(state: AppState, shutdown: watch::Receiver<bool>) {
    tokio::join!(
        run_lane(state.clone(), shutdown.clone(), OutboxLane::Devices),
        run_lane(state, shutdown, OutboxLane::Upstream),
    );
}

async fn run_lane(state: AppState, mut shutdown: watch::Receiver<bool>, lane: OutboxLane) {
    let cfg = state.config.workers.clone();
    let permits = state.lanes.for_lane(lane).clone();
    let mut events = state.store.subscribe();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let available = i64::try_from(permits.available_permits())
            .unwrap_or(0)
            .min(cfg.batch);
        let leased_at = tokio::time::Instant::now();
        let claimed = if available > 0 {
            match state
                .store
                .outbox_claim_lane(now(), cfg.lease_ms, available, lane)
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::error!(error = %e, "outbox claim failed");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let full_batch = i64::try_from(claimed.len()).unwrap_or(0) == available && available > 0;
        for item in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let state = state.clone();
            state.metrics.outbox_in_flight.inc();
            tokio::spawn(async move {
                process(&state, item, None, leased_at).await;
                state.metrics.outbox_in_flight.dec();
                drop(permit);
            });
        }
        if full_batch {
            continue;
        }
        // Sleep until the next row is due, a notification arrives, or the idle poll.
        let idle = Duration::from_millis(cfg.idle_poll_ms);
        let sleep = match state.store.outbox_next_due_lane(lane).await {
            Ok(Some(due)) => {
                Duration::from_millis(u64::try_from((due.0 - now().0).max(0)).unwrap_or(0))
                    .min(idle)
            }
            _ => idle,
        };
        if sleep.is_zero() && permits.available_permits() > 0 {
            // Due rows exist but were leased by someone else or just failed to claim.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = outbox_ready(&mut events) => {}
            _ = shutdown.changed() => {}
        }
        // Drain queued notifications: one look at the database covers them all.
        while let Ok(StoreEvent::OutboxReady | StoreEvent::Challenge { .. }) = events.try_recv() {}
    }
}

/// Waits for an `OutboxReady` notification, or a lag (which may have hidden one). Other
/// notifications (a challenge created or closed, for device streams) do not wake the
/// lanes: every write of rows for workers also sends `OutboxReady`, and rows a writer
/// claimed for itself need no worker (measured: an empty claim transaction after every
/// decision otherwise). On a closed channel it never returns (the poll takes over).
async fn outbox_ready(events: &mut tokio::sync::broadcast::Receiver<StoreEvent>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(StoreEvent::OutboxReady) | Err(RecvError::Lagged(_)) => return,
            Ok(StoreEvent::Challenge { .. }) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// What a delivery attempt led to.
pub(super) struct Step {
    pub(super) outcome: AttemptOutcome,
    pub(super) http_status: Option<u16>,
    pub(super) error: Option<String>,
    pub(super) next: OutboxNext,
}

fn retry_or_too_late(
    item: &OutboxItem,
    http_status: Option<u16>,
    error: String,
    after: Option<Duration>,
) -> Step {
    let delay = after
        .unwrap_or_else(|| super::backoff(item.attempts + 1, BASE, CAP))
        .min(CAP);
    let at = now().plus(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    if at > item.deadline {
        Step {
            outcome: AttemptOutcome::Retry,
            http_status,
            error: Some(error),
            next: OutboxNext::TooLate,
        }
    } else {
        Step {
            outcome: AttemptOutcome::Retry,
            http_status,
            error: Some(error),
            next: OutboxNext::RetryAt(at),
        }
    }
}

/// Delivers a row its writer claimed (`NewOutbox::claimed_until`) on a task of its own,
/// exactly as a worker delivers a row it claimed: heartbeat, sending mark, fenced
/// completion. If this process dies first, the lease runs out and a worker takes over.
/// `known`: what the writer's transaction had in hand (see [`Known`]), which the
/// delivery would otherwise read back: the challenge and decision for an upstream row
/// (a decision never changes once written), the challenge and devices for push rows.
/// Anything that does not match the row is ignored and read from the store.
///
/// It takes one of its lane's delivery slots first, like a worker, so that a slow push
/// service or processor cannot pile up unbounded deliveries. If no slot frees up
/// within half a lease, it leaves the row to the workers (they take it once the lease
/// has run out), so that it never starts a call on a lease about to expire.
pub fn deliver_claimed(state: AppState, item: OutboxItem, known: Option<Arc<Known>>) {
    let half_lease = u64::try_from(state.config.workers.lease_ms / 2).unwrap_or(0);
    // The writer's lease began no later than the row's creation time (the transaction's
    // clock; the commit may have waited on locks since): counted from there, so that a
    // late commit renews before its work starts.
    let age = u64::try_from(now().0.saturating_sub(item.created_at.0)).unwrap_or(0);
    let leased_at = tokio::time::Instant::now()
        .checked_sub(Duration::from_millis(age))
        .unwrap_or_else(tokio::time::Instant::now);
    let give_up = leased_at + Duration::from_millis(half_lease);
    tokio::spawn(async move {
        let permits = state.lanes.for_kind(item.kind).clone();
        let Ok(Ok(permit)) = tokio::time::timeout_at(give_up, permits.acquire_owned()).await else {
            tracing::info!(outbox = item.id.0, kind = %item.kind,
                "no free delivery slot within half a lease: left to the workers");
            state.metrics.inline_deliveries_deferred.inc();
            return;
        };
        state.metrics.outbox_in_flight.inc();
        process(&state, item, known, leased_at).await;
        state.metrics.outbox_in_flight.dec();
        drop(permit);
    });
}

/// Delivery slots per lane: `[workers] concurrency` deliveries at a time for device
/// rows (push, dismiss) and as many for upstream rows, whoever started them.
#[derive(Debug, Clone)]
pub struct LanePermits {
    devices: Arc<Semaphore>,
    upstream: Arc<Semaphore>,
    per_lane: u32,
}

impl LanePermits {
    /// `per_lane` slots for each lane.
    pub fn new(per_lane: usize) -> Self {
        let per_lane = u32::try_from(per_lane)
            .unwrap_or(u32::MAX)
            .min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        LanePermits {
            devices: Arc::new(Semaphore::new(per_lane as usize)),
            upstream: Arc::new(Semaphore::new(per_lane as usize)),
            per_lane,
        }
    }

    /// Returns once no delivery holds a slot of either lane, by taking them all (and
    /// keeping them: no delivery starts afterwards). For shutdown, once the lanes have
    /// stopped claiming: the deliveries under way, a worker's or a request's, finish
    /// and record their outcome instead of being cut off mid-call.
    pub async fn wait_idle(&self) {
        for lane in [&self.devices, &self.upstream] {
            if let Ok(all) = lane.clone().acquire_many_owned(self.per_lane).await {
                all.forget();
            }
        }
    }

    fn for_kind(&self, kind: OutboxKind) -> &Arc<Semaphore> {
        match kind {
            OutboxKind::Upstream => &self.upstream,
            OutboxKind::Push | OutboxKind::Dismiss => &self.devices,
        }
    }

    fn for_lane(&self, lane: OutboxLane) -> &Arc<Semaphore> {
        match lane {
            OutboxLane::Upstream => &self.upstream,
            OutboxLane::Devices | OutboxLane::All => &self.devices,
        }
    }
}

/// What the transaction that wrote claimed rows had in hand, so that delivering them
/// does not read it back: the challenge as it left it, the decision it recorded (for
/// an upstream row), the devices it saw (for push rows).
#[derive(Debug)]
pub struct Known {
    /// The challenge as the transaction left it.
    pub challenge: Challenge,
    /// The decision recorded, if the transaction was a decision.
    pub decision: Option<Decision>,
    /// The cardholder's devices as the transaction saw them (may be empty).
    pub devices: Vec<Device>,
}

async fn process(
    state: &AppState,
    item: OutboxItem,
    known: Option<Arc<Known>>,
    leased_at: tokio::time::Instant,
) {
    let started = now();
    let clock = Instant::now();
    let lease = super::lease::Heartbeat::start(state, &item, leased_at).await;
    let step = match item.kind {
        OutboxKind::Upstream => super::deliver::upstream(state, &item, &lease, known).await,
        OutboxKind::Push | OutboxKind::Dismiss if started > item.deadline => Step {
            outcome: AttemptOutcome::Fatal,
            http_status: None,
            error: Some("deadline passed before delivery".into()),
            next: OutboxNext::TooLate,
        },
        // Another worker holds the row now: it pushes, not this one.
        OutboxKind::Push | OutboxKind::Dismiss if lease.lost() => Step {
            outcome: AttemptOutcome::Retry,
            http_status: None,
            error: Some(format!(
                "{}the row was taken over before the push",
                crate::upstream::NOT_SENT
            )),
            next: OutboxNext::RetryAt(started),
        },
        OutboxKind::Push | OutboxKind::Dismiss => push(state, &item, known.as_deref()).await,
    };
    // No renewal may follow the completion (a retry keeps the row pending).
    lease.stop().await;
    let record = AttemptRecord {
        at: started,
        latency_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
        outcome: step.outcome,
        http_status: step.http_status.map(i32::from),
        error: step.error,
    };
    match state
        .store
        .outbox_complete(item.id, item.claim, record, step.next)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // Another worker holds the row now (or it is final): only the attempt is on
            // record. With the heartbeat this needs a stall longer than the lease.
            tracing::warn!(outbox = item.id.0, claim = item.claim, kind = %item.kind,
                "outbox row was taken over while in progress; attempt recorded, outcome not applied");
            state.metrics.outbox_stale.inc();
            return;
        }
        Err(e) => {
            // The lease will expire and the row will be claimed again (with its sending
            // mark, so an upstream call is repeated only as its processor allows).
            tracing::error!(error = %e, outbox = item.id.0, "recording an outbox attempt failed");
            return;
        }
    }
    if item.kind == OutboxKind::Push
        && matches!(step.next, OutboxNext::Failed | OutboxNext::TooLate)
        && let Err(e) =
            crate::services::challenges::close_if_unreachable(state, &item.challenge).await
    {
        tracing::error!(error = %e, challenge = %item.challenge, "unreachable-cardholder check failed");
    }
}

async fn push(state: &AppState, item: &OutboxItem, known: Option<&Known>) -> Step {
    let fatal = |error: &str| Step {
        outcome: AttemptOutcome::Fatal,
        http_status: None,
        error: Some(error.into()),
        next: OutboxNext::Failed,
    };
    let Some(device_id) = &item.device else {
        return fatal("push row without device");
    };
    let handed = known
        .filter(|k| k.challenge.id == item.challenge)
        .and_then(|k| {
            let d = k.devices.iter().find(|d| &d.id == device_id)?;
            Some((Ok(Some(d.clone())), Ok(Some(k.challenge.clone()))))
        });
    let read = match handed {
        Some(pair) => pair,
        None => (
            state.store.device_get(device_id).await,
            state.store.challenge_get(&item.challenge).await,
        ),
    };
    let (device, challenge) = match read {
        (Ok(Some(d)), Ok(Some(c))) => (d, c),
        (Err(e), _) | (_, Err(e)) => {
            return retry_or_too_late(item, None, format!("storage: {e}"), None);
        }
        _ => return fatal("device or challenge missing"),
    };
    if device.status == DeviceStatus::Revoked {
        // Dropped before sending: a revoked device gets nothing more, not even dismissals.
        return Step {
            outcome: AttemptOutcome::Ok,
            http_status: None,
            error: Some("dropped: device revoked".into()),
            next: OutboxNext::Done,
        };
    }
    let kind = if item.kind == OutboxKind::Dismiss {
        PushKind::Dismiss
    } else {
        PushKind::Challenge
    };
    if kind == PushKind::Challenge && challenge.status.is_final() {
        return Step {
            outcome: AttemptOutcome::Ok,
            http_status: None,
            error: Some("skipped: challenge already closed".into()),
            next: OutboxNext::Done,
        };
    }
    let (Some(target), Some(sender)) = (
        device.push.clone(),
        state.push.for_platform(device.platform),
    ) else {
        return fatal("device has no push target or its push service is not configured");
    };
    let data = match push_data(&challenge, &device, kind) {
        Ok(d) => d,
        Err(e) => return fatal(&format!("cannot build payload: {}", e.code())),
    };
    let service = sender.service();
    let result = sender
        .send(PushJob {
            device: &device,
            challenge: &challenge,
            kind,
            data: &data,
        })
        .await;
    let label = |result| PushLabel { service, result };
    match result {
        PushResult::Sent { http_status } => {
            state
                .metrics
                .push
                .get_or_create(&label(if kind == PushKind::Dismiss {
                    "dismissed"
                } else {
                    "sent"
                }))
                .inc();
            Step {
                outcome: AttemptOutcome::Ok,
                http_status: Some(http_status),
                error: None,
                next: OutboxNext::Done,
            }
        }
        PushResult::DeadToken {
            http_status,
            reason,
        } => {
            state.metrics.push.get_or_create(&label("dead_token")).inc();
            let audit = AuditDraft::new(now(), format!("push:{service}"), "device.push_token_dead")
                .device(&device.id)
                .challenge(&challenge.id)
                .cardholder(&challenge.cardholder)
                .details(serde_json::json!({ "reason": reason }));
            if let Err(e) = state
                .store
                .device_push_token_dead(&device.id, &target.token, audit)
                .await
            {
                tracing::error!(error = %e, "deactivating a dead push token failed");
            }
            Step {
                outcome: AttemptOutcome::Fatal,
                http_status: Some(http_status),
                error: Some(reason),
                next: OutboxNext::Failed,
            }
        }
        PushResult::Retry {
            http_status,
            error,
            after,
        } => {
            state.metrics.push.get_or_create(&label("retry")).inc();
            retry_or_too_late(item, http_status, error, after)
        }
        PushResult::Fatal { http_status, error } => {
            state.metrics.push.get_or_create(&label("failed")).inc();
            Step {
                outcome: AttemptOutcome::Fatal,
                http_status,
                error: Some(error),
                next: OutboxNext::Failed,
            }
        }
    }
}
