//! Prometheus metrics (`GET /metrics`, OpenMetrics text). Labels are closed sets
//! (providers, outcomes, reason codes): never ids, tokens or amounts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `provider` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// Provider name.
    pub provider: &'static str,
}

/// `provider` + `outcome` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOutcome {
    /// Provider name.
    pub provider: &'static str,
    /// Outcome code.
    pub outcome: &'static str,
}

/// `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// Outcome code.
    pub outcome: &'static str,
}

/// `surface` + `reason` labels (where an authentication failed and why).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthFailure {
    /// `device`, `admin`, `webhook`.
    pub surface: &'static str,
    /// Reason code.
    pub reason: &'static str,
}

/// `service` + `result` labels for push delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabel {
    /// `apns` or `fcm`.
    pub service: &'static str,
    /// `sent`, `dead_token`, `retry`, `failed`, `dismissed`.
    pub result: &'static str,
}

/// `endpoint` + `outcome` labels for issuer-event deliveries (endpoint names come
/// from the configuration: a closed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointOutcome {
    /// Configured endpoint name.
    pub endpoint: String,
    /// `delivered`, `retry`, `failed`, `stale`.
    pub outcome: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
    ]
    .into_iter()
}

/// All metrics of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Webhooks received, by provider and outcome (`created`, `duplicate`, `unauthorized`, `bad_request`, `unknown_card`, `refused`, `ignored`, `final_status`, `error`).
    pub webhooks: Family<ProviderOutcome, Counter>,
    /// Time to acknowledge a webhook, seconds.
    pub webhook_latency: Family<ProviderLabel, Histogram>,
    /// Challenges created, by provider.
    pub challenges_created: Family<ProviderLabel, Counter>,
    /// Decisions, by outcome (`approved`, `denied`, `not_me`, `conflict`, `too_late`).
    pub decisions: Family<OutcomeLabel, Counter>,
    /// Refused approval proofs, by reason code.
    pub proof_failures: Family<OutcomeLabel, Counter>,
    /// Devices locked after repeated refused proofs.
    pub device_locks: Counter,
    /// Authentication failures by surface and reason.
    pub auth_failures: Family<AuthFailure, Counter>,
    /// Push deliveries by service and result.
    pub push: Family<PushLabel, Counter>,
    /// Upstream delivery attempts by provider and outcome (`ok`, `retry`, `fatal`,
    /// `too_late`, `unknown`).
    pub upstream_attempts: Family<ProviderOutcome, Counter>,
    /// Upstream delivery latency, seconds.
    pub upstream_latency: Family<ProviderLabel, Histogram>,
    /// Challenges expired by the sweeper.
    pub challenges_expired: Family<ProviderLabel, Counter>,
    /// Outbox rows claimed but not yet completed by this process.
    pub outbox_in_flight: Gauge,
    /// Attempts whose outcome was not applied because another worker had taken the row
    /// over (recorded as attempts only).
    pub outbox_stale: Counter,
    /// Rows written claimed whose writer found no free delivery slot in time and left
    /// them to the workers.
    pub inline_deliveries_deferred: Counter,
    /// Issuer-event delivery attempts by endpoint and outcome.
    pub event_deliveries: Family<EndpointOutcome, Counter>,
    /// Issuer events deleted after `[events] keep_days`, by this process.
    pub events_purged: Counter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pushauth");
        let hist = || Histogram::new(latency_buckets());
        let m = Metrics {
            webhooks: Family::default(),
            webhook_latency: Family::new_with_constructor(hist),
            challenges_created: Family::default(),
            decisions: Family::default(),
            proof_failures: Family::default(),
            device_locks: Counter::default(),
            auth_failures: Family::default(),
            push: Family::default(),
            upstream_attempts: Family::default(),
            upstream_latency: Family::new_with_constructor(hist),
            challenges_expired: Family::default(),
            outbox_in_flight: Gauge::default(),
            outbox_stale: Counter::default(),
            inline_deliveries_deferred: Counter::default(),
            event_deliveries: Family::default(),
            events_purged: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "webhooks",
            "Processor webhooks received",
            m.webhooks.clone(),
        );
        registry.register(
            "webhook_ack_seconds",
            "Time to acknowledge a webhook",
            m.webhook_latency.clone(),
        );
        registry.register(
            "challenges_created",
            "Challenges created",
            m.challenges_created.clone(),
        );
        registry.register("decisions", "Cardholder decisions", m.decisions.clone());
        registry.register(
            "proof_failures",
            "Refused approval proofs by reason",
            m.proof_failures.clone(),
        );
        registry.register(
            "device_locks",
            "Devices locked after refused proofs",
            m.device_locks.clone(),
        );
        registry.register(
            "auth_failures",
            "Authentication failures",
            m.auth_failures.clone(),
        );
        registry.register("push", "Push deliveries", m.push.clone());
        registry.register(
            "upstream_attempts",
            "Upstream result delivery attempts",
            m.upstream_attempts.clone(),
        );
        registry.register(
            "upstream_seconds",
            "Upstream delivery latency",
            m.upstream_latency.clone(),
        );
        registry.register(
            "challenges_expired",
            "Challenges expired without decision",
            m.challenges_expired.clone(),
        );
        registry.register(
            "outbox_stale_attempts",
            "Outbox attempts not applied: the row had been taken over by another worker",
            m.outbox_stale.clone(),
        );
        registry.register(
            "outbox_inline_deferred",
            "Rows written claimed and left to the workers: no free delivery slot within half a lease",
            m.inline_deliveries_deferred.clone(),
        );
        registry.register(
            "outbox_in_flight",
            "Outbox rows being delivered",
            m.outbox_in_flight.clone(),
        );
        registry.register(
            "issuer_event_deliveries",
            "Issuer-event delivery attempts by endpoint and outcome",
            m.event_deliveries.clone(),
        );
        registry.register(
            "issuer_events_purged",
            "Issuer events deleted with their deliveries after [events] keep_days",
            m.events_purged.clone(),
        );
        Metrics { registry, ..m }
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
