//! Background workers: the outbox worker (pushes, dismissals, upstream results) and
//! the expiry sweeper. Both are safe to run in several instances against one
//! PostgreSQL database: rows are claimed with fenced leases (`SKIP LOCKED`, a claim
//! number checked by every later write), renewed by a heartbeat while a row is worked
//! on, so an instance killed mid-delivery delays a row by at most one short lease.

mod deliver;
pub mod events;
pub mod expiry;
mod lease;
pub mod outbox;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// Short, secret-free description of a transport error.
pub fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request error"
    } else if e.is_body() || e.is_decode() {
        "response body error"
    } else {
        "transport error"
    };
    kind.to_owned()
}

/// Exponential backoff with full jitter: a random delay in
/// [base/2, min(cap, base·2^(attempt−1))], at least 100 ms.
pub fn backoff(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let ceiling = base.saturating_mul(2u32.saturating_pow(exp)).min(cap);
    let floor = (base / 2).min(ceiling);
    let span = ceiling.saturating_sub(floor).as_millis() as u64;
    let jitter = if span == 0 {
        0
    } else {
        rand::random_range(0..=span)
    };
    (floor + Duration::from_millis(jitter)).max(Duration::from_millis(100))
}

/// Starts the workers; they stop when `shutdown` becomes true.
pub fn spawn(state: AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(outbox::run(state.clone(), shutdown.clone())),
        tokio::spawn(events::run(state.clone(), shutdown.clone())),
        tokio::spawn(expiry::run(state, shutdown)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        for _ in 0..100 {
            let d1 = backoff(1, base, cap);
            assert!(d1 >= Duration::from_millis(250) && d1 <= base, "{d1:?}");
            let d4 = backoff(4, base, cap);
            assert!(d4 <= Duration::from_secs(4));
            assert!(backoff(30, base, cap) <= cap);
        }
    }
}
