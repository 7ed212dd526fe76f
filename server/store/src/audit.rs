//! The append-only audit log and its hash chain. Each entry's hash covers the previous
//! entry's hash and the entry's own canonical content, so removing, reordering or
//! editing any entry breaks every hash after it; `pushauth audit verify` recomputes
//! the chain.
//!
//! ```text
//! hash(n) = hex(SHA-256( hash(n−1) ‖ "\n" ‖ JSON[seq, at, actor, action, challenge, device, cardholder, details] ))
//! hash(0) = 64 × "0"
//! ```
//! The JSON is written canonically here (object keys sorted by code point at every
//! level, no whitespace), so the hash depends neither on how a backend stores JSON nor
//! on serde_json's map ordering features.

use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId};
use serde::Serialize;
use sha2::Digest as _;

use crate::model::Millis;

/// Hash that precedes the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditDraft {
    /// When.
    pub at: Millis,
    /// Who: `admin:<key name>`, `device:<id>`, `provider:<name>`, `system`.
    pub actor: String,
    /// What, dotted (`challenge.created`, `decision.accepted`, `device.locked`…).
    pub action: String,
    /// Challenge concerned.
    pub challenge: Option<ChallengeId>,
    /// Device concerned.
    pub device: Option<DeviceId>,
    /// Cardholder concerned.
    pub cardholder: Option<CardholderId>,
    /// Details (never secrets, OTPs, keys or full PANs).
    pub details: serde_json::Value,
}

impl AuditDraft {
    /// A draft with no subjects and empty details.
    pub fn new(at: Millis, actor: impl Into<String>, action: impl Into<String>) -> Self {
        AuditDraft {
            at,
            actor: actor.into(),
            action: action.into(),
            challenge: None,
            device: None,
            cardholder: None,
            details: serde_json::Value::Null,
        }
    }
    /// Sets the challenge.
    pub fn challenge(mut self, id: &ChallengeId) -> Self {
        self.challenge = Some(id.clone());
        self
    }
    /// Sets the device.
    pub fn device(mut self, id: &DeviceId) -> Self {
        self.device = Some(id.clone());
        self
    }
    /// Sets the cardholder.
    pub fn cardholder(mut self, id: &CardholderId) -> Self {
        self.cardholder = Some(id.clone());
        self
    }
    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The content.
    #[serde(flatten)]
    pub draft: AuditDraft,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Result of re-computing the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ChainCheck {
    /// Every entry links and hashes correctly.
    Intact {
        /// Number of entries.
        entries: i64,
    },
    /// The first entry that does not check out.
    Broken {
        /// Its sequence number.
        seq: i64,
    },
}

/// Computes an entry's hash.
pub fn entry_hash(prev_hash: &str, seq: i64, draft: &AuditDraft) -> String {
    let content = serde_json::json!([
        seq,
        draft.at.0,
        draft.actor,
        draft.action,
        draft.challenge.as_ref().map(|c| c.as_str()),
        draft.device.as_ref().map(|d| d.as_str()),
        draft.cardholder.as_ref().map(|c| c.as_str()),
        draft.details,
    ]);
    let mut text = String::with_capacity(256);
    canonical_json(&content, &mut text);
    let mut h = sha2::Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// Writes `value` with object keys sorted at every level and no whitespace.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_everything() {
        let d =
            AuditDraft::new(Millis(1), "system", "x").details(serde_json::json!({"b": 1, "a": 2}));
        let h = entry_hash(GENESIS_HASH, 1, &d);
        assert_eq!(h.len(), 64);
        assert_ne!(h, entry_hash(GENESIS_HASH, 2, &d));
        assert_ne!(h, entry_hash(&h, 1, &d));
        assert_ne!(
            h,
            entry_hash(
                GENESIS_HASH,
                1,
                &AuditDraft {
                    actor: "admin:x".into(),
                    ..d.clone()
                }
            )
        );
        // key order of details does not matter, at any depth
        let nested_a = AuditDraft {
            details: serde_json::from_str(r#"{"x":{"b":1,"a":[{"d":1,"c":2}]}}"#).unwrap(),
            ..d.clone()
        };
        let nested_b = AuditDraft {
            details: serde_json::from_str(r#"{"x":{"a":[{"c":2,"d":1}],"b":1}}"#).unwrap(),
            ..d.clone()
        };
        assert_eq!(
            entry_hash(GENESIS_HASH, 1, &nested_a),
            entry_hash(GENESIS_HASH, 1, &nested_b)
        );
        let d2 = AuditDraft {
            details: serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap(),
            ..d.clone()
        };
        assert_eq!(h, entry_hash(GENESIS_HASH, 1, &d2));
    }
}
