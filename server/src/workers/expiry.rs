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

/// Expires every due challenge once. Returns how many were expired.
pub async fn sweep(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let mut expired = 0;
    loop {
        let due = state.store.challenge_due(now(), 100).await?;
        if due.is_empty() {
            return Ok(expired);
        }
        let batch = due.len();
        for challenge in due {
            let mut outbox = dismiss_rows(state, &challenge, None).await?;
            outbox.extend(upstream_row(state, &challenge, Outcome::Expired));
            let t = now();
            let audit = AuditDraft::new(t, "system", "challenge.expired")
                .challenge(&challenge.id)
                .cardholder(&challenge.cardholder)
                .details(serde_json::json!({
                    "provider": challenge.provider,
                    "reference": challenge.provider_ref,
                }));
            if state
                .store
                .challenge_close(&challenge.id, ChallengeStatus::Expired, t, outbox, audit)
                .await?
            {
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
        if batch < 100 {
            return Ok(expired);
        }
    }
}
