//! The APNs and FCM senders alone (built by `build_gateway`) against the mocks: what
//! goes over the wire and how each answer maps to a `PushResult`.

use std::sync::Arc;

use pushauth_core::ids::CardholderId;
use pushauth_core::keys::{KeyAgreement, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::push::PushDetails;
use pushauth_core::{
    ChallengeId, Currency, DeviceId, Money, Nonce, Payee, Provider, ProviderRef, Transaction,
    TransactionKind,
};
use pushauth_server::push::config::PushConfig;
use pushauth_server::push::{PushJob, PushKind, PushResult, PushSender, build_gateway, push_data};
use pushauth_store::{
    Challenge, ChallengeStatus, Device, DeviceKey, DeviceStatus, Platform, PushEnvironment,
    PushTarget, UpstreamStatus,
};
use serde_json::json;

use crate::mock::{self, MockApns, MockFcm, Reply, eventually};

pub struct Keys {
    pub dir: tempfile::TempDir,
}

/// Writes the mocks' key files and returns a `[push]` configuration for them.
pub fn push_config(
    apns: Option<(&MockApns, &MockApns)>,
    fcm: Option<&MockFcm>,
) -> (PushConfig, Keys) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = PushConfig::default();
    if let Some((production, sandbox)) = apns {
        let p8 = dir.path().join("AuthKey_KEY1234567.p8");
        std::fs::write(&p8, &production.p8).unwrap();
        c.apns_key_file = Some(p8);
        c.apns_key_id = Some(mock::KEY_ID.into());
        c.apns_team_id = Some(mock::TEAM_ID.into());
        c.apns_topic = Some(mock::TOPIC.into());
        c.apns_base_url_production = Some(production.url.clone());
        c.apns_base_url_sandbox = Some(sandbox.url.clone());
    }
    if let Some(fcm) = fcm {
        let sa = dir.path().join("service-account.json");
        std::fs::write(&sa, fcm.service_account_json()).unwrap();
        c.fcm_service_account_file = Some(sa);
        c.fcm_base_url = Some(fcm.url.clone());
    }
    c.request_timeout_ms = 5_000;
    (c, Keys { dir })
}

/// Two APNs mocks (production, sandbox) trusting one key, like Apple's two hosts.
pub async fn apns_pair() -> (MockApns, MockApns) {
    let key = SoftwareSigningKey::generate().unwrap();
    (
        MockApns::with_key(&key).await,
        MockApns::with_key(&key).await,
    )
}

pub struct Fixture {
    pub device: Device,
    pub challenge: Challenge,
    pub agreement: SoftwareAgreementKey,
}

pub fn fixture(platform: Platform, token: &str, environment: Option<PushEnvironment>) -> Fixture {
    let now = pushauth_server::state::now();
    let agreement = SoftwareAgreementKey::generate().unwrap();
    let signing = SoftwareSigningKey::generate().unwrap();
    let approval = SoftwareSigningKey::generate().unwrap();
    let key = |k: pushauth_core::PublicKey| DeviceKey {
        jwk: serde_json::to_string(&k.to_jwk()).unwrap(),
        thumbprint: k.thumbprint(),
    };
    let cardholder = CardholderId::generate().unwrap();
    let device = Device {
        id: DeviceId::generate().unwrap(),
        cardholder: cardholder.clone(),
        status: DeviceStatus::Active,
        platform,
        label: None,
        device_key: key(signing.public()),
        approval_key: key(approval.public()),
        agreement_key: key(agreement.public_key().unwrap()),
        push: Some(PushTarget {
            token: token.to_owned(),
            environment,
        }),
        failures: 0,
        server_kid: None,
        created_at: now,
        updated_at: now,
    };
    let txn = Transaction {
        provider: Provider::Api,
        reference: ProviderRef::parse("order-1").unwrap(),
        kind: TransactionKind::Payment,
        amount: Some(Money::from_minor(4990, Currency::parse("EUR").unwrap()).unwrap()),
        payee: Some(Payee::parse("Example Shop").unwrap()),
        details: Default::default(),
    };
    let challenge = Challenge {
        id: ChallengeId::generate().unwrap(),
        cardholder,
        provider: txn.provider,
        provider_ref: txn.reference.clone(),
        kind: txn.kind,
        amount: txn.amount,
        payee: txn.payee.clone(),
        nonce: Nonce::generate().unwrap(),
        txn_digest: txn.digest(),
        deadline: now.plus(120_000),
        upstream_deadline: now.plus(300_000),
        processor_input: None,
        context: serde_json::Value::Null,
        status: ChallengeStatus::Pending,
        upstream: UpstreamStatus::None,
        closed_at: None,
        final_status: None,
        created_at: now,
    };
    Fixture {
        device,
        challenge,
        agreement,
    }
}

pub async fn send(sender: &Arc<dyn PushSender>, f: &Fixture, kind: PushKind) -> PushResult {
    let data = push_data(&f.challenge, &f.device, kind).unwrap();
    sender
        .send(PushJob {
            device: &f.device,
            challenge: &f.challenge,
            kind,
            data: &data,
        })
        .await
}

const IOS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::test]
async fn apns_challenge_push_on_the_wire() {
    let (production, sandbox) = apns_pair().await;
    let (config, _keys) = push_config(Some((&production, &sandbox)), None);
    let gateway = build_gateway(&config).unwrap();
    let apns = gateway.apns.clone().unwrap();
    assert!(gateway.fcm.is_none());
    let f = fixture(Platform::Ios, IOS_TOKEN, Some(PushEnvironment::Production));
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    let reqs = production.requests();
    assert_eq!(reqs.len(), 1);
    assert!(sandbox.requests().is_empty());
    let r = &reqs[0];
    assert!(r.http2, "the APNs client must speak HTTP/2");
    assert_eq!(r.device_token, IOS_TOKEN);
    assert_eq!(r.headers["apns-topic"], mock::TOPIC);
    assert_eq!(r.headers["apns-push-type"], "alert");
    assert_eq!(r.headers["apns-priority"], "10");
    assert_eq!(
        r.headers["apns-expiration"],
        (f.challenge.deadline.0 / 1000).to_string()
    );
    assert_eq!(r.headers["apns-collapse-id"], f.challenge.id.as_str());
    let aps = &r.body["aps"];
    assert_eq!(aps["mutable-content"], 1);
    assert_eq!(aps["interruption-level"], "time-sensitive");
    assert_eq!(aps["alert"]["title"], "Confirm a payment");
    assert_eq!(r.body["cid"], f.challenge.id.as_str());
    assert_eq!(r.body["kind"], "challenge");
    mock::assert_no_plaintext(
        &r.raw,
        &[f.challenge.id.as_str(), r.body["enc"].as_str().unwrap()],
    );
    let details = PushDetails::open(
        &f.agreement,
        &f.challenge.id,
        r.body["enc"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(details.txn.amount().unwrap().minor(), 4990);
    assert_eq!(details.txn.payee().unwrap().as_str(), "Example Shop");

    // Same provider token for the next push (cached), sandbox device goes to sandbox.
    let g = fixture(
        Platform::Ios,
        &IOS_TOKEN.replace('a', "b"),
        Some(PushEnvironment::Sandbox),
    );
    assert_eq!(
        send(&apns, &g, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    assert_eq!(sandbox.requests().len(), 1);
    assert_eq!(sandbox.requests()[0].bearer, r.bearer);
}

#[tokio::test]
async fn apns_dismiss_is_a_background_push() {
    let (production, sandbox) = apns_pair().await;
    let (config, _keys) = push_config(Some((&production, &sandbox)), None);
    let apns = build_gateway(&config).unwrap().apns.unwrap();
    let f = fixture(Platform::Ios, IOS_TOKEN, None);
    assert_eq!(
        send(&apns, &f, PushKind::Dismiss).await,
        PushResult::Sent { http_status: 200 }
    );
    let r = &production.requests()[0];
    assert_eq!(r.headers["apns-push-type"], "background");
    assert_eq!(r.headers["apns-priority"], "5");
    assert_eq!(r.headers["apns-collapse-id"], f.challenge.id.as_str());
    assert_eq!(
        r.body,
        json!({"aps": {"content-available": 1}, "cid": f.challenge.id.as_str(), "kind": "dismiss"})
    );
}

#[tokio::test]
async fn apns_answers() {
    let (production, sandbox) = apns_pair().await;
    let (config, _keys) = push_config(Some((&production, &sandbox)), None);
    let apns = build_gateway(&config).unwrap().apns.unwrap();
    let f = fixture(Platform::Ios, IOS_TOKEN, None);
    production.script(IOS_TOKEN, [Reply::new(410, "Unregistered")]);
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 410,
            reason: "Unregistered".into()
        }
    );
    production.script(IOS_TOKEN, [Reply::new(400, "BadDeviceToken")]);
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 400,
            reason: "BadDeviceToken".into()
        }
    );
    production.script(
        IOS_TOKEN,
        [Reply::new(429, "TooManyRequests").retry_after(2)],
    );
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: Some(429),
            error: "APNs 429 TooManyRequests".into(),
            after: Some(std::time::Duration::from_secs(2))
        }
    );
    production.script(IOS_TOKEN, [Reply::new(503, "ServiceUnavailable")]);
    assert!(matches!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: Some(503),
            after: None,
            ..
        }
    ));
    production.script(IOS_TOKEN, [Reply::new(400, "DeviceTokenNotForTopic")]);
    assert!(matches!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Fatal {
            http_status: Some(400),
            ..
        }
    ));

    // Expired provider token: renewed and sent again within the same call.
    production.expire_next_token();
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    let reqs = production.requests();
    let (a, b) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
    assert_eq!((a.answered, b.answered), (403, 200));
    assert_ne!(a.bearer, b.bearer);
    // The renewed token is kept.
    assert_eq!(
        send(&apns, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    assert_eq!(production.requests().last().unwrap().bearer, b.bearer);

    // A non-hex token is refused without sending.
    let before = production.requests().len();
    let g = fixture(Platform::Ios, "not-a-hex-token", None);
    assert!(matches!(
        send(&apns, &g, PushKind::Challenge).await,
        PushResult::Fatal {
            http_status: None,
            ..
        }
    ));
    assert_eq!(production.requests().len(), before);
}

#[tokio::test]
async fn fcm_push_and_answers() {
    let fcm = MockFcm::start().await;
    let (config, _keys) = push_config(None, Some(&fcm));
    let sender = build_gateway(&config).unwrap().fcm.unwrap();
    let token = "fcm-token:APA91b-device-1";
    let f = fixture(Platform::Android, token, None);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    assert_eq!(fcm.token_requests(), 1);
    let r = &fcm.requests()[0];
    let m = &r.body["message"];
    assert_eq!(m["token"], token);
    assert_eq!(m["android"]["priority"], "HIGH");
    assert_eq!(m["android"]["collapse_key"], f.challenge.id.as_str());
    let ttl: i64 = m["android"]["ttl"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!((115..=120).contains(&ttl), "ttl {ttl}");
    assert_eq!(m["data"]["cid"], f.challenge.id.as_str());
    assert_eq!(m["data"]["kind"], "challenge");
    mock::assert_no_plaintext(
        &r.raw,
        &[f.challenge.id.as_str(), m["data"]["enc"].as_str().unwrap()],
    );
    let details = PushDetails::open(
        &f.agreement,
        &f.challenge.id,
        m["data"]["enc"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(details.txn.amount().unwrap().minor(), 4990);

    // Cached access token; dismiss is a data message without enc.
    assert_eq!(
        send(&sender, &f, PushKind::Dismiss).await,
        PushResult::Sent { http_status: 200 }
    );
    assert_eq!(fcm.token_requests(), 1);
    let d = &fcm.requests()[1].body["message"];
    assert_eq!(
        d["data"],
        json!({"cid": f.challenge.id.as_str(), "kind": "dismiss"})
    );
    assert_eq!(d["android"]["priority"], "NORMAL");

    fcm.script(token, [Reply::new(404, "UNREGISTERED")]);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 404,
            reason: "UNREGISTERED".into()
        }
    );
    fcm.script(token, [Reply::new(400, "INVALID_ARGUMENT")]);
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::DeadToken {
            http_status: 400,
            reason: "INVALID_ARGUMENT".into()
        }
    );
    fcm.script(token, [Reply::new(429, "QUOTA_EXCEEDED").retry_after(3)]);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Retry { http_status: Some(429), after: Some(d), .. } if d.as_secs() == 3
    ));
    fcm.script(token, [Reply::new(503, "UNAVAILABLE")]);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: Some(503),
            ..
        }
    ));
    fcm.script(token, [Reply::new(403, "SENDER_ID_MISMATCH")]);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Fatal {
            http_status: Some(403),
            ..
        }
    ));

    // 401: a new access token, then success, in one call.
    fcm.revoke_next_token();
    assert_eq!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Sent { http_status: 200 }
    );
    assert_eq!(fcm.token_requests(), 2);
    let reqs = fcm.requests();
    let (a, b) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
    assert_eq!((a.answered, b.answered), (401, 200));
    assert_ne!(a.bearer, b.bearer);
}

#[tokio::test]
async fn fcm_token_endpoint_down_is_retried() {
    let fcm = MockFcm::start().await;
    let (config, _keys) = push_config(None, Some(&fcm));
    // Point the key file's token_uri at a closed port.
    let sa_path = config.fcm_service_account_file.clone().unwrap();
    let mut sa: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sa_path).unwrap()).unwrap();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sa["token_uri"] = json!(format!("http://{}/token", closed.local_addr().unwrap()));
    drop(closed);
    std::fs::write(&sa_path, sa.to_string()).unwrap();
    let sender = build_gateway(&config).unwrap().fcm.unwrap();
    let f = fixture(Platform::Android, "tok", None);
    assert!(matches!(
        send(&sender, &f, PushKind::Challenge).await,
        PushResult::Retry {
            http_status: None,
            ..
        }
    ));
    assert!(fcm.requests().is_empty());
}

#[tokio::test]
async fn start_up_refuses_bad_files_and_partial_settings() {
    let fcm = MockFcm::start().await;
    let (production, sandbox) = apns_pair().await;
    let (config, keys) = push_config(Some((&production, &sandbox)), Some(&fcm));
    let g = build_gateway(&config).unwrap();
    assert!(g.apns.is_some() && g.fcm.is_some());

    let e = build_gateway(&PushConfig {
        apns_team_id: None,
        ..config.clone()
    })
    .unwrap_err();
    assert!(e.contains("push.apns_team_id"), "{e}");
    let not_a_key = keys.dir.path().join("bad.p8");
    std::fs::write(&not_a_key, "hello").unwrap();
    let e = build_gateway(&PushConfig {
        apns_key_file: Some(not_a_key.clone()),
        ..config.clone()
    })
    .unwrap_err();
    assert!(
        e.contains("push.apns_key_file") && e.contains("bad.p8"),
        "{e}"
    );
    // The RSA service-account key is no APNs key.
    let rsa = keys.dir.path().join("rsa.p8");
    std::fs::write(
        &rsa,
        std::fs::read_to_string(format!(
            "{}/tests/push/fixtures/test-only-fcm-service-account-key.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(
        build_gateway(&PushConfig {
            apns_key_file: Some(rsa),
            ..config.clone()
        })
        .unwrap_err()
        .contains("push.apns_key_file")
    );
    let e = build_gateway(&PushConfig {
        fcm_service_account_file: Some(not_a_key),
        ..config.clone()
    })
    .unwrap_err();
    assert!(e.contains("push.fcm_service_account_file"), "{e}");
    let e = build_gateway(&PushConfig {
        fcm_service_account_file: Some(keys.dir.path().join("missing.json")),
        ..config.clone()
    })
    .unwrap_err();
    assert!(e.contains("cannot read"), "{e}");
    // The APNs key is no service-account key.
    let sa = keys.dir.path().join("ec-sa.json");
    std::fs::write(&sa, json!({"type": "service_account", "project_id": "p", "private_key": production.p8, "client_email": "a@b"}).to_string()).unwrap();
    let e = build_gateway(&PushConfig {
        fcm_service_account_file: Some(sa),
        ..config
    })
    .unwrap_err();
    assert!(e.contains("RSA"), "{e}");
    // Nothing above sent anything.
    eventually("no traffic", || {
        production.requests().is_empty() && fcm.token_requests() == 0
    })
    .await;
}
