//! Adyen: `balancePlatform.authentication.relayed` in (Basic + `HmacSignature`, answered
//! `proceed`/`refused`), the finalize call with the device's `sdkOutput` out,
//! `balancePlatform.authentication.created` stored as the final status.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use pushauth_server::providers::config::AdyenConfig;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Answer, Backend, TestApp, TestDevice, assert_nothing_stored, basic, credentials, dead_url,
    fixture, new_ref, spawn,
};
use crate::mock::Mock;

pub(crate) const RELAYED: &str = "/webhooks/adyen/relayed";
pub(crate) const CREATED: &str = "/webhooks/adyen/created";
pub(crate) const PI: &str = "PINE6J686WA4TGYZUZASXUTNZ";
pub(crate) const API_KEY: &str = "adyen-api-key-for-tests";
pub(crate) const SDK_OUTPUT: &str = "eyJhc3NlcnRpb24iOiJ0ZXN0In0";

pub(crate) fn relayed_example() -> Value {
    fixture(include_str!("fixtures/adyen-webhook.json"))
}

pub(crate) fn created_example() -> Value {
    fixture(include_str!("fixtures/adyen_created-webhook.json"))
}

pub(crate) struct Env {
    pub(crate) app: TestApp,
    pub(crate) mock: Mock,
    pub(crate) device: TestDevice,
}

pub(crate) fn config(base_url: &str, tweak: Value) -> AdyenConfig {
    let c = credentials();
    let mut v = json!({
        "relayed_path": RELAYED,
        "created_path": CREATED,
        "webhook_user": c["adyen_user"],
        "webhook_password": c["adyen_password"],
        "hmac_key": c["adyen_hmac_key_hex"],
        "base_url": base_url,
        "allow_http": true,
        "api_key": API_KEY,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, tweak) {
        a.extend(b);
    }
    serde_json::from_value(v).unwrap()
}

pub(crate) async fn setup_with(backend: Backend, base_url: Option<String>, tweak: Value) -> Env {
    let mock = Mock::start(|call, _| call.header("x-api-key") == Some(API_KEY)).await;
    let base = base_url.unwrap_or_else(|| mock.url());
    let app = spawn(backend, |c| c.providers.adyen = Some(config(&base, tweak))).await;
    let (_, device) = app.cardholder_with_device("adyen", PI).await;
    Env { app, mock, device }
}

pub(crate) async fn setup(backend: Backend) -> Env {
    setup_with(backend, None, json!({})).await
}

pub(crate) fn hmac(body: &str) -> String {
    let key = hex::decode(credentials()["adyen_hmac_key_hex"].as_str().unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) fn sdk_input_header() -> String {
    relayed_example()["headers"]["WWW-Authenticate"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The example relayed body for a new authentication `id`, without the example's (old)
/// `timestamp`, so that the ten-minute window runs from now.
pub(crate) fn relayed_body(id: &str, pi: &str) -> String {
    let e = relayed_example();
    let body = e["body"].as_str().unwrap();
    let old_id = e["provider_reference"].as_str().unwrap();
    let out = body
        .replace(old_id, id)
        .replace(PI, pi)
        .replace(",\"timestamp\":\"2026-11-18T11:06:40.000Z\"", "");
    assert_ne!(out, body);
    out
}

impl Env {
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &str,
        auth: Option<String>,
        signature: Option<String>,
        sdk: Option<String>,
    ) -> Answer {
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        headers.extend(auth.map(|a| ("Authorization", a)));
        headers.extend(signature.map(|s| ("HmacSignature", s)));
        headers.extend(sdk.map(|s| ("WWW-Authenticate", s)));
        self.app.post(path, &headers, body.to_owned()).await
    }

    pub(crate) fn auth() -> String {
        relayed_example()["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A correctly authenticated relayed webhook.
    pub(crate) async fn relayed(&self, body: &str) -> Answer {
        self.post(
            RELAYED,
            body,
            Some(Self::auth()),
            Some(hmac(body)),
            Some(sdk_input_header()),
        )
        .await
    }

    pub(crate) async fn challenge(&self, reference: &str) -> String {
        let a = self.relayed(&relayed_body(reference, PI)).await;
        assert_eq!(
            (a.status, a.json()),
            (
                200,
                json!({"authenticationDecision": {"status": "proceed"}})
            ),
            "{}",
            a.text
        );
        self.app
            .find(Provider::Adyen, reference)
            .await
            .unwrap()
            .id
            .to_string()
    }
}

pub(crate) fn decision(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()["authenticationDecision"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn assert_service_error(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.text);
    let v = a.json();
    assert_eq!(v["status"], status, "{v}");
    assert!(
        v["errorCode"].is_string() && v["errorType"].is_string() && v["message"].is_string(),
        "{v}"
    );
}

on_both_backends!(
    approve,
    deny,
    deny_finalized_when_configured,
    timeout,
    upstream_500_then_success,
    three_500s_then_ok,
    dropped_connection_then_ok,
    upstream_down_past_deadline,
    duplicates,
    wrong_credentials_and_bad_hmac,
    malformed,
    unknown_card_and_refusals,
    final_status,
    one_endpoint_for_both
);

async fn approve(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let id = env.challenge(&reference).await;
    let c = env.device.challenge(&id).await;
    // The sdkInput reaches the app unchanged, with what the cardholder must be shown.
    let blob = pushauth_server::providers::adyen::sdk_input_of(&sdk_input_header()).unwrap();
    assert_eq!(c.claims().pin.as_deref(), Some(blob.as_str()));
    let shown = &relayed_example()["shows_cardholder"];
    assert_eq!(
        c.claims().txn.amount().unwrap().minor(),
        shown["amount_minor"].as_i64().unwrap()
    );
    assert_eq!(c.claims().txn.payee().unwrap().as_str(), shown["payee"]);
    let (s, v, _) = env
        .device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    assert_eq!(s, 200, "{v}");
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    let call = &calls[0];
    assert!(call.accepted, "API key");
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", format!("/acs/v1/challenges/{reference}").as_str())
    );
    assert_eq!(
        call.header("www-authenticate"),
        Some(format!("SCA realm=\"Challenge\" authparm1=\"{SDK_OUTPUT}\"").as_str())
    );
    assert_eq!(call.json(), json!({"completed": true}));
    assert!(call.header("idempotency-key").is_some());
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
}

async fn deny(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref()).await;
    let (s, v, _) = env.device.decide(&id, Decision::Deny, None).await;
    assert_eq!(s, 200, "{v}");
    // Not finalized: the ACS times the authentication out and reports it rejected.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(env.mock.calls().is_empty());
    let view = env.app.view(&id).await;
    assert_eq!(
        (&view["challenge"]["status"], &view["challenge"]["upstream"]),
        (&json!("denied"), &json!("none"))
    );
}

async fn deny_finalized_when_configured(backend: Backend) {
    let env = setup_with(backend, None, json!({"finalize_on_deny": true})).await;
    let id = env.challenge(&new_ref()).await;
    env.device.decide(&id, Decision::Deny, None).await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(calls[0].json(), json!({"completed": false}));
    assert_eq!(calls[0].header("www-authenticate"), None);
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
}

async fn timeout(backend: Backend) {
    let env = setup_with(
        backend,
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
        "nothing is finalized on expiry"
    );
}

async fn upstream_500_then_success(backend: Backend) {
    let env = setup(backend).await;
    env.mock.script(&[(
        500,
        r#"{"status":500,"errorCode":"000","errorType":"internal","message":"x"}"#,
    )]);
    let id = env.challenge(&new_ref()).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    let view = env
        .app
        .wait_upstream(&id, "delivered", Duration::from_secs(15))
        .await;
    assert_eq!(env.mock.calls().len(), 2);
    let statuses: Vec<_> = view["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "upstream")
        .map(|a| a["http_status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(500), json!(200)]);
}

async fn upstream_down_past_deadline(backend: Backend) {
    let env = setup_with(
        backend,
        Some(dead_url().await),
        json!({"window_secs": 4, "result_margin_secs": 1}),
    )
    .await;
    let id = env.challenge(&new_ref()).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    let view = env
        .app
        .wait_upstream(&id, "too_late", Duration::from_secs(12))
        .await;
    assert!(!view["attempts"].as_array().unwrap().is_empty(), "{view:#}");
}

async fn duplicates(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let body = relayed_body(&reference, PI);
    let answers = futures::future::join_all((0..5).map(|_| env.relayed(&body))).await;
    for a in &answers {
        assert_eq!(decision(a), "proceed");
    }
    assert_eq!(env.app.count("adyen").await, 1);
    // Once the challenge is cancelled (here: its cardholder blocked) nobody will answer
    // it: a repeat tells Adyen not to wait for the out-of-band result.
    let c = env.app.find(Provider::Adyen, &reference).await.unwrap();
    let block = format!("/v1/admin/cardholders/{}/block", c.cardholder);
    let (s, v) = env.app.admin(reqwest::Method::POST, &block, None).await;
    assert!((200..300).contains(&s), "{s} {v}");
    assert_eq!(decision(&env.relayed(&body).await), "refused");
    assert_eq!(env.app.count("adyen").await, 1);
}

async fn wrong_credentials_and_bad_hmac(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let body = relayed_body(&reference, PI);
    let c = credentials();
    let wrong = basic(c["adyen_user"].as_str().unwrap(), "wrong");
    let tampered = body.replace("1000", "1");
    let cases = [
        (body.clone(), Some(wrong), Some(hmac(&body))),
        (body.clone(), None, Some(hmac(&body))),
        (body.clone(), Some(Env::auth()), None),
        (
            body.clone(),
            Some(Env::auth()),
            Some(hmac("something else")),
        ),
        (body.clone(), Some(Env::auth()), Some("not base64".into())),
        (tampered, Some(Env::auth()), Some(hmac(&body))),
    ];
    for (b, auth, sig) in cases {
        let a = env
            .post(RELAYED, &b, auth, sig, Some(sdk_input_header()))
            .await;
        assert_service_error(&a, 401);
    }
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
    // The example request exactly as Adyen would sign it passes both checks; its
    // authentication window closed long ago, so it is refused, not run.
    let e = relayed_example();
    let a = env
        .post(
            RELAYED,
            e["body"].as_str().unwrap(),
            Some(Env::auth()),
            Some(e["headers"]["HmacSignature"].as_str().unwrap().into()),
            Some(sdk_input_header()),
        )
        .await;
    assert_eq!(decision(&a), "refused");
    assert_nothing_stored(
        &env.app,
        Provider::Adyen,
        e["provider_reference"].as_str().unwrap(),
    )
    .await;
}

async fn malformed(backend: Backend) {
    let env = setup(backend).await;
    for body in ["{not json", "[]", r#"{"paymentInstrumentId":"PI"}"#] {
        let a = env.relayed(body).await;
        assert_service_error(&a, 400);
        assert_eq!(a.json()["errorType"], "validation");
    }
    let reference = new_ref();
    let a = env
        .relayed(&relayed_body(&reference, PI).replace("\"EUR\"", "\"EURO\""))
        .await;
    assert_service_error(&a, 422);
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
}

async fn unknown_card_and_refusals(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    assert_eq!(
        decision(&env.relayed(&relayed_body(&reference, "PI_UNKNOWN")).await),
        "refused"
    );
    // No sdkInput: the Authentication SDK could not run.
    let body = relayed_body(&reference, PI);
    let a = env
        .post(RELAYED, &body, Some(Env::auth()), Some(hmac(&body)), None)
        .await;
    assert_eq!(decision(&a), "refused");
    // Card linked, device locked: nobody can answer.
    env.app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/devices/{}/lock", env.device.id),
            None,
        )
        .await;
    assert_eq!(decision(&env.relayed(&body).await), "refused");
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
    let metrics = env.app.metrics().await;
    assert!(
        metrics.contains(r#"provider="adyen",outcome="refused""#),
        "{metrics}"
    );
}

pub(crate) fn created_body(reference: &str) -> String {
    let e = created_example();
    e["body"]
        .as_str()
        .unwrap()
        .replace(e["provider_reference"].as_str().unwrap(), reference)
}

async fn final_status(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let id = env.challenge(&reference).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    let body = created_body(&reference);
    let a = env
        .post(CREATED, &body, Some(Env::auth()), Some(hmac(&body)), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let view = env.app.view(&id).await;
    let fs = &view["challenge"]["final_status"];
    assert_eq!(
        (
            &fs["status"],
            &fs["flow"],
            &fs["device_channel"],
            &fs["trans_status"]
        ),
        (
            &json!("authenticated"),
            &json!("OOB_TRIGGER_FL"),
            &json!("app"),
            &json!("Y")
        ),
        "{fs:#}"
    );
    // Unknown authentications and bad signatures.
    let other = created_body(&new_ref());
    assert_eq!(
        env.post(CREATED, &other, Some(Env::auth()), Some(hmac(&other)), None)
            .await
            .status,
        200
    );
    assert_service_error(
        &env.post(CREATED, &body, Some(Env::auth()), Some(hmac("x")), None)
            .await,
        401,
    );
    // The example exactly as signed.
    let e = created_example();
    let a = env
        .post(
            CREATED,
            e["body"].as_str().unwrap(),
            Some(Env::auth()),
            Some(e["headers"]["HmacSignature"].as_str().unwrap().into()),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

async fn one_endpoint_for_both(backend: Backend) {
    // Both webhooks on the path of the examples; told apart by shape, not by `type`.
    let env = setup_with(
        backend,
        None,
        json!({"relayed_path": "/webhooks/adyen", "created_path": "/webhooks/adyen"}),
    )
    .await;
    let reference = new_ref();
    let body = relayed_body(&reference, PI)
        .replace(",\"type\":\"balancePlatform.authentication.relayed\"", "");
    assert!(!body.contains("\"type\""));
    let a = env
        .post(
            "/webhooks/adyen",
            &body,
            Some(Env::auth()),
            Some(hmac(&body)),
            Some(sdk_input_header()),
        )
        .await;
    assert_eq!(decision(&a), "proceed");
    let id = env
        .app
        .find(Provider::Adyen, &reference)
        .await
        .unwrap()
        .id
        .to_string();
    let created = created_body(&reference);
    let a = env
        .post(
            "/webhooks/adyen",
            &created,
            Some(Env::auth()),
            Some(hmac(&created)),
            None,
        )
        .await;
    assert_eq!((a.status, a.text.as_str()), (200, ""));
    assert_eq!(
        env.app.view(&id).await["challenge"]["final_status"]["status"],
        "authenticated"
    );
    assert_eq!(env.app.count("adyen").await, 1);
}

// ---- delivery under faults (issue 15 §2) -----------------------------------------------

async fn three_500s_then_ok(backend: Backend) {
    let env = setup(backend).await;
    crate::delivery::three_500s(&env.mock, "{}");
    let id = env.challenge(&new_ref()).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    crate::delivery::assert_one_result(&env.app, &env.mock, &id, 4).await;
}

async fn dropped_connection_then_ok(backend: Backend) {
    let env = setup(backend).await;
    crate::delivery::one_drop(&env.mock);
    let id = env.challenge(&new_ref()).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    crate::delivery::assert_one_result(&env.app, &env.mock, &id, 2).await;
}
