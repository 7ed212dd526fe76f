//! Delivering results to processors. Each connector implements [`Upstream`]; the
//! outbox worker calls it for every `upstream` row until it reports delivery, a
//! permanent refusal, or the processor's deadline passes.
//!
//! Transient failures (transport errors, timeouts, 5xx, 429) are retried with backoff
//! until the deadline; only a definitive answer ends a row early. Before each call the
//! worker commits a sending mark on the row; a row claimed with that mark had a call in
//! flight when its previous holder died. What a repeat of such a call does depends on
//! the processor ([`Resend`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushauth_core::ids::Provider;
use pushauth_store::{Challenge, ChallengeStatus, Decision, DenyReasonKind};
use serde::{Deserialize, Serialize};

/// What is reported upstream (the payload of an `upstream` outbox row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The cardholder approved.
    Approved,
    /// The cardholder denied.
    Denied {
        /// Why, if said.
        reason: Option<DenyReasonKind>,
    },
    /// No answer before the deadline.
    Expired,
    /// Cancelled by the issuer.
    Cancelled,
    /// A technical failure prevented a decision (e.g. no device reachable under
    /// `[challenges] when_unreachable = "close"`): Enfuce `ERROR`, Treezor
    /// `KO_TECHNICAL`.
    Failed,
}

impl Outcome {
    /// The outcome matching a closed challenge status, if any.
    pub fn for_status(status: ChallengeStatus, reason: Option<DenyReasonKind>) -> Option<Outcome> {
        match status {
            ChallengeStatus::Approved => Some(Outcome::Approved),
            ChallengeStatus::Denied => Some(Outcome::Denied { reason }),
            ChallengeStatus::Expired => Some(Outcome::Expired),
            ChallengeStatus::Cancelled => Some(Outcome::Cancelled),
            ChallengeStatus::Pending => None,
        }
    }
}

/// One delivery to perform.
#[derive(Debug)]
pub struct Job<'a> {
    /// The challenge.
    pub challenge: &'a Challenge,
    /// The decision, when there is one (its proof is evidence some processors want).
    pub decision: Option<&'a Decision>,
    /// What to report.
    pub outcome: Outcome,
    /// 1-based attempt number.
    pub attempt: i32,
    /// Calls of earlier attempts that may have reached the processor (answered, or
    /// failed after the request went out), the in-flight call of a dead holder included.
    /// Computed from the attempt history for [`Resend::Budgeted`] processors only; for
    /// the others it is the number of earlier attempts.
    pub sent_before: i32,
    /// A previous holder of the row died (or lost it) with a call in flight: the
    /// processor may already have this result.
    pub in_flight: bool,
}

/// Prefix of an attempt's error when the request certainly did not reach the processor
/// (connection refused, storage error before the call): such attempts do not count
/// against a processor's attempt budget.
pub const NOT_SENT: &str = "not sent: ";

/// What sending the same result again does at a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// The processor recognises the repeat and says so (Treezor "already received",
    /// Adyen `Idempotency-Key`): a repeat reconciles, even after the deadline.
    Deduplicated,
    /// The processor takes the same result again (Enfuce, generic API callbacks): a
    /// repeat is harmless but cannot tell whether the earlier call landed.
    Repeats,
    /// Each call consumes one of a limited number of attempts, and the latest decides
    /// (Paysafe `allowableAttempts`): repeats only within that budget.
    Budgeted,
}

/// Result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the processor.
    Delivered {
        /// HTTP status received.
        http_status: u16,
    },
    /// Failed in a way worth retrying (transport error, 5xx, 429).
    Retry {
        /// HTTP status, when a response came.
        http_status: Option<u16>,
        /// Short description, no secrets.
        error: String,
        /// Processor-requested delay (`Retry-After`).
        after: Option<Duration>,
    },
    /// Refused for good (4xx other than 429).
    Fatal {
        /// HTTP status, when a response came.
        http_status: Option<u16>,
        /// Short description, no secrets.
        error: String,
    },
    /// Given up without knowing whether the processor has the result (a call that may
    /// have landed, and no way left to find out or to repeat it).
    Unknown {
        /// HTTP status, when a response came.
        http_status: Option<u16>,
        /// Short description, no secrets.
        error: String,
    },
}

/// A processor connector's result leg.
#[async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug {
    /// Which processor.
    fn provider(&self) -> Provider;
    /// Whether this outcome of this challenge must be reported upstream at all.
    fn wants(&self, challenge: &Challenge, outcome: Outcome) -> bool;
    /// Performs one delivery attempt.
    async fn deliver(&self, job: Job<'_>) -> Delivery;
    /// Why an approval of `challenge` cannot be accepted with this processor output
    /// (a stable reason code), checked after the proof verified and before anything
    /// is recorded. Adyen: a challenge that carried `sdkInput` needs `sdkOutput`.
    fn approval_refusal(
        &self,
        _challenge: &Challenge,
        _processor_output: Option<&str>,
    ) -> Option<&'static str> {
        None
    }

    /// What a repeat of a call that may have landed does at this processor.
    fn resend(&self) -> Resend {
        Resend::Repeats
    }
}

/// The configured connectors, by provider.
#[derive(Debug, Default, Clone)]
pub struct Connectors {
    by_provider: HashMap<Provider, Arc<dyn Upstream>>,
}

impl Connectors {
    /// Registers a connector (replacing any for the same provider).
    pub fn add(&mut self, upstream: Arc<dyn Upstream>) {
        self.by_provider.insert(upstream.provider(), upstream);
    }
    /// The connector for a provider.
    pub fn get(&self, provider: Provider) -> Option<&Arc<dyn Upstream>> {
        self.by_provider.get(&provider)
    }
    /// Why the challenge's connector refuses an approval with this processor output.
    pub fn approval_refusal(
        &self,
        challenge: &Challenge,
        processor_output: Option<&str>,
    ) -> Option<&'static str> {
        self.get(challenge.provider)
            .and_then(|u| u.approval_refusal(challenge, processor_output))
    }
    /// Whether `outcome` of `challenge` needs an upstream row.
    pub fn wants(&self, challenge: &Challenge, outcome: Outcome) -> bool {
        self.get(challenge.provider)
            .is_some_and(|u| u.wants(challenge, outcome))
    }
}
