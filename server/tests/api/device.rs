use pushauth_core::UnixTime;
use pushauth_core::key_statement;
use pushauth_core::keys::{KeyUse, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::request::{self, HttpRequest};
use serde_json::json;

use crate::helpers::{TestApp, TestDevice, now};
use crate::on_both_backends;

async fn enrollment_is_single_use(app: TestApp) {
    let ch = app.create_cardholder().await;
    let code = app.activation_code(&ch).await;
    let d = TestDevice::enroll(&app, &code).await;
    assert_eq!(d.issuer, app.base);
    let again = TestDevice::try_enroll(&app, &code, SoftwareSigningKey::generate().unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(
        (again.status, again.body["reason"].as_str()),
        (409, Some("activation_code_used"))
    );
    // lower case and spaces are fine, an unknown code is not
    let code2 = app.activation_code(&ch).await;
    TestDevice::enroll(&app, &code2.to_lowercase().replace('-', " ")).await;
    let unknown = TestDevice::try_enroll(
        &app,
        "0000-0000-0000-0000-0000",
        SoftwareSigningKey::generate().unwrap(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        (unknown.status, unknown.body["reason"].as_str()),
        (400, Some("invalid_activation_code"))
    );
    let (_, detail) = app
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/cardholders/{ch}/devices"),
            None,
        )
        .await;
    assert_eq!(detail["devices"].as_array().unwrap().len(), 2);
}

async fn enrollment_needs_proof_of_possession(app: TestApp) {
    let ch = app.create_cardholder().await;
    let code = app.activation_code(&ch).await;
    let key = SoftwareSigningKey::generate().unwrap();
    let other = SoftwareSigningKey::generate().unwrap();
    let approval = SoftwareSigningKey::generate().unwrap();
    let agreement = SoftwareAgreementKey::generate().unwrap();
    // body names one key, the proof is signed by another
    let body = TestDevice::enroll_body(&code, &key, &approval, &agreement, &app.base);
    let path = "/v1/device/enroll";
    let proof = request::sign_enrollment(
        &other,
        &app.base,
        HttpRequest {
            method: "POST",
            path,
            body: &body,
        },
        UnixTime(now()),
    )
    .unwrap();
    let r = app
        .http
        .post(app.url(path))
        .header("Authorization", format!("PushAuth {proof}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "key_mismatch"
    );
    // proof for another body
    let proof = request::sign_enrollment(
        &key,
        &app.base,
        HttpRequest {
            method: "POST",
            path,
            body: b"{}",
        },
        UnixTime(now()),
    )
    .unwrap();
    let r = app
        .http
        .post(app.url(path))
        .header("Authorization", format!("PushAuth {proof}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "body_hash_mismatch"
    );
    // no proof at all
    let r = app
        .http
        .post(app.url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // the code was not consumed by the refused attempts
    TestDevice::enroll(&app, &code).await;
}

async fn request_proofs_are_one_time(app: TestApp) {
    let (_ch, d) = app.cardholder_with_device().await;
    let proof = d.proof("GET", "/v1/device/challenges", b"");
    assert_eq!(
        d.send_with("GET", "/v1/device/challenges", Vec::new(), &proof)
            .await
            .status,
        200
    );
    let replay = d
        .send_with("GET", "/v1/device/challenges", Vec::new(), &proof)
        .await;
    assert_eq!(
        (replay.status, replay.body["reason"].as_str()),
        (401, Some("replayed_request"))
    );
    // a proof for one path does not open another
    let p = d.proof("GET", "/v1/device/challenges", b"");
    let other = d
        .send_with("GET", "/v1/device/challenges?x=1", Vec::new(), &p)
        .await;
    assert_eq!(
        (other.status, other.body["reason"].as_str()),
        (401, Some("wrong_path"))
    );
    // a proof for GET does not authorise a DELETE of the same path
    let p = d.proof("GET", "/v1/device", b"");
    let other = d.send_with("DELETE", "/v1/device", Vec::new(), &p).await;
    assert_eq!(
        (other.status, other.body["reason"].as_str()),
        (401, Some("wrong_method"))
    );
    // a body swapped under a valid proof
    let body = serde_json::to_vec(&json!({"push_token": "abc"})).unwrap();
    let p = d.proof("PUT", "/v1/device/push-token", &body);
    let swapped = d
        .send_with(
            "PUT",
            "/v1/device/push-token",
            serde_json::to_vec(&json!({"push_token": "evil"})).unwrap(),
            &p,
        )
        .await;
    assert_eq!(
        (swapped.status, swapped.body["reason"].as_str()),
        (401, Some("body_hash_mismatch"))
    );
    // a proof signed by another key for this device id
    let impostor = TestDevice {
        key: SoftwareSigningKey::generate().unwrap(),
        ..d
    };
    let a = impostor.call("GET", "/v1/device/challenges", None).await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (401, Some("bad_signature"))
    );
}

async fn push_token_rotation_unenroll(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    assert_eq!(
        d.call(
            "PUT",
            "/v1/device/push-token",
            Some(json!({"push_token": "abcdef0123456789"}))
        )
        .await
        .status,
        204
    );
    let bad = d
        .call(
            "PUT",
            "/v1/device/push-token",
            Some(json!({"push_token": "has space"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    // rotate the device key: the current device key signs the request, the new key
    // the statement (protocol v2 §6.3)
    let new_key = SoftwareSigningKey::generate().unwrap();
    let claims = key_statement::rotation_claims(
        &d.id,
        KeyUse::Device,
        &d.key.public(),
        &d.issuer,
        UnixTime(now()),
    );
    let statement = key_statement::sign_statement(&claims, &new_key).unwrap();
    let a = d
        .call(
            "POST",
            "/v1/device/key",
            Some(json!({"use": "device", "statement": statement})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["kid"], new_key.public().thumbprint());
    // the old key no longer works, the new one does
    assert_eq!(
        d.call("GET", "/v1/device/challenges", None).await.status,
        401
    );
    let d = TestDevice { key: new_key, ..d };
    assert_eq!(
        d.call("GET", "/v1/device/challenges", None).await.status,
        200
    );
    // a rotation statement that names another current key is refused
    let rogue = SoftwareSigningKey::generate().unwrap();
    let other_old = SoftwareSigningKey::generate().unwrap();
    let bad = key_statement::sign_statement(
        &key_statement::rotation_claims(
            &d.id,
            KeyUse::Device,
            &other_old.public(),
            &d.issuer,
            UnixTime(now()),
        ),
        &rogue,
    )
    .unwrap();
    let a = d
        .call(
            "POST",
            "/v1/device/key",
            Some(json!({"use": "device", "statement": bad})),
        )
        .await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (422, Some("old_key_mismatch"))
    );
    assert_eq!(d.call("DELETE", "/v1/device", None).await.status, 204);
    assert_eq!(
        d.call("GET", "/v1/device/challenges", None).await.status,
        401
    );
    let (_, devices) = app
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/cardholders/{ch}/devices"),
            None,
        )
        .await;
    assert_eq!(devices["devices"][0]["status"], "revoked");
}

async fn other_cardholders_challenges_are_invisible(app: TestApp) {
    let (ch_a, _a) = app.cardholder_with_device().await;
    let (_ch_b, b) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch_a, "a-1").await;
    let get = b
        .call("GET", &format!("/v1/device/challenges/{id}"), None)
        .await;
    assert_eq!(get.status, 404);
    let post = b.post_proof(&id, "x.y.z").await;
    assert_eq!(post.status, 404);
    assert!(
        b.call("GET", "/v1/device/challenges", None).await.body["challenges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let unknown = b
        .call(
            "GET",
            "/v1/device/challenges/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn pending_list_and_stream(app: TestApp) {
    let (ch, d) = app.cardholder_with_device().await;
    let first = app.new_challenge(&ch, "s-1").await;
    let pending = d.call("GET", "/v1/device/challenges", None).await;
    let items = pending.body["challenges"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], first.as_str());
    // the stream sends the pending one at once, then a new one as it appears
    let path = "/v1/device/stream";
    let proof = d.proof("GET", path, b"");
    let mut resp = app
        .http
        .get(app.url(path))
        .header("Authorization", format!("PushAuth {proof}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    let second = {
        let read = async {
            while !seen.contains(&first) {
                seen.push_str(&String::from_utf8_lossy(
                    &resp.chunk().await.unwrap().unwrap(),
                ));
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("first event");
        app.new_challenge(&ch, "s-2").await
    };
    let read = async {
        while !seen.contains(&second) {
            seen.push_str(&String::from_utf8_lossy(
                &resp.chunk().await.unwrap().unwrap(),
            ));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), read)
        .await
        .expect("second event");
    assert!(seen.contains("event: challenge"));
}

on_both_backends!(
    enrollment_is_single_use,
    enrollment_needs_proof_of_possession,
    request_proofs_are_one_time,
    push_token_rotation_unenroll,
    other_cardholders_challenges_are_invisible,
    pending_list_and_stream,
);
