//! Paysafe: SCA events in (`Signature` HMAC over the raw body), one attempt out per
//! approval, resent after a 5xx or a lost answer only within the attempt budget, never
//! after a 4xx.

use std::time::Duration;

use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use pushauth_core::transaction::TransactionKind;
use pushauth_server::providers::auth::PaysafeVerifier;
use pushauth_server::providers::config::PaysafeConfig;
use pushauth_server::push::{PushKind, push_data};
use serde_json::{Value, json};

use crate::helpers::{
    Answer, Backend, TestApp, TestDevice, assert_nothing_stored, credentials, dead_url, fixture,
    new_ref, now, rfc3339, spawn,
};
use crate::mock::Mock;

const PREFIX: &str = "/webhooks/paysafe";
pub(crate) const CUSTOMER: &str = "630880042166";
const TOKEN: &str = "paysafe-api-token-for-tests";
pub(crate) const OTP: &str = "532032";

pub(crate) fn example() -> Value {
    fixture(include_str!("fixtures/paysafe-webhook.json"))
}

fn key() -> String {
    credentials()["paysafe_key_b64"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn sign(body: &str) -> String {
    PaysafeVerifier::new(&key()).unwrap().sign(body.as_bytes())
}

pub(crate) struct Env {
    pub(crate) app: TestApp,
    pub(crate) mock: Mock,
    pub(crate) device: TestDevice,
}

/// With Paysafe's `allowableAttempts` configured as `budget`.
async fn setup_budget(backend: Backend, base_url: Option<String>, budget: u32) -> Env {
    setup_tweaked(backend, base_url, json!({ "allowable_attempts": budget })).await
}

pub(crate) async fn setup_tweaked(backend: Backend, base_url: Option<String>, tweak: Value) -> Env {
    let signer = PaysafeVerifier::new(&key()).unwrap();
    let mock = Mock::start(move |call, _| {
        call.header("authorization") == Some(format!("Bearer {TOKEN}").as_str())
            && call.header("signature") == Some(signer.sign(&call.body).as_str())
    })
    .await;
    let base = base_url.unwrap_or_else(|| mock.url());
    let mut v = json!({
        "path_prefix": PREFIX,
        "webhook_key": key(),
        "api_token": TOKEN,
        "base_url": base,
        "allow_http": true,
        "max_window_secs": 60,
        "default_window_secs": 60,
        "result_margin_secs": 1,
        "allowable_attempts": 5,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, tweak) {
        a.extend(b);
    }
    let cfg: PaysafeConfig = serde_json::from_value(v).unwrap();
    let app = spawn(backend, |c| c.providers.paysafe = Some(cfg)).await;
    let (_, device) = app.cardholder_with_device("paysafe", CUSTOMER).await;
    Env { app, mock, device }
}

async fn setup_with(backend: Backend, base_url: Option<String>) -> Env {
    setup_tweaked(backend, base_url, json!({})).await
}

pub(crate) async fn setup(backend: Backend) -> Env {
    setup_with(backend, None).await
}

/// The example event (pretty-printed, as in the example) for a new `eventId`, expiring
/// `expires_in` seconds from now.
pub(crate) fn event(event_id: &str, expires_in: i64) -> String {
    let e = example();
    let body = e["body"].as_str().unwrap();
    let out = body
        .replace(e["provider_reference"].as_str().unwrap(), event_id)
        .replace(
            "\"expirationTime\": \"2026-11-18T11:21:40Z\"",
            &format!("\"expirationTime\": \"{}\"", rfc3339(now() + expires_in)),
        );
    assert!(out.contains(event_id) && !out.contains("11:21:40"));
    out
}

impl Env {
    async fn post(&self, path: &str, body: &str, signature: Option<String>) -> Answer {
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        headers.extend(signature.map(|s| ("Signature", s)));
        self.app
            .post(&format!("{PREFIX}{path}"), &headers, body.to_owned())
            .await
    }

    pub(crate) async fn send(&self, body: &str) -> Answer {
        self.post("/sca/events", body, Some(sign(body))).await
    }

    pub(crate) async fn challenge(&self, event_id: &str, expires_in: i64) -> String {
        let a = self.send(&event(event_id, expires_in)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        self.app
            .find(Provider::Paysafe, event_id)
            .await
            .unwrap()
            .id
            .to_string()
    }
}

pub(crate) fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json()["error"]["code"], code, "{}", a.text);
    assert!(a.json()["error"]["message"].is_string());
}

on_both_backends!(
    approve,
    deny,
    timeout,
    upstream_4xx_is_not_resent,
    three_500s_then_ok,
    dropped_connection_then_ok,
    budget_used_up_is_outcome_unknown,
    connect_failure_then_success,
    upstream_down_past_deadline,
    failed_attempt_is_recorded,
    duplicates,
    bad_signature,
    malformed,
    unknown_customer,
    only_outsourced,
    prepaid_3ds_event
);

async fn approve(backend: Backend) {
    let env = setup(backend).await;
    env.mock
        .script(&[(200, r#"{"id":"a1","status":"VERIFIED"}"#)]);
    let event_id = new_ref();
    let id = env.challenge(&event_id, 600).await;
    let c = env.device.challenge(&id).await;
    assert_eq!(
        c.claims().txn.kind().known().unwrap(),
        TransactionKind::WalletOperation
    );
    assert!(c.claims().txn.amount().is_none() && c.claims().txn.payee().is_none());
    // The OTP travels only inside the push encrypted to the device…
    let stored = env.app.find(Provider::Paysafe, &event_id).await.unwrap();
    let device = env
        .app
        .store()
        .device_get(&env.device.id)
        .await
        .unwrap()
        .unwrap();
    let data = push_data(&stored, &device, PushKind::Challenge).unwrap();
    let details = env.device.open_push(&stored, data.enc.as_deref().unwrap());
    assert_eq!(details.otp.as_deref(), Some(OTP));
    assert!(!serde_json::to_string(&data).unwrap().contains(OTP));
    // …never in the admin API.
    let view = env.app.view(&id).await;
    let list = env
        .app
        .admin(
            reqwest::Method::GET,
            "/v1/admin/challenges?provider=paysafe",
            None,
        )
        .await
        .1;
    assert!(
        !view.to_string().contains(OTP) && !list.to_string().contains(OTP),
        "{view}"
    );
    let (s, v, _) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 200, "{v}");
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert!(calls[0].accepted, "Bearer token and Signature");
    assert_eq!(calls[0].path, format!("/sca/events/{event_id}/attempts"));
    // The attempt schema: walletOperationId and verification.method (our push
    // approval: BIOMETRIC over PUSH_NOTIFICATION by default); no OTP value unless
    // configured.
    assert_eq!(
        calls[0].json(),
        json!({
            "walletOperationId": "7767a3c3-c461-41ed-99d2-010861f3cee4",
            "verification": {"method": "BIOMETRIC", "channel": "PUSH_NOTIFICATION"},
        })
    );
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
}

async fn deny(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref(), 600).await;
    let (s, v, _) = env.device.decide(&id, Decision::Deny, None).await;
    assert_eq!(s, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(env.mock.calls().is_empty(), "a deny submits no attempt");
    assert_eq!(env.app.view(&id).await["challenge"]["upstream"], "none");
}

async fn timeout(backend: Backend) {
    let env = setup(backend).await;
    // Expires in 3 s; the decision deadline keeps 1 s of it.
    let id = env.challenge(&new_ref(), 3).await;
    env.app
        .wait_status(&id, "expired", Duration::from_secs(6))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.mock.calls().is_empty());
}

async fn upstream_4xx_is_not_resent(backend: Backend) {
    let env = setup(backend).await;
    env.mock
        .script(&[(400, r#"{"error":{"code":"5068","message":"invalid"}}"#)]);
    let id = env.challenge(&new_ref(), 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "failed", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        env.mock.calls().len(),
        1,
        "a refused attempt is never resent"
    );
    let attempts = view["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["http_status"], 400);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("not resent"),
        "{view:#}"
    );
}

const VERIFIED: &str = r#"{"id":"a1","status":"VERIFIED"}"#;

/// 500, 503, 502, then VERIFIED: four attempts of a budget of five.
async fn three_500s_then_ok(backend: Backend) {
    let env = setup(backend).await;
    let err = r#"{"error":{"code":"5000","message":"internal"}}"#;
    env.mock
        .script(&[(500, err), (503, err), (502, err), (200, VERIFIED)]);
    let id = env.challenge(&new_ref(), 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = crate::delivery::assert_one_result(&env.app, &env.mock, &id, 4).await;
    assert!(
        view["attempts"][2]["error"]
            .as_str()
            .unwrap()
            .contains("3 of 5 used"),
        "{view:#}"
    );
    // every attempt carried the same body
    let bodies: Vec<_> = env.mock.calls().iter().map(|c| c.json()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

async fn dropped_connection_then_ok(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(crate::mock::DROP, ""), (200, VERIFIED)]);
    let id = env.challenge(&new_ref(), 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    crate::delivery::assert_one_result(&env.app, &env.mock, &id, 2).await;
}

/// With `allowableAttempts` 3 and three 5xx answers, the budget is used up: no fourth
/// attempt, and the row says the outcome is unknown (one of the three may have counted).
async fn budget_used_up_is_outcome_unknown(backend: Backend) {
    let env = setup_budget(backend, None, 3).await;
    let err = r#"{"error":{"code":"5000","message":"internal"}}"#;
    env.mock.script(&[(500, err), (500, err), (500, err)]);
    let id = env.challenge(&new_ref(), 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "failed", Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.mock.calls().len(), 3, "never beyond the budget");
    let outbox = &view["outbox"][1];
    let last_error = view["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "upstream")
        .map(|r| r["last_error"].as_str().unwrap_or_default().to_owned())
        .unwrap();
    assert!(
        last_error.starts_with("outcome unknown"),
        "{outbox} {view:#}"
    );
    let metrics = env.app.metrics().await;
    assert!(
        metrics.contains(r#"provider="paysafe",outcome="unknown""#),
        "{metrics}"
    );
}

async fn connect_failure_then_success(backend: Backend) {
    let dead = dead_url().await;
    let env = setup_with(backend, Some(dead.clone())).await;
    let id = env.challenge(&new_ref(), 30).await;
    env.device.decide(&id, Decision::Approve, None).await;
    // Paysafe is unreachable: nothing was sent, so retrying is safe…
    let ok = crate::helpers::wait_for(Duration::from_secs(10), || async {
        env.app.view(&id).await["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(ok);
    // …and once it is back, the attempt lands exactly once.
    let addr = dead.trim_start_matches("http://").parse().unwrap();
    let signer = PaysafeVerifier::new(&key()).unwrap();
    let mock = crate::mock::Mock::start_at(addr, move |call, _| {
        call.header("signature") == Some(signer.sign(&call.body).as_str())
    })
    .await;
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(20))
        .await;
    assert_eq!(mock.calls().len(), 1);
    assert!(env.mock.calls().is_empty());
}

async fn upstream_down_past_deadline(backend: Backend) {
    let env = setup_with(backend, Some(dead_url().await)).await;
    let id = env.challenge(&new_ref(), 4).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "too_late", Duration::from_secs(12))
        .await;
    assert!(!view["attempts"].as_array().unwrap().is_empty(), "{view:#}");
}

async fn failed_attempt_is_recorded(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(
        200,
        r#"{"id":"a1","status":"FAILED","statusReason":"EXPIRED"}"#,
    )]);
    let id = env.challenge(&new_ref(), 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "failed", Duration::from_secs(10))
        .await;
    assert!(
        view["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("FAILED"),
        "{view:#}"
    );
}

async fn duplicates(backend: Backend) {
    let env = setup(backend).await;
    let body = event(&new_ref(), 600);
    let answers = futures::future::join_all((0..5).map(|_| env.send(&body))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(env.app.count("paysafe").await, 1);
}

async fn bad_signature(backend: Backend) {
    let env = setup(backend).await;
    let event_id = new_ref();
    let body = event(&event_id, 600);
    let compact: String =
        serde_json::to_string(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    for (b, sig) in [
        (body.clone(), None),
        (body.clone(), Some(sign("{}"))),
        (body.clone(), Some("garbage".to_owned())),
        (body.replace(OTP, "000000"), Some(sign(&body))),
        // Re-serialised JSON is not what was signed.
        (compact, Some(sign(&body))),
    ] {
        assert_error(
            &env.post("/sca/events", &b, sig).await,
            401,
            "INVALID_SIGNATURE",
        );
    }
    assert_nothing_stored(&env.app, Provider::Paysafe, &event_id).await;
    // Paysafe's example, exactly as signed: accepted (and, expired, acknowledged only).
    let e = example();
    let a = env
        .post(
            "/sca/events",
            e["body"].as_str().unwrap(),
            Some(e["headers"]["Signature"].as_str().unwrap().into()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_nothing_stored(
        &env.app,
        Provider::Paysafe,
        e["provider_reference"].as_str().unwrap(),
    )
    .await;
}

async fn malformed(backend: Backend) {
    let env = setup(backend).await;
    for body in [
        "{not json",
        "{}",
        r#"{"authenticationProcess":{"eventId":"e"}}"#,
    ] {
        assert_error(&env.send(body).await, 400, "INVALID_REQUEST");
    }
    let event_id = new_ref();
    let bad_time =
        event(&event_id, 600).replace("\"expirationTime\": \"", "\"expirationTime\": \"soon ");
    assert_error(&env.send(&bad_time).await, 400, "INVALID_REQUEST");
    assert_nothing_stored(&env.app, Provider::Paysafe, &event_id).await;
}

async fn unknown_customer(backend: Backend) {
    let env = setup(backend).await;
    let event_id = new_ref();
    let body = event(&event_id, 600).replace(CUSTOMER, "999999999999");
    assert_error(&env.send(&body).await, 404, "CUSTOMER_NOT_FOUND");
    assert_nothing_stored(&env.app, Provider::Paysafe, &event_id).await;
}

async fn only_outsourced(backend: Backend) {
    let env = setup(backend).await;
    for mode in ["EMBEDDED", "HYBRID", "SOMETHING_NEW"] {
        let event_id = new_ref();
        let body = event(&event_id, 600).replace("OUTSOURCED", mode);
        assert_eq!(env.send(&body).await.status, 200);
        assert_nothing_stored(&env.app, Provider::Paysafe, &event_id).await;
    }
    let metrics = env.app.metrics().await;
    assert!(
        metrics.contains(r#"provider="paysafe",outcome="ignored""#),
        "{metrics}"
    );
}

async fn prepaid_3ds_event(backend: Backend) {
    let env = setup(backend).await;
    let e = fixture(include_str!("fixtures/paysafe_3ds-webhook.json"));
    let body = e["body"].as_str().unwrap();
    let path = "/prepaid/card/threedsecure/events";
    let a = env
        .post(
            path,
            body,
            Some(e["headers"]["Signature"].as_str().unwrap().into()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_error(
        &env.post(path, body, Some(sign("x"))).await,
        401,
        "INVALID_SIGNATURE",
    );
    assert_eq!(env.app.count("paysafe").await, 0);
}
