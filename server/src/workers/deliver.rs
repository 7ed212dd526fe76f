//! One attempt at an `upstream` row: load what the connector needs, commit the sending
//! mark, call the processor, and decide what the answer means for the row. Every way
//! of giving up (refused, too late, outcome unknown) is logged and counted in
//! `pushauth_upstream_attempts_total{provider,outcome}`.
//!
//! A row claimed with a sending mark had a call in flight when its previous holder died
//! or lost the row; the processor may have the result. Before the deadline the call is
//! repeated (what that does per processor: [`Resend`]); after the deadline only a
//! processor that recognises repeats is asked again (reconciliation), otherwise the row
//! ends as "outcome unknown", never as `too_late`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_store::{AttemptOutcome, OutboxItem, OutboxNext};

use super::lease::Heartbeat;
use super::outbox::{BASE, CAP, Known, Step};
use crate::metrics::{ProviderLabel, ProviderOutcome};
use crate::state::{AppState, now};
use crate::upstream::{Delivery, Job, NOT_SENT, Outcome, Resend};

/// Performs one attempt at an upstream row and reports it (log and metrics).
pub(super) async fn upstream(
    state: &AppState,
    item: &OutboxItem,
    lease: &Heartbeat,
    known: Option<Arc<Known>>,
) -> Step {
    // What the writer passed along only stands for this row's own challenge.
    let known = known.filter(|k| {
        k.challenge.id == item.challenge
            && k.decision
                .as_ref()
                .is_some_and(|d| d.challenge == item.challenge)
    });
    let (provider, mut step) = attempt(state, item, lease, known).await;
    // Without the sending mark, `too_late` rests on this attempt alone; an earlier
    // attempt whose answer was lost may still have delivered the result.
    if step.next == OutboxNext::TooLate
        && item.sending_since.is_none()
        && earlier_answer_lost(state, item).await
    {
        step.next = OutboxNext::Unknown;
        step.error = Some(format!(
            "outcome unknown: {}; an earlier call's answer was lost, so the processor may have the result",
            step.error.as_deref().unwrap_or("the window closed")
        ));
    }
    let label = match step.next {
        OutboxNext::Done => "ok",
        OutboxNext::RetryAt(_) => "retry",
        OutboxNext::Failed => "fatal",
        OutboxNext::TooLate => "too_late",
        OutboxNext::Unknown => "unknown",
    };
    state
        .metrics
        .upstream_attempts
        .get_or_create(&ProviderOutcome {
            provider,
            outcome: label,
        })
        .inc();
    if !matches!(step.next, OutboxNext::Done | OutboxNext::RetryAt(_)) {
        tracing::warn!(challenge = %item.challenge, outbox = item.id.0, provider, result = label,
            attempts = item.attempts + 1, error = ?step.error, "upstream delivery gave up");
    }
    step
}

/// Whether an earlier attempt at this row sent a call whose answer was lost (no HTTP
/// status, and not one of the failures known to have sent nothing): the processor may
/// have that result. A storage error counts as lost: never `too_late` on a guess.
async fn earlier_answer_lost(state: &AppState, item: &OutboxItem) -> bool {
    if item.attempts == 0 {
        return false;
    }
    match state.store.attempts_for_challenge(&item.challenge).await {
        Ok(all) => all.iter().filter(|a| a.outbox == item.id).any(|a| {
            a.http_status.is_none() && !a.error.as_deref().is_some_and(|e| e.starts_with(NOT_SENT))
        }),
        Err(e) => {
            tracing::error!(error = %e, outbox = item.id.0, "upstream: reading the earlier attempts failed");
            true
        }
    }
}

fn step(
    outcome: AttemptOutcome,
    http_status: Option<u16>,
    error: impl Into<String>,
    next: OutboxNext,
) -> Step {
    Step {
        outcome,
        http_status,
        error: Some(error.into()),
        next,
    }
}

/// When to try again: after a backoff, or a last time just before the deadline; `None`
/// when the window has closed.
fn retry_at(item: &OutboxItem, after: Option<Duration>) -> Option<pushauth_store::Millis> {
    let delay = after
        .unwrap_or_else(|| super::backoff(item.attempts + 1, BASE, CAP))
        .min(CAP);
    let t = now();
    let at = t.plus(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    if at <= item.deadline {
        Some(at)
    } else if item.deadline.0 - t.0 >= 200 {
        Some(pushauth_store::Millis(item.deadline.0 - 100))
    } else {
        None
    }
}

/// A failure before anything was sent: retried while the window lasts, `too_late` after.
fn not_sent(item: &OutboxItem, error: String) -> Step {
    let error = format!("{NOT_SENT}{error}");
    match retry_at(item, None) {
        Some(at) => step(AttemptOutcome::Retry, None, error, OutboxNext::RetryAt(at)),
        None => step(AttemptOutcome::Retry, None, error, OutboxNext::TooLate),
    }
}

async fn attempt(
    state: &AppState,
    item: &OutboxItem,
    lease: &Heartbeat,
    known: Option<Arc<Known>>,
) -> (&'static str, Step) {
    let fetched = match &known {
        Some(k) => Ok(Some(k.challenge.clone())),
        None => state.store.challenge_get(&item.challenge).await,
    };
    let challenge = match fetched {
        Ok(Some(c)) => c,
        Ok(None) => {
            let s = step(
                AttemptOutcome::Fatal,
                None,
                "challenge missing",
                OutboxNext::Failed,
            );
            return ("unknown", s);
        }
        Err(e) => return ("unknown", not_sent(item, format!("storage: {e}"))),
    };
    let provider = challenge.provider.as_str();
    let Ok(outcome) = serde_json::from_value::<Outcome>(item.payload.clone()) else {
        let s = step(
            AttemptOutcome::Fatal,
            None,
            "upstream row without a valid outcome",
            OutboxNext::Failed,
        );
        return (provider, s);
    };
    let Some(connector) = state.connectors.get(challenge.provider).cloned() else {
        return (
            provider,
            not_sent(item, format!("no {provider} connector configured")),
        );
    };
    let in_flight = item.sending_since.is_some();
    let resend = connector.resend();
    let past = now() > item.deadline;
    if past && !in_flight {
        let s = step(
            AttemptOutcome::Fatal,
            None,
            "deadline passed before delivery",
            OutboxNext::TooLate,
        );
        return (provider, s);
    }
    if past && resend != Resend::Deduplicated {
        let s = step(
            AttemptOutcome::Fatal,
            None,
            format!(
                "outcome unknown: a call was in flight when its worker stopped, the deadline has passed, and {provider} cannot be asked whether it landed"
            ),
            OutboxNext::Unknown,
        );
        return (provider, s);
    }
    let fetched = match &known {
        Some(k) => Ok(k.decision.clone()),
        None => state.store.decision_get(&challenge.id).await,
    };
    let decision = match fetched {
        Ok(d) => d,
        Err(e) => return (provider, not_sent(item, format!("storage: {e}"))),
    };
    let sent_before = if resend == Resend::Budgeted {
        match state.store.attempts_for_challenge(&challenge.id).await {
            Ok(all) => {
                let sent = all
                    .iter()
                    .filter(|a| a.outbox == item.id)
                    .filter(|a| !a.error.as_deref().is_some_and(|e| e.starts_with(NOT_SENT)))
                    .count();
                i32::try_from(sent).unwrap_or(i32::MAX) + i32::from(in_flight)
            }
            Err(e) => return (provider, not_sent(item, format!("storage: {e}"))),
        }
    } else {
        item.attempts + i32::from(in_flight)
    };
    // The mark is committed before the call: if this process dies during the call, the
    // next holder knows that the processor may have the result.
    let lost = || {
        step(
            AttemptOutcome::Retry,
            None,
            format!("{NOT_SENT}the row was taken over before the call"),
            OutboxNext::RetryAt(now()),
        )
    };
    if lease.lost() {
        return (provider, lost());
    }
    match state
        .store
        .outbox_mark_sending(item.id, item.claim, now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return (provider, lost()),
        Err(e) => return (provider, not_sent(item, format!("storage: {e}"))),
    }
    if in_flight {
        tracing::info!(challenge = %challenge.id, provider, reconcile = past, "repeating a call that was in flight when its worker stopped");
    }
    let clock = Instant::now();
    let result = connector
        .deliver(Job {
            challenge: &challenge,
            decision: decision.as_ref(),
            outcome,
            attempt: item.attempts + 1,
            sent_before,
            in_flight,
        })
        .await;
    state
        .metrics
        .upstream_latency
        .get_or_create(&ProviderLabel { provider })
        .observe(clock.elapsed().as_secs_f64());
    (provider, classify(item, result, past))
}

/// What an answer means for the row. `past`: this call was a reconciliation after the
/// deadline.
fn classify(item: &OutboxItem, result: Delivery, past: bool) -> Step {
    match result {
        Delivery::Delivered { http_status } => Step {
            outcome: AttemptOutcome::Ok,
            http_status: Some(http_status),
            error: past
                .then(|| "reconciled after the deadline: the processor had the result".to_owned()),
            next: OutboxNext::Done,
        },
        // A definitive refusal of a repeat after the deadline: the earlier call did not land.
        Delivery::Fatal { http_status, error } if past => step(
            AttemptOutcome::Fatal,
            http_status,
            error,
            OutboxNext::TooLate,
        ),
        Delivery::Fatal { http_status, error } => step(
            AttemptOutcome::Fatal,
            http_status,
            error,
            OutboxNext::Failed,
        ),
        Delivery::Unknown { http_status, error } => step(
            AttemptOutcome::Fatal,
            http_status,
            format!("outcome unknown: {error}"),
            OutboxNext::Unknown,
        ),
        Delivery::Retry {
            http_status,
            error,
            after,
        } => {
            let certainly_not_sent = error.starts_with(NOT_SENT);
            let earlier_in_flight = item.sending_since.is_some();
            match (past, retry_at(item, after)) {
                (false, Some(at)) => step(
                    AttemptOutcome::Retry,
                    http_status,
                    error,
                    OutboxNext::RetryAt(at),
                ),
                // The window closed. An error answer, or a request that never left, means
                // the processor does not have the result from this call; a lost answer, or
                // an earlier call still unaccounted for, means nobody knows.
                (false, None)
                    if !earlier_in_flight && (certainly_not_sent || http_status.is_some()) =>
                {
                    step(
                        AttemptOutcome::Retry,
                        http_status,
                        error,
                        OutboxNext::TooLate,
                    )
                }
                _ => step(
                    AttemptOutcome::Retry,
                    http_status,
                    format!("outcome unknown: {error} when the window closed"),
                    OutboxNext::Unknown,
                ),
            }
        }
    }
}
