//! Taking a device's decision: pick the key from the proof's `typ` (approval → the
//! approval key; decline → the device key, or the approval key when configured),
//! verify the proof with the core (the same code the SDK uses to make it), then record
//! the first valid answer together with the upstream result and the dismiss pushes, in
//! one transaction.

use std::sync::Arc;

use pushauth_core::keys::{Jwk, KeyUse, PublicKey};
use pushauth_core::proof::{self, DenyReason};
use pushauth_store::{
    AuditDraft, Challenge, ChallengeStatus, DecideOutcome, DecideRefusal, Decision, DecisionKind,
    DenyReasonKind, Device, DeviceStatus, NewDecision, NewOutbox, OutboxKind,
};

use crate::error::{ApiError, ApiResult};
use crate::metrics::OutcomeLabel;
use crate::services::device_policy::ProofKey;
use crate::state::{AppState, now};
use crate::upstream::Outcome;
use crate::workers::outbox::Known;

/// What a device posts.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// The approval proof JWS.
    pub proof: String,
    /// Processor SDK output (Adyen `sdkOutput`), opaque.
    #[serde(default)]
    pub processor_output: Option<String>,
}

/// Longest processor output accepted.
pub const MAX_PROCESSOR_OUTPUT: usize = 16 * 1024;

/// Parses one of a device's stored public signing keys.
pub fn stored_key(device: &Device, key_use: KeyUse) -> ApiResult<PublicKey> {
    let stored = match key_use {
        KeyUse::Device => &device.device_key,
        KeyUse::Approval => &device.approval_key,
    };
    let jwk: Jwk = serde_json::from_str(&stored.jwk).map_err(ApiError::internal)?;
    PublicKey::from_jwk(&jwk).map_err(ApiError::internal)
}

/// The device key (request proofs, declines by default).
pub fn device_key(device: &Device) -> ApiResult<PublicKey> {
    stored_key(device, KeyUse::Device)
}

/// Rows that remove the prompt from the other devices of the cardholder.
pub async fn dismiss_rows(
    state: &AppState,
    challenge: &Challenge,
    except: Option<&Device>,
) -> ApiResult<Vec<NewOutbox>> {
    let devices = state.store.device_list(&challenge.cardholder).await?;
    Ok(dismiss_rows_among(state, challenge, &devices, except))
}

/// [`dismiss_rows`] from the cardholder's devices as already read.
pub fn dismiss_rows_among(
    state: &AppState,
    challenge: &Challenge,
    devices: &[Device],
    except: Option<&Device>,
) -> Vec<NewOutbox> {
    let t = now();
    devices
        .iter()
        .filter(|d| {
            d.status == DeviceStatus::Active
                && Some(&d.id) != except.map(|e| &e.id)
                && state.push.can_push(d)
        })
        .map(|d| NewOutbox {
            kind: OutboxKind::Dismiss,
            challenge: challenge.id.clone(),
            device: Some(d.id.clone()),
            payload: serde_json::Value::Null,
            not_before: t,
            deadline: challenge.deadline.max(t.plus(60_000)),
            claimed_until: None,
        })
        .collect()
}

/// The upstream row for an outcome, when the challenge's connector wants one.
pub fn upstream_row(
    state: &AppState,
    challenge: &Challenge,
    outcome: Outcome,
) -> Option<NewOutbox> {
    state
        .connectors
        .wants(challenge, outcome)
        .then(|| NewOutbox {
            kind: OutboxKind::Upstream,
            challenge: challenge.id.clone(),
            device: None,
            payload: serde_json::to_value(outcome).unwrap_or_default(),
            not_before: now(),
            deadline: challenge.upstream_deadline,
            claimed_until: None,
        })
}

/// The challenge's transaction as created (see `Challenge::bound_transaction`); a 500
/// that changes nothing when this build cannot rebuild it.
pub fn bound_transaction(
    challenge: &Challenge,
) -> ApiResult<pushauth_core::transaction::Transaction> {
    challenge.bound_transaction().ok_or_else(|| {
        ApiError::internal(format_args!(
            "challenge {}: the stored transaction no longer rebuilds to the digest it was created with",
            challenge.id
        ))
    })
}

fn closed_error(challenge: &Challenge) -> ApiError {
    match challenge.status {
        ChallengeStatus::Expired => ApiError::gone("challenge_expired", "the challenge expired"),
        status => ApiError::conflict(
            "already_closed",
            format!("the challenge is already {status}"),
        )
        .with(serde_json::json!({ "challenge_status": status })),
    }
}

/// Verifies and records a decision from `device` on challenge `id`.
pub async fn decide(
    state: &AppState,
    device: &Device,
    challenge: Challenge,
    body: DecisionBody,
) -> ApiResult<ChallengeStatus> {
    let m = &state.metrics;
    if challenge.status.is_final() {
        m.decisions
            .get_or_create(&OutcomeLabel {
                outcome: "conflict",
            })
            .inc();
        return Err(closed_error(&challenge));
    }
    if device.status != DeviceStatus::Active {
        return Err(ApiError::locked("the device is locked"));
    }
    if body
        .processor_output
        .as_ref()
        .is_some_and(|o| o.len() > MAX_PROCESSOR_OUTPUT)
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "processor_output: too long",
        ));
    }
    let t = now();
    // The typ names the kind of proof; the configured policy names the key for it.
    // A proof whose typ cannot be read fails in verify below with its own reason.
    let policy = &state.config.devices;
    let kind = proof::peek(&body.proof).map_or(proof::ProofKind::Approval, |(kind, _)| kind);
    let key = match policy.key_for(kind) {
        ProofKey::Approval => stored_key(device, KeyUse::Approval)?,
        ProofKey::Device => stored_key(device, KeyUse::Device)?,
    };
    // Checked against what was created, so the stored digest is that transaction's.
    bound_transaction(&challenge)?;
    let txn = challenge.txn_digest;
    let expect = proof::Expectations {
        kind,
        device: &device.id,
        key: &key,
        min_user_verification: policy.min_user_verification,
        audience: &state.issuer,
        challenge: &challenge.id,
        nonce: &challenge.nonce,
        txn: &txn,
        deadline: challenge.deadline.as_unix_time(),
        processor_output: body.processor_output.as_deref(),
        now: t.as_unix_time(),
        skew_secs: state.config.security.clock_skew_secs,
    };
    let verified = match proof::verify(&body.proof, &expect) {
        Ok(v) => v,
        Err(pushauth_core::Error::PastDeadline) => {
            m.decisions
                .get_or_create(&OutcomeLabel {
                    outcome: "too_late",
                })
                .inc();
            return Err(ApiError::gone(
                "challenge_expired",
                "the challenge deadline has passed",
            ));
        }
        Err(e) => {
            m.proof_failures
                .get_or_create(&OutcomeLabel { outcome: e.code() })
                .inc();
            let audit = AuditDraft::new(t, format!("device:{}", device.id), "decision.refused")
                .challenge(&challenge.id)
                .device(&device.id)
                .details(serde_json::json!({ "reason": e.code() }));
            let failure = state
                .store
                .device_record_failure(
                    &device.id,
                    state.config.security.lock_after_failures,
                    t,
                    audit,
                )
                .await?;
            if failure.locked {
                m.device_locks.inc();
                tracing::warn!(device = %device.id, failures = failure.failures, "device locked after refused proofs");
            }
            return Err(
                ApiError::unprocessable(e.code(), format!("approval proof refused: {e}")).with(
                    serde_json::json!({ "failures": failure.failures, "locked": failure.locked }),
                ),
            );
        }
    };
    if verified.decision() == proof::Decision::Approve
        && let Some(reason) = state
            .connectors
            .approval_refusal(&challenge, body.processor_output.as_deref())
    {
        m.decisions
            .get_or_create(&OutcomeLabel { outcome: reason })
            .inc();
        let detail = match reason {
            "processor_output_invalid" => {
                "processor_output has characters this processor's result call cannot carry"
            }
            _ => "this processor needs its SDK output (processor_output) with an approval",
        };
        return Err(ApiError::unprocessable(reason, detail));
    }
    let (kind, reason, status) = match (verified.decision(), verified.reason()) {
        (proof::Decision::Approve, _) => (DecisionKind::Approve, None, ChallengeStatus::Approved),
        (proof::Decision::Deny, Some(DenyReason::NotMe)) => (
            DecisionKind::Deny,
            Some(DenyReasonKind::NotMe),
            ChallengeStatus::Denied,
        ),
        (proof::Decision::Deny, Some(DenyReason::Declined)) => (
            DecisionKind::Deny,
            Some(DenyReasonKind::Declined),
            ChallengeStatus::Denied,
        ),
        (proof::Decision::Deny, None) => (DecisionKind::Deny, None, ChallengeStatus::Denied),
    };
    let outcome = match kind {
        DecisionKind::Approve => Outcome::Approved,
        DecisionKind::Deny => Outcome::Denied { reason },
    };
    let mut outbox = dismiss_rows(state, &challenge, Some(device)).await?;
    // The result is written claimed by this request, which delivers it as soon as the
    // decision commits (no claim transaction, no wait for a worker); a worker takes it
    // over only if this process dies before finishing (its lease runs out).
    let inline = state.config.workers.enabled;
    outbox.extend(upstream_row(state, &challenge, outcome).map(|mut row| {
        if inline {
            row.claimed_until = Some(now().plus(state.config.workers.lease_ms));
        }
        row
    }));
    let uv = verified.claims().uv.as_str().to_owned();
    let decision = NewDecision {
        challenge: challenge.id.clone(),
        device: device.id.clone(),
        decision: kind,
        reason,
        user_verification: uv,
        proof: body.proof,
        processor_output: body.processor_output,
        at: t,
    };
    let audit = AuditDraft::new(t, format!("device:{}", device.id), "decision.accepted")
        .challenge(&challenge.id)
        .device(&device.id)
        .cardholder(&challenge.cardholder)
        .details(serde_json::json!({
            "decision": kind,
            "reason": reason,
            "digest": txn.to_string(),
            "upstream": outbox.iter().any(|o| o.kind == OutboxKind::Upstream),
            "provider": challenge.provider,
            "reference": challenge.provider_ref,
        }));
    let recorded = Decision {
        challenge: decision.challenge.clone(),
        device: decision.device.clone(),
        decision: decision.decision,
        reason: decision.reason,
        user_verification: decision.user_verification.clone(),
        proof: decision.proof.clone(),
        processor_output: decision.processor_output.clone(),
        at: decision.at,
    };
    match state
        .store
        .challenge_decide_claiming(decision, outbox, audit)
        .await?
    {
        (DecideOutcome::Accepted(c), claimed) => {
            let known = Arc::new(Known {
                challenge: c.clone(),
                decision: Some(recorded),
                devices: Vec::new(),
            });
            for item in claimed {
                crate::workers::outbox::deliver_claimed(state.clone(), item, Some(known.clone()));
            }
            let label = match (kind, reason) {
                (DecisionKind::Approve, _) => "approved",
                (DecisionKind::Deny, Some(DenyReasonKind::NotMe)) => "not_me",
                (DecisionKind::Deny, _) => "denied",
            };
            m.decisions
                .get_or_create(&OutcomeLabel { outcome: label })
                .inc();
            tracing::info!(challenge = %c.id, device = %device.id, outcome = label, "decision accepted");
            debug_assert_eq!(c.status, status);
            Ok(c.status)
        }
        (DecideOutcome::AlreadyClosed(c), _) => {
            m.decisions
                .get_or_create(&OutcomeLabel {
                    outcome: "conflict",
                })
                .inc();
            Err(closed_error(&c))
        }
        (DecideOutcome::PastDeadline(_), _) => {
            m.decisions
                .get_or_create(&OutcomeLabel {
                    outcome: "too_late",
                })
                .inc();
            Err(ApiError::gone(
                "challenge_expired",
                "the challenge deadline has passed",
            ))
        }
        (DecideOutcome::NotFound, _) => Err(ApiError::not_found("challenge")),
        (DecideOutcome::Refused(why), _) => {
            m.decisions
                .get_or_create(&OutcomeLabel { outcome: "refused" })
                .inc();
            tracing::info!(challenge = %challenge.id, device = %device.id, refusal = ?why, "decision refused at commit");
            Err(refusal_error(why))
        }
    }
}

/// The answer to a decision refused at commit (the device was revoked or locked, or
/// the cardholder blocked, after the request was authenticated).
fn refusal_error(why: DecideRefusal) -> ApiError {
    match why {
        DecideRefusal::DeviceNotActive(Some(DeviceStatus::Locked)) => {
            ApiError::locked("the device is locked")
        }
        DecideRefusal::DeviceNotActive(_) => {
            ApiError::unauthorized("unknown_device", "unknown or revoked device")
        }
        DecideRefusal::CardholderBlocked => ApiError::cardholder_blocked(),
    }
}
