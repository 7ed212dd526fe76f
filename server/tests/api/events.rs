//! Issuer events end to end: the real server sends signed webhooks (Standard Webhooks)
//! to a receiver on 127.0.0.1 that checks every signature with its own implementation
//! of the specification, answers as told (500 first, then 204), and records.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use pushauth_core::proof::{Decision, DenyReason};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::*;

/// What the receiver got: webhook-id, the parsed body, and whether one of the
/// signatures verified with the receiver's secret.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: Value,
    verified: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

/// The receiver's side of the specification: HMAC-SHA256 with the base64-decoded
/// secret over `id.timestamp.body`, any of the space-separated `v1,` signatures,
/// timestamp within 5 minutes.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts) = (h("webhook-id"), h("webhook-timestamp"));
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    if (now - ts_num).abs() > 300 {
        return false;
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    h("webhook-signature").split(' ').any(|sig| {
        let Some(b64) = sig.strip_prefix("v1,") else {
            return false;
        };
        let Ok(expected) = STANDARD.decode(b64) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

const RECEIVER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The receiver itself passes the Standard Webhooks reference example (and refuses it
/// altered, stale, or signed by another secret).
#[test]
fn the_receiver_verifies_the_specification_vector() {
    let headers = |sig: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            "webhook-id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
        );
        h.insert("webhook-timestamp", "1614265330".parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    };
    let body = br#"{"test": 2432232314}"#;
    let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let at = 1_614_265_330;
    assert!(verify(RECEIVER_SECRET, &headers(good), body, at));
    assert!(
        verify(
            RECEIVER_SECRET,
            &headers(&format!("v1,AAAA {good}")),
            body,
            at
        ),
        "any one signature"
    );
    assert!(
        !verify(
            RECEIVER_SECRET,
            &headers(good),
            br#"{"test":2432232314}"#,
            at
        ),
        "other bytes"
    );
    assert!(
        !verify(RECEIVER_SECRET, &headers(good), body, at + 301),
        "stale"
    );
    let other = format!("whsec_{}", STANDARD.encode([9u8; 32]));
    assert!(!verify(&other, &headers(good), body, at), "another secret");
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let r = state.clone();
            async move {
                let verified = verify(RECEIVER_SECRET, &headers, &body, now());
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let parsed = serde_json::from_slice(&body).unwrap();
                // The answer is taken before the request is shown to the test, so an
                // answer the test queues after seeing a request is for a later one.
                let status = r.answers.lock().unwrap().pop_front().unwrap_or(204);
                r.got.lock().unwrap().push(Received {
                    id,
                    body: parsed,
                    verified,
                });
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// Writes the endpoint's secrets: an old one the receiver no longer knows, and the
/// receiver's (a rotation in progress: every message carries both signatures).
fn configure(
    config: &mut pushauth_server::Config,
    dir: &std::path::Path,
    url: &str,
    name: &str,
    types: Option<Vec<&str>>,
) {
    let old = dir.join(format!("{name}-old"));
    let new = dir.join(format!("{name}-new"));
    std::fs::write(&old, format!("whsec_{}", STANDARD.encode([9u8; 32]))).unwrap();
    std::fs::write(&new, RECEIVER_SECRET).unwrap();
    config
        .events
        .endpoints
        .push(pushauth_server::events::EndpointConfig {
            name: name.into(),
            url: url.into(),
            secret_files: vec![old, new],
            types: types.map(|t| t.into_iter().map(String::from).collect()),
            allow_http: true,
        });
    config.events.retry_schedule_secs = vec![0, 0];
}

async fn wait_for(r: &Receiver, what: impl Fn(&[Received]) -> bool) -> Vec<Received> {
    for _ in 0..400 {
        {
            let got = r.got.lock().unwrap();
            if what(&got) {
                return got.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "receiver never got what was expected: {:?}",
        r.got.lock().unwrap()
    );
}

/// Polls the admin events list until `settled` holds for it (the receiver sees a
/// request before the sender records its outcome), and returns the last list read.
async fn events_until(app: &TestApp, settled: impl Fn(&Value) -> bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..400 {
        let (s, got) = app
            .admin(reqwest::Method::GET, "/v1/admin/events?limit=10", None)
            .await;
        assert_eq!(s, 200, "{got}");
        v = got;
        if settled(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the events never settled: {v}");
}

/// Polls `/metrics` until it has `line`, and returns the last page read.
async fn metrics_with(app: &TestApp, line: &str) -> String {
    let mut metrics = String::new();
    for _ in 0..400 {
        metrics = app.metrics().await;
        if metrics.contains(line) {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {line} in the metrics: {metrics}");
}

async fn not_me_reaches_the_issuer(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, r) = receiver().await;
    let app = spawn(backend, |c| configure(c, dir.path(), &url, "issuer", None)).await;
    let (holder, phone) = app.cardholder_with_device().await;
    wait_for(&r, |g| {
        g.iter().any(|x| x.body["type"] == "device.enrolled")
    })
    .await;
    r.answers.lock().unwrap().push_back(500); // the decision's first attempt fails
    let id = app.new_challenge(&holder, "order-1234").await;
    let c = phone.challenge(&id).await;
    let a = phone
        .post_proof(
            &id,
            &phone.sign_decision(&c, Decision::Deny, Some(DenyReason::NotMe)),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let got = wait_for(&r, |g| {
        g.iter()
            .filter(|x| x.body["type"] == "challenge.decided")
            .count()
            == 2
    })
    .await;
    assert!(
        got.iter().all(|x| x.verified),
        "every message verifies with the receiver's secret"
    );
    let decided: Vec<_> = got
        .iter()
        .filter(|x| x.body["type"] == "challenge.decided")
        .collect();
    assert_eq!(decided[0].id, decided[1].id, "a retry keeps its webhook-id");
    assert_eq!(decided[0].body, decided[1].body, "and its body");
    let data = &decided[0].body["data"];
    assert_eq!(data["outcome"], "not_me");
    assert_eq!(data["processor"], "api");
    assert_eq!(data["reference"], "order-1234");
    assert_eq!(data["challenge_id"], id.as_str());
    assert_eq!(data["cardholder_id"], holder.as_str());
    assert_eq!(data["device_id"], phone.id.as_str());
    assert!(
        decided[0].body["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // the admin API shows the event and its delivery
    let event_id = decided[0].id.clone();
    let v = events_until(&app, |v| {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["id"] == event_id.as_str() && e["deliveries"][0]["status"] == "done")
    })
    .await;
    let item = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == decided[0].id.as_str())
        .unwrap();
    assert_eq!(item["type"], "challenge.decided");
    let delivery = &item["deliveries"][0];
    assert_eq!(delivery["endpoint"], "issuer");
    assert_eq!(delivery["status"], "done");
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(v["endpoints"][0]["name"], "issuer");
    assert!(
        !v.to_string().contains("whsec_"),
        "no secret in the admin API"
    );
}

async fn filtered_and_given_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, r) = receiver().await;
    let app = spawn(backend, |c| {
        configure(
            c,
            dir.path(),
            &url,
            "fraud",
            Some(vec!["cardholder.blocked"]),
        );
    })
    .await;
    r.answers.lock().unwrap().extend([503, 503, 503]); // initial attempt + 2 retries
    let (holder, _phone) = app.cardholder_with_device().await;
    let (s, v) = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/cardholders/{holder}/block"),
            None,
        )
        .await;
    assert!(s < 300, "{s} {v}");
    let got = wait_for(&r, |g| g.len() == 3).await;
    assert!(
        got.iter().all(|x| x.body["type"] == "cardholder.blocked"),
        "the device.enrolled event is filtered out"
    );
    assert_eq!(got[0].body["data"]["by"], "admin");
    // the third failure ends it: failed, visible in the API and the metrics
    let v = events_until(&app, |v| {
        v["items"][0]["deliveries"][0]["status"] == "failed"
    })
    .await;
    let delivery = v["items"][0]["deliveries"][0].clone();
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(
        (
            delivery["attempts"].as_i64(),
            delivery["last_status"].as_i64()
        ),
        (Some(3), Some(503))
    );
    // counted after the outcome is recorded
    metrics_with(
        &app,
        r#"pushauth_issuer_event_deliveries_total{endpoint="fraud",outcome="failed"} 1"#,
    )
    .await;
    assert_eq!(r.got.lock().unwrap().len(), 3, "nothing after giving up");
}

/// A delivery to an endpoint that no instance has any more ("gone", configured on an
/// instance before this one) is given up once it has been due for
/// `orphan_after_secs`, with a last error that says why; the configured endpoint's
/// delivery of the same event is sent.
async fn orphaned_deliveries_are_given_up(backend: Backend) {
    use pushauth_store::{AuditDraft, EventRoute, Millis};
    let (dir, secrets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (url, r) = receiver().await;
    let (store, schema) = crate::support::open_store(backend, dir.path()).await; // migrated
    let t = pushauth_server::state::now();
    store
        .audit_append(AuditDraft::new(t, "admin", "cardholder.blocked"))
        .await
        .unwrap();
    let before = ["issuer", "gone"].map(|name| EventRoute {
        endpoint: name.into(),
        types: None,
    });
    let ten_seconds_ago = Millis(t.0 - 10_000);
    let fanned = store
        .issuer_events_fan_out(&before, ten_seconds_ago, 10)
        .await;
    assert_eq!(fanned.unwrap(), 1);
    let app = spawn_on(dir, store, schema, |c| {
        configure(c, secrets.path(), &url, "issuer", None);
        c.events.orphan_after_secs = 1;
    })
    .await;
    wait_for(&r, |g| {
        g.iter().any(|x| x.body["type"] == "cardholder.blocked")
    })
    .await;
    // The receiver sees the request before the sender records it as done, so wait
    // for both deliveries to settle, not only the orphan's.
    let settled = |d: &Value| d["status"] == "failed" || d["status"] == "done";
    let v = events_until(&app, |v| {
        let d = &v["items"][0]["deliveries"];
        settled(&d[0]) && settled(&d[1])
    })
    .await;
    let deliveries = v["items"][0]["deliveries"].clone();
    let by = |name: &str| {
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["endpoint"] == name)
            .unwrap()
            .clone()
    };
    let gone = by("gone");
    assert_eq!(gone["status"], "failed", "{deliveries}");
    assert_eq!(gone["attempts"], 0, "never sent");
    assert!(
        gone["last_error"]
            .as_str()
            .unwrap()
            .contains("orphan_after_secs"),
        "{gone}"
    );
    assert_eq!(by("issuer")["status"], "done", "{deliveries}");
}

/// An event written longer ago than `keep_days` whose deliveries have ended is deleted
/// with them when the instance starts (and every minute after); a recent one stays.
async fn old_events_are_deleted(backend: Backend) {
    use pushauth_store::{AuditDraft, DeliveryAttempt, DeliveryNext, EventRoute, Millis};
    let (dir, secrets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (url, r) = receiver().await;
    let (store, schema) = crate::support::open_store(backend, dir.path()).await; // migrated
    let t = pushauth_server::state::now();
    let two_days_ago = Millis(t.0 - 2 * 86_400_000);
    store
        .audit_append(AuditDraft::new(two_days_ago, "admin", "cardholder.blocked"))
        .await
        .unwrap();
    let issuer = [EventRoute {
        endpoint: "issuer".into(),
        types: None,
    }];
    assert_eq!(
        store
            .issuer_events_fan_out(&issuer, two_days_ago, 10)
            .await
            .unwrap(),
        1
    );
    let sent = store
        .issuer_event_claim(&["issuer".to_owned()], two_days_ago, t, 10)
        .await
        .unwrap();
    let attempt = DeliveryAttempt {
        at: two_days_ago,
        http_status: Some(204),
        error: None,
    };
    assert!(
        store
            .issuer_event_complete(sent[0].id, sent[0].claim, DeliveryNext::Done, attempt)
            .await
            .unwrap()
    );
    store
        .audit_append(AuditDraft::new(t, "admin", "cardholder.blocked"))
        .await
        .unwrap();
    let app = spawn_on(dir, store, schema, |c| {
        configure(c, secrets.path(), &url, "issuer", None);
        c.events.keep_days = 1;
    })
    .await;
    metrics_with(&app, "pushauth_issuer_events_purged_total 1").await;
    let got = wait_for(&r, |g| !g.is_empty()).await;
    let v = events_until(&app, |v| v["items"][0]["deliveries"][0]["status"] == "done").await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the recent event is left: {v}");
    assert_eq!(items[0]["id"], got[0].id.as_str());
    assert_ne!(items[0]["id"], sent[0].event_id.as_str());
}

macro_rules! both {
    ($($case:ident),+) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$case(super::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$case(super::Backend::Postgres).await }
        }
    )+};
}
both!(
    not_me_reaches_the_issuer,
    filtered_and_given_up,
    orphaned_deliveries_are_given_up,
    old_events_are_deleted
);
