//! The expiry sweeper: pending challenges whose deadline passed become `expired`,
//! with dismiss pushes and, where the processor wants one, an upstream result (Enfuce
//! `TIMEOUT`, the generic API's callback). Also purges old request nonces.

use std::time::Duration;

use pushauth_store::{AuditDraft, ChallengeStatus};
use tokio::sync::watch;

use crate::metrics::ProviderLabel;
use crate::services::decisions::{dismiss_rows, upstream_row};
use crate::state::{AppState, now};
use crate::upstream::Outcome;

const TICK: Duration = Duration::from_millis(500);
const PURGE_EVERY: u32 = 120;

/// Runs until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut ticks: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = sweep(&state).await {
            tracing::error!(error = %e, "expiry sweep failed");
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(PURGE_EVERY)
            && let Err(e) = state.store.request_nonce_purge(now()).await
        {
            tracing::error!(error = %e, "request nonce purge failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Most failures one sweep steps over before it gives up until the next tick: each
/// batch asks for 100 more than that, and the stores answer at most 500.
const MAX_FAILED: usize = 400;

/// Expires every due challenge once. Returns how many were expired. One challenge that
/// cannot be expired (its error is logged) does not hold up the others behind it; a
/// sweep that expired none and failed on some reports the first error.
pub async fn sweep(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let mut expired = 0;
    // Those that failed in this sweep, skipped by the next batches.
    let mut failed = std::collections::HashSet::new();
    let mut first_error = None;
    loop {
        let want = 100 + failed.len();
        let due = state
            .store
            .challenge_due(now(), i64::try_from(want).unwrap_or(i64::MAX))
            .await?;
        let batch = due.len();
        let fresh: Vec<_> = due
            .into_iter()
            .filter(|c| !failed.contains(&c.id))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for challenge in fresh {
            match expire(state, &challenge).await {
                Ok(closed) => {
                    if closed {
                        expired += 1;
                        state
                            .metrics
                            .challenges_expired
                            .get_or_create(&ProviderLabel {
                                provider: challenge.provider.as_str(),
                            })
                            .inc();
                    }
                }
                Err(e) => {
                    tracing::error!(challenge = %challenge.id, error = %e, "expiring a challenge failed; the sweep goes on");
                    failed.insert(challenge.id.clone());
                    first_error.get_or_insert(e);
                }
            }
        }
        if batch < want || failed.len() >= MAX_FAILED {
            break;
        }
    }
    match first_error {
        Some(e) if expired == 0 => Err(e),
        _ => Ok(expired),
    }
}

/// Closes one due challenge as expired, with its dismiss pushes and upstream result.
/// `false`: it was closed meanwhile by someone else.
async fn expire(
    state: &AppState,
    challenge: &pushauth_store::Challenge,
) -> Result<bool, crate::error::ApiError> {
    let mut outbox = dismiss_rows(state, challenge, None).await?;
    outbox.extend(upstream_row(state, challenge, Outcome::Expired));
    let t = now();
    let audit = AuditDraft::new(t, "system", "challenge.expired")
        .challenge(&challenge.id)
        .cardholder(&challenge.cardholder)
        .details(serde_json::json!({
            "provider": challenge.provider,
            "reference": challenge.provider_ref,
        }));
    Ok(state
        .store
        .challenge_close(&challenge.id, ChallengeStatus::Expired, t, outbox, audit)
        .await?)
}
