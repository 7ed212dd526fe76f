//! Creating challenges: from a processor webhook or the generic API, one transaction
//! writes the challenge, one push outbox row per reachable device and the audit
//! entry; only then is the caller answered (persist before acknowledging).

use std::sync::Arc;

use pushauth_core::ids::{CardholderId, ChallengeId, Nonce, Provider, ProviderRef};
use pushauth_core::money::Money;
use pushauth_core::transaction::{Payee, Transaction, TransactionKind, TxnDetails};
use pushauth_store::{
    AuditDraft, CardholderStatus, Challenge, CreateContext, CreatePlan, DeviceStatus, Millis,
    NewChallenge, NewOutbox, OutboxItem, OutboxKind, PlannedOutcome, Planner, Refusal,
};

use crate::error::{ApiError, ApiResult};
use crate::metrics::ProviderLabel;
use crate::state::{AppState, now};
use crate::workers::outbox::Known;

/// A request to authenticate a cardholder.
#[derive(Debug, Clone)]
pub struct ChallengeRequest {
    /// Whose.
    pub cardholder: CardholderId,
    /// From which processor.
    pub provider: Provider,
    /// The processor's reference (duplicates collapse on it).
    pub reference: ProviderRef,
    /// What.
    pub kind: TransactionKind,
    /// Amount, if given.
    pub amount: Option<Money>,
    /// Payee, if given.
    pub payee: Option<Payee>,
    /// Further signed display members (merchant country/URL, purchase date, card
    /// last four, operation): stored in the context, bound by the digest.
    pub details: TxnDetails,
    /// Decision deadline.
    pub deadline: Millis,
    /// Deadline for delivering the result upstream.
    pub upstream_deadline: Millis,
    /// Opaque processor SDK input for the app.
    pub processor_input: Option<String>,
    /// Connector data for the result leg.
    pub context: serde_json::Value,
    /// The webhook's acknowledgement budget: no challenge is written after this
    /// instant, and one whose write finished later is handled as `late_write` says.
    pub ack_by: Option<std::time::Instant>,
    /// What becomes of a challenge whose write finished after `ack_by`.
    pub late_write: LateWrite,
    /// Audit actor (`provider:enfuce`, `admin:<name>`).
    pub actor: String,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new challenge; `pushes` rows were queued.
    New {
        /// The challenge.
        challenge: Challenge,
        /// How many devices will be pushed.
        pushes: usize,
    },
    /// The same reference was seen before: the existing challenge, nothing written.
    Duplicate(Challenge),
    /// The cardholder is blocked.
    CardholderBlocked,
    /// The cardholder has no active device: nobody could answer.
    NoActiveDevice,
    /// Too many challenges pending for this cardholder (MFA-fatigue guard).
    TooManyPending,
    /// The acknowledgement budget ran out: nothing was written, or the challenge
    /// written too late was cancelled (dismiss pushes queued, nothing reported
    /// upstream since the processor has stopped waiting).
    Abandoned,
}

/// What becomes of a challenge whose write finished after the webhook's budget, when
/// the processor has already been answered "over budget".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateWrite {
    /// Cancelled at once, nobody asked, nothing reported upstream: the processor took
    /// the answer as final and stopped waiting (Enfuce, Adyen: synchronous windows).
    Cancel,
    /// Kept and pushed as usual: the processor redelivers a webhook answered 5xx, and
    /// the redelivery finds this challenge and is answered as a duplicate (Paysafe,
    /// Treezor: at-least-once delivery). Cancelling it would lose the authentication,
    /// since the redelivery would then find a cancelled challenge.
    Keep,
}

/// Creates a challenge (or recognises a duplicate). The store looks the reference,
/// the cardholder, its devices and pending count up and runs [`plan`] in one
/// transaction, so the answer rests on one consistent view and the pending limit
/// holds under concurrent webhooks.
///
/// With an acknowledgement budget (`ack_by`) the write runs in its own task, so that
/// a webhook handler dropped at the end of its budget cannot leave a challenge
/// half-reported: the task finishes, and a challenge committed after `ack_by` is
/// cancelled before anyone is answered, or kept (see [`LateWrite`]).
///
/// The push rows are written claimed by the creation (when workers run) and delivered
/// from here as soon as it committed, with the challenge and devices the transaction
/// saw: no claim transaction, no read-back, no wait for a worker. If this process dies
/// first, their lease runs out and a worker delivers them.
pub async fn create(state: &AppState, req: ChallengeRequest) -> ApiResult<Created> {
    let Some(ack_by) = req.ack_by else {
        let (created, pushes) = create_now(state, req).await?;
        deliver(state, pushes);
        return Ok(created);
    };
    let late_write = req.late_write;
    let task_state = state.clone();
    let task = tokio::spawn(async move {
        let (created, pushes) = create_now(&task_state, req).await?;
        match created {
            Created::New { challenge, .. }
                if late_write == LateWrite::Cancel && std::time::Instant::now() > ack_by =>
            {
                // Not pushed: the claimed rows wait out their lease, then a worker
                // finds the challenge closed and skips them.
                abandon(&task_state, &challenge).await?;
                Ok(Created::Abandoned)
            }
            other => {
                deliver(&task_state, pushes);
                Ok(other)
            }
        }
    });
    task.await.map_err(ApiError::internal)?
}

/// Push rows a creation wrote claimed, with what its transaction saw.
type ClaimedPushes = Option<(Vec<OutboxItem>, Arc<Known>)>;

fn deliver(state: &AppState, pushes: ClaimedPushes) {
    let Some((items, known)) = pushes else {
        return;
    };
    for item in items {
        crate::workers::outbox::deliver_claimed(state.clone(), item, Some(known.clone()));
    }
}

/// Cancels a challenge committed after its webhook's budget: the processor has
/// stopped waiting, so nobody is asked (dismiss pushes go to the devices already
/// pushed) and nothing is reported upstream.
async fn abandon(state: &AppState, challenge: &Challenge) -> ApiResult<()> {
    use pushauth_store::ChallengeStatus;
    let t = now();
    let outbox = crate::services::decisions::dismiss_rows(state, challenge, None).await?;
    let audit = AuditDraft::new(t, "system", "challenge.abandoned")
        .challenge(&challenge.id)
        .cardholder(&challenge.cardholder)
        .details(serde_json::json!({ "reason": "acknowledgement budget exceeded" }));
    state
        .store
        .challenge_close(&challenge.id, ChallengeStatus::Cancelled, t, outbox, audit)
        .await?;
    tracing::warn!(challenge = %challenge.id, "challenge written after the webhook budget: cancelled");
    Ok(())
}

async fn create_now(
    state: &AppState,
    req: ChallengeRequest,
) -> ApiResult<(Created, ClaimedPushes)> {
    let t = now();
    let fresh = Fresh {
        id: ChallengeId::generate_time_ordered(u64::try_from(t.0).unwrap_or_default())
            .map_err(ApiError::internal)?,
        nonce: Nonce::generate().map_err(ApiError::internal)?,
        t,
    };
    let (provider, reference, cardholder) =
        (req.provider, req.reference.clone(), req.cardholder.clone());
    let planner_state = state.clone();
    let planner: Planner =
        Box::new(move |seen: &CreateContext| plan(&planner_state, req, fresh, seen));
    match state
        .store
        .challenge_create_planned(provider, &reference, &cardholder, t, planner)
        .await?
    {
        // The plan's outbox rows are its pushes, one per reachable device.
        PlannedOutcome::Created {
            challenge,
            outbox_rows: pushes,
            claimed,
            devices,
        } => {
            state
                .metrics
                .challenges_created
                .get_or_create(&ProviderLabel {
                    provider: challenge.provider.as_str(),
                })
                .inc();
            let handed = (!claimed.is_empty()).then(|| {
                let known = Known {
                    challenge: challenge.clone(),
                    decision: None,
                    devices,
                };
                (claimed, Arc::new(known))
            });
            Ok((Created::New { challenge, pushes }, handed))
        }
        PlannedOutcome::Duplicate(existing) => Ok((Created::Duplicate(existing), None)),
        PlannedOutcome::NoCardholder => Err(ApiError::not_found("cardholder")),
        PlannedOutcome::Refused(why) => Ok((
            match why {
                Refusal::CardholderBlocked => Created::CardholderBlocked,
                Refusal::NoActiveDevice => Created::NoActiveDevice,
                Refusal::TooManyPending => Created::TooManyPending,
                Refusal::OverBudget => Created::Abandoned,
            },
            None,
        )),
    }
}

/// What a creation generates before the store is asked.
struct Fresh {
    id: ChallengeId,
    nonce: Nonce,
    t: Millis,
}

/// What to write for `req`, given what the store saw: refuse for a blocked
/// cardholder, no active device or too many pending challenges; otherwise the
/// challenge, one push row per active device that has a push service, and the audit
/// entry.
fn plan(state: &AppState, req: ChallengeRequest, fresh: Fresh, seen: &CreateContext) -> CreatePlan {
    let Fresh { id, nonce, t } = fresh;
    if req.ack_by.is_some_and(|by| std::time::Instant::now() >= by) {
        return CreatePlan::Refuse(Refusal::OverBudget);
    }
    if seen.cardholder_status == CardholderStatus::Blocked {
        return CreatePlan::Refuse(Refusal::CardholderBlocked);
    }
    let devices: Vec<_> = seen
        .devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .collect();
    if devices.is_empty() {
        return CreatePlan::Refuse(Refusal::NoActiveDevice);
    }
    if seen.pending >= state.config.challenges.max_pending_per_cardholder {
        return CreatePlan::Refuse(Refusal::TooManyPending);
    }
    let transaction = Transaction {
        provider: req.provider,
        reference: req.reference.clone(),
        kind: req.kind,
        amount: req.amount,
        payee: req.payee.clone(),
        details: req.details.clone(),
    };
    let outbox: Vec<NewOutbox> = devices
        .iter()
        .filter(|d| state.push.can_push(d))
        .map(|d| NewOutbox {
            kind: OutboxKind::Push,
            challenge: id.clone(),
            device: Some(d.id.clone()),
            payload: serde_json::Value::Null,
            not_before: t,
            deadline: req.deadline,
            // delivered by the creating request (see `create`); workers only after the lease
            claimed_until: state
                .config
                .workers
                .enabled
                .then(|| t.plus(state.config.workers.lease_ms)),
        })
        .collect();
    let digest = transaction.digest();
    let audit = AuditDraft::new(t, req.actor, "challenge.created")
        .challenge(&id)
        .cardholder(&req.cardholder)
        .details(serde_json::json!({
            "provider": req.provider,
            "reference": req.reference,
            "amount": transaction.display_amount(),
            "payee": req.payee,
            "digest": digest.to_string(),
            "deadline": req.deadline,
            "devices": devices.len(),
            "pushes": outbox.len(),
        }));
    let new = NewChallenge {
        id,
        cardholder: req.cardholder,
        provider: req.provider,
        provider_ref: req.reference,
        kind: req.kind,
        amount: req.amount,
        payee: req.payee,
        nonce,
        txn_digest: digest,
        deadline: req.deadline,
        upstream_deadline: req.upstream_deadline,
        processor_input: req.processor_input,
        context: pushauth_store::context_with_details(req.context, &req.details),
        created_at: t,
    };
    CreatePlan::Write { new, outbox, audit }
}

/// Closes a pending challenge when every push to the cardholder's devices failed for
/// good and no active device can poll instead (`[challenges] when_unreachable =
/// "close"`). The challenge becomes `cancelled` (audit `challenge.unreachable`) and the
/// processor gets the technical-failure outcome ([`Outcome::Failed`](crate::upstream::Outcome::Failed))
/// now rather than a timeout at the end of its window.
/// Returns whether it closed the challenge.
pub async fn close_if_unreachable(
    state: &AppState,
    id: &pushauth_core::ids::ChallengeId,
) -> ApiResult<bool> {
    use pushauth_store::{ChallengeStatus, OutboxStatus};
    if state.config.challenges.when_unreachable != crate::config::UnreachablePolicy::Close {
        return Ok(false);
    }
    let store = &state.store;
    let rows = store.outbox_for_challenge(id).await?;
    let pushes = rows.iter().filter(|r| r.kind == OutboxKind::Push).count();
    let failed = rows
        .iter()
        .filter(|r| {
            r.kind == OutboxKind::Push
                && matches!(r.status, OutboxStatus::Failed | OutboxStatus::TooLate)
        })
        .count();
    let pushed: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == OutboxKind::Push)
        .filter_map(|r| r.device.clone())
        .collect();
    drop(rows);
    if pushes == 0 || failed != pushes {
        return Ok(false);
    }
    let Some(challenge) = store.challenge_get(id).await? else {
        return Ok(false);
    };
    if challenge.status != ChallengeStatus::Pending {
        return Ok(false);
    }
    let pollers = store
        .device_list(&challenge.cardholder)
        .await?
        .into_iter()
        // a device that was not pushed (no token, no push service) can still poll;
        // one whose push just failed (its dead token is cleared by now) cannot
        .any(|d| {
            d.status == DeviceStatus::Active && !state.push.can_push(&d) && !pushed.contains(&d.id)
        });
    if pollers {
        return Ok(false);
    }
    let t = now();
    let outbox: Vec<NewOutbox> = crate::services::decisions::upstream_row(
        state,
        &challenge,
        // A technical failure, not the cardholder's silence: Enfuce ERROR, Treezor
        // KO_TECHNICAL.
        crate::upstream::Outcome::Failed,
    )
    .into_iter()
    .collect();
    let audit = AuditDraft::new(t, "system", "challenge.unreachable")
        .challenge(id)
        .cardholder(&challenge.cardholder)
        .details(serde_json::json!({ "pushes": pushes }));
    let closed = store
        .challenge_close(id, ChallengeStatus::Cancelled, t, outbox, audit)
        .await?;
    if closed {
        tracing::warn!(challenge = %id, "every push failed: challenge closed, timeout reported upstream");
    }
    Ok(closed)
}
