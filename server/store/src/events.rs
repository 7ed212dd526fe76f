//! Issuer events: what the issuer's own systems are told (docs/api.md "Issuer events").
//!
//! An event is derived from the audit entry of the change that causes it and inserted
//! by the backend's audit append, so it is written in the same transaction as the
//! change and the audit entry: committed together or not at all. A fan-out step then
//! turns each event into one delivery row per configured endpoint that wants its type
//! (an outbox of its own, claimed with fenced leases like the challenge outbox).
//!
//! The body is fixed when the event is written (Standard Webhooks payload shape:
//! `type`, `timestamp`, `data`) and the event id (`msg_…`) is the `webhook-id` of every
//! attempt, so receivers can deduplicate retries.

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::AuditDraft;
use crate::decode::parse_enum;
use crate::model::Millis;
use crate::states::{DeliveryStatus, IssuerEventType};
use crate::{StoreError, StoreResult};

/// An event to insert with the audit entry that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIssuerEvent {
    /// `msg_` + 32 hex digits, the `webhook-id`: the event's time in milliseconds (12
    /// digits, so ids sort by time and the store's unique index grows at its end), then
    /// 80 random bits.
    pub id: String,
    /// Type.
    pub event_type: IssuerEventType,
    /// When the change happened.
    pub at: Millis,
    /// The JSON body sent to every endpoint, exactly these bytes.
    pub body: String,
}

/// Which events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRoute {
    /// Endpoint name (config).
    pub endpoint: String,
    /// Only these types; `None` = every type.
    pub types: Option<Vec<IssuerEventType>>,
}

impl EventRoute {
    /// Whether the endpoint wants events of this type.
    pub fn wants(&self, t: IssuerEventType) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&t))
    }
}

/// A claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDelivery {
    /// Delivery row id.
    pub id: i64,
    /// Fencing token of this claim.
    pub claim: i64,
    /// Endpoint name.
    pub endpoint: String,
    /// Event id (`webhook-id`).
    pub event_id: String,
    /// Event type.
    pub event_type: IssuerEventType,
    /// Body to send.
    pub body: String,
    /// Attempts before this one.
    pub attempts: i32,
    /// When the event was written.
    pub created_at: Millis,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    /// The endpoint took it.
    Done,
    /// Try again at this instant.
    RetryAt(Millis),
    /// Given up.
    Failed,
}

impl DeliveryNext {
    /// Status and next attempt time to store.
    pub fn effects(self) -> (DeliveryStatus, Option<Millis>) {
        match self {
            DeliveryNext::Done => (DeliveryStatus::Done, None),
            DeliveryNext::RetryAt(t) => (DeliveryStatus::Pending, Some(t)),
            DeliveryNext::Failed => (DeliveryStatus::Failed, None),
        }
    }
}

/// One attempt's result, as recorded on the delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it ended.
    pub at: Millis,
    /// The endpoint's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Error text (no secrets), when it failed.
    pub error: Option<String>,
}

/// An event with the state of its deliveries (admin API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerEventView {
    /// Event id.
    pub id: String,
    /// Type (its dotted name).
    #[serde(rename = "type", serialize_with = "dotted")]
    pub event_type: IssuerEventType,
    /// When written.
    pub created_at: Millis,
    /// One per endpoint that wants it (empty until fanned out).
    pub deliveries: Vec<DeliveryView>,
}

fn dotted<S: serde::Serializer>(t: &IssuerEventType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// State of one delivery (admin API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    /// Endpoint name.
    pub endpoint: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Next attempt, while pending.
    pub next_attempt_at: Option<Millis>,
}

/// One row of "latest events left-joined with their deliveries", as both backends
/// read it (newest event first, one row per delivery or one with no delivery).
#[derive(Debug, Clone)]
pub struct EventViewRow {
    /// Event sequence number (groups the rows).
    pub seq: i64,
    /// Event id.
    pub id: String,
    /// Event type text.
    pub event_type: String,
    /// Event time.
    pub created_at: i64,
    /// Delivery endpoint (None: no delivery).
    pub endpoint: Option<String>,
    /// Delivery status text.
    pub status: Option<String>,
    /// Delivery attempts.
    pub attempts: Option<i64>,
    /// Last HTTP status.
    pub last_status: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Next attempt time.
    pub next_attempt_at: Option<i64>,
}

/// Groups [`EventViewRow`]s into events with their deliveries, keeping the order.
pub fn group_event_views(rows: Vec<EventViewRow>) -> StoreResult<Vec<IssuerEventView>> {
    let mut out: Vec<(i64, IssuerEventView)> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|(seq, _)| *seq != r.seq) {
            out.push((
                r.seq,
                IssuerEventView {
                    id: r.id,
                    event_type: parse_enum(
                        "issuer_events.type",
                        &r.event_type,
                        IssuerEventType::parse,
                    )?,
                    created_at: Millis(r.created_at),
                    deliveries: Vec::new(),
                },
            ));
        }
        if let (Some(endpoint), Some(status), Some((_, view))) =
            (r.endpoint, r.status, out.last_mut())
        {
            let status = parse_enum(
                "issuer_event_deliveries.status",
                &status,
                DeliveryStatus::parse,
            )?;
            view.deliveries.push(DeliveryView {
                endpoint,
                status,
                attempts: narrow("issuer_event_deliveries.attempts", r.attempts.unwrap_or(0))?,
                last_status: r
                    .last_status
                    .map(|v| narrow("issuer_event_deliveries.last_status", v))
                    .transpose()?,
                last_error: r.last_error,
                next_attempt_at: (status == DeliveryStatus::Pending)
                    .then_some(r.next_attempt_at)
                    .flatten()
                    .map(Millis),
            });
        }
    }
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// A claimed delivery row as both backends read it.
#[derive(Debug, Clone)]
pub struct ClaimedDeliveryRow {
    /// Delivery id.
    pub id: i64,
    /// Claim number.
    pub claim_no: i64,
    /// Endpoint.
    pub endpoint: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Event id.
    pub event_id: String,
    /// Event type text.
    pub event_type: String,
    /// Body.
    pub body: String,
    /// Event time.
    pub created_at: i64,
}

impl ClaimedDeliveryRow {
    /// Decodes the row.
    pub fn decode(self) -> StoreResult<EventDelivery> {
        Ok(EventDelivery {
            id: self.id,
            claim: self.claim_no,
            endpoint: self.endpoint,
            event_id: self.event_id,
            event_type: parse_enum(
                "issuer_events.type",
                &self.event_type,
                IssuerEventType::parse,
            )?,
            body: self.body,
            attempts: narrow("issuer_event_deliveries.attempts", self.attempts)?,
            created_at: Millis(self.created_at),
        })
    }
}

fn narrow(column: &str, v: i64) -> StoreResult<i32> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column}: {v} out of range")))
}

/// The issuer event an audit entry causes, if any.
pub fn issuer_event_for(draft: &AuditDraft) -> StoreResult<Option<NewIssuerEvent>> {
    let Some((event_type, data)) = event_data(draft) else {
        return Ok(None);
    };
    let mut bytes: [u8; 16] = pushauth_core::keys::random_array()
        .map_err(|e| StoreError::Backend(format!("event id: {e}")))?;
    let at = u64::try_from(draft.at.0).unwrap_or_default();
    bytes[..6].copy_from_slice(&at.to_be_bytes()[2..]);
    let body = json!({
        "type": event_type.as_str(),
        "timestamp": draft.at.to_rfc3339(),
        "data": data,
    });
    Ok(Some(NewIssuerEvent {
        id: format!("msg_{}", hex::encode(bytes)),
        event_type,
        at: draft.at,
        body: serde_json::to_string(&body).map_err(|e| StoreError::Backend(e.to_string()))?,
    }))
}

/// Type and `data` for an audit action that is an issuer event.
fn event_data(d: &AuditDraft) -> Option<(IssuerEventType, Value)> {
    let detail = |k: &str| d.details.get(k).cloned().unwrap_or(Value::Null);
    let mut data = serde_json::Map::new();
    if let Some(c) = &d.challenge {
        data.insert("challenge_id".into(), json!(c.as_str()));
    }
    if let Some(c) = &d.cardholder {
        data.insert("cardholder_id".into(), json!(c.as_str()));
    }
    if let Some(dev) = &d.device {
        data.insert("device_id".into(), json!(dev.as_str()));
    }
    let mut put = |k: &str, v: Value| {
        data.insert(k.to_owned(), v);
    };
    let event_type = match d.action.as_str() {
        "decision.accepted" => {
            let outcome = match (
                d.details.get("decision").and_then(Value::as_str),
                d.details.get("reason").and_then(Value::as_str),
            ) {
                (Some("approve"), _) => "approved",
                (_, Some("not_me")) => "not_me",
                _ => "denied",
            };
            put("outcome", json!(outcome));
            put("processor", detail("provider"));
            put("reference", detail("reference"));
            IssuerEventType::ChallengeDecided
        }
        "challenge.expired" => {
            put("processor", detail("provider"));
            put("reference", detail("reference"));
            IssuerEventType::ChallengeExpired
        }
        "outbox.upstream.failed"
        | "outbox.upstream.outcome_unknown"
        | "outbox.upstream.too_late" => {
            put("processor", detail("provider"));
            put("reference", detail("reference"));
            put("attempts", detail("attempts"));
            put("http_status", detail("http_status"));
            put("error", detail("error"));
            if d.action.ends_with("too_late") {
                IssuerEventType::UpstreamTooLate
            } else {
                put(
                    "outcome_unknown",
                    json!(d.action.ends_with("outcome_unknown")),
                );
                IssuerEventType::UpstreamFailed
            }
        }
        "device.enrolled" => {
            put("platform", detail("platform"));
            IssuerEventType::DeviceEnrolled
        }
        "device.locked" => {
            let reason = if d.actor == "system" {
                "refused_proofs"
            } else {
                "operator"
            };
            put("reason", json!(reason));
            put("by", json!(actor_kind(&d.actor)));
            IssuerEventType::DeviceLocked
        }
        "device.revoked" | "device.unenrolled" => {
            let reason = if d.action == "device.unenrolled" {
                "unenrolled"
            } else {
                "revoked"
            };
            put("reason", json!(reason));
            put("by", json!(actor_kind(&d.actor)));
            IssuerEventType::DeviceRevoked
        }
        "device.push_token_dead" => {
            put(
                "service",
                json!(d.actor.strip_prefix("push:").unwrap_or("push")),
            );
            IssuerEventType::DevicePushUnreachable
        }
        "cardholder.blocked" => {
            put("by", json!(actor_kind(&d.actor)));
            IssuerEventType::CardholderBlocked
        }
        _ => return None,
    };
    Some((event_type, Value::Object(data)))
}

/// `admin`, `device`, `system`…: who acted, without key names or ids.
fn actor_kind(actor: &str) -> &str {
    actor.split(':').next().unwrap_or(actor)
}

#[cfg(test)]
mod tests {
    use pushauth_core::ids::{CardholderId, ChallengeId};

    use super::*;

    #[test]
    fn decision_becomes_challenge_decided_with_outcome() {
        let ch = ChallengeId::generate().unwrap();
        let holder = CardholderId::generate().unwrap();
        let draft = AuditDraft::new(Millis(1_764_806_400_123), "device:x", "decision.accepted")
            .challenge(&ch)
            .cardholder(&holder)
            .details(json!({"decision": "deny", "reason": "not_me", "provider": "enfuce", "reference": "s-1"}));
        let e = issuer_event_for(&draft).unwrap().unwrap();
        assert_eq!(e.event_type, IssuerEventType::ChallengeDecided);
        assert!(e.id.starts_with("msg_") && e.id.len() == 36);
        // the time first (1_764_806_400_123 = 0x019a_e6a8_987b), then random
        assert!(e.id.starts_with("msg_019ae6a8987b"), "{}", e.id);
        let later = AuditDraft::new(Millis(1_764_806_400_124), "device:x", "decision.accepted")
            .challenge(&ch)
            .details(json!({"decision": "approve"}));
        let later = issuer_event_for(&later).unwrap().unwrap();
        assert!(later.id > e.id, "{} {}", later.id, e.id);
        assert_ne!(issuer_event_for(&draft).unwrap().unwrap().id, e.id);
        let body: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(body["type"], "challenge.decided");
        assert_eq!(body["timestamp"], "2025-12-04T00:00:00.123Z");
        assert_eq!(body["data"]["outcome"], "not_me");
        assert_eq!(body["data"]["processor"], "enfuce");
        assert_eq!(body["data"]["reference"], "s-1");
        assert_eq!(body["data"]["cardholder_id"], holder.as_str());
        assert_ne!(
            issuer_event_for(&draft).unwrap().unwrap().id,
            e.id,
            "ids are random"
        );
    }

    #[test]
    fn other_actions_cause_no_event_and_actor_names_stay_out() {
        let d = AuditDraft::new(Millis(0), "admin:ops-anna", "challenge.created");
        assert_eq!(issuer_event_for(&d).unwrap(), None);
        let d = AuditDraft::new(Millis(0), "admin:ops-anna", "cardholder.blocked");
        let e = issuer_event_for(&d).unwrap().unwrap();
        assert!(!e.body.contains("ops-anna"));
        assert!(e.body.contains(r#""by":"admin""#));
        let d = AuditDraft::new(Millis(0), "device:1", "device.unenrolled");
        let e = issuer_event_for(&d).unwrap().unwrap();
        assert_eq!(e.event_type, IssuerEventType::DeviceRevoked);
        assert!(e.body.contains(r#""reason":"unenrolled""#));
    }

    #[test]
    fn routes_filter_by_type() {
        let all = EventRoute {
            endpoint: "a".into(),
            types: None,
        };
        let some = EventRoute {
            endpoint: "b".into(),
            types: Some(vec![IssuerEventType::ChallengeDecided]),
        };
        assert!(all.wants(IssuerEventType::DeviceLocked));
        assert!(some.wants(IssuerEventType::ChallengeDecided));
        assert!(!some.wants(IssuerEventType::DeviceLocked));
    }
}
