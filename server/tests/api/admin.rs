use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, TestApp};
use crate::on_both_backends;

async fn admin_auth_is_required(app: TestApp) {
    for auth in [
        None,
        Some("Bearer wrong-key-wrong-key"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = app.http.get(app.url("/v1/admin/cardholders"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let ok = app
        .http
        .get(app.url("/v1/admin/cardholders"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let m = app.metrics().await;
    assert!(
        m.contains(r#"surface="admin",reason="bad_credentials""#),
        "{m}"
    );
}

async fn cardholders_and_links(app: TestApp) {
    let (s, c) = app
        .admin(
            Method::POST,
            "/v1/admin/cardholders",
            Some(json!({"external_ref": "cust-1"})),
        )
        .await;
    assert_eq!(s, 201);
    let id = c["id"].as_str().unwrap();
    let (s, v) = app
        .admin(
            Method::POST,
            "/v1/admin/cardholders",
            Some(json!({"external_ref": "cust-1"})),
        )
        .await;
    assert_eq!((s, v["reason"].as_str()), (409, Some("external_ref_taken")));
    let (s, link) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{id}/links"),
            Some(json!({"provider": "enfuce", "provider_key": "392492402"})),
        )
        .await;
    assert_eq!(s, 201, "{link}");
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{id}/links"),
            Some(json!({"provider": "enfuce", "provider_key": "392492402"})),
        )
        .await;
    assert_eq!((s, v["reason"].as_str()), (409, Some("link_exists")));
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{id}/links"),
            Some(json!({"provider": "visa", "provider_key": "x"})),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("invalid_field")),
        "{v}"
    );
    assert!(v["detail"].as_str().unwrap().contains("provider"), "{v}");
    let (s, detail) = app
        .admin(Method::GET, &format!("/v1/admin/cardholders/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(detail["links"].as_array().unwrap().len(), 1);
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/links/{}", link["id"]),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/links/{}", link["id"]),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .admin(
            Method::GET,
            "/v1/admin/cardholders/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .admin(Method::GET, "/v1/admin/cardholders/not-an-id", None)
        .await;
    assert_eq!(s, 404);
}

async fn malformed_and_oversize_bodies(app: TestApp) {
    let resp = app
        .http
        .post(app.url("/v1/admin/cardholders"))
        .bearer_auth(ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body("{\"label\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "malformed_json");
    let big = format!("{{\"label\": \"{}\"}}", "x".repeat(70 * 1024));
    let resp = app
        .http
        .post(app.url("/v1/admin/cardholders"))
        .bearer_auth(ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (s, list) = app.admin(Method::GET, "/v1/admin/cardholders", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        list["cardholders"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
}

async fn generic_challenge_validation(app: TestApp) {
    let ch = app.create_cardholder().await;
    // no device yet
    let (s, v) = app.challenge(&ch, "ref-0", json!({})).await;
    assert_eq!((s, v["reason"].as_str()), (422, Some("no_active_device")));
    let (_ch, _d) = (
        ch.clone(),
        crate::helpers::TestDevice::enroll(&app, &app.activation_code(&ch).await).await,
    );
    for (extra, field) in [
        (
            json!({"amount": {"minor": -1, "currency": "EUR"}}),
            "amount",
        ),
        (
            json!({"amount": {"minor": 100, "currency": "eur"}}),
            "amount",
        ),
        (
            json!({"amount": {"minor": 100, "currency": "XXX"}}),
            "amount",
        ),
        (json!({"payee": ""}), "payee"),
        (json!({"reference": "has space"}), "reference"),
        (json!({"ttl_secs": 0}), "ttl_secs"),
        (json!({"kind": "refund"}), "kind"),
        (
            json!({"callback_url": "https://evil.example/cb"}),
            "callback_url",
        ),
    ] {
        let (s, v) = app.challenge(&ch, "ref-1", extra.clone()).await;
        assert_eq!(s, 400, "{extra} → {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(field),
            "{extra} → {v}"
        );
    }
    let (s, list) = app.admin(Method::GET, "/v1/admin/challenges", None).await;
    assert_eq!(s, 200);
    assert!(
        list["challenges"].as_array().unwrap().is_empty(),
        "nothing stored: {list}"
    );
    // duplicate reference: same challenge, 200, nothing new
    let (s1, v1) = app.challenge(&ch, "ref-2", json!({})).await;
    let (s2, v2) = app.challenge(&ch, "ref-2", json!({"payee": "Other"})).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(v1["challenge"]["id"], v2["challenge"]["id"]);
    let (_, list) = app.admin(Method::GET, "/v1/admin/challenges", None).await;
    assert_eq!(list["challenges"].as_array().unwrap().len(), 1);
}

async fn fatigue_guard_and_blocked_cardholder(app: TestApp) {
    let (ch, _d) = app.cardholder_with_device().await;
    for i in 0..5 {
        app.new_challenge(&ch, &format!("r{i}")).await;
    }
    let (s, v) = app.challenge(&ch, "r5", json!({})).await;
    assert_eq!((s, v["reason"].as_str()), (429, Some("too_many_pending")));
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/v1/admin/cardholders/{ch}/block"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = app.challenge(&ch, "r6", json!({})).await;
    assert_eq!((s, v["reason"].as_str()), (403, Some("cardholder_blocked")));
}

on_both_backends!(
    admin_auth_is_required,
    cardholders_and_links,
    malformed_and_oversize_bodies,
    generic_challenge_validation,
    fatigue_guard_and_blocked_cardholder,
);
