//! Per-step latency samples (a sorted `Vec` of microseconds: exact percentiles, at most a
//! few hundred thousand samples per run) and error counters, shared by all workers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    steps: BTreeMap<String, Vec<u64>>,
    errors: BTreeMap<String, u64>,
    injected: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn ms(us: u64) -> f64 {
    (us as f64) / 1000.0
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn record(&self, step: &str, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.lock()
            .steps
            .entry(step.to_owned())
            .or_default()
            .push(us);
    }

    /// An unexpected error (counts against the run).
    pub fn error(&self, kind: impl Into<String>) {
        *self.lock().errors.entry(kind.into()).or_default() += 1;
    }

    /// A fault we injected on purpose and whose refusal/handling was as expected.
    pub fn injected(&self, kind: impl Into<String>) {
        *self.lock().injected.entry(kind.into()).or_default() += 1;
    }

    pub fn count(&self, step: &str) -> usize {
        self.lock().steps.get(step).map_or(0, Vec::len)
    }

    pub fn summaries(&self) -> BTreeMap<String, StepSummary> {
        let mut g = self.lock();
        g.steps
            .iter_mut()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                v.sort_unstable();
                let pct = |p: f64| {
                    let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
                    ms(v[idx])
                };
                let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
                let s = StepSummary {
                    count: v.len(),
                    p50_ms: pct(0.50),
                    p95_ms: pct(0.95),
                    p99_ms: pct(0.99),
                    max_ms: ms(v[v.len() - 1]),
                    mean_ms: (sum as f64) / (v.len() as f64) / 1000.0,
                };
                (k.clone(), s)
            })
            .collect()
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.lock().errors.clone()
    }

    pub fn injected_counts(&self) -> BTreeMap<String, u64> {
        self.lock().injected.clone()
    }
}
