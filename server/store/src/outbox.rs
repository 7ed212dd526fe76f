//! The outbox as stored: rows to write with a state change, rows as claimed, delivery
//! attempts and their consequences, and the audit entry of a row's final status.

use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId};
use serde::{Deserialize, Serialize};

use crate::StoreResult;
use crate::model::Millis;
use crate::states::*;

/// Outbox row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutboxId(pub i64);

/// A side effect to perform later.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// What kind.
    pub kind: OutboxKind,
    /// About which challenge.
    pub challenge: ChallengeId,
    /// For which device (push and dismiss).
    pub device: Option<DeviceId>,
    /// Kind-specific payload (e.g. the upstream result to send).
    pub payload: serde_json::Value,
    /// Not before this instant.
    pub not_before: Millis,
    /// Give up after this instant (`too_late`).
    pub deadline: Millis,
    /// Written already claimed by the writer (claim 1, leased until this instant), which
    /// delivers it at once; workers take it only if that lease runs out (the writer
    /// died). `None`: an ordinary pending row for the workers.
    pub claimed_until: Option<Millis>,
}

impl NewOutbox {
    /// The row as inserted with `id` at `created_at`, as a claimed [`OutboxItem`] when
    /// it was written claimed.
    pub fn into_claimed(self, id: OutboxId, created_at: Millis) -> Option<OutboxItem> {
        self.claimed_until?;
        Some(OutboxItem {
            id,
            kind: self.kind,
            challenge: self.challenge,
            device: self.device,
            payload: self.payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: self.not_before,
            deadline: self.deadline,
            last_error: None,
            created_at,
            claim: 1,
            sending_since: None,
        })
    }
}

/// Whether a change that wrote `rows` gives the workers something to take: a row
/// written claimed is its writer's to deliver until its lease runs out.
pub fn wakes_workers(rows: &[NewOutbox]) -> bool {
    rows.iter().any(|r| r.claimed_until.is_none())
}

/// The rows of `rows` written claimed, as items (`ids` are the inserted ids, in order).
pub fn claimed_items(
    rows: Vec<NewOutbox>,
    ids: &[OutboxId],
    created_at: Millis,
) -> Vec<OutboxItem> {
    rows.into_iter()
        .zip(ids.iter().copied())
        .filter_map(|(row, id)| row.into_claimed(id, created_at))
        .collect()
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    /// Id.
    pub id: OutboxId,
    /// Kind.
    pub kind: OutboxKind,
    /// Challenge.
    pub challenge: ChallengeId,
    /// Device.
    pub device: Option<DeviceId>,
    /// Payload.
    pub payload: serde_json::Value,
    /// Status.
    pub status: OutboxStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// Next attempt not before.
    pub next_attempt_at: Millis,
    /// Deadline.
    pub deadline: Millis,
    /// Last error text (no secrets).
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Fencing token: the number of the claim that handed this row out (0 = never
    /// claimed). Completion, lease renewal and the sending mark need the current one.
    pub claim: i64,
    /// When a call to the processor was marked as started and its outcome not yet
    /// recorded: set on a freshly claimed row, the previous holder died or lost its
    /// lease with that call in flight.
    pub sending_since: Option<Millis>,
}

/// One delivery attempt, as measured by the worker.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Start time.
    pub at: Millis,
    /// Duration.
    pub latency_ms: i64,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// HTTP status, when a response came.
    pub http_status: Option<i32>,
    /// Error text (no secrets), when failed.
    pub error: Option<String>,
}

/// What happens to an outbox row after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxNext {
    /// Delivered.
    Done,
    /// Try again at this instant.
    RetryAt(Millis),
    /// Refused for good.
    Failed,
    /// Deadline passed.
    TooLate,
    /// Given up without knowing whether the processor took the result: a call was in
    /// flight when its holder died, and the processor offers no way to find out. Stored
    /// as `failed` (upstream `failed`), with the sending mark kept as evidence and the
    /// audit action `outbox.<kind>.outcome_unknown`.
    Unknown,
}

/// A recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Row id.
    pub id: i64,
    /// Outbox row.
    pub outbox: OutboxId,
    /// Kind of that row.
    pub kind: OutboxKind,
    /// Device, for pushes.
    pub device: Option<DeviceId>,
    /// 1-based attempt number.
    pub attempt_no: i32,
    /// Start time.
    pub at: Millis,
    /// Duration.
    pub latency_ms: i64,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// HTTP status.
    pub http_status: Option<i32>,
    /// Error text.
    pub error: Option<String>,
}

/// The upstream status a new or closed challenge gets from the outbox rows written with
/// it: `queued` when one of them is an upstream result, `none` otherwise.
pub fn upstream_status_for(outbox: &[NewOutbox]) -> UpstreamStatus {
    if outbox.iter().any(|o| o.kind == OutboxKind::Upstream) {
        UpstreamStatus::Queued
    } else {
        UpstreamStatus::None
    }
}

impl OutboxNext {
    /// What an attempt's consequence writes: the row's new status, the retry time (if
    /// rescheduled), and for upstream rows the challenge's new upstream status (`None`
    /// while it stays queued).
    pub fn effects(self) -> (OutboxStatus, Option<Millis>, Option<UpstreamStatus>) {
        match self {
            OutboxNext::Done => (OutboxStatus::Done, None, Some(UpstreamStatus::Delivered)),
            OutboxNext::RetryAt(at) => (OutboxStatus::Pending, Some(at), None),
            OutboxNext::Failed => (OutboxStatus::Failed, None, Some(UpstreamStatus::Failed)),
            OutboxNext::TooLate => (OutboxStatus::TooLate, None, Some(UpstreamStatus::TooLate)),
            OutboxNext::Unknown => (OutboxStatus::Failed, None, Some(UpstreamStatus::Failed)),
        }
    }
}

/// The error text recorded with an attempt: a stale holder's attempt (its claim was
/// taken over, or the row was already final) is recorded as such, and changed nothing.
pub fn stale_error(stale: bool, error: Option<&str>) -> Option<String> {
    match (stale, error) {
        (false, e) => e.map(str::to_owned),
        (true, Some(e)) => Some(format!("{e} (stale claim: not applied)")),
        (true, None) => Some("stale claim: not applied".to_owned()),
    }
}

/// The last part of the audit action for a final outbox row: its status, or
/// `outcome_unknown` when the row was given up without knowing what the processor has.
pub fn final_action(next: OutboxNext, status: OutboxStatus) -> &'static str {
    if next == OutboxNext::Unknown {
        "outcome_unknown"
    } else {
        status.as_str()
    }
}

/// The audit entry written when an outbox row reaches a final status
/// (`outbox.<kind>.<status>`).
#[allow(
    clippy::too_many_arguments,
    reason = "one entry, every field named at the call"
)]
pub fn outbox_final_audit(
    id: OutboxId,
    kind: OutboxKind,
    status: &str,
    attempts: i64,
    attempt: &AttemptRecord,
    challenge: &ChallengeId,
    cardholder: &CardholderId,
    device: Option<&DeviceId>,
    source: (&str, &str),
) -> crate::AuditDraft {
    let draft = crate::AuditDraft::new(attempt.at, "system", format!("outbox.{kind}.{status}"))
        .challenge(challenge)
        .cardholder(cardholder)
        .details(serde_json::json!({
            "outbox_id": id.0,
            "attempts": attempts,
            "http_status": attempt.http_status,
            "error": attempt.error,
            "provider": source.0,
            "reference": source.1,
        }));
    match device {
        Some(d) => draft.device(d),
        None => draft,
    }
}

/// The rows a claim returned, decoded, in claim order (due time, then id). A row that
/// does not decode (a kind or status written by a newer version, say, after a
/// rollback) is logged and left to its lease instead of failing the batch: the rows
/// claimed with it are delivered, and it comes back, logged again, after each lease.
pub fn decoded_claims(
    rows: impl IntoIterator<Item = (i64, StoreResult<OutboxItem>)>,
) -> Vec<OutboxItem> {
    let mut items: Vec<OutboxItem> = rows
        .into_iter()
        .filter_map(|(id, decoded)| match decoded {
            Ok(item) => Some(item),
            Err(e) => {
                tracing::error!(outbox = id, error = %e, "claimed outbox row does not decode; left to its lease");
                None
            }
        })
        .collect();
    items.sort_by_key(|i| (i.next_attempt_at, i.id.0));
    items
}
