//! Several server instances on one PostgreSQL database (`--instances N`): where each
//! request goes, how many each instance answered, and each instance's CPU and RSS.
//!
//! Webhook `i` goes to instance `i % N`; the virtual device of card `j` enrolls on and
//! makes every later request to instance `j % N`, so that a challenge created on one
//! instance is answered through another. Admin set-up goes to instance 0. All instances
//! share the configuration, the database (with the server's signing keys), one mock
//! processor and one mock push service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{Shared, cpu_ticks};
use crate::server::{Rss, ServerProc};

/// The issuer every instance signs challenges as and accepts device proofs for (by
/// default it is each instance's own URL, which differs by port).
pub const SHARED_ISSUER: &str = "https://pushauth.loadgen.test";

/// One instance's base URL with the count of requests it answered (any status).
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    answered: Arc<AtomicU64>,
}

impl Target {
    pub fn new(base: &str) -> Target {
        Target {
            base: base.to_owned(),
            answered: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts one answered request.
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// The card a request `i` is about when requests go round-robin over `n` instances:
/// `i % cards` for one instance; with more, each card gets its challenges from every
/// instance in turn (with `i % cards` and an even card count, card `j` would only ever
/// get webhooks on instance `j % n`, its own device's instance).
pub fn card_for(i: usize, cards: usize, n: usize) -> usize {
    let n = n.max(1);
    (i / n + i % n) % cards.max(1)
}

/// What the report shows of one instance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InstanceFigures {
    pub index: usize,
    pub pid: u32,
    pub url: String,
    pub start_to_ready_ms: f64,
    /// Requests it answered during the measured phase.
    pub requests_served: u64,
    /// Requests it answered over the whole run, set-up included.
    pub requests_total: u64,
    /// Its CPU (user + system) during the measured phase.
    pub server_cpu_secs: f64,
    /// Its CPU over the run's completed operations (the instances' values add up to
    /// the run's `server_cpu_ms_per_op`).
    pub server_cpu_ms_per_op: f64,
    /// Its CPU over the requests it served.
    pub server_cpu_ms_per_request: f64,
    pub rss_after_ready_kb: u64,
    pub rss_end: Rss,
    pub rss_peak_sampled_kb: u64,
}

/// An instance as the run tracks it.
#[derive(Debug)]
pub(crate) struct Tracked {
    target: Target,
    cpu_at_start: u64,
    served_at_start: u64,
    pub(crate) fig: InstanceFigures,
}

impl Shared {
    fn tracked(&self) -> std::sync::MutexGuard<'_, Vec<Tracked>> {
        self.instances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a started instance (in index order).
    pub(crate) fn track(&self, server: &ServerProc, target: &Target) {
        let mut g = self.tracked();
        let index = g.len();
        g.push(Tracked {
            target: target.clone(),
            cpu_at_start: 0,
            served_at_start: 0,
            fig: InstanceFigures {
                index,
                pid: server.pid,
                url: server.base.clone(),
                start_to_ready_ms: server.to_ready.as_secs_f64() * 1000.0,
                rss_after_ready_kb: server.rss().vm_rss_kb,
                ..InstanceFigures::default()
            },
        });
    }

    /// Start of the measured phase: each instance's CPU ticks and request count.
    pub(crate) fn instances_start(&self) {
        for t in self.tracked().iter_mut() {
            t.cpu_at_start = cpu_ticks(&t.fig.pid.to_string());
            t.served_at_start = t.target.count();
        }
    }

    /// End of the measured phase; returns the instances' CPU seconds in it, summed
    /// (`None` without instances).
    pub(crate) fn instances_end(&self) -> Option<f64> {
        let mut g = self.tracked();
        if g.is_empty() {
            return None;
        }
        let mut sum = 0.0;
        for t in g.iter_mut() {
            let cpu = cpu_ticks(&t.fig.pid.to_string()).saturating_sub(t.cpu_at_start);
            t.fig.server_cpu_secs = cpu as f64 / 100.0;
            t.fig.requests_served = t.target.count().saturating_sub(t.served_at_start);
            sum += t.fig.server_cpu_secs;
        }
        Some(sum)
    }

    /// One RSS sample of every instance.
    pub(crate) fn sample_rss(&self) {
        for t in self.tracked().iter_mut() {
            let kb = crate::server::read_rss(t.fig.pid).vm_rss_kb;
            t.fig.rss_peak_sampled_kb = t.fig.rss_peak_sampled_kb.max(kb);
            if t.fig.index == 0 {
                self.rss_peak.fetch_max(kb, Ordering::Relaxed);
            }
        }
    }

    /// Each instance's RSS now, as its end figure.
    pub(crate) fn instances_rss_end(&self) {
        for t in self.tracked().iter_mut() {
            t.fig.rss_end = crate::server::read_rss(t.fig.pid);
        }
    }

    /// The figures for the report, with CPU per op over `completed` operations.
    pub(crate) fn instance_figures(&self, completed: usize) -> Vec<InstanceFigures> {
        self.tracked()
            .iter()
            .map(|t| {
                let mut f = t.fig.clone();
                f.requests_total = t.target.count();
                if completed > 0 {
                    f.server_cpu_ms_per_op = f.server_cpu_secs * 1000.0 / completed as f64;
                }
                if f.requests_served > 0 {
                    f.server_cpu_ms_per_request =
                        f.server_cpu_secs * 1000.0 / f.requests_served as f64;
                }
                f
            })
            .collect()
    }
}

/// The per-instance lines of the text report (only with more than one instance).
pub fn print_instances(instances: &[InstanceFigures]) {
    if instances.len() < 2 {
        return;
    }
    println!(
        "{:<9} {:>8} {:>10} {:>9} {:>10} {:>11} {:>10} {:>11} {:>9}",
        "instance",
        "pid",
        "requests",
        "CPU s",
        "CPU ms/op",
        "CPU ms/req",
        "ready ms",
        "RSS end MB",
        "peak MB"
    );
    for f in instances {
        println!(
            "{:<9} {:>8} {:>10} {:>9.2} {:>10.3} {:>11.3} {:>10.0} {:>11.1} {:>9.1}",
            f.index,
            f.pid,
            f.requests_served,
            f.server_cpu_secs,
            f.server_cpu_ms_per_op,
            f.server_cpu_ms_per_request,
            f.start_to_ready_ms,
            f.rss_end.vm_rss_kb as f64 / 1024.0,
            f.rss_peak_sampled_kb as f64 / 1024.0
        );
    }
    println!(
        "(requests: answered in the measured phase; CPU ms/op: the instance's CPU over all completed operations)"
    );
}

#[cfg(test)]
mod tests {
    use super::card_for;

    #[test]
    fn one_instance_keeps_the_plain_card_order() {
        for i in 0..100 {
            assert_eq!(card_for(i, 16, 1), i % 16);
        }
    }

    #[test]
    fn every_card_gets_challenges_from_every_instance() {
        for (cards, n) in [(8, 2), (6, 3), (5, 2), (64, 2), (1, 2)] {
            let mut seen = vec![vec![0usize; n]; cards];
            for i in 0..cards * n * 3 {
                seen[card_for(i, cards, n)][i % n] += 1;
            }
            for (card, per_instance) in seen.iter().enumerate() {
                assert!(
                    per_instance.iter().all(|&c| c == 3),
                    "cards={cards} n={n} card {card}: {per_instance:?}"
                );
            }
        }
    }
}
