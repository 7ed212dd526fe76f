//! Treezor: `card3DSv2Authentication.create` in (`text/plain`, `object_payload_signature`),
//! OAuth2 token + `PUT /v1/auth-requests/{id}/result` out, `.update` stored.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use pushauth_server::providers::auth::php_json_encode_raw;
use pushauth_server::providers::config::TreezorConfig;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Answer, Backend, TestApp, TestDevice, assert_nothing_stored, credentials, dead_url, fixture,
    new_ref, spawn,
};
use crate::mock::Mock;

pub(crate) const PATH: &str = "/webhooks/treezor";
pub(crate) const CARD_ID: &str = "8638629";
pub(crate) const PUBLIC_TOKEN: &str = "340860528";
const ALREADY: &str = r#"{"errors":[{"type":"invalid_grant","code":"authentication_error","message":"Authentication result already received","requestId":"r","docUrl":"https://developers.treezor.co"}]}"#;

pub(crate) fn example() -> Value {
    fixture(include_str!("fixtures/treezor-webhook.json"))
}

pub(crate) fn secret() -> String {
    credentials()["treezor_webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) struct Env {
    pub(crate) app: TestApp,
    pub(crate) mock: Mock,
    pub(crate) device: TestDevice,
}

pub(crate) async fn setup_full(
    backend: Backend,
    link: &str,
    base_url: Option<String>,
    tweak: Value,
) -> Env {
    let mock =
        Mock::start(|call, state| call.header("authorization") == Some(state.bearer().as_str()))
            .await;
    let mut v = json!({
        "path": PATH,
        "webhook_secret": secret(),
        "base_url": base_url.unwrap_or_else(|| mock.url()),
        "allow_http": true,
        "client_id": "12345",
        "client_secret": "treezor-client-secret",
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, tweak) {
        a.extend(b);
    }
    let cfg: TreezorConfig = serde_json::from_value(v).unwrap();
    let app = spawn(backend, |c| c.providers.treezor = Some(cfg)).await;
    let (_, device) = app.cardholder_with_device("treezor", link).await;
    Env { app, mock, device }
}

pub(crate) async fn setup(backend: Backend) -> Env {
    setup_full(backend, CARD_ID, None, json!({})).await
}

/// Unix time in Treezor's 10⁻⁴ s.
pub(crate) fn treezor_now() -> u64 {
    u64::try_from(pushauth_server::state::now().0).unwrap() * 10
}

/// Re-signs a webhook body after its `object_payload` changed.
pub(crate) fn resign(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct E<'a> {
        #[serde(borrow)]
        object_payload: &'a RawValue,
        object_payload_signature: String,
    }
    let e: E<'_> = serde_json::from_str(body).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret().as_bytes()).unwrap();
    mac.update(
        php_json_encode_raw(e.object_payload.get())
            .unwrap()
            .as_bytes(),
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let old = serde_json::to_string(&e.object_payload_signature)
        .unwrap()
        .replace('/', "\\/");
    assert!(body.contains(&old));
    body.replace(
        &old,
        &serde_json::to_string(&sig).unwrap().replace('/', "\\/"),
    )
}

/// The example webhook (PHP-encoded, as Treezor sends it) for a new authentication,
/// emitted now, signed.
pub(crate) fn webhook(
    event: &str,
    auth_id: &str,
    webhook_id: &str,
    created_at: u64,
    final_result: Option<&str>,
) -> String {
    let e = example();
    let old_ref = e["provider_reference"].as_str().unwrap();
    let mut body = e["body"]
        .as_str()
        .unwrap()
        .replace(old_ref, auth_id)
        .replace("569ba20f-609e-47bc-a2ce-592416ad601c", webhook_id)
        .replace("17950000000000", &created_at.to_string())
        .replace("card3DSv2Authentication.create", event);
    if let Some(r) = final_result {
        body = body.replace(
            "\"authenticationMethod\":\"OOB\"",
            &format!("\"authenticationMethod\":\"OOB\",\"authenticationFinalResult\":\"{r}\""),
        );
    }
    resign(&body)
}

pub(crate) fn create_body(auth_id: &str) -> String {
    webhook(
        "card3DSv2Authentication.create",
        auth_id,
        &new_ref(),
        treezor_now(),
        None,
    )
}

impl Env {
    pub(crate) async fn post(&self, body: &str, content_type: &str) -> Answer {
        self.app
            .post(
                PATH,
                &[("Content-Type", content_type.to_owned())],
                body.to_owned(),
            )
            .await
    }

    pub(crate) async fn challenge(&self, auth_id: &str) -> String {
        let a = self.post(&create_body(auth_id), "text/plain").await;
        assert_eq!(a.status, 200, "{}", a.text);
        self.app
            .find(Provider::Treezor, auth_id)
            .await
            .unwrap()
            .id
            .to_string()
    }
}

pub(crate) fn assert_treezor_error(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.text);
    let e = &a.json()["errors"][0];
    assert!(
        e["type"].is_string() && e["code"].is_string() && e["message"].is_string(),
        "{}",
        a.text
    );
}

on_both_backends!(
    approve,
    deny,
    timeout,
    timeout_fallback,
    upstream_500_then_success,
    three_500s_then_ok,
    dropped_connection_then_ok,
    already_received_is_delivered,
    refused_token_is_renewed,
    upstream_down_past_deadline,
    duplicates,
    bad_signature,
    malformed,
    unknown_card,
    final_status
);

async fn approve(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let id = env.challenge(&auth_id).await;
    let c = env.device.challenge(&id).await;
    let shown = &example()["shows_cardholder"];
    assert_eq!(
        c.claims().txn.amount().unwrap().minor(),
        shown["amount_minor"].as_i64().unwrap()
    );
    assert_eq!(
        c.claims().txn.amount().unwrap().currency().code(),
        shown["currency"]
    );
    assert_eq!(c.claims().txn.payee().unwrap().as_str(), shown["payee"]);
    let (s, v, proof) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 200, "{v}");
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert!(calls[0].accepted, "Bearer token from /oauth/token");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        (
            "PUT",
            format!("/v1/auth-requests/{auth_id}/result").as_str()
        )
    );
    assert_eq!(
        calls[0].json(),
        json!({"authenticationResult": "OK", "authenticationSignature": proof})
    );
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
    // A second authentication reuses the cached token.
    let id2 = env.challenge(&new_ref()).await;
    env.device.decide(&id2, Decision::Approve, None).await;
    env.app
        .wait_upstream(&id2, "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(env.mock.token_calls(), 1);
}

async fn deny(backend: Backend) {
    // Linked by publicToken this time (a typed link: it matches publicToken only).
    let env = setup_full(
        backend,
        &format!("publicToken:{PUBLIC_TOKEN}"),
        None,
        json!({}),
    )
    .await;
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Deny, None).await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(
        calls[0].json(),
        json!({"authenticationResult": "KO_AUTH_FAILED"})
    );
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
}

async fn timeout(backend: Backend) {
    let env = setup_full(
        backend,
        CARD_ID,
        None,
        json!({"window_secs": 3, "result_margin_secs": 1}),
    )
    .await;
    let id = env.challenge(&new_ref()).await;
    env.app
        .wait_status(&id, "expired", Duration::from_secs(6))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.mock.calls().is_empty(),
        "by default Treezor times out on its own"
    );
}

async fn timeout_fallback(backend: Backend) {
    let tweak = json!({"window_secs": 5, "result_margin_secs": 2, "on_expiry": "fallback"});
    let env = setup_full(backend, CARD_ID, None, tweak).await;
    let id = env.challenge(&new_ref()).await;
    env.app
        .wait_status(&id, "expired", Duration::from_secs(8))
        .await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(5)).await;
    assert_eq!(calls[0].json(), json!({"authenticationResult": "FALLBACK"}));
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(5))
        .await;
}

async fn upstream_500_then_success(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(500, r#"{"errors":[{"type":"unexpected_internal_server_error","code":"unexpected_error","message":"Internal server error"}]}"#)]);
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "delivered", Duration::from_secs(15))
        .await;
    assert_eq!(env.mock.calls().len(), 2);
    let attempts: Vec<_> = view["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "upstream")
        .collect();
    assert_eq!(attempts[0]["http_status"], 500);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("unexpected_error"),
        "{view:#}"
    );
}

async fn already_received_is_delivered(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(400, ALREADY)]);
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
    // Any other 400 is final.
    env.mock.script(&[(
        400,
        r#"{"error":"Unable to find the authenticationRequestID in our system"}"#,
    )]);
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "failed", Duration::from_secs(10))
        .await;
    assert!(
        view["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("Unable to find"),
        "{view:#}"
    );
}

async fn refused_token_is_renewed(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(401, r#"{"errors":[{"type":"invalid_grant","code":"authentication_error","message":"expired token"}]}"#)]);
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(15))
        .await;
    assert_eq!(env.mock.token_calls(), 2);
    let calls = env.mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].header("authorization"), Some("Bearer tok-2"));
}

async fn upstream_down_past_deadline(backend: Backend) {
    let env = setup_full(
        backend,
        CARD_ID,
        Some(dead_url().await),
        json!({"window_secs": 4, "result_margin_secs": 1}),
    )
    .await;
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "too_late", Duration::from_secs(12))
        .await;
    assert!(!view["attempts"].as_array().unwrap().is_empty(), "{view:#}");
}

async fn duplicates(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let body = create_body(&auth_id);
    let answers = futures::future::join_all((0..5).map(|_| env.post(&body, "text/plain"))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    // Re-emitted by Treezor under a new webhook_id, as JSON this time.
    let again = webhook(
        "card3DSv2Authentication.create",
        &auth_id,
        &new_ref(),
        treezor_now(),
        None,
    );
    assert_eq!(env.post(&again, "application/json").await.status, 200);
    assert_eq!(env.app.count("treezor").await, 1);
}

async fn bad_signature(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let body = create_body(&auth_id);
    let sig_start = body.find("\"object_payload_signature\"").unwrap();
    let cases = [
        // Tampered amount, signature of the original.
        body.replace("\"12.34\"", "\"1.00\""),
        // Tampered merchant.
        body.replace("Brezel", "Brezen"),
        // No signature at all.
        format!("{}}}", body[..sig_start].trim_end_matches(',')),
        // Signature of something else.
        body.replace(
            &body[sig_start..],
            "\"object_payload_signature\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
        ),
    ];
    for b in &cases {
        assert_treezor_error(&env.post(b, "text/plain").await, 500);
    }
    assert_nothing_stored(&env.app, Provider::Treezor, &auth_id).await;
    // Treezor's example exactly as signed is accepted (and, long expired, acknowledged only).
    let e = example();
    let a = env.post(e["body"].as_str().unwrap(), "text/plain").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_nothing_stored(
        &env.app,
        Provider::Treezor,
        e["provider_reference"].as_str().unwrap(),
    )
    .await;
    let metrics = env.app.metrics().await;
    assert!(
        metrics.contains(r#"surface="webhook",reason="bad_signature""#),
        "{metrics}"
    );
}

async fn malformed(backend: Backend) {
    let env = setup(backend).await;
    for body in [
        "{not json",
        "[]",
        r#"{"webhook":"card3DSv2Authentication.create"}"#,
    ] {
        assert_treezor_error(&env.post(body, "text/plain").await, 400);
    }
    // Signed, but with an amount that does not fit the currency.
    let auth_id = new_ref();
    let body = resign(&create_body(&auth_id).replace("\"12.34\"", "\"12.345\""));
    assert_treezor_error(&env.post(&body, "text/plain").await, 400);
    assert_nothing_stored(&env.app, Provider::Treezor, &auth_id).await;
}

async fn unknown_card(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let body = resign(
        &create_body(&auth_id)
            .replace(CARD_ID, "1")
            .replace(PUBLIC_TOKEN, "2"),
    );
    // A valid webhook is acknowledged (Treezor's rule); nothing is stored.
    assert_eq!(env.post(&body, "text/plain").await.status, 200);
    assert_nothing_stored(&env.app, Provider::Treezor, &auth_id).await;
    let metrics = env.app.metrics().await;
    assert!(
        metrics.contains(r#"provider="treezor",outcome="unknown_card""#),
        "{metrics}"
    );
}

async fn final_status(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let id = env.challenge(&auth_id).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let t = treezor_now();
    let update = webhook(
        "card3DSv2Authentication.update",
        &auth_id,
        "upd-2",
        t + 20_000,
        Some("SUCCESS"),
    );
    assert_eq!(env.post(&update, "text/plain").await.status, 200);
    // An older update arriving late does not overwrite it.
    let older = webhook(
        "card3DSv2Authentication.update",
        &auth_id,
        "upd-1",
        t + 10_000,
        Some("TIMEOUT"),
    );
    assert_eq!(env.post(&older, "text/plain").await.status, 200);
    let fs = env.app.view(&id).await["challenge"]["final_status"].clone();
    assert_eq!(
        (&fs["authentication_final_result"], &fs["webhook_id"]),
        (&json!("SUCCESS"), &json!("upd-2")),
        "{fs:#}"
    );
    // Other events (another object in the signed payload) are acknowledged and ignored.
    let other = resign(&format!(
        r#"{{"webhook":"card.update","webhook_id":"{}","webhook_created_at":{t},"object":"card","object_id":"1","object_payload":{{"cards":[{{"cardId":"1"}}]}},"object_payload_signature":"AAAA"}}"#,
        new_ref()
    ));
    let before = env.app.count("treezor").await;
    assert_eq!(env.post(&other, "text/plain").await.status, 200);
    assert_eq!(env.app.count("treezor").await, before);
}

// ---- delivery under faults (issue 15 §2) -----------------------------------------------

async fn three_500s_then_ok(backend: Backend) {
    let env = setup(backend).await;
    crate::delivery::three_500s(&env.mock, "{}");
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    crate::delivery::assert_one_result(&env.app, &env.mock, &id, 4).await;
}

async fn dropped_connection_then_ok(backend: Backend) {
    let env = setup(backend).await;
    crate::delivery::one_drop(&env.mock);
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Approve, None).await;
    crate::delivery::assert_one_result(&env.app, &env.mock, &id, 2).await;
}
