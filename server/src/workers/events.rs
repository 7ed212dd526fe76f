//! The issuer-events worker: fans new events out to the configured endpoints (one
//! delivery row each) and delivers due rows as signed webhooks (Standard Webhooks),
//! retrying on the configured schedule. Several instances share the work: fan-out and
//! claims skip rows another instance holds, and every completion presents its claim
//! number, so a worker that lost its row changes nothing.
//!
//! The lease is the delivery time limit plus a margin: the HTTP client gives up before
//! the lease ends, so a live worker never overruns it, and a crashed instance's rows
//! come back when it expires (issuer events carry no processor deadline).
//!
//! Once a minute it also gives up the deliveries to endpoints no running instance has
//! (`[events] orphan_after_secs`) and deletes the ended events past `[events] keep_days`.

use std::time::Duration;

use pushauth_store::{DeliveryAttempt, DeliveryNext, EventDelivery, StoreEvent};
use tokio::sync::watch;

use crate::events::Endpoint;
use crate::metrics::EndpointOutcome;
use crate::state::{AppState, now};

/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 200;
/// Deliveries claimed (and sent concurrently) per round.
const CLAIM_BATCH: i64 = 16;
/// Lease beyond the delivery time limit.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Idle poll: events are written by many kinds of change, not all of which notify.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Least pause after a round that found no more work: events carry no deadline, and
/// every round takes the write lock (SQLite) for its fan-out, so under load rounds are
/// batched instead of following every notification (measured: docs/benchmarks.md).
const MIN_GAP: Duration = Duration::from_millis(200);
/// With no endpoint configured, events are only marked fanned out (so that an endpoint
/// configured later starts with the events written after it), this often.
const UNROUTED_POLL: Duration = Duration::from_secs(5);
/// Largest answer body read (only its status matters).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// How often deliveries to endpoints no running instance has are looked for, and
/// events past `[events] keep_days` deleted.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Deliveries given up per statement.
const ORPHAN_BATCH: i64 = 500;
/// Events looked at (and at most deleted) per statement.
const PURGE_BATCH: i64 = 500;
/// Statements per housekeeping pass, for each of its two jobs: a backlog (the first
/// pass after an upgrade, say) is worked off a pass at a time, between deliveries.
const MAX_BATCHES: usize = 20;
/// The last error of a delivery given up that way (admin API, ops console).
const ORPHAN_REASON: &str =
    "endpoint not configured on any running instance ([events] orphan_after_secs)";

/// Runs until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let routes = state.events.routes();
    let names: Vec<String> = routes.iter().map(|r| r.endpoint.clone()).collect();
    let client = match reqwest::Client::builder()
        .timeout(state.events.timeout)
        .connect_timeout(state.events.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pushauth/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "issuer events: HTTP client failed; events are not sent");
            return;
        }
    };
    let mut wake = state.store.subscribe();
    let mut housekeeping_due = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if tokio::time::Instant::now() >= housekeeping_due {
            housekeeping_due = tokio::time::Instant::now() + HOUSEKEEPING;
            if let Err(e) = give_up_orphans(&state, &names).await {
                tracing::error!(error = %e, "issuer events: giving up orphaned deliveries failed");
            }
            if let Err(e) = purge_old(&state).await {
                tracing::error!(error = %e, "issuer events: deleting old events failed");
            }
        }
        let busy = match round(&state, &client, &routes, &names).await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::error!(error = %e, "issuer events: round failed");
                false
            }
        };
        if busy {
            continue;
        }
        if names.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(UNROUTED_POLL) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(MIN_GAP) => {}
            _ = shutdown.changed() => continue,
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE_POLL - MIN_GAP) => {}
            e = wake.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e { tokio::time::sleep(IDLE_POLL).await },
            _ = shutdown.changed() => {}
        }
        while let Ok(StoreEvent::OutboxReady | StoreEvent::Challenge { .. }) = wake.try_recv() {}
    }
}

/// Gives up the deliveries to endpoints this instance does not have that have been due
/// for `[events] orphan_after_secs`: an instance that has their endpoint would have
/// claimed them (see `Store::issuer_event_orphans_fail`). Without this they would stay
/// pending for ever, first in the due index that every claim reads.
async fn give_up_orphans(
    state: &AppState,
    names: &[String],
) -> Result<(), pushauth_store::StoreError> {
    let t = now();
    let after = i64::try_from(state.events.orphan_after.as_millis()).unwrap_or(i64::MAX);
    let due_before = pushauth_store::Millis(t.0.saturating_sub(after));
    let total = in_batches(ORPHAN_BATCH, || {
        state
            .store
            .issuer_event_orphans_fail(names, due_before, t, ORPHAN_REASON, ORPHAN_BATCH)
    })
    .await?;
    if total > 0 {
        tracing::warn!(
            deliveries = total,
            "issuer events: gave up deliveries to endpoints that no running instance has configured"
        );
    }
    Ok(())
}

/// Deletes the events written more than `[events] keep_days` ago whose deliveries have
/// all ended (see `Store::issuer_events_purge`), a batch per statement until a batch
/// deletes less than its size.
async fn purge_old(state: &AppState) -> Result<(), pushauth_store::StoreError> {
    let Some(keep) = state.events.keep else {
        return Ok(());
    };
    let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let before = pushauth_store::Millis(now().0.saturating_sub(keep));
    let total = in_batches(PURGE_BATCH, || async {
        let n = state.store.issuer_events_purge(before, PURGE_BATCH).await?;
        state.metrics.events_purged.inc_by(n);
        Ok(n)
    })
    .await?;
    if total > 0 {
        tracing::info!(
            events = total,
            "issuer events: deleted events past [events] keep_days"
        );
    }
    Ok(())
}

/// Runs `batch_step` (one statement over at most `batch` rows) until a run handles fewer
/// rows than that, at most [`MAX_BATCHES`] times; how many in all.
async fn in_batches<F, Fut>(
    batch: i64,
    mut batch_step: F,
) -> Result<u64, pushauth_store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, pushauth_store::StoreError>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let n = batch_step().await?;
        total += n;
        if n < u64::try_from(batch.max(1)).unwrap_or(1) {
            break;
        }
    }
    Ok(total)
}

/// One fan-out and one batch of deliveries. `true` when there may be more work now.
async fn round(
    state: &AppState,
    client: &reqwest::Client,
    routes: &[pushauth_store::EventRoute],
    names: &[String],
) -> Result<bool, pushauth_store::StoreError> {
    let fanned = state
        .store
        .issuer_events_fan_out(routes, now(), FAN_OUT_BATCH)
        .await?;
    let t = now();
    let lease_until = t
        .plus(i64::try_from((state.events.timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX));
    let claimed = state
        .store
        .issuer_event_claim(names, t, lease_until, CLAIM_BATCH)
        .await?;
    let n = claimed.len();
    futures::future::join_all(claimed.into_iter().map(|d| deliver(state, client, d))).await;
    Ok(fanned == FAN_OUT_BATCH as u64 || n == CLAIM_BATCH as usize)
}

/// Sends one delivery and records its result.
async fn deliver(state: &AppState, client: &reqwest::Client, d: EventDelivery) {
    let Some(endpoint) = state.events.endpoint(&d.endpoint) else {
        return; // claims only name configured endpoints
    };
    let (http_status, error) = send(client, endpoint, &d).await;
    let delivered = http_status.is_some_and(|s| (200..300).contains(&s));
    let attempt_no = d.attempts + 1;
    let next = if delivered {
        DeliveryNext::Done
    } else {
        match state
            .events
            .schedule
            .get(usize::try_from(d.attempts).unwrap_or(usize::MAX))
        {
            Some(delay) => DeliveryNext::RetryAt(
                now().plus(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            ),
            None => DeliveryNext::Failed,
        }
    };
    let attempt = DeliveryAttempt {
        at: now(),
        http_status: http_status.map(i32::from),
        error: error.clone(),
    };
    let outcome = match state
        .store
        .issuer_event_complete(d.id, d.claim, next, attempt)
        .await
    {
        Ok(true) => match next {
            DeliveryNext::Done => "delivered",
            DeliveryNext::RetryAt(_) => "retry",
            DeliveryNext::Failed => "failed",
        },
        Ok(false) => "stale",
        Err(e) => {
            tracing::error!(error = %e, event = %d.event_id, "issuer events: recording a delivery failed");
            return;
        }
    };
    state
        .metrics
        .event_deliveries
        .get_or_create(&EndpointOutcome {
            endpoint: d.endpoint.clone(),
            outcome,
        })
        .inc();
    match outcome {
        "delivered" => {
            tracing::debug!(event = %d.event_id, endpoint = %d.endpoint, "issuer event delivered")
        }
        "failed" => tracing::warn!(
            event = %d.event_id, endpoint = %d.endpoint, attempts = attempt_no,
            status = ?http_status, error = ?error, "issuer event given up"
        ),
        _ => tracing::info!(
            event = %d.event_id, endpoint = %d.endpoint, attempt = attempt_no, outcome,
            status = ?http_status, error = ?error, "issuer event not delivered"
        ),
    }
}

/// POSTs the event; the answer's status, or a secret-free error.
async fn send(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    d: &EventDelivery,
) -> (Option<u16>, Option<String>) {
    let timestamp = now().0.div_euclid(1000);
    let signature = crate::events::sign::signature_header(
        &endpoint.keys,
        &d.event_id,
        timestamp,
        d.body.as_bytes(),
    );
    let sent = client
        .post(endpoint.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Drain a little of the body so the connection can be reused; its content
            // does not matter.
            let _ = crate::providers::transport::read_capped(resp, MAX_ANSWER_BYTES).await;
            let error =
                (!(200..300).contains(&status)).then(|| format!("endpoint answered {status}"));
            (Some(status), error)
        }
        Err(e) => (None, Some(super::transport_error(&e))),
    }
}
