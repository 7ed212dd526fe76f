//! Rows as PostgreSQL returns them, and their decoding into the contract's records.
//! Every text column that holds a core newtype or enum goes through that type's
//! parsing constructor; a value that does not parse is `StoreError::Corrupt`.

use pushauth_core::ids::{Nonce, ProviderRef};
use pushauth_core::money::{Currency, Money};
use pushauth_core::transaction::{Payee, TransactionKind, TxnDigest};
use pushauth_store::*;

use crate::error::{corrupt, json, parse_enum, parse_with};

pub(crate) use pushauth_store::decode::{cardholder_id, challenge_id, device_id, opt, provider};

/// `cardholders`.
#[derive(Debug)]
pub(crate) struct CardholderRow {
    pub id: String,
    pub external_ref: Option<String>,
    pub label: Option<String>,
    pub status: String,
    pub created_at: i64,
}

impl CardholderRow {
    pub(crate) fn decode(self) -> StoreResult<Cardholder> {
        Ok(Cardholder {
            id: cardholder_id("cardholders.id", &self.id)?,
            external_ref: self.external_ref,
            label: self.label,
            status: parse_enum("cardholders.status", &self.status, CardholderStatus::parse)?,
            created_at: Millis(self.created_at),
        })
    }
}

/// `card_links`.
#[derive(Debug)]
pub(crate) struct CardLinkRow {
    pub id: i64,
    pub cardholder_id: String,
    pub provider: String,
    pub provider_key: String,
    pub label: Option<String>,
    pub created_at: i64,
}

impl CardLinkRow {
    pub(crate) fn decode(self) -> StoreResult<CardLink> {
        Ok(CardLink {
            id: LinkId(self.id),
            cardholder: cardholder_id("card_links.cardholder_id", &self.cardholder_id)?,
            provider: provider(&self.provider)?,
            provider_key: self.provider_key,
            label: self.label,
            created_at: Millis(self.created_at),
        })
    }
}

/// `devices`.
#[derive(Debug)]
pub(crate) struct DeviceRow {
    pub id: String,
    pub cardholder_id: String,
    pub status: String,
    pub platform: String,
    pub label: Option<String>,
    pub signing_jwk: String,
    pub signing_thumbprint: String,
    pub approval_jwk: String,
    pub approval_thumbprint: String,
    pub agreement_jwk: String,
    pub agreement_thumbprint: String,
    pub push_token: Option<String>,
    pub push_environment: Option<String>,
    pub failures: i32,
    pub server_kid: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl DeviceRow {
    pub(crate) fn decode(self) -> StoreResult<Device> {
        let environment = opt(self.push_environment, |s| {
            parse_enum("devices.push_environment", s, PushEnvironment::parse)
        })?;
        Ok(Device {
            id: device_id("devices.id", &self.id)?,
            cardholder: cardholder_id("devices.cardholder_id", &self.cardholder_id)?,
            status: parse_enum("devices.status", &self.status, DeviceStatus::parse)?,
            platform: parse_enum("devices.platform", &self.platform, Platform::parse)?,
            label: self.label,
            device_key: DeviceKey {
                jwk: self.signing_jwk,
                thumbprint: self.signing_thumbprint,
            },
            approval_key: DeviceKey {
                jwk: self.approval_jwk,
                thumbprint: self.approval_thumbprint,
            },
            agreement_key: DeviceKey {
                jwk: self.agreement_jwk,
                thumbprint: self.agreement_thumbprint,
            },
            push: self
                .push_token
                .map(|token| PushTarget { token, environment }),
            failures: self.failures,
            server_kid: self.server_kid,
            created_at: Millis(self.created_at),
            updated_at: Millis(self.updated_at),
        })
    }
}

/// `challenges`.
#[derive(Debug)]
pub(crate) struct ChallengeRow {
    pub id: String,
    pub cardholder_id: String,
    pub provider: String,
    pub provider_ref: String,
    pub kind: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub payee: Option<String>,
    pub nonce: String,
    pub txn_digest: String,
    pub deadline: i64,
    pub upstream_deadline: i64,
    pub processor_input: Option<String>,
    pub context: serde_json::Value,
    pub status: String,
    pub upstream_status: String,
    pub closed_at: Option<i64>,
    pub final_status: Option<serde_json::Value>,
    pub created_at: i64,
}

/// Amount columns → [`Money`]: both set or both null.
pub(crate) fn money(minor: Option<i64>, currency: Option<&str>) -> StoreResult<Option<Money>> {
    match (minor, currency) {
        (Some(minor), Some(code)) => {
            let currency = parse_with("challenges.currency", Currency::parse(code))?;
            Ok(Some(parse_with(
                "challenges.amount_minor",
                Money::from_minor(minor, currency),
            )?))
        }
        (None, None) => Ok(None),
        _ => Err(corrupt(
            "challenges.amount_minor",
            "amount and currency must both be set or both be null",
        )),
    }
}

impl ChallengeRow {
    pub(crate) fn decode(self) -> StoreResult<Challenge> {
        Ok(Challenge {
            id: challenge_id("challenges.id", &self.id)?,
            cardholder: cardholder_id("challenges.cardholder_id", &self.cardholder_id)?,
            provider: provider(&self.provider)?,
            provider_ref: parse_with(
                "challenges.provider_ref",
                ProviderRef::parse(&self.provider_ref),
            )?,
            kind: parse_with("challenges.kind", TransactionKind::parse(&self.kind))?,
            amount: money(self.amount_minor, self.currency.as_deref())?,
            payee: opt(self.payee, |s| {
                parse_with("challenges.payee", Payee::parse(s))
            })?,
            nonce: parse_with("challenges.nonce", Nonce::parse(&self.nonce))?,
            txn_digest: parse_with("challenges.txn_digest", TxnDigest::parse(&self.txn_digest))?,
            deadline: Millis(self.deadline),
            upstream_deadline: Millis(self.upstream_deadline),
            processor_input: self.processor_input,
            context: self.context,
            status: parse_enum("challenges.status", &self.status, ChallengeStatus::parse)?,
            upstream: parse_enum(
                "challenges.upstream_status",
                &self.upstream_status,
                UpstreamStatus::parse,
            )?,
            closed_at: self.closed_at.map(Millis),
            final_status: self.final_status,
            created_at: Millis(self.created_at),
        })
    }
}

/// `decisions`.
#[derive(Debug)]
pub(crate) struct DecisionRow {
    pub challenge_id: String,
    pub device_id: String,
    pub decision: String,
    pub reason: Option<String>,
    pub user_verification: String,
    pub proof: String,
    pub processor_output: Option<String>,
    pub at: i64,
}

impl DecisionRow {
    pub(crate) fn decode(self) -> StoreResult<Decision> {
        Ok(Decision {
            challenge: challenge_id("decisions.challenge_id", &self.challenge_id)?,
            device: device_id("decisions.device_id", &self.device_id)?,
            decision: parse_enum("decisions.decision", &self.decision, DecisionKind::parse)?,
            reason: opt(self.reason, |s| {
                parse_enum("decisions.reason", s, DenyReasonKind::parse)
            })?,
            user_verification: self.user_verification,
            proof: self.proof,
            processor_output: self.processor_output,
            at: Millis(self.at),
        })
    }
}

/// `outbox`.
#[derive(Debug)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub challenge_id: String,
    pub device_id: Option<String>,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub deadline: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub claim_no: i64,
    pub sending_since: Option<i64>,
}

impl OutboxRow {
    pub(crate) fn decode(self) -> StoreResult<OutboxItem> {
        Ok(OutboxItem {
            id: OutboxId(self.id),
            kind: parse_enum("outbox.kind", &self.kind, OutboxKind::parse)?,
            challenge: challenge_id("outbox.challenge_id", &self.challenge_id)?,
            device: opt(self.device_id, |s| device_id("outbox.device_id", s))?,
            payload: self.payload,
            status: parse_enum("outbox.status", &self.status, OutboxStatus::parse)?,
            attempts: self.attempts,
            next_attempt_at: Millis(self.next_attempt_at),
            deadline: Millis(self.deadline),
            last_error: self.last_error,
            created_at: Millis(self.created_at),
            claim: self.claim_no,
            sending_since: self.sending_since.map(Millis),
        })
    }
}

/// `outbox_attempts` joined with its outbox row's kind and device.
#[derive(Debug)]
pub(crate) struct AttemptRow {
    pub id: i64,
    pub outbox_id: i64,
    pub kind: String,
    pub device_id: Option<String>,
    pub attempt_no: i32,
    pub at: i64,
    pub latency_ms: i64,
    pub outcome: String,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

impl AttemptRow {
    pub(crate) fn decode(self) -> StoreResult<Attempt> {
        Ok(Attempt {
            id: self.id,
            outbox: OutboxId(self.outbox_id),
            kind: parse_enum("outbox.kind", &self.kind, OutboxKind::parse)?,
            device: opt(self.device_id, |s| device_id("outbox.device_id", s))?,
            attempt_no: self.attempt_no,
            at: Millis(self.at),
            latency_ms: self.latency_ms,
            outcome: parse_enum(
                "outbox_attempts.outcome",
                &self.outcome,
                AttemptOutcome::parse,
            )?,
            http_status: self.http_status,
            error: self.error,
        })
    }
}

/// `audit_log`.
#[derive(Debug)]
pub(crate) struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub challenge_id: Option<String>,
    pub device_id: Option<String>,
    pub cardholder_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub(crate) fn decode(self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            seq: self.seq,
            draft: audit_draft(
                self.at,
                self.actor,
                self.action,
                self.challenge_id,
                self.device_id,
                self.cardholder_id,
                &self.details,
            )?,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// An `audit_log` row the chainer has not linked yet.
#[derive(Debug)]
pub(crate) struct UnchainedRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub challenge_id: Option<String>,
    pub device_id: Option<String>,
    pub cardholder_id: Option<String>,
    pub details: String,
}

impl UnchainedRow {
    pub(crate) fn decode(self) -> StoreResult<AuditDraft> {
        audit_draft(
            self.at,
            self.actor,
            self.action,
            self.challenge_id,
            self.device_id,
            self.cardholder_id,
            &self.details,
        )
    }
}

fn audit_draft(
    at: i64,
    actor: String,
    action: String,
    challenge: Option<String>,
    device: Option<String>,
    cardholder: Option<String>,
    details: &str,
) -> StoreResult<AuditDraft> {
    Ok(AuditDraft {
        at: Millis(at),
        actor,
        action,
        challenge: opt(challenge, |s| challenge_id("audit_log.challenge_id", s))?,
        device: opt(device, |s| device_id("audit_log.device_id", s))?,
        cardholder: opt(cardholder, |s| cardholder_id("audit_log.cardholder_id", s))?,
        details: json("audit_log.details", details)?,
    })
}
