//! The evidence of one challenge (`GET /v1/admin/challenges/{id}`, the ops console's
//! evidence page): the challenge, what the phone showed, the decision with a summary
//! of its proof, every outbox row and delivery attempt (pushes and the result to the
//! processor), and the challenge's audit entries with a check of their hashes.

use pushauth_core::b64;
use pushauth_core::ids::ChallengeId;
use pushauth_core::jws;
use pushauth_core::keys::{Jwk, PublicKey};
use pushauth_core::proof::{APPROVAL_TYP, DECLINE_TYP};
use pushauth_store::{AuditEntry, Challenge, Decision, DeviceKey, entry_hash};
use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;

use crate::error::ApiResult;
use crate::state::AppState;

/// The evidence document, or `None` when there is no such challenge.
pub async fn of_challenge(state: &AppState, id: &ChallengeId) -> ApiResult<Option<Value>> {
    let store = &state.store;
    let Some(mut challenge) = store.challenge_get(id).await? else {
        return Ok(None);
    };
    crate::providers::redact_context(&mut challenge);
    let transaction = challenge.transaction();
    let shown = transaction.received();
    let decision = store.decision_get(id).await?;
    let proof_summary = match &decision {
        Some(d) => Some(summarize(state, &challenge, d).await?),
        None => None,
    };
    let audit = store.audit_for_challenge(id).await?;
    let audit_check = check_entries(&audit);
    Ok(Some(serde_json::json!({
        "challenge": challenge,
        "display_amount": transaction.display_amount(),
        "shown": { "summary": shown.summary(), "display_fields": shown.display_fields() },
        "decision": decision,
        "proof_summary": proof_summary,
        "outbox": store.outbox_for_challenge(id).await?,
        "attempts": store.attempts_for_challenge(id).await?,
        "audit": audit,
        "audit_check": audit_check,
    })))
}

/// What a stored proof says, without the proof itself: enough to tell which device
/// and key signed what, when, with which user verification, over which transaction.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ProofSummary {
    /// `pushauth-approval+jwt` or `pushauth-decline+jwt`.
    pub typ: String,
    /// The header's key id (the device id).
    pub kid: Option<String>,
    /// Claims `decision`, `reason`, `uv`, `iat`, `exp` as signed.
    pub decision: Option<String>,
    /// Deny reason, when one was signed.
    pub reason: Option<String>,
    /// User verification the device claimed.
    pub uv: Option<String>,
    /// Signing time (Unix seconds).
    pub iat: Option<i64>,
    /// Expiry (Unix seconds).
    pub exp: Option<i64>,
    /// The signed transaction digest (`txn`).
    pub txn: Option<String>,
    /// Whether `txn` is the stored challenge's digest.
    pub txn_matches: bool,
    /// Whether a processor-output digest (`pout`) was signed.
    pub pout: bool,
    /// SHA-256 (hex) of the whole compact JWS: names the stored proof without
    /// showing it.
    pub sha256: String,
    /// Which of the device's current keys the signature verifies with (`approval` or
    /// `device`) and its RFC 7638 thumbprint; `None` when neither does (the key was
    /// rotated since, or the device is gone).
    pub verified_with: Option<KeyRef>,
}

/// A device key named by its use and thumbprint.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyRef {
    /// `approval` or `device`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// RFC 7638 thumbprint.
    pub thumbprint: String,
}

async fn summarize(
    state: &AppState,
    challenge: &Challenge,
    decision: &Decision,
) -> ApiResult<ProofSummary> {
    let device = state.store.device_get(&decision.device).await?;
    let keys: Vec<(&'static str, &DeviceKey)> = device
        .as_ref()
        .map(|d| vec![("approval", &d.approval_key), ("device", &d.device_key)])
        .unwrap_or_default();
    let expected_txn = serde_json::to_value(challenge.txn_digest).unwrap_or_default();
    Ok(summarize_proof(&decision.proof, &expected_txn, &keys))
}

/// Summarizes `proof` (stored after verification, so only read here); `keys` are the
/// device's current keys, tried in order.
pub fn summarize_proof(
    proof: &str,
    expected_txn: &Value,
    keys: &[(&'static str, &DeviceKey)],
) -> ProofSummary {
    let mut parts = proof.split('.');
    let part = |p: Option<&str>| -> Value {
        p.and_then(b64::decode)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    let header = part(parts.next());
    let claims = part(parts.next());
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| claims.get(key).and_then(Value::as_i64);
    let verified_with = keys.iter().find_map(|(key_use, key)| {
        let jwk: Jwk = serde_json::from_str(&key.jwk).ok()?;
        let public = PublicKey::from_jwk(&jwk).ok()?;
        jws::parse_one_of(proof, &[APPROVAL_TYP, DECLINE_TYP])
            .ok()?
            .verify::<Value>(&public)
            .ok()?;
        Some(KeyRef {
            key_use,
            thumbprint: key.thumbprint.clone(),
        })
    });
    ProofSummary {
        typ: text(&header, "typ").unwrap_or_default(),
        kid: text(&header, "kid"),
        decision: text(&claims, "decision"),
        reason: text(&claims, "reason"),
        uv: text(&claims, "uv"),
        iat: number("iat"),
        exp: number("exp"),
        txn: text(&claims, "txn"),
        txn_matches: claims.get("txn").is_some_and(|t| t == expected_txn),
        pout: claims.get("pout").is_some(),
        sha256: hex::encode(sha2::Sha256::digest(proof.as_bytes())),
        verified_with,
    }
}

/// Re-computes each entry's hash from its content and its `prev_hash`: `intact`
/// when every one matches, else the first `seq` that does not. (The whole chain,
/// which also links the entries to each other, is `GET /v1/admin/audit/verify`.)
pub fn check_entries(entries: &[AuditEntry]) -> Value {
    let bad = entries
        .iter()
        .find(|e| entry_hash(&e.prev_hash, e.seq, &e.draft) != e.hash);
    match bad {
        None => serde_json::json!({ "result": "intact", "entries": entries.len() }),
        Some(e) => serde_json::json!({ "result": "broken", "seq": e.seq }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::keys::SoftwareSigningKey;

    fn key_of(k: &SoftwareSigningKey) -> DeviceKey {
        DeviceKey {
            jwk: serde_json::to_string(&k.public().to_jwk()).unwrap_or_default(),
            thumbprint: k.public().thumbprint(),
        }
    }

    #[test]
    fn summary_names_the_key_and_never_holds_the_proof() {
        let approval = SoftwareSigningKey::generate().unwrap_or_else(|_| unreachable!());
        let device = SoftwareSigningKey::generate().unwrap_or_else(|_| unreachable!());
        let claims = serde_json::json!({
            "iss": "d1", "aud": "https://x", "jti": "c1", "nonce": "n", "decision": "approve",
            "txn": "abc", "pout": "def", "iat": 100, "exp": 160, "uv": "biometric",
        });
        let proof = jws::sign(APPROVAL_TYP, Some("d1"), None, &claims, &approval)
            .unwrap_or_else(|_| unreachable!());
        let (a, d) = (key_of(&approval), key_of(&device));
        let s = summarize_proof(
            &proof,
            &Value::String("abc".into()),
            &[("approval", &a), ("device", &d)],
        );
        assert_eq!(s.typ, APPROVAL_TYP);
        assert_eq!(s.kid.as_deref(), Some("d1"));
        assert_eq!(
            (s.decision.as_deref(), s.uv.as_deref(), s.iat, s.exp),
            (Some("approve"), Some("biometric"), Some(100), Some(160))
        );
        assert!(s.txn_matches && s.pout);
        assert_eq!(
            s.verified_with,
            Some(KeyRef {
                key_use: "approval",
                thumbprint: a.thumbprint.clone()
            })
        );
        let text = serde_json::to_string(&s).unwrap_or_default();
        assert!(!text.contains(&proof), "{text}");
        assert!(!text.contains(proof.rsplit('.').next().unwrap_or("x")));
        // another digest; a rotated key: said so, nothing else changes
        let s = summarize_proof(&proof, &Value::String("zzz".into()), &[("device", &d)]);
        assert!(!s.txn_matches);
        assert_eq!(s.verified_with, None);
    }
}
