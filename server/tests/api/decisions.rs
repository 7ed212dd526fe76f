use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushauth_core::challenge::VerifiedChallenge;
use pushauth_core::ids::ProviderRef;
use pushauth_core::jws;
use pushauth_core::proof::{self, APPROVAL_TYP, Decision, DenyReason};
use pushauth_core::transaction::Transaction;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDevice};
use crate::on_both_backends;

async fn detail(app: &TestApp, id: &str) -> Value {
    let (s, v) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{id}"), None)
        .await;
    assert_eq!(s, 200);
    v
}

async fn approve_first_answer_wins(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let d2 = TestDevice::enroll(&app, &app.activation_code(&ch).await).await;
    let id = app.new_challenge(&ch, "pay-1").await;
    let c = d.challenge(&id).await;
    assert_eq!(
        c.claims().txn.display_amount().as_deref(),
        Some("EUR 49.90")
    );
    assert_eq!(c.claims().txn.payee().unwrap().as_str(), "Example Shop");
    let proof = d.sign_decision(&c, Decision::Approve, None);
    let a = d.post_proof(&id, &proof).await;
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("approved")),
        "{}",
        a.body
    );
    // the second device, and the same proof again, come too late
    let late = d2
        .call("GET", &format!("/v1/device/challenges/{id}"), None)
        .await;
    assert_eq!(
        (late.status, late.body["challenge_status"].as_str()),
        (409, Some("approved"))
    );
    let replay = d.post_proof(&id, &proof).await;
    assert_eq!(
        (replay.status, replay.body["challenge_status"].as_str()),
        (409, Some("approved"))
    );
    let v = detail(&app, &id).await;
    assert_eq!(v["challenge"]["status"], "approved");
    assert_eq!(v["decision"]["proof"], proof.as_str());
    assert_eq!(v["decision"]["decision"], "approve");
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["challenge.created", "decision.accepted"]);
    let (s, chain) = app.admin(Method::GET, "/v1/admin/audit/verify", None).await;
    assert_eq!(
        (s, chain["result"].as_str()),
        (200, Some("intact")),
        "{chain}"
    );
}

async fn deny_not_me_is_recorded(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "pay-2").await;
    let c = d.challenge(&id).await;
    let a = d
        .post_proof(
            &id,
            &d.sign_decision(&c, Decision::Deny, Some(DenyReason::NotMe)),
        )
        .await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("denied")));
    let v = detail(&app, &id).await;
    assert_eq!(v["decision"]["reason"], "not_me");
    let m = app.metrics().await;
    assert!(
        m.contains(r#"pushauth_decisions_total{outcome="not_me"} 1"#),
        "{m}"
    );
}

/// Proof refusals: each gets its reason, the challenge stays open for the genuine
/// answer, and five in a row lock the device.
async fn refused_proofs(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "pay-3").await;
    let other_id = app.new_challenge(&ch, "pay-4").await;
    let c = d.challenge(&id).await;
    let other_c = d.challenge(&other_id).await;

    // signed by another approval key
    let rogue = TestDevice {
        approval: pushauth_core::keys::SoftwareSigningKey::generate().unwrap(),
        ..clone(&d)
    };
    let forged = rogue.sign_decision(&c, Decision::Approve, None);
    assert_reason(d.post_proof(&id, &forged).await, 422, "bad_signature");
    // a valid proof for another challenge
    let for_other = d.sign_decision(&other_c, Decision::Approve, None);
    assert_reason(d.post_proof(&id, &for_other).await, 422, "wrong_challenge");
    // the amount changed after signing (the device signed 49.91)
    let mut claims = proof::claims_for(&c, &input(&d)).unwrap();
    let mut t: Transaction = c.claims().txn.to_transaction().unwrap();
    t.amount =
        Some(pushauth_core::money::Money::from_minor(4991, t.amount.unwrap().currency()).unwrap());
    claims.txn = t.digest();
    assert_reason(
        d.post_proof(&id, &proof::sign(&claims, &d.approval).unwrap())
            .await,
        422,
        "transaction_mismatch",
    );
    // wrong audience
    let mut claims = proof::claims_for(&c, &input(&d)).unwrap();
    claims.aud = "https://other.example".into();
    assert_reason(
        d.post_proof(&id, &proof::sign(&claims, &d.approval).unwrap())
            .await,
        422,
        "wrong_audience",
    );
    let v = detail(&app, &id).await;
    assert_eq!(
        v["challenge"]["status"], "pending",
        "refusals change nothing"
    );
    // alg none: the fifth refusal in a row locks the device
    let none = format!(
        "{}.{}.",
        pushauth_core::b64::encode(format!(
            r#"{{"alg":"none","typ":"{APPROVAL_TYP}","kid":"{}"}}"#,
            d.id
        )),
        forged.split('.').nth(1).unwrap()
    );
    let fifth = d.post_proof(&id, &none).await;
    assert_reason(fifth.clone_answer(), 422, "unsupported_algorithm");
    assert_eq!(fifth.body["locked"], true, "{}", fifth.body);
    let junk = jws::sign("other+jwt", Some(d.id.as_str()), None, &json!({}), &d.key).unwrap();
    assert_eq!(d.post_proof(&id, &junk).await.status, 423);
    let locked = d
        .post_proof(&id, &d.sign_decision(&c, Decision::Approve, None))
        .await;
    assert_eq!(
        (locked.status, locked.body["reason"].as_str()),
        (423, Some("device_locked"))
    );
    // an operator unlocks it; the genuine answer is still accepted
    let s = app.device_action(d.id.as_str(), "unlock").await;
    assert_eq!(s, 204);
    let ok = d
        .post_proof(&id, &d.sign_decision(&c, Decision::Approve, None))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let m = app.metrics().await;
    assert!(
        m.contains(r#"pushauth_proof_failures_total{outcome="bad_signature"} 1"#),
        "{m}"
    );
    assert!(m.contains("pushauth_device_locks_total 1"), "{m}");
}

fn assert_reason(a: crate::helpers::Answer, status: u16, reason: &str) {
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (status, Some(reason)),
        "{}",
        a.body
    );
}

fn input(d: &TestDevice) -> proof::DecisionInput<'_> {
    proof::DecisionInput {
        device: &d.id,
        decision: Decision::Approve,
        reason: None,
        uv: proof::UserVerification::Biometric,
        processor_output: None,
        now: pushauth_core::UnixTime(crate::helpers::now()),
        lifetime_secs: 60,
    }
}

fn clone(d: &TestDevice) -> TestDevice {
    TestDevice {
        key: pushauth_core::keys::SoftwareSigningKey::from_pkcs8(&d.key.to_pkcs8()).unwrap(),
        approval: pushauth_core::keys::SoftwareSigningKey::from_pkcs8(&d.approval.to_pkcs8())
            .unwrap(),
        agreement: pushauth_core::keys::SoftwareAgreementKey::from_bytes(&d.agreement.to_bytes())
            .unwrap(),
        id: d.id.clone(),
        issuer: d.issuer.clone(),
        server_key: d.server_key,
        base: d.base.clone(),
        http: d.http.clone(),
    }
}

/// An oversize processor output is refused as bad input: nothing recorded, no failure
/// counted, and the challenge stays open.
async fn oversize_processor_output(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "pay-8").await;
    let c = d.challenge(&id).await;
    let proof = d.sign_decision(&c, Decision::Approve, None);
    let body = json!({ "proof": proof, "processor_output": "x".repeat(16 * 1024 + 1) });
    let a = d
        .call(
            "POST",
            &format!("/v1/device/challenges/{id}/decision"),
            Some(body),
        )
        .await;
    assert_reason(a, 400, "invalid_field");
    let v = detail(&app, &id).await;
    assert_eq!(v["challenge"]["status"], "pending");
    let (_, dev) = app
        .admin(Method::GET, &format!("/v1/admin/devices/{}", d.id), None)
        .await;
    assert_eq!(dev["device"]["failures"], 0);
}

async fn expired_challenge(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let (s, v) = app.challenge(&ch, "pay-5", json!({"ttl_secs": 1})).await;
    assert_eq!(s, 201);
    let id = v["challenge"]["id"].as_str().unwrap().to_owned();
    let c: VerifiedChallenge = d.challenge(&id).await;
    let proof = d.sign_decision(&c, Decision::Approve, None);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let late = d.post_proof(&id, &proof).await;
    assert!(
        late.status == 410 || late.status == 409,
        "{} {}",
        late.status,
        late.body
    );
    // the sweeper marks it expired
    let mut status = String::new();
    for _ in 0..200 {
        status = detail(&app, &id).await["challenge"]["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let again = d.post_proof(&id, &proof).await;
    assert_eq!(
        (again.status, again.body["reason"].as_str()),
        (410, Some("challenge_expired"))
    );
}

/// A mock of the issuer's callback endpoint: answers with the queued statuses (then
/// 200) and records every request.
#[derive(Clone, Default)]
pub(crate) struct Callback {
    pub(crate) answers: Arc<Mutex<Vec<u16>>>,
    pub(crate) seen: Arc<Mutex<Vec<(String, Value)>>>,
}

pub(crate) async fn callback_server(cb: Callback) -> String {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/cb",
            post(
                |axum::extract::State(cb): axum::extract::State<Callback>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let sig = headers
                        .get("pushauth-signature")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let (t, mac) = sig.split_once(",v1=").unwrap();
                    let t = t.strip_prefix("t=").unwrap();
                    assert_eq!(mac, verify_mac(t, &body), "callback signature");
                    cb.seen
                        .lock()
                        .unwrap()
                        .push((sig, serde_json::from_slice(&body).unwrap()));
                    let status = {
                        let mut a = cb.answers.lock().unwrap();
                        if a.is_empty() { 200 } else { a.remove(0) }
                    };
                    axum::http::StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(cb);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/cb")
}

fn verify_mac(t: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"callback-secret").unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) async fn wait_upstream(app: &TestApp, id: &str, want: &str) -> Value {
    for _ in 0..100 {
        let v = detail(app, id).await;
        if v["challenge"]["upstream"] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "upstream of {id} never became {want}: {}",
        detail(app, id).await
    );
}

async fn callback_after_retry(app: TestApp) {
    let cb = Callback::default();
    cb.answers.lock().unwrap().extend([500, 503]);
    let url = callback_server(cb.clone()).await;
    let (ch, d) = app.cardholder_with_device().await;
    let (s, v) = app
        .challenge(&ch, "pay-6", json!({"callback_url": url}))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["challenge"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d.approve(&id).await.status, 200);
    let v = wait_upstream(&app, &id, "delivered").await;
    let seen = cb.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two failures then success");
    assert_eq!(seen[2].1["outcome"]["outcome"], "approved");
    assert_eq!(seen[2].1["reference"], "pay-6");
    let attempts = v["attempts"].as_array().unwrap();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["http_status"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    let _ = ProviderRef::parse("pay-6").unwrap();
}

async fn callback_reports_expiry(app: TestApp) {
    let cb = Callback::default();
    let url = callback_server(cb.clone()).await;
    let (ch, _d) = app.cardholder_with_device().await;
    let (_, v) = app
        .challenge(&ch, "pay-7", json!({"callback_url": url, "ttl_secs": 1}))
        .await;
    let id = v["challenge"]["id"].as_str().unwrap().to_owned();
    wait_upstream(&app, &id, "delivered").await;
    assert_eq!(
        cb.seen.lock().unwrap()[0].1["outcome"]["outcome"],
        "expired"
    );
}

on_both_backends!(
    approve_first_answer_wins,
    deny_not_me_is_recorded,
    refused_proofs,
    oversize_processor_output,
    expired_challenge,
    callback_after_retry,
    callback_reports_expiry,
);

/// A challenge that cannot be expired (here a trigger refuses its update) does not hold
/// up the others behind it in deadline order; it expires once the fault is gone.
/// PostgreSQL only (the fault is a trigger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_expiry_does_not_stop_the_sweep() {
    let app = crate::helpers::spawn(crate::support::Backend::Postgres, |_| {}).await;
    let (ch, _d) = app.cardholder_with_device().await;
    let id = |v: &Value| v["challenge"]["id"].as_str().unwrap().to_owned();
    let (_, first) = app
        .challenge(&ch, "pay-first", json!({"ttl_secs": 1}))
        .await;
    let (_, second) = app
        .challenge(&ch, "pay-second", json!({"ttl_secs": 2}))
        .await;
    let (first, second) = (id(&first), id(&second));
    const FAULT: &str = "CREATE FUNCTION refuse_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.provider_ref = 'pay-first' AND NEW.status = 'expired' THEN
            RAISE EXCEPTION 'refused for the test';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_expiry BEFORE UPDATE ON challenges
        FOR EACH ROW EXECUTE FUNCTION refuse_expiry();";
    let mut pg = app._schema.as_ref().unwrap().raw().await;
    sqlx::raw_sql(FAULT).execute(&mut pg).await.unwrap();
    let status = |id: String| {
        let app = &app;
        async move {
            detail(app, &id).await["challenge"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mut expired = false;
    for _ in 0..200 {
        if status(second.clone()).await == "expired" {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        expired,
        "the second challenge expired behind the failing one"
    );
    assert_eq!(status(first.clone()).await, "pending");
    sqlx::raw_sql("DROP TRIGGER refuse_expiry ON challenges")
        .execute(&mut pg)
        .await
        .unwrap();
    let mut after = String::new();
    for _ in 0..200 {
        after = status(first.clone()).await;
        if after == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after, "expired");
}
