//! The webhook acknowledgement budget shared by the connectors.

use std::time::{Duration, Instant};

use pushauth_core::ids::Provider;

/// Checks `ack_budget_ms`: 100 ms to 30 s.
pub fn ack_budget(section: &str, ms: u64) -> Result<Duration, String> {
    if (100..=30_000).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(format!("{section}.ack_budget_ms must be 100 to 30000"))
    }
}

/// A webhook's acknowledgement budget (`ack_budget_ms`, default 1.5 s): the
/// processor stops waiting after about 2 s (Enfuce, Adyen), so past the budget the
/// webhook is answered in the processor's negative or retryable form and no challenge
/// is left behind (see `services::challenges::create`, which refuses to write after
/// [`Budget::commit_by`] and cancels a challenge whose write finished later).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    started: Instant,
    budget: Duration,
}

impl Budget {
    /// Starts the clock.
    pub fn start(budget: Duration) -> Budget {
        Budget {
            started: Instant::now(),
            budget,
        }
    }

    /// When the answer is due.
    pub fn deadline(&self) -> Instant {
        self.started + self.budget
    }

    /// The latest moment a new challenge may be written: the budget less a tenth
    /// (at most 150 ms) for the commit and the answer.
    pub fn commit_by(&self) -> Instant {
        self.deadline() - (self.budget / 10).min(Duration::from_millis(150))
    }

    /// Runs the webhook's work within the budget; `None` when the budget ran out (the
    /// work is dropped; a challenge write already under way finishes in its own task
    /// and is cancelled there, see `services::challenges::create`).
    pub async fn run<F: std::future::Future>(
        &self,
        provider: Provider,
        work: F,
    ) -> Option<F::Output> {
        match tokio::time::timeout_at(self.deadline().into(), work).await {
            Ok(out) => Some(out),
            Err(_) => {
                tracing::warn!(
                    provider = provider.as_str(),
                    budget_ms = u64::try_from(self.budget.as_millis()).unwrap_or(u64::MAX),
                    "webhook answered after its acknowledgement budget ran out"
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_the_budget_is_dropped() {
        let b = Budget::start(Duration::from_millis(100));
        assert!(b.commit_by() < b.deadline());
        let slow = tokio::time::sleep(Duration::from_millis(400));
        let started = Instant::now();
        assert!(b.run(Provider::Enfuce, slow).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(300));
        let b = Budget::start(Duration::from_millis(500));
        assert_eq!(b.run(Provider::Enfuce, async { 7 }).await, Some(7));
        assert!(ack_budget("x", 1_500).is_ok());
        assert!(ack_budget("x", 0).is_err() && ack_budget("x", 60_000).is_err());
    }
}
