//! Protocol v2 device keys, black box: which key may sign which object, rotation of
//! each key (with a retry after a lost answer), migration grants, the user-verification
//! minimum and the enrollment body v2.

use pushauth_core::UnixTime;
use pushauth_core::key_statement;
use pushauth_core::keys::{KeyAgreement, KeyUse, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::migration::{self, GrantClaims};
use pushauth_core::proof::{self, Decision, DenyReason, UserVerification};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, TestApp, TestDevice, now, spawn};
use crate::on_both_backends;

pub(crate) fn assert_reason(a: &Answer, status: u16, reason: &str) {
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (status, Some(reason)),
        "{}",
        a.body
    );
}

fn copy(key: &SoftwareSigningKey) -> SoftwareSigningKey {
    SoftwareSigningKey::from_pkcs8(&key.to_pkcs8()).unwrap()
}

/// The same phone with other keys (to sign with the wrong one on purpose).
fn with_keys(
    d: &TestDevice,
    key: &SoftwareSigningKey,
    approval: &SoftwareSigningKey,
) -> TestDevice {
    TestDevice {
        key: copy(key),
        approval: copy(approval),
        agreement: SoftwareAgreementKey::from_bytes(&d.agreement.to_bytes()).unwrap(),
        id: d.id.clone(),
        issuer: d.issuer.clone(),
        server_key: d.server_key,
        base: d.base.clone(),
        http: d.http.clone(),
    }
}

async fn status_of(app: &TestApp, id: &str) -> Value {
    let (s, v) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    v["challenge"]["status"].clone()
}

/// An approval signed by the device key (no biometric) is refused; a request proof
/// signed by the approval key is refused with 401.
async fn each_key_signs_only_its_objects(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "keys-1").await;
    let c = d.challenge(&id).await;
    let claims = d.decision_claims(&c, Decision::Approve, None, UserVerification::Biometric);
    let by_device_key = proof::sign(&claims, &d.key).unwrap();
    assert_reason(
        &d.post_proof(&id, &by_device_key).await,
        422,
        "bad_signature",
    );

    let swapped = with_keys(&d, &d.approval, &d.approval);
    let a = swapped.call("GET", "/v1/device/challenges", None).await;
    assert_reason(&a, 401, "bad_signature");

    assert_eq!(status_of(&app, &id).await, "pending");
    let ok = d.approve(&id).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["status"], "approved");
}

/// A decline signed by the device key is accepted (no biometric for deny / not me);
/// an approval claiming no user verification is refused.
async fn decline_with_device_key_and_uv_minimum(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "keys-2").await;
    let c = d.challenge(&id).await;
    let no_uv = d.decision_claims(&c, Decision::Approve, None, UserVerification::None);
    let a = d
        .post_proof(&id, &proof::sign(&no_uv, &d.approval).unwrap())
        .await;
    assert_reason(&a, 422, "insufficient_user_verification");
    let other = app.new_challenge(&ch, "keys-2b").await;
    let deny = d.decision_claims(
        &c,
        Decision::Deny,
        Some(DenyReason::NotMe),
        UserVerification::None,
    );
    let a = d
        .post_proof(&id, &proof::sign(&deny, &d.key).unwrap())
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "denied");
    // the default minimum is passcode: a passcode approval passes
    let c2 = d.challenge(&other).await;
    let passcode = d.decision_claims(&c2, Decision::Approve, None, UserVerification::Passcode);
    let a = d
        .post_proof(&other, &proof::sign(&passcode, &d.approval).unwrap())
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Rotation of the device key, then of the approval key; each retried after a "lost"
/// answer completes with the same kid.
async fn rotate_each_key_with_retry(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    // device key: the answer is "lost"; the retry signed by the old key gets 401, the
    // SDK then signs with the pending key and gets the same answer
    let new_device = SoftwareSigningKey::generate().unwrap();
    let claims = key_statement::rotation_claims(
        &d.id,
        KeyUse::Device,
        &d.key.public(),
        &d.issuer,
        UnixTime(now()),
    );
    let body = json!({"use": "device", "statement": key_statement::sign_statement(&claims, &new_device).unwrap()});
    let first = d.call("POST", "/v1/device/key", Some(body.clone())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let kid = new_device.public().thumbprint();
    assert_eq!(
        (first.body["use"].as_str(), first.body["kid"].as_str()),
        (Some("device"), Some(kid.as_str()))
    );
    let old_retry = d.call("POST", "/v1/device/key", Some(body.clone())).await;
    assert_eq!(old_retry.status, 401, "{}", old_retry.body);
    let d = with_keys(&d, &new_device, &d.approval);
    let retry = d.call("POST", "/v1/device/key", Some(body)).await;
    assert_eq!(
        (retry.status, retry.body["kid"].as_str()),
        (200, Some(kid.as_str())),
        "{}",
        retry.body
    );

    // approval key: needs the old approval key's endorsement
    let new_approval = SoftwareSigningKey::generate().unwrap();
    let claims = key_statement::rotation_claims(
        &d.id,
        KeyUse::Approval,
        &d.approval.public(),
        &d.issuer,
        UnixTime(now()),
    );
    let statement = key_statement::sign_statement(&claims, &new_approval).unwrap();
    let without = d
        .call(
            "POST",
            "/v1/device/key",
            Some(json!({"use": "approval", "statement": statement})),
        )
        .await;
    assert_reason(&without, 422, "endorsement_required");
    let by_device_key = key_statement::sign_endorsement(&claims, &d.key).unwrap();
    let a = d
        .call(
            "POST",
            "/v1/device/key",
            Some(json!({"use": "approval", "statement": statement, "endorsement": by_device_key})),
        )
        .await;
    assert_reason(&a, 422, "bad_endorsement");
    let endorsement = key_statement::sign_endorsement(&claims, &d.approval).unwrap();
    let body = json!({"use": "approval", "statement": statement, "endorsement": endorsement});
    let first = d.call("POST", "/v1/device/key", Some(body.clone())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let kid = new_approval.public().thumbprint();
    let retry = d.call("POST", "/v1/device/key", Some(body)).await;
    assert_eq!(
        (retry.status, retry.body["kid"].as_str()),
        (200, Some(kid.as_str())),
        "{}",
        retry.body
    );

    // approvals: the old approval key is refused, the new one accepted
    let id = app.new_challenge(&ch, "keys-3").await;
    let c = d.challenge(&id).await;
    let claims = d.decision_claims(&c, Decision::Approve, None, UserVerification::Biometric);
    assert_reason(
        &d.post_proof(&id, &proof::sign(&claims, &d.approval).unwrap())
            .await,
        422,
        "bad_signature",
    );
    let d = with_keys(&d, &d.key, &new_approval);
    assert_eq!(d.approve(&id).await.status, 200);
}

/// A locked device can neither rotate a key nor change its push token.
async fn locked_device_cannot_rotate_or_set_push_token(app: TestApp) {
    let (_ch, d) = app.cardholder_with_device().await;
    let s = app.device_action(d.id.as_str(), "lock").await;
    assert_eq!(s, 204);
    let new_key = SoftwareSigningKey::generate().unwrap();
    let claims = key_statement::rotation_claims(
        &d.id,
        KeyUse::Device,
        &d.key.public(),
        &d.issuer,
        UnixTime(now()),
    );
    let body = json!({"use": "device", "statement": key_statement::sign_statement(&claims, &new_key).unwrap()});
    assert_reason(
        &d.call("POST", "/v1/device/key", Some(body)).await,
        423,
        "device_locked",
    );
    let a = d
        .call(
            "PUT",
            "/v1/device/push-token",
            Some(json!({"push_token": "abcdef"})),
        )
        .await;
    assert_reason(&a, 423, "device_locked");
    // still the old key after the refusal: its request proofs authenticate (a locked
    // device gets 423 for the challenges, not 401)
    assert_reason(
        &d.call("GET", "/v1/device/challenges", None).await,
        423,
        "device_locked",
    );
}

/// A migration grant of `d` issued at `iat`, expiring at `exp`, signed by `signer`.
pub(crate) fn grant(d: &TestDevice, iat: i64, exp: i64, signer: &SoftwareSigningKey) -> String {
    let claims = GrantClaims {
        exp: UnixTime(exp),
        iat: UnixTime(iat),
        ..migration::grant_claims(&d.id, &d.issuer, UnixTime(iat), 600).unwrap()
    };
    migration::sign_grant(&claims, signer).unwrap()
}

/// A migration grant gives a code the new phone enrolls with (same cardholder); a
/// reused, expired or foreign grant is refused, each with its own reason.
async fn migration_grant(app: TestApp) {
    let (ch, old) = app.cardholder_with_device().await;
    let t = now();
    let g = grant(&old, t, t + 300, &old.approval);
    let a = old
        .call("POST", "/v1/device/migration", Some(json!({"grant": g})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let code = a.body["code"].as_str().unwrap().to_owned();
    assert!(
        a.body["deeplink"]
            .as_str()
            .unwrap()
            .starts_with("pushauth://enroll?v=1&server=")
    );
    let expires = a.body["expires_at"].as_i64().unwrap();
    assert!(
        expires <= (t + 300) * 1000,
        "the code lives no longer than the grant"
    );
    let new = TestDevice::enroll(&app, &code).await;
    let (_, devices) = app
        .admin(
            Method::GET,
            &format!("/v1/admin/cardholders/{ch}/devices"),
            None,
        )
        .await;
    let ids: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&new.id.as_str()) && ids.contains(&old.id.as_str()),
        "{devices}"
    );

    let reused = old
        .call("POST", "/v1/device/migration", Some(json!({"grant": g})))
        .await;
    assert_reason(&reused, 409, "grant_reused");
    let expired = grant(&old, t - 400, t - 5, &old.approval);
    assert_reason(
        &old.call(
            "POST",
            "/v1/device/migration",
            Some(json!({"grant": expired})),
        )
        .await,
        422,
        "expired",
    );
    // the new device posts the old device's grant
    let foreign = grant(&old, t, t + 300, &old.approval);
    assert_reason(
        &new.call(
            "POST",
            "/v1/device/migration",
            Some(json!({"grant": foreign})),
        )
        .await,
        422,
        "wrong_key_id",
    );
    // signed by the device key: no biometric, no grant
    let by_device_key = grant(&old, t, t + 300, &old.key);
    assert_reason(
        &old.call(
            "POST",
            "/v1/device/migration",
            Some(json!({"grant": by_device_key})),
        )
        .await,
        422,
        "bad_signature",
    );
    let too_long = grant(&old, t, t + 601, &old.approval);
    assert_reason(
        &old.call(
            "POST",
            "/v1/device/migration",
            Some(json!({"grant": too_long})),
        )
        .await,
        422,
        "lifetime_too_long",
    );
}

/// A protocol v1 body is refused with its own reason; the approval key must be bound
/// to the device key; nothing is consumed by the refusals.
async fn enrollment_v2_body(app: TestApp) {
    let ch = app.create_cardholder().await;
    let code = app.activation_code(&ch).await;
    let key = SoftwareSigningKey::generate().unwrap();
    let agreement = SoftwareAgreementKey::generate().unwrap();
    let v1 = serde_json::to_vec(&json!({
        "activation_code": code,
        "platform": "other",
        "signing_key": key.public().to_jwk(),
        "agreement_key": agreement.public_key().unwrap().to_jwk(),
    }))
    .unwrap();
    assert_reason(
        &TestDevice::post_enrollment(&app, &key, v1).await,
        400,
        "protocol_v1_enrollment",
    );
    // the approval key bound to another device key
    let approval = SoftwareSigningKey::generate().unwrap();
    let elsewhere = SoftwareSigningKey::generate().unwrap();
    let mut body: Value = serde_json::from_slice(&TestDevice::enroll_body(
        &code, &key, &approval, &agreement, &app.base,
    ))
    .unwrap();
    body["approval_key_proof"] = json!(
        key_statement::sign_enrollment_binding(
            &approval,
            &elsewhere.public(),
            &app.base,
            UnixTime(now())
        )
        .unwrap()
    );
    let a = TestDevice::post_enrollment(&app, &key, serde_json::to_vec(&body).unwrap()).await;
    assert_reason(&a, 422, "key_binding_mismatch");
    // one key for both uses
    let same = TestDevice::enroll_body(&code, &key, &key, &agreement, &app.base);
    assert_reason(
        &TestDevice::post_enrollment(&app, &key, same).await,
        422,
        "key_reuse",
    );
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("approval_key");
    assert_reason(
        &TestDevice::post_enrollment(&app, &key, serde_json::to_vec(&missing).unwrap()).await,
        400,
        "invalid_field",
    );
    TestDevice::enroll(&app, &code).await;
}

on_both_backends!(
    each_key_signs_only_its_objects,
    decline_with_device_key_and_uv_minimum,
    rotate_each_key_with_retry,
    locked_device_cannot_rotate_or_set_push_token,
    migration_grant,
    enrollment_v2_body,
);

/// `[devices] decline_requires_approval_key = true`: a decline signed by the device key
/// is refused, one signed by the approval key accepted. `[enrollment] deeplink_scheme`
/// names the links.
async fn issuer_policy(backend: Backend) {
    let app = spawn(backend, |c| {
        c.devices.decline_requires_approval_key = true;
        c.enrollment.deeplink_scheme = "mybank-pushauth".into();
    })
    .await;
    let ch = app.create_cardholder().await;
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/activation-codes"),
            None,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(
        v["deeplink"]
            .as_str()
            .unwrap()
            .starts_with("mybank-pushauth://enroll?v=1&server="),
        "{v}"
    );
    let d = TestDevice::enroll(&app, v["code"].as_str().unwrap()).await;
    let id = app.new_challenge(&ch, "keys-policy").await;
    let c = d.challenge(&id).await;
    let deny = d.decision_claims(
        &c,
        Decision::Deny,
        Some(DenyReason::Declined),
        UserVerification::Biometric,
    );
    assert_reason(
        &d.post_proof(&id, &proof::sign(&deny, &d.key).unwrap())
            .await,
        422,
        "bad_signature",
    );
    let a = d
        .post_proof(&id, &proof::sign(&deny, &d.approval).unwrap())
        .await;
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("denied")),
        "{}",
        a.body
    );
}

mod issuer_policy {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::issuer_policy(crate::helpers::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::issuer_policy(crate::helpers::Backend::Postgres).await
    }
}
