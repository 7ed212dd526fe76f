//! Authorisation at the moment of commit (issue 15 §3): blocking a cardholder cancels
//! their pending challenges with the processor's result, a decision racing with the
//! block never lands on a cancelled challenge, a blocked cardholder gets no new device
//! (enrollment, migration, activation codes), and a locked device gets no challenges
//! (the event stream ends for a device that was revoked or locked, the challenge
//! reads answer 423).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::decisions::{Callback, callback_server, wait_upstream};
use crate::device_keys::{assert_reason, grant};
use crate::helpers::{TestApp, TestDevice, now};
use crate::on_both_backends;

async fn detail(app: &TestApp, id: &str) -> Value {
    let (s, v) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn actions(v: &Value) -> Vec<String> {
    v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn block_cancels_pending_challenges(app: TestApp) {
    let cb = Callback::default();
    let url = callback_server(cb.clone()).await;
    let (ch, d) = app.cardholder_with_device().await;
    let (s, v) = app
        .challenge(&ch, "blk-1", json!({"callback_url": url}))
        .await;
    assert_eq!(s, 201, "{v}");
    let with_callback = v["challenge"]["id"].as_str().unwrap().to_owned();
    let plain = app.new_challenge(&ch, "blk-2").await;
    let c = d.challenge(&plain).await;

    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/block"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    for id in [&with_callback, &plain] {
        let v = detail(&app, id).await;
        assert_eq!(v["challenge"]["status"], "cancelled", "{v}");
        // the cancellation is recorded with the block; the callback's delivery
        // (`outbox.upstream.done`) may already follow it
        let a = actions(&v);
        assert_eq!(
            a[..2],
            ["challenge.created", "challenge.cancelled"],
            "{a:?}"
        );
        assert!(a[2..].iter().all(|x| x == "outbox.upstream.done"), "{a:?}");
    }
    // the issuer's callback hears the negative result
    wait_upstream(&app, &with_callback, "delivered").await;
    assert_eq!(
        cb.seen.lock().unwrap()[0].1["outcome"]["outcome"],
        "cancelled"
    );
    // a proof signed before the block finds the challenge closed
    let proof = d.sign_decision(&c, pushauth_core::proof::Decision::Approve, None);
    let a = d.post_proof(&plain, &proof).await;
    assert_eq!(
        (a.status, a.body["challenge_status"].as_str()),
        (409, Some("cancelled")),
        "{}",
        a.body
    );
    assert!(
        d.call("GET", "/v1/device/challenges", None).await.body["challenges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // no new challenge while blocked
    let (s, _) = app.challenge(&ch, "blk-3", json!({})).await;
    assert_ne!(s, 201);
    // unblocking does not revive the cancelled ones
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/unblock"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        detail(&app, &plain).await["challenge"]["status"],
        "cancelled"
    );
    let (s, v) = app
        .admin(
            Method::POST,
            "/v1/admin/cardholders/00000000-0000-4000-8000-000000000000/block",
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
}

/// An approval and a block sent at the same moment: exactly one of them closes the
/// challenge, whatever the order they commit in.
async fn approval_racing_block(app: TestApp) {
    for round in 0..6 {
        let (ch, d) = app.cardholder_with_device().await;
        let id = app.new_challenge(&ch, &format!("race-{round}")).await;
        let c = d.challenge(&id).await;
        let proof = d.sign_decision(&c, pushauth_core::proof::Decision::Approve, None);
        let path = format!("/v1/admin/cardholders/{ch}/block");
        let (answer, (blocked, _)) = tokio::join!(
            d.post_proof(&id, &proof),
            app.admin(Method::POST, &path, None)
        );
        assert_eq!(blocked, 204);
        let v = detail(&app, &id).await;
        match answer.status {
            200 => {
                assert_eq!(v["challenge"]["status"], "approved", "round {round}: {v}");
                assert_eq!(v["decision"]["decision"], "approve");
            }
            409 | 403 => {
                assert_eq!(v["challenge"]["status"], "cancelled", "round {round}: {v}");
                assert!(v["decision"].is_null(), "round {round}: {v}");
            }
            other => panic!("round {round}: {other} {}", answer.body),
        }
    }
}

async fn open_stream(app: &TestApp, d: &TestDevice) -> reqwest::Response {
    let path = "/v1/device/stream";
    let proof = d.proof("GET", path, b"");
    app.http
        .get(app.url(path))
        .header("Authorization", format!("PushAuth {proof}"))
        .send()
        .await
        .unwrap()
}

/// Reads the stream until it ends (true) or `wait` passes (false); what it sent.
async fn read_until_end(resp: &mut reqwest::Response, wait: Duration) -> (bool, String) {
    let mut seen = String::new();
    let read = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let ended = tokio::time::timeout(wait, read).await.is_ok();
    (ended, seen)
}

async fn stream_closes_for_revoked_or_locked_device(app: TestApp) {
    for action in ["revoke", "lock"] {
        let (ch, d) = app.cardholder_with_device().await;
        // a second, active device, so that challenges can still be created
        let _other = TestDevice::enroll(&app, &app.activation_code(&ch).await).await;
        let mut resp = open_stream(&app, &d).await;
        assert_eq!(resp.status(), 200);
        let s = app.device_action(d.id.as_str(), action).await;
        assert_eq!(s, 204, "{action}");
        // the next rescan (woken by a new challenge) sees the status and ends the stream
        let id = app.new_challenge(&ch, &format!("st-{action}")).await;
        let (ended, seen) = read_until_end(&mut resp, Duration::from_secs(15)).await;
        assert!(ended, "{action}: the stream must end");
        assert!(
            !seen.contains(&id),
            "{action}: no challenge after {action}: {seen}"
        );
    }
    // a locked device cannot open one
    let (_, d) = app.cardholder_with_device().await;
    app.device_action(d.id.as_str(), "lock").await;
    let resp = open_stream(&app, &d).await;
    assert_eq!(resp.status(), 423);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
}

async fn device_ids(app: &TestApp, ch: &str) -> Vec<String> {
    let (s, v) = app
        .admin(
            Method::GET,
            &format!("/v1/admin/cardholders/{ch}/devices"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A cardholder blocked over a suspected takeover gets no new device: the attacker's
/// enrolled phone gets no migration code, a code it got before the block and an
/// activation code issued before it do not enroll, and no activation code is issued
/// (each 403 `cardholder_blocked`, nothing written). After the unblock the same code
/// enrolls and the same grant is accepted: neither was used up by the refusal.
async fn blocked_cardholder_cannot_enroll_or_migrate(app: TestApp) {
    let (ch, phone) = app.cardholder_with_device().await;
    let code = app.activation_code(&ch).await;
    let t = now();
    let early = phone
        .call(
            "POST",
            "/v1/device/migration",
            Some(json!({"grant": grant(&phone, t, t + 300, &phone.approval)})),
        )
        .await;
    assert_eq!(early.status, 201, "{}", early.body);
    let early = early.body["code"].as_str().unwrap().to_owned();
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/block"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");

    let g = grant(&phone, t, t + 300, &phone.approval);
    let a = phone
        .call("POST", "/v1/device/migration", Some(json!({"grant": g})))
        .await;
    assert_reason(&a, 403, "cardholder_blocked");
    for c in [&code, &early] {
        let key = pushauth_core::keys::SoftwareSigningKey::generate().unwrap();
        match TestDevice::try_enroll(&app, c, key).await {
            Ok(d) => panic!("enrolled {} while blocked", d.id),
            Err(a) => assert_reason(&a, 403, "cardholder_blocked"),
        }
    }
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/activation-codes"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("cardholder_blocked")),
        "{v}"
    );
    assert_eq!(device_ids(&app, &ch).await, [phone.id.as_str()]);

    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/unblock"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let new = TestDevice::enroll(&app, &code).await;
    let a = phone
        .call("POST", "/v1/device/migration", Some(json!({"grant": g})))
        .await;
    assert_eq!(
        a.status, 201,
        "the refused grant was not used up: {}",
        a.body
    );
    let mut ids = device_ids(&app, &ch).await;
    ids.sort();
    let mut want = vec![phone.id.as_str().to_owned(), new.id.as_str().to_owned()];
    want.sort();
    assert_eq!(ids, want);
}

/// A device locked by refused proofs (`security.lock_after_failures`) gets 423
/// `device_locked` for the pending list and for a challenge, as for the stream; after
/// the unlock it reads them again.
async fn locked_device_gets_no_challenges(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "lock-1").await;
    let path = format!("/v1/device/challenges/{id}");
    assert_eq!(d.call("GET", &path, None).await.status, 200);
    let mut last = None;
    for _ in 0..5 {
        last = Some(d.post_proof(&id, "not.a.proof").await);
    }
    let last = last.unwrap();
    assert_eq!(
        (last.status, &last.body["locked"]),
        (422, &Value::Bool(true)),
        "{}",
        last.body
    );
    for p in ["/v1/device/challenges", path.as_str()] {
        let a = d.call("GET", p, None).await;
        assert_reason(&a, 423, "device_locked");
        assert!(a.body.get("token").is_none() && a.body.get("challenges").is_none());
    }
    let s = app.device_action(d.id.as_str(), "unlock").await;
    assert_eq!(s, 204);
    let a = d.call("GET", "/v1/device/challenges", None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["challenges"][0]["id"], id.as_str());
    assert_eq!(d.call("GET", &path, None).await.status, 200);
}

on_both_backends!(
    block_cancels_pending_challenges,
    approval_racing_block,
    stream_closes_for_revoked_or_locked_device,
    blocked_cardholder_cannot_enroll_or_migrate,
    locked_device_gets_no_challenges,
);
