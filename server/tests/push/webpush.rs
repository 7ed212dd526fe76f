//! The Web Push sender alone (built by `build_gateway`, or by hand for HTTP/2) against
//! the mock push service: what goes over the wire, what the device decrypts, and how
//! each answer maps to a `PushResult`.

use std::sync::Arc;
use std::time::Duration;

use pushauth_core::push::PushDetails;
use pushauth_server::push::config::{PushConfig, WebPushConfig};
use pushauth_server::push::endpoint::EndpointPolicy;
use pushauth_server::push::vapid::{self, Vapid};
use pushauth_server::push::webpush::WebPushSender;
use pushauth_server::push::{PushKind, PushResult, PushSender, build_gateway};
use pushauth_store::Platform;
use serde_json::json;

use crate::mock::Reply;
use crate::mock_webpush::{MockSubscription, MockWebPush};
use crate::senders::{Fixture, fixture, send};

pub const SUBJECT: &str = "mailto:push-ops@bank.example";

/// A VAPID key in a temporary directory and the `[push]` configuration for it, open to
/// the mock (http on 127.0.0.1: the test-only openings).
pub struct Vapidkey {
    pub dir: tempfile::TempDir,
    pub public: String,
}

pub fn webpush_config() -> (PushConfig, Vapidkey) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vapid.pem");
    let public = vapid::write_new(&file).unwrap();
    let config = PushConfig {
        webpush: WebPushConfig {
            vapid_key_file: Some(file),
            subject: Some(SUBJECT.into()),
            allow_http: true,
            allow_private_addresses: true,
            ..Default::default()
        },
        request_timeout_ms: 5_000,
        ..Default::default()
    };
    (config, Vapidkey { dir, public })
}

fn device(sub: &MockSubscription) -> Fixture {
    fixture(Platform::WebPush, &sub.token, None)
}

#[tokio::test]
async fn webpush_challenge_and_dismiss_on_the_wire() {
    let mock = MockWebPush::start().await;
    let (config, key) = webpush_config();
    let gateway = build_gateway(&config).unwrap();
    assert!(gateway.apns.is_none() && gateway.fcm.is_none());
    let sender = gateway.webpush.clone().unwrap();
    assert_eq!(sender.service(), "webpush");
    let sub = mock.subscribe(Some(&key.public));
    let f = device(&sub);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 201 }
    );
    let r = &mock.requests_for(&sub.id)[0];
    assert!(!r.http2, "cleartext without prior knowledge is HTTP/1.1");
    let vapid = r.vapid.as_ref().expect("VAPID token verified");
    assert_eq!(vapid["aud"], mock.url.as_str());
    assert_eq!(vapid["sub"], SUBJECT);
    assert!(r.headers["authorization"].ends_with(&format!(", k={}", key.public)));
    assert_eq!(r.headers["urgency"], "high");
    assert_eq!(r.headers["content-encoding"], "aes128gcm");
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let ttl: i64 = r.headers["ttl"].parse().unwrap();
    assert!((115..=120).contains(&ttl), "ttl {ttl}");
    let topic = r.headers["topic"].clone();
    assert_eq!(topic.len(), 32);
    // The push service sees ciphertext only: not even the challenge id.
    let cid = f.challenge.id.as_str();
    let wire = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!wire.contains(cid) && !topic.contains(&cid[..8]));
    crate::mock::assert_no_plaintext(&wire, &[]);
    for (k, v) in &r.headers {
        assert!(!v.contains(cid), "{k}: {v}");
    }
    // The device decrypts it to the push data APNs and FCM carry.
    let data = r
        .plaintext
        .clone()
        .expect("decrypted with the subscription key");
    assert_eq!(
        (data["cid"].as_str(), data["kind"].as_str()),
        (Some(cid), Some("challenge"))
    );
    let details =
        PushDetails::open(&f.agreement, &f.challenge.id, data["enc"].as_str().unwrap()).unwrap();
    assert_eq!(details.txn.amount().unwrap().minor(), 4990);
    assert_eq!(details.summary(), "EUR 49.90 at Example Shop");

    // The dismiss replaces it (same Topic), with normal urgency and no envelope.
    assert_eq!(
        send(&sender, &f, PushKind::Dismiss).await,
        PushResult::Sent { http_status: 201 }
    );
    let d = &mock.requests_for(&sub.id)[1];
    assert_eq!(d.headers["topic"], topic);
    assert_eq!(d.headers["urgency"], "normal");
    assert!(d.headers["ttl"].parse::<i64>().unwrap() >= 60);
    assert_eq!(d.plaintext, Some(json!({"cid": cid, "kind": "dismiss"})));
    // One VAPID token per origin, reused.
    assert_eq!(d.token, r.token);
    // Another subscription of the same service: its own Topic for the same challenge.
    let other = mock.subscribe(None);
    let g = Fixture {
        challenge: f.challenge.clone(),
        ..device(&other)
    };
    send(&sender, &g, PushKind::Challenge).await;
    assert_ne!(mock.requests_for(&other.id)[0].headers["topic"], topic);
}

#[tokio::test]
async fn webpush_over_http2() {
    let mock = MockWebPush::start().await;
    let (config, key) = webpush_config();
    let pem = std::fs::read(config.webpush.vapid_key_file.as_ref().unwrap()).unwrap();
    let policy = EndpointPolicy::from_config(&config.webpush).unwrap();
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let sender: Arc<dyn PushSender> = Arc::new(WebPushSender::new(
        http,
        Vapid::new(vapid::parse_key(&pem).unwrap(), SUBJECT).unwrap(),
        policy,
    ));
    let sub = mock.subscribe(Some(&key.public));
    let f = device(&sub);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 201 }
    );
    let r = &mock.requests_for(&sub.id)[0];
    assert!(r.http2);
    assert!(r.vapid.is_some());
    assert_eq!(r.plaintext.as_ref().unwrap()["kind"], "challenge");
}

#[tokio::test]
async fn webpush_answers() {
    let mock = MockWebPush::start().await;
    let (config, key) = webpush_config();
    let sender = build_gateway(&config).unwrap().webpush.unwrap();
    let sub = mock.subscribe(Some(&key.public));
    let f = device(&sub);

    mock.script(&sub.id, [Reply::new(429, "").retry_after(4)]);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: Some(429),
            error: "Web Push 429".into(),
            after: Some(Duration::from_secs(4))
        }
    );
    mock.script(&sub.id, [Reply::new(503, "")]);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: Some(503),
            after: None,
            ..
        }
    ));
    mock.script(&sub.id, [Reply::new(413, "")]);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Fatal {
            http_status: Some(413),
            ..
        }
    ));
    // A refused VAPID token is renewed and the push sent again, in one call.
    mock.refuse_next_token();
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 201 }
    );
    let reqs = mock.requests_for(&sub.id);
    let (a, b) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
    assert_eq!((a.answered, b.answered), (401, 201));
    assert_ne!(a.token, b.token);
    // Gone (410) and unknown (404) subscriptions are dead.
    mock.unsubscribe(&sub.id);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 410,
            reason: "Gone".into()
        }
    );
    let unknown = mock.subscribe(None);
    let g = fixture(
        Platform::WebPush,
        &unknown.token.replace(&unknown.id, "0000"),
        None,
    );
    assert!(matches!(
        send(&sender, &g, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 404,
            ..
        }
    ));
    // A subscription made for another application server key: 403 even after renewal.
    let foreign = mock.subscribe(Some("BOtherKeyOtherKeyOtherKey"));
    let h = device(&foreign);
    match send(&sender, &h, PushKind::Challenge).await {
        PushResult::Fatal {
            http_status: Some(403),
            error,
        } => {
            assert!(error.contains("vapid_key_file"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.requests_for(&foreign.id).len(), 2);
}

#[tokio::test]
async fn webpush_endpoint_rules_hold_at_send() {
    let mock = MockWebPush::start().await;
    let sub = mock.subscribe(None);
    let f = device(&sub);
    let (open, _key) = webpush_config();
    for (http, private, why) in [
        (false, false, "must be an https URL"),
        (true, false, "127.0.0.1 is not a public address"),
    ] {
        let mut config = open.clone();
        config.webpush.allow_http = http;
        config.webpush.allow_private_addresses = private;
        let sender = build_gateway(&config).unwrap().webpush.unwrap();
        match send(&sender, &f, PushKind::Challenge).await {
            PushResult::Fatal {
                http_status: None,
                error,
            } => assert!(error.contains(why), "{error}"),
            other => panic!("{other:?}"),
        }
    }
    let mut config = open.clone();
    config.webpush.allowed_hosts = vec!["updates.push.services.mozilla.com".into()];
    let sender = build_gateway(&config).unwrap().webpush.unwrap();
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Fatal {
            http_status: None,
            ..
        }
    ));
    assert!(mock.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn webpush_start_up_errors_name_the_key() {
    let (config, key) = webpush_config();
    let bad = key.dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    for (c, want) in [
        (
            PushConfig {
                webpush: WebPushConfig {
                    vapid_key_file: Some(bad),
                    ..config.webpush.clone()
                },
                ..config.clone()
            },
            "push.webpush.vapid_key_file",
        ),
        (
            PushConfig {
                webpush: WebPushConfig {
                    vapid_key_file: Some(key.dir.path().join("none.pem")),
                    ..config.webpush.clone()
                },
                ..config.clone()
            },
            "cannot read",
        ),
        (
            PushConfig {
                webpush: WebPushConfig {
                    subject: None,
                    ..config.webpush.clone()
                },
                ..config.clone()
            },
            "push.webpush.subject",
        ),
        (
            PushConfig {
                webpush: WebPushConfig {
                    allowed_hosts: vec!["*.com".into()],
                    ..config.webpush.clone()
                },
                ..config.clone()
            },
            "push.webpush.allowed_hosts",
        ),
    ] {
        let e = build_gateway(&c).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
    }
    // Without a VAPID key Web Push is off, but its endpoint rules still apply.
    let g = build_gateway(&PushConfig::default()).unwrap();
    assert!(g.webpush.is_none());
    assert!(g.endpoints.check("http://127.0.0.1/x").is_err());
}
