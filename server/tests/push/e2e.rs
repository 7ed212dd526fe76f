//! End to end: the real server (API, outbox worker, storage) pushing to the mock APNs
//! and FCM. Each case runs on SQLite and PostgreSQL.

use pushauth_core::ChallengeId;
use pushauth_core::push::PushDetails;
use serde_json::json;

use crate::app::{App, Backend, Phone, spawn, wait_count};
use crate::mock::{self, MockApns, MockFcm, Reply, assert_no_plaintext};
use crate::senders::{Keys, apns_pair, push_config};

struct World {
    app: App,
    production: MockApns,
    sandbox: MockApns,
    fcm: MockFcm,
    _keys: Keys,
}

async fn world(backend: Backend) -> World {
    let (production, sandbox) = apns_pair().await;
    let fcm = MockFcm::start().await;
    let (config, keys) = push_config(Some((&production, &sandbox)), Some(&fcm));
    let app = spawn(backend, config).await;
    World {
        app,
        production,
        sandbox,
        fcm,
        _keys: keys,
    }
}

fn ios_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn opened(phone: &Phone, cid: &str, enc: &str) -> PushDetails {
    PushDetails::open(&phone.agreement, &ChallengeId::parse(cid).unwrap(), enc).unwrap()
}

async fn challenge_push_to_ios_and_android(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let ios = w
        .app
        .phone(&ch, "ios", &ios_token(1), Some("production"))
        .await;
    let dev = w
        .app
        .phone(&ch, "ios", &ios_token(2), Some("sandbox"))
        .await;
    let android = w
        .app
        .phone(&ch, "android", "fcm:APA91b-android-1", None)
        .await;
    let (cid, deadline) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 3).await;
    for phone in [&ios, &dev, &android] {
        let attempts = App::attempts(&detail, &phone.id, "push");
        assert_eq!(attempts.len(), 1, "{detail}");
        assert_eq!(
            (
                attempts[0]["outcome"].as_str(),
                attempts[0]["http_status"].as_i64()
            ),
            (Some("ok"), Some(200))
        );
    }

    // APNs: production and sandbox devices each on their host, HTTP/2, one provider token.
    let p = w.production.requests();
    let s = w.sandbox.requests();
    assert_eq!((p.len(), s.len()), (1, 1));
    assert_eq!(p[0].device_token, ios.token);
    assert_eq!(s[0].device_token, dev.token);
    assert_eq!(p[0].bearer, s[0].bearer);
    for (r, phone) in [(&p[0], &ios), (&s[0], &dev)] {
        assert!(r.http2);
        assert_eq!(r.headers["apns-topic"], mock::TOPIC);
        assert_eq!(r.headers["apns-push-type"], "alert");
        assert_eq!(r.headers["apns-priority"], "10");
        assert_eq!(r.headers["apns-expiration"], (deadline / 1000).to_string());
        assert_eq!(r.headers["apns-collapse-id"], cid);
        assert_eq!(r.body["aps"]["mutable-content"], 1);
        assert_eq!(r.body["aps"]["interruption-level"], "time-sensitive");
        assert_eq!(r.body["aps"]["alert"]["title"], "Confirm a payment");
        assert_eq!(r.body["cid"], cid);
        let d = opened(phone, &cid, r.body["enc"].as_str().unwrap());
        assert_eq!(d.txn.amount().unwrap().minor(), 4990);
        assert_eq!(d.txn.amount().unwrap().currency().code(), "EUR");
        assert_eq!(d.txn.payee().unwrap().as_str(), "Example Shop");
        assert_eq!(d.summary(), "EUR 49.90 at Example Shop");
        let headers: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| *k != "authorization")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let random = [
            cid.as_str(),
            r.body["enc"].as_str().unwrap(),
            r.headers["apns-expiration"].as_str(),
        ];
        assert_no_plaintext(&format!("{}\n{}", headers.join("\n"), r.raw), &random);
    }
    // The other phone's key cannot open this phone's envelope.
    assert!(
        PushDetails::open(
            &dev.agreement,
            &ChallengeId::parse(&cid).unwrap(),
            p[0].body["enc"].as_str().unwrap()
        )
        .is_err()
    );

    // FCM: OAuth token once, a high-priority data message living until the deadline.
    let f = w.fcm.requests();
    assert_eq!(f.len(), 1);
    assert_eq!(w.fcm.token_requests(), 1);
    let m = &f[0].body["message"];
    assert_eq!(m["token"], android.token);
    assert_eq!(m["android"]["priority"], "HIGH");
    assert_eq!(m["android"]["collapse_key"], cid);
    let ttl: i64 = m["android"]["ttl"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!((100..=120).contains(&ttl), "ttl {ttl}");
    assert!(m.get("notification").is_none());
    assert_eq!(m["data"]["cid"], cid);
    assert_eq!(m["data"]["kind"], "challenge");
    assert_eq!(
        opened(&android, &cid, m["data"]["enc"].as_str().unwrap())
            .txn
            .amount()
            .unwrap()
            .minor(),
        4990
    );
    assert_no_plaintext(
        &f[0].raw,
        &[cid.as_str(), m["data"]["enc"].as_str().unwrap()],
    );
    w.app.server.shutdown().await;
}

async fn fan_out_with_one_dead_token(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let alive = w.app.phone(&ch, "ios", &ios_token(1), None).await;
    let dead = w.app.phone(&ch, "ios", &ios_token(2), None).await;
    let android = w.app.phone(&ch, "android", "fcm:android-alive", None).await;
    w.production
        .script(&dead.token, [Reply::new(410, "Unregistered")]);
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 3).await;
    assert_eq!(w.production.requests_for(&alive.token).len(), 1);
    assert_eq!(w.production.requests_for(&dead.token).len(), 1);
    assert_eq!(w.fcm.requests_for(&android.token).len(), 1);
    let a = App::attempts(&detail, &dead.id, "push");
    assert_eq!(
        (
            a.len(),
            a[0]["outcome"].as_str(),
            a[0]["http_status"].as_i64()
        ),
        (1, Some("fatal"), Some(410))
    );
    assert_eq!(a[0]["error"], "Unregistered");
    w.app.token_cleared(&dead.id).await;
    assert!(!w.app.device_push(&alive.id).await.is_null());
    assert!(!w.app.device_push(&android.id).await.is_null());

    // The next challenge reaches the two live devices only.
    let (s, v) = w
        .app
        .admin(
            reqwest::Method::POST,
            "/v1/admin/challenges",
            Some(json!({"cardholder_id": ch, "reference": "order-2", "amount": {"minor": 4990, "currency": "EUR"}, "payee": "Example Shop"})),
        )
        .await;
    assert_eq!((s, v["pushes"].as_i64()), (201, Some(2)), "{v}");
    wait_count("second push to the live devices", 2, || {
        w.production.requests_for(&alive.token).len()
    })
    .await;
    wait_count("second push to android", 2, || {
        w.fcm.requests_for(&android.token).len()
    })
    .await;
    assert_eq!(w.production.requests_for(&dead.token).len(), 1);

    // FCM's equivalents: UNREGISTERED (404) and an invalid token (400) are dead too.
    let gone = w.app.phone(&ch, "android", "fcm:android-gone", None).await;
    let invalid = w
        .app
        .phone(&ch, "android", "fcm:android-invalid", None)
        .await;
    w.fcm.script(&gone.token, [Reply::new(404, "UNREGISTERED")]);
    w.fcm
        .script(&invalid.token, [Reply::new(400, "INVALID_ARGUMENT")]);
    let (cid, _) = w.app.challenge(&ch, "order-3").await;
    w.app.settled(&cid, 4).await;
    w.app.token_cleared(&gone.id).await;
    w.app.token_cleared(&invalid.id).await;
    assert!(!w.app.device_push(&android.id).await.is_null());
    w.app.server.shutdown().await;
}

async fn throttled_then_sent(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let ios = w.app.phone(&ch, "ios", &ios_token(1), None).await;
    let android = w
        .app
        .phone(&ch, "android", "fcm:android-throttled", None)
        .await;
    w.production
        .script(&ios.token, [Reply::new(429, "TooManyRequests")]);
    w.fcm.script(
        &android.token,
        [
            Reply::new(429, "QUOTA_EXCEEDED").retry_after(1),
            Reply::new(503, "UNAVAILABLE"),
        ],
    );
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 2).await;
    let outcomes = |phone: &Phone| -> Vec<(String, i64)> {
        App::attempts(&detail, &phone.id, "push")
            .iter()
            .map(|a| {
                (
                    a["outcome"].as_str().unwrap().to_owned(),
                    a["http_status"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    assert_eq!(outcomes(&ios), [("retry".into(), 429), ("ok".into(), 200)]);
    assert_eq!(
        outcomes(&android),
        [
            ("retry".into(), 429),
            ("retry".into(), 503),
            ("ok".into(), 200)
        ]
    );
    assert_eq!(w.production.requests_for(&ios.token).len(), 2);
    let f = w.fcm.requests_for(&android.token);
    assert_eq!(f.len(), 3);
    // Retry-After: 1 was respected between the first two FCM attempts.
    let at: Vec<i64> = App::attempts(&detail, &android.id, "push")
        .iter()
        .map(|a| a["at"].as_i64().unwrap())
        .collect();
    assert!(at[1] - at[0] >= 1000, "{at:?}");
    // Every outbox row is done.
    assert!(
        detail["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "done"),
        "{detail}"
    );
    w.app.server.shutdown().await;
}

async fn expired_credentials_are_renewed(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let ios = w.app.phone(&ch, "ios", &ios_token(1), None).await;
    let android = w.app.phone(&ch, "android", "fcm:android-1", None).await;
    w.production.expire_next_token();
    w.fcm.revoke_next_token();
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 2).await;
    // One attempt each: the renewal and the second request happen inside it.
    for phone in [&ios, &android] {
        let a = App::attempts(&detail, &phone.id, "push");
        assert_eq!(
            (a.len(), a[0]["outcome"].as_str()),
            (1, Some("ok")),
            "{detail}"
        );
    }
    let p = w.production.requests_for(&ios.token);
    assert_eq!(p.iter().map(|r| r.answered).collect::<Vec<_>>(), [403, 200]);
    assert_ne!(p[0].bearer, p[1].bearer);
    let f = w.fcm.requests_for(&android.token);
    assert_eq!(f.iter().map(|r| r.answered).collect::<Vec<_>>(), [401, 200]);
    assert_ne!(f[0].bearer, f[1].bearer);
    assert_eq!(w.fcm.token_requests(), 2);

    // Both renewed credentials are kept for the next push.
    let (cid2, _) = w.app.challenge(&ch, "order-2").await;
    w.app.settled(&cid2, 2).await;
    assert_eq!(w.production.requests_for(&ios.token)[2].bearer, p[1].bearer);
    assert_eq!(w.fcm.requests_for(&android.token)[2].bearer, f[1].bearer);
    assert_eq!(w.fcm.token_requests(), 2);
    w.app.server.shutdown().await;
}

async fn dismiss_after_answer(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let answering = w.app.phone(&ch, "ios", &ios_token(1), None).await;
    let other = w
        .app
        .phone(&ch, "ios", &ios_token(2), Some("sandbox"))
        .await;
    let android = w.app.phone(&ch, "android", "fcm:android-1", None).await;
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    w.app.settled(&cid, 3).await;
    answering.approve(&cid).await;
    // Two dismiss rows (not for the phone that answered).
    let detail = w.app.settled(&cid, 5).await;
    let dismiss_rows: Vec<_> = detail["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "dismiss")
        .cloned()
        .collect();
    assert_eq!(dismiss_rows.len(), 2, "{detail}");
    assert!(
        dismiss_rows
            .iter()
            .all(|r| r["device"] != answering.id.as_str() && r["status"] == "done")
    );

    assert_eq!(
        w.production.requests_for(&answering.token).len(),
        1,
        "the answering phone gets no dismiss"
    );
    let d = w.sandbox.requests_for(&other.token);
    assert_eq!(d.len(), 2);
    let r = &d[1];
    assert_eq!(r.headers["apns-push-type"], "background");
    assert_eq!(r.headers["apns-priority"], "5");
    assert_eq!(r.headers["apns-collapse-id"], cid);
    assert_eq!(
        r.body,
        json!({"aps": {"content-available": 1}, "cid": cid, "kind": "dismiss"})
    );
    let f = w.fcm.requests_for(&android.token);
    assert_eq!(f.len(), 2);
    let m = &f[1].body["message"];
    assert_eq!(m["data"], json!({"cid": cid, "kind": "dismiss"}));
    assert_eq!(m["android"]["collapse_key"], cid);
    assert!(m.get("notification").is_none());
    assert_no_plaintext(&r.raw, &[cid.as_str()]);
    assert_no_plaintext(&f[1].raw, &[cid.as_str()]);
    w.app.server.shutdown().await;
}

async fn non_hex_apns_token_is_not_sent(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let bad = w.app.phone(&ch, "ios", "not-a-hex-token", None).await;
    let good = w.app.phone(&ch, "ios", &ios_token(7), None).await;
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 2).await;
    let a = App::attempts(&detail, &bad.id, "push");
    assert_eq!(
        (
            a.len(),
            a[0]["outcome"].as_str(),
            a[0]["http_status"].as_i64()
        ),
        (1, Some("fatal"), None)
    );
    assert!(a[0]["error"].as_str().unwrap().contains("not hex"));
    assert_eq!(w.production.requests().len(), 1);
    assert_eq!(w.production.requests()[0].device_token, good.token);
    w.app.server.shutdown().await;
}

/// `when_unreachable = "close"`: once the push to every device failed for good, the
/// challenge is closed at once (and the timeout outcome goes upstream); with the
/// default `wait`, or while a device can still poll, it stays open.
async fn unreachable_cardholder_is_closed_early(backend: Backend) {
    let (production, sandbox) = apns_pair().await;
    let (config, _keys) = push_config(Some((&production, &sandbox)), None);
    let app = crate::app::spawn_with(backend, config, |c| {
        c.challenges.when_unreachable = pushauth_server::config::UnreachablePolicy::Close;
    })
    .await;
    let ch = app.cardholder().await;
    let a = app.phone(&ch, "ios", &ios_token(1), None).await;
    let b = app.phone(&ch, "ios", &ios_token(2), None).await;
    production.script(&a.token, [Reply::new(410, "Unregistered")]);
    production.script(&b.token, [Reply::new(400, "BadDeviceToken")]);
    let (cid, _) = app.challenge(&ch, "order-1").await;
    let mut status = String::new();
    for _ in 0..400 {
        status = app.detail(&cid).await["challenge"]["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
    let detail = app.detail(&cid).await;
    let actions: Vec<&str> = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"challenge.unreachable"), "{actions:?}");

    // A device that polls keeps the cardholder reachable: the challenge stays open.
    let ch2 = app.cardholder().await;
    let dead = app.phone(&ch2, "ios", &ios_token(3), None).await;
    production.script(&dead.token, [Reply::new(410, "Unregistered")]);
    let _poller = app.phone(&ch2, "other", "polling-only-device", None).await;
    let (cid2, _) = app.challenge(&ch2, "order-2").await;
    app.settled(&cid2, 1).await;
    assert_eq!(app.detail(&cid2).await["challenge"]["status"], "pending");
    app.server.shutdown().await;
}

/// A push still queued for a device that gets revoked is dropped before sending
/// (issue 15 §3): the first APNs call answers 503 with Retry-After, the device is
/// revoked meanwhile, and the retry never goes out.
async fn queued_push_to_revoked_device_is_dropped(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let revoked = w.app.phone(&ch, "ios", &ios_token(1), None).await;
    let kept = w.app.phone(&ch, "ios", &ios_token(2), None).await;
    w.production.script(
        &revoked.token,
        [Reply::new(503, "ServiceUnavailable").retry_after(2)],
    );
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    wait_count("first push attempt", 1, || {
        w.production.requests_for(&revoked.token).len()
    })
    .await;
    let (s, v) = w
        .app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/devices/{}/revoke", revoked.id),
            None,
        )
        .await;
    assert!(s < 300, "{s} {v}");
    let detail = w.app.settled(&cid, 2).await;
    let attempts = App::attempts(&detail, &revoked.id, "push");
    assert_eq!(attempts.len(), 2, "{detail:#}");
    assert_eq!(attempts[1]["outcome"], "ok");
    assert_eq!(
        attempts[1]["error"], "dropped: device revoked",
        "{detail:#}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(w.production.requests_for(&revoked.token).len(), 1);
    assert_eq!(w.production.requests_for(&kept.token).len(), 1);
    w.app.server.shutdown().await;
}

macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$case(crate::app::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$case(crate::app::Backend::Postgres).await
                }
            }
        )+
    };
}

on_both_backends!(
    unreachable_cardholder_is_closed_early,
    challenge_push_to_ios_and_android,
    fan_out_with_one_dead_token,
    throttled_then_sent,
    expired_credentials_are_renewed,
    dismiss_after_answer,
    non_hex_apns_token_is_not_sent,
    queued_push_to_revoked_device_is_dropped,
);
