//! End to end with Web Push: the real server (API, outbox worker, storage) pushing to
//! the mock Web Push service, alone and next to the mock APNs and FCM. Each case runs
//! on SQLite and PostgreSQL.

use pushauth_core::ChallengeId;
use pushauth_core::push::PushDetails;
use serde_json::{Value, json};

use crate::app::{App, Backend, Phone, spawn, wait_count};
use crate::mock::{MockApns, MockFcm, Reply};
use crate::mock_webpush::{MockSubscription, MockWebPush};
use crate::senders::{Keys, apns_pair, push_config};
use crate::webpush::{Vapidkey, webpush_config};

struct World {
    app: App,
    apns: MockApns,
    _sandbox: MockApns,
    fcm: MockFcm,
    push: MockWebPush,
    vapid: Vapidkey,
    _keys: Keys,
}

async fn world(backend: Backend) -> World {
    let (apns, sandbox) = apns_pair().await;
    let fcm = MockFcm::start().await;
    let push = MockWebPush::start().await;
    let (mut config, keys) = push_config(Some((&apns, &sandbox)), Some(&fcm));
    let (web, vapid) = webpush_config();
    config.webpush = web.webpush;
    let app = spawn(backend, config).await;
    World {
        app,
        apns,
        _sandbox: sandbox,
        fcm,
        push,
        vapid,
        _keys: keys,
    }
}

impl World {
    /// A subscription bound to the server's VAPID key and a phone enrolled with it.
    async fn webpush_phone(&self, cardholder: &str) -> (MockSubscription, Phone) {
        let sub = self.push.subscribe(Some(&self.vapid.public));
        let phone = self
            .app
            .phone(cardholder, "webpush", &sub.token, None)
            .await;
        (sub, phone)
    }
}

fn open(phone: &Phone, data: &Value) -> PushDetails {
    PushDetails::open(
        &phone.agreement,
        &ChallengeId::parse(data["cid"].as_str().unwrap()).unwrap(),
        data["enc"].as_str().unwrap(),
    )
    .unwrap()
}

async fn webpush_device_receives_the_challenge(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let (sub, phone) = w.webpush_phone(&ch).await;
    assert!(!w.app.device_push(&phone.id).await.is_null());
    let before = pushauth_server::state::now().0;
    let (cid, deadline) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 1).await;
    let after = pushauth_server::state::now().0;
    let a = App::attempts(&detail, &phone.id, "push");
    assert_eq!(
        (
            a.len(),
            a[0]["outcome"].as_str(),
            a[0]["http_status"].as_i64()
        ),
        (1, Some("ok"), Some(201)),
        "{detail}"
    );
    let reqs = w.push.requests_for(&sub.id);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.vapid.as_ref().unwrap()["aud"], w.push.url.as_str());
    assert_eq!(r.headers["urgency"], "high");
    let ttl: i64 = r.headers["ttl"].parse().unwrap();
    // The TTL is the whole seconds left, rounded up, when it was sent: between `before`
    // and `after`.
    let (least, most) = ((deadline - after) / 1000, (deadline - before + 999) / 1000);
    assert!(
        (least..=most).contains(&ttl),
        "ttl {ttl}, between {least} and {most} s left"
    );
    let data = r.plaintext.clone().unwrap();
    assert_eq!(
        (data["cid"].as_str(), data["kind"].as_str()),
        (Some(cid.as_str()), Some("challenge"))
    );
    let d = open(&phone, &data);
    assert_eq!(d.summary(), "EUR 49.90 at Example Shop");
    assert!(!String::from_utf8_lossy(&r.body).contains(&cid));
    // Nothing went to APNs or FCM.
    assert!(w.apns.requests().is_empty() && w.fcm.requests().is_empty());
    phone.approve(&cid).await;
    w.app.server.shutdown().await;
}

async fn dead_subscription_is_tried_once_and_cleared(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let (alive, alive_phone) = w.webpush_phone(&ch).await;
    let (dead, dead_phone) = w.webpush_phone(&ch).await;
    w.push.unsubscribe(&dead.id);
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 2).await;
    let a = App::attempts(&detail, &dead_phone.id, "push");
    assert_eq!(
        (
            a.len(),
            a[0]["outcome"].as_str(),
            a[0]["http_status"].as_i64()
        ),
        (1, Some("fatal"), Some(410)),
        "{detail}"
    );
    assert_eq!(a[0]["error"], "Gone");
    assert_eq!(w.push.requests_for(&dead.id).len(), 1);
    w.app.token_cleared(&dead_phone.id).await;
    assert!(!w.app.device_push(&alive_phone.id).await.is_null());

    // The next challenge goes to the live subscription only.
    let (s, v) = w
        .app
        .admin(
            reqwest::Method::POST,
            "/v1/admin/challenges",
            Some(json!({"cardholder_id": ch, "reference": "order-2", "amount": {"minor": 4990, "currency": "EUR"}, "payee": "Example Shop"})),
        )
        .await;
    assert_eq!((s, v["pushes"].as_i64()), (201, Some(1)), "{v}");
    wait_count("second push", 2, || w.push.requests_for(&alive.id).len()).await;
    assert_eq!(w.push.requests_for(&dead.id).len(), 1);
    // A new subscription from the app restores pushing.
    let renewed = w.push.subscribe(Some(&w.vapid.public));
    let (s, v) = dead_phone.put_push_token(&renewed.token).await;
    assert_eq!(s, 204, "{v}");
    assert!(!w.app.device_push(&dead_phone.id).await.is_null());
    w.app.server.shutdown().await;
}

async fn fan_out_across_services_then_dismiss(backend: Backend) {
    let w = world(backend).await;
    let ch = w.app.cardholder().await;
    let ios_token = "ab".repeat(32);
    let ios = w.app.phone(&ch, "ios", &ios_token, None).await;
    let android = w.app.phone(&ch, "android", "fcm:android-1", None).await;
    let (sub, web) = w.webpush_phone(&ch).await;
    w.push.script(&sub.id, [Reply::new(503, "").retry_after(1)]);
    let (cid, _) = w.app.challenge(&ch, "order-1").await;
    let detail = w.app.settled(&cid, 3).await;
    assert_eq!(w.apns.requests_for(&ios_token).len(), 1);
    assert_eq!(w.fcm.requests_for(&android.token).len(), 1);
    let pushes = w.push.requests_for(&sub.id);
    assert_eq!(
        pushes.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [503, 201]
    );
    let outcomes: Vec<_> = App::attempts(&detail, &web.id, "push")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["retry", "ok"]);
    // Every device opens its own envelope, and only its own.
    let data = pushes[1].plaintext.clone().unwrap();
    assert_eq!(open(&web, &data).txn.amount().unwrap().minor(), 4990);
    assert!(
        PushDetails::open(
            &ios.agreement,
            &ChallengeId::parse(&cid).unwrap(),
            data["enc"].as_str().unwrap()
        )
        .is_err()
    );

    // The iPhone approves: the Android phone and the Web Push device are dismissed.
    ios.approve(&cid).await;
    let detail = w.app.settled(&cid, 5).await;
    let dismissed: Vec<&str> = detail["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "dismiss" && r["status"] == "done")
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    assert_eq!(dismissed.len(), 2, "{detail}");
    assert!(dismissed.contains(&android.id.as_str()) && dismissed.contains(&web.id.as_str()));
    let all = w.push.requests_for(&sub.id);
    assert_eq!(all.len(), 3);
    let d = &all[2];
    assert_eq!(d.plaintext, Some(json!({"cid": cid, "kind": "dismiss"})));
    assert_eq!(d.headers["urgency"], "normal");
    assert_eq!(
        d.headers["topic"], pushes[1].headers["topic"],
        "the dismiss replaces the challenge push"
    );
    assert_eq!(w.fcm.requests_for(&android.token).len(), 2);
    assert_eq!(
        w.apns.requests_for(&ios_token).len(),
        1,
        "the answering phone gets no dismiss"
    );
    w.app.server.shutdown().await;
}

/// The SSRF guard at registration: with the default rules (https only, public
/// addresses) and an allow-list, bad endpoints are refused with a precise problem and
/// nothing changes.
async fn subscription_endpoints_are_checked_at_registration(backend: Backend) {
    let push = MockWebPush::start().await;
    let (mut config, _vapid) = webpush_config();
    config.webpush.allow_http = false;
    config.webpush.allow_private_addresses = false;
    config.webpush.allowed_hosts = vec!["*.push.services.mozilla.com".into(), "127.0.0.1".into()];
    let app = spawn(backend, config).await;
    let ch = app.cardholder().await;
    let sub = push.subscribe(None);
    let keys: Value = serde_json::from_str::<Value>(&sub.token).unwrap()["keys"].clone();
    let token = |endpoint: &str| json!({"endpoint": endpoint, "keys": keys}).to_string();
    for (t, why) in [
        (
            sub.token.clone(),
            "push_token: endpoint must be an https URL (push.webpush allows no http)",
        ),
        (
            token("https://127.0.0.1/push/x"),
            "push_token: endpoint address 127.0.0.1 is not a public address (push.webpush allows public addresses only)",
        ),
        (
            token("https://[fd12::1]/push/x"),
            "push_token: endpoint address fd12::1 is not a public address",
        ),
        (
            token("https://push.attacker.example/x"),
            "push_token: endpoint host push.attacker.example is not in push.webpush.allowed_hosts",
        ),
        (
            token("https://updates.push.services.mozilla.com/x#frag"),
            "push_token: endpoint must not have a fragment",
        ),
        (
            "{\"endpoint\":\"https://updates.push.services.mozilla.com/x\"}".into(),
            "push_token: invalid web push subscription: not a PushSubscription JSON object",
        ),
        (
            token("https://updates.push.services.mozilla.com/x")
                .replace(keys["auth"].as_str().unwrap(), "c2hvcnQ"),
            "push_token: invalid web push subscription: keys.auth: not 16 bytes of base64url",
        ),
    ] {
        let (status, v, _) = app.enroll(&ch, "webpush", Some(&t), None).await;
        assert_eq!(status, 400, "{t}: {v}");
        assert_eq!(v["content_type"], "application/problem+json", "{v}");
        assert_eq!(v["reason"], "invalid_field", "{v}");
        assert!(v["detail"].as_str().unwrap().starts_with(why), "{why}: {v}");
    }
    // Allowed and public: enrolled, stored in canonical form (expirationTime dropped).
    let good = token("https://updates.push.services.mozilla.com/wpush/v2/abc");
    let phone = app.phone(&ch, "webpush", &good, None).await;
    let shown = app.device_push(&phone.id).await;
    assert_eq!(
        shown["endpoint_origin"], "https://updates.push.services.mozilla.com",
        "the admin API shows the push service, never the subscription: {shown}"
    );
    assert!(!shown.to_string().contains("wpush/v2/abc") && shown.get("token_prefix").is_none());
    let (s, v) = phone.put_push_token(&token("http://10.0.0.8/push")).await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("invalid_field")),
        "{v}"
    );
    assert!(v["detail"].as_str().unwrap().contains("https"), "{v}");
    assert!(
        !app.device_push(&phone.id).await.is_null(),
        "a refused update changes nothing"
    );
    // Other platforms' tokens are not subscriptions.
    let (status, v, _) = app.enroll(&ch, "android", Some("fcm:token-1"), None).await;
    assert_eq!(status, 201, "{v}");
    assert!(push.requests().is_empty());
    app.server.shutdown().await;
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
    webpush_device_receives_the_challenge,
    dead_subscription_is_tried_once_and_cleared,
    fan_out_across_services_then_dismiss,
    subscription_endpoints_are_checked_at_registration,
);
