//! Builders of the vector files for the JWS profile, request proofs, key statements,
//! migration grants and signature encodings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use super::*;

/// A correctly signed compact JWS with exactly these header and claims bytes.
pub(crate) fn raw_jws(key: &SoftwareSigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(claims));
    format!(
        "{input}.{}",
        b64::encode(key.sign_raw(input.as_bytes()).unwrap())
    )
}

/// jws.json: JWS profile holes (protocol §2), each correctly signed by the approval key
/// and checked as approval proofs.
pub(crate) fn jws_profile_vectors(
    k: &Keys,
    claims: &ChallengeClaims,
    verified: &challenge::VerifiedChallenge,
) -> Value {
    let approve = proof::claims_for(
        verified,
        &decision_input(
            k,
            Decision::Approve,
            None,
            UserVerification::Biometric,
            None,
        ),
    )
    .unwrap();
    let claims_text = serde_json::to_string(&approve).unwrap();
    let kid = k.device_id.as_str();
    let jwk = serde_json::to_string(&k.approval.public().to_jwk()).unwrap();
    let header = format!(r#"{{"alg":"ES256","typ":"pushauth-approval+jwt","kid":"{kid}"}}"#);
    let claims_array = serde_json::to_string(&[
        json!(approve.iss),
        json!(approve.aud),
        json!(approve.jti),
        json!(approve.nonce),
        json!(approve.decision),
        json!(null),
        json!(approve.txn),
        json!(null),
        json!(approve.iat),
        json!(approve.exp),
        json!(approve.uv),
    ])
    .unwrap();
    let d = claims.txn.digest();
    let exp = expectation_json(k, claims, &d, None, NOW + 12);
    json!({
        "about": "Correctly signed approval proofs that break the JWS profile of docs/protocol.md §2; checked as approval proofs (proofs.json expectations).",
        "cases": [
            {"name": "valid", "token": raw_jws(&k.approval, &header, &claims_text), "expect": exp, "result": "ok"},
            {"name": "kid_and_jwk", "token": raw_jws(&k.approval, &format!(r#"{{"alg":"ES256","typ":"pushauth-approval+jwt","kid":"{kid}","jwk":{jwk}}}"#), &claims_text), "expect": exp, "result": "kid_and_jwk"},
            {"name": "header_is_array", "token": raw_jws(&k.approval, &format!(r#"["ES256","pushauth-approval+jwt","{kid}"]"#), &claims_text), "expect": exp, "result": "header_not_object"},
            {"name": "claims_are_array", "token": raw_jws(&k.approval, &header, &claims_array), "expect": exp, "result": "claims_not_object"},
            {"name": "claims_with_trailing_object", "token": raw_jws(&k.approval, &header, &format!("{claims_text}{{}}")), "expect": exp, "result": "malformed_claims"},
        ]
    })
}

/// requests.json: request proofs (device key only).
pub(crate) fn request_vectors(k: &Keys) -> Value {
    let body = br#"{"proof":"..."}"#;
    let req = HttpRequest {
        method: "POST",
        path: "/v1/device/challenges/3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f/decision",
        body,
    };
    let req_token = request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(NOW)).unwrap();
    let by_approval_key =
        request::sign(&k.device_id, &k.approval, ISSUER, req, UnixTime(NOW)).unwrap();
    let extreme_past =
        request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(i64::MIN)).unwrap();
    let extreme_future =
        request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(i64::MAX)).unwrap();
    let body = std::str::from_utf8(body).unwrap();
    json!({
        "cases": [
            {"name": "valid", "token": req_token, "method": "POST", "path": req.path, "body": body, "now": NOW + 5, "result": "ok"},
            {"name": "signed_by_approval_key", "token": by_approval_key, "method": "POST", "path": req.path, "body": body, "now": NOW + 5, "result": "bad_signature"},
            {"name": "body_changed", "token": req_token, "method": "POST", "path": req.path, "body": r#"{"proof":"…"}"#, "now": NOW + 5, "result": "body_hash_mismatch"},
            {"name": "path_changed", "token": req_token, "method": "POST", "path": "/v1/device/push-token", "body": body, "now": NOW + 5, "result": "wrong_path"},
            {"name": "stale", "token": req_token, "method": "POST", "path": req.path, "body": body, "now": NOW + 61, "result": "stale_request"},
            {"name": "iat_i64_min", "token": extreme_past, "method": "POST", "path": req.path, "body": body, "now": NOW, "result": "stale_request"},
            {"name": "iat_i64_max", "token": extreme_future, "method": "POST", "path": req.path, "body": body, "now": -NOW, "result": "stale_request"},
        ]
    })
}

/// key_statements.json: the approval key's enrollment binding and rotations of each key.
pub(crate) fn key_statement_vectors(k: &Keys) -> Value {
    let new_device = SoftwareSigningKey::generate().unwrap();
    let new_approval = SoftwareSigningKey::generate().unwrap();
    let binding = key_statement::sign_enrollment_binding(
        &k.approval,
        &k.device.public(),
        ISSUER,
        UnixTime(NOW),
    )
    .unwrap();
    let binding_to_other = key_statement::sign_enrollment_binding(
        &k.approval,
        &new_device.public(),
        ISSUER,
        UnixTime(NOW),
    )
    .unwrap();
    let device_claims = key_statement::rotation_claims(
        &k.device_id,
        KeyUse::Device,
        &k.device.public(),
        ISSUER,
        UnixTime(NOW),
    );
    let device_rotation = key_statement::sign_statement(&device_claims, &new_device).unwrap();
    let approval_claims = key_statement::rotation_claims(
        &k.device_id,
        KeyUse::Approval,
        &k.approval.public(),
        ISSUER,
        UnixTime(NOW),
    );
    let approval_rotation = key_statement::sign_statement(&approval_claims, &new_approval).unwrap();
    let endorsement = key_statement::sign_endorsement(&approval_claims, &k.approval).unwrap();
    let endorsed_by_device_key =
        key_statement::sign_endorsement(&approval_claims, &k.device).unwrap();
    let rot = |name: &str,
               key_use: &str,
               statement: &str,
               endorsement: Option<&str>,
               current: &str,
               new: Option<&PublicKey>,
               result: &str| {
        json!({"name": name, "use": key_use, "statement": statement, "endorsement": endorsement,
               "current": current, "now": NOW + 5, "result": result,
               "new_key": new.map(PublicKey::to_jwk)})
    };
    json!({
        "about": "Key statements (pushauth-key+jwt). Enrollment cases are checked against keys.json's device and approval keys; rotation cases name the current key of that use (`device`, `approval`, or `new` = the statement's own key, a retry after the swap) and the result: `replace`, `already_current` or an error code.",
        "new_device_jwk": new_device.public().to_jwk(),
        "new_approval_jwk": new_approval.public().to_jwk(),
        "enrollment": [
            {"name": "valid", "token": binding, "now": NOW + 5, "result": "ok"},
            {"name": "bound_to_other_device_key", "token": binding_to_other, "now": NOW + 5, "result": "key_binding_mismatch"},
            {"name": "stale", "token": binding, "now": NOW + 61, "result": "stale_request"},
        ],
        "rotation": [
            rot("device_key", "device", &device_rotation, None, "device", Some(&new_device.public()), "replace"),
            rot("device_key_retry_after_swap", "device", &device_rotation, None, "new", Some(&new_device.public()), "already_current"),
            rot("approval_key", "approval", &approval_rotation, Some(&endorsement), "approval", Some(&new_approval.public()), "replace"),
            rot("approval_key_retry_after_swap", "approval", &approval_rotation, Some(&endorsement), "new", Some(&new_approval.public()), "already_current"),
            rot("approval_key_without_endorsement", "approval", &approval_rotation, None, "approval", None, "endorsement_required"),
            rot("approval_key_endorsed_by_device_key", "approval", &approval_rotation, Some(&endorsed_by_device_key), "approval", None, "bad_endorsement"),
            rot("statement_for_other_use", "approval", &device_rotation, Some(&endorsement), "approval", None, "wrong_key_use"),
        ]
    })
}

/// migration.json: migration grants signed by the approval key.
pub(crate) fn migration_vectors(k: &Keys) -> Value {
    let claims = GrantClaims {
        iss: k.device_id.clone(),
        aud: ISSUER.into(),
        jti: "mXf0q2n1XyTQm4x7cK1ZbA".into(),
        iat: UnixTime(NOW),
        exp: UnixTime(NOW + 300),
    };
    let grant = migration::sign_grant(&claims, &k.approval).unwrap();
    let by_device_key = migration::sign_grant(&claims, &k.device).unwrap();
    let too_long = migration::sign_grant(
        &GrantClaims {
            exp: UnixTime(NOW + 601),
            ..claims.clone()
        },
        &k.approval,
    )
    .unwrap();
    let d = k.device_id.as_str();
    let other = "11111111-2222-4333-8444-555555555555";
    json!({
        "about": "Migration grants (pushauth-migrate+jwt), checked with keys.json's approval key for the requesting `device`; skew 30 s.",
        "cases": [
            {"name": "valid", "token": grant, "device": d, "now": NOW + 5, "result": "ok", "claims": claims},
            {"name": "expired", "token": grant, "device": d, "now": NOW + 300, "result": "expired"},
            {"name": "other_device", "token": grant, "device": other, "now": NOW + 5, "result": "wrong_key_id"},
            {"name": "signed_by_device_key", "token": by_device_key, "device": d, "now": NOW + 5, "result": "bad_signature"},
            {"name": "lifetime_over_600_s", "token": too_long, "device": d, "now": NOW + 5, "result": "lifetime_too_long"},
        ]
    })
}

pub(crate) fn to_der(raw: &[u8; 64]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if v.is_empty() || v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![2, v.len() as u8];
        out.extend(v);
        out
    }
    let mut body = int(&raw[..32]);
    body.extend(int(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

pub(crate) fn signature_cases(key: &SoftwareSigningKey) -> Value {
    let msg = "pushauth signature vector";
    let raw = key.sign_raw(msg.as_bytes()).unwrap();
    let der = to_der(&raw);
    let mut bad_der = der.clone();
    bad_der[1] += 1;
    json!([
        {"name": "raw", "message": msg, "signature": b64::encode(raw), "valid": true, "raw": b64::encode(raw)},
        {"name": "der", "message": msg, "signature": b64::encode(&der), "valid": true, "raw": b64::encode(raw)},
        {"name": "der_bad_length", "message": msg, "signature": b64::encode(&bad_der), "valid": false},
        {"name": "too_short", "message": msg, "signature": b64::encode(&raw[..63]), "valid": false},
    ])
}
