//! Admin keys and server keys (issue 15 §4, §5): scoped keys created, listed and
//! revoked through the API, a revoked key refused at once by every instance, the
//! configured key replacing the previous one at start-up, the signing key wrapped by a
//! key-encryption key and rotated without breaking enrolled devices, private file
//! modes, and the ops listener.

use pushauth_server::{Config, Server};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, TestDevice};
use crate::on_both_backends;

async fn call(
    app: &TestApp,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A second instance on the same database (or the same instance restarted).
async fn second_instance(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> Result<Server, String> {
    let mut config = app.server.state.config.clone();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    // instances of one deployment share the issuer (devices pin it)
    config.server.issuer = Some(app.server.state.issuer.clone());
    tweak(&mut config);
    Server::start_with_store(config, app.server.state.store.clone())
        .await
        .map_err(|e| e.to_string())
}

async fn admin_keys_scoped_and_revoked_everywhere(app: TestApp) {
    let base = app.base.clone();
    let (s, v) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::POST,
        "/v1/admin/admin-keys",
        Some(json!({"name": "auditor", "scope": "read"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let read_key = v["key"].as_str().unwrap().to_owned();
    let read_id = v["id"].as_i64().unwrap();
    assert_eq!(v["scope"], "read");
    let (s, v) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::POST,
        "/v1/admin/admin-keys",
        Some(json!({"name": "backoffice"})),
    )
    .await;
    assert_eq!((s, v["scope"].as_str()), (201, Some("full")), "{v}");
    let full_key = v["key"].as_str().unwrap().to_owned();
    let full_id = v["id"].as_i64().unwrap();
    let (s, v) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::POST,
        "/v1/admin/admin-keys",
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // listing shows names and scopes, never keys or hashes
    let (s, v) = call(
        &app,
        &base,
        &read_key,
        Method::GET,
        "/v1/admin/admin-keys",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let text = v.to_string();
    assert!(
        !text.contains(&read_key) && !text.contains("key_hash"),
        "{text}"
    );
    let names: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["configured", "auditor", "backoffice"]);

    // a read-only key reads but cannot change anything
    let (s, _) = call(
        &app,
        &base,
        &read_key,
        Method::GET,
        "/v1/admin/cardholders",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &app,
        &base,
        &read_key,
        Method::POST,
        "/v1/admin/cardholders",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("insufficient_scope")),
        "{v}"
    );
    let (s, _) = call(
        &app,
        &base,
        &read_key,
        Method::POST,
        &format!("/v1/admin/admin-keys/{full_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        &base,
        &full_key,
        Method::POST,
        "/v1/admin/cardholders",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201);

    // a second instance; revoking on the first is refused at once on both
    let other = second_instance(&app, |_| {}).await.unwrap();
    let other_base = format!("http://{}", other.addr);
    let (s, _) = call(
        &app,
        &other_base,
        &full_key,
        Method::GET,
        "/v1/admin/cardholders",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::POST,
        &format!("/v1/admin/admin-keys/{full_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    for b in [&base, &other_base] {
        let (s, v) = call(
            &app,
            b,
            &full_key,
            Method::GET,
            "/v1/admin/cardholders",
            None,
        )
        .await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (401, Some("bad_credentials")),
            "{v}"
        );
    }
    let (s, _) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::POST,
        &format!("/v1/admin/admin-keys/{full_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 404, "already revoked");
    let (s, v) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::GET,
        "/v1/admin/admin-keys",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let revoked: Vec<bool> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| !k["revoked_at"].is_null())
        .collect();
    assert_eq!(revoked, [false, false, true]);
    let _ = read_id;
    other.shutdown().await;

    // changing the configured key revokes the previous configured one at start-up
    let new_key = "another-configured-key-0123456789";
    let restarted = second_instance(&app, |c| c.security.admin_key = Some(new_key.into()))
        .await
        .unwrap();
    let (s, _) = call(
        &app,
        &base,
        ADMIN_KEY,
        Method::GET,
        "/v1/admin/cardholders",
        None,
    )
    .await;
    assert_eq!(s, 401, "the old configured key is revoked");
    let (s, _) = call(
        &app,
        &base,
        new_key,
        Method::GET,
        "/v1/admin/cardholders",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        &base,
        &read_key,
        Method::GET,
        "/v1/admin/cardholders",
        None,
    )
    .await;
    assert_eq!(s, 200, "created keys are not touched");
    restarted.shutdown().await;
    // going back to the revoked key fails the start instead of reviving it
    let back = second_instance(&app, |c| c.security.admin_key = Some(ADMIN_KEY.into())).await;
    assert!(back.unwrap_err().contains("revoked"));
}

fn device_on(d: &TestDevice, base: &str) -> TestDevice {
    TestDevice {
        key: pushauth_core::keys::SoftwareSigningKey::from_pkcs8(&d.key.to_pkcs8()).unwrap(),
        approval: pushauth_core::keys::SoftwareSigningKey::from_pkcs8(&d.approval.to_pkcs8())
            .unwrap(),
        agreement: pushauth_core::keys::SoftwareAgreementKey::from_bytes(&d.agreement.to_bytes())
            .unwrap(),
        id: d.id.clone(),
        issuer: d.issuer.clone(),
        server_key: d.server_key,
        base: base.to_owned(),
        http: d.http.clone(),
    }
}

async fn server_key_wrapped_and_rotated(app: TestApp) {
    let store = app.server.state.store.clone();
    let kek = pushauth_core::b64::encode([9u8; 32]);
    // before: stored in clear
    assert!(!store.server_key_list().await.unwrap()[0].wrapped);
    let (ch, old_device) = app.cardholder_with_device().await;
    let first_kid = app.server.state.server_kid.clone();

    // a start with a KEK wraps the stored key in place; same key
    let wrapped = second_instance(&app, |c| c.security.key_encryption_key = Some(kek.clone()))
        .await
        .unwrap();
    assert_eq!(wrapped.state.server_kid, first_kid);
    let ring = store.server_key_list().await.unwrap();
    assert!(ring[0].wrapped);
    let wrapped_base = format!("http://{}", wrapped.addr);
    assert!(!ring[0].pkcs8.windows(8).any(|w| {
        app.server
            .state
            .keyring
            .current()
            .active()
            .key
            .to_pkcs8()
            .windows(8)
            .any(|x| x == w)
    }));
    // (`wrapped` keeps running: below, an instance with the KEK that did not restart)
    // without the KEK, or with another, the start fails and says why
    let e = second_instance(&app, |_| {}).await.unwrap_err();
    assert!(e.contains("wrapped"), "{e}");
    let other = pushauth_core::b64::encode([8u8; 32]);
    let e = second_instance(&app, |c| c.security.key_encryption_key = Some(other))
        .await
        .unwrap_err();
    assert!(e.contains("does not open"), "{e}");

    // rotation: a new active key for new enrollments; the old device keeps working
    let kek_parsed = pushauth_server::keyring::Kek::parse(&kek).unwrap();
    let new_kid = pushauth_server::keyring::rotate(store.as_ref(), Some(&kek_parsed))
        .await
        .unwrap();
    assert_ne!(new_kid, first_kid);
    let rotated = second_instance(&app, |c| c.security.key_encryption_key = Some(kek.clone()))
        .await
        .unwrap();
    assert_eq!(rotated.state.server_kid, new_kid);
    let base = format!("http://{}", rotated.addr);
    let id = app.new_challenge(&ch, "rot-1").await;
    let old_on_new = device_on(&old_device, &base);
    let c = old_on_new.challenge(&id).await; // verifies with the key pinned at enrollment
    let proof = old_on_new.sign_decision(&c, pushauth_core::proof::Decision::Approve, None);
    assert_eq!(old_on_new.post_proof(&id, &proof).await.status, 200);
    // An instance that did not restart (with the KEK) enrolls with the new key: it
    // reloads its keyring when the store's active key changed.
    let probe_wrapped = TestApp {
        server: wrapped,
        base: wrapped_base.clone(),
        http: app.http.clone(),
        _dir: tempfile::tempdir().unwrap(),
        _schema: None,
    };
    let fresh = TestDevice::enroll(&probe_wrapped, &app.activation_code(&ch).await).await;
    assert_eq!(fresh.server_key.thumbprint(), new_kid);
    probe_wrapped.server.shutdown().await;
    // One that cannot open the new keys (no KEK) keeps enrolling with the key it holds;
    // the pinned kid is recorded, so the restarted instance, which finds keys by
    // enrollment time for older devices, signs this device's challenges with that key.
    let stale = TestDevice::enroll(&app, &app.activation_code(&ch).await).await;
    assert_eq!(stale.server_key.thumbprint(), first_kid);
    for (d, name) in [(&fresh, "fresh"), (&stale, "stale")] {
        let id = app.new_challenge(&ch, &format!("rot-{name}")).await;
        let on_new = device_on(d, &base);
        let c = on_new.challenge(&id).await; // verifies with its pinned key
        let proof = on_new.sign_decision(&c, pushauth_core::proof::Decision::Approve, None);
        assert_eq!(on_new.post_proof(&id, &proof).await.status, 200, "{name}");
    }
    let id = app.new_challenge(&ch, "rot-old").await;
    assert_eq!(
        old_device.approve(&id).await.status,
        200,
        "the old device still gets the old key"
    );
    // a device enrolled on the restarted instance pins the new key
    let code = app.activation_code(&ch).await;
    let new_app_device = {
        let probe = TestApp {
            server: rotated,
            base: base.clone(),
            http: app.http.clone(),
            _dir: tempfile::tempdir().unwrap(),
            _schema: None,
        };
        let d = TestDevice::enroll(&probe, &code).await;
        assert_eq!(d.server_key.thumbprint(), new_kid);
        let id = probe.new_challenge(&ch, "rot-2").await;
        assert_eq!(d.approve(&id).await.status, 200);
        probe.server.shutdown().await;
        d
    };
    drop(new_app_device);
    let ring = store.server_key_list().await.unwrap();
    assert_eq!(ring.len(), 2);
    assert!(ring[1].retired_at.is_some() && ring[0].retired_at.is_none());
}

#[tokio::test]
async fn private_data_dir_and_database() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.storage.data_dir = data.clone();
    let store = pushauth_server::open_store(&config).await.unwrap();
    store.migrate().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("pushauth.db")), 0o600);
}

async fn metrics_on_ops_listener(app: TestApp) {
    let ops = second_instance(&app, |c| {
        c.server.ops_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await
    .unwrap();
    let ops_addr = ops.ops_addr.unwrap();
    let m = app
        .http
        .get(format!("http://{ops_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.text().await.unwrap().contains("pushauth_"));
    let h = app
        .http
        .get(format!("http://{ops_addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    let nf = app
        .http
        .get(format!("http://{ops_addr}/v1/admin/cardholders"))
        .send()
        .await
        .unwrap();
    assert_eq!(nf.status(), 404, "only ops endpoints there");
    let main = app
        .http
        .get(format!("http://{}/metrics", ops.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404, "metrics leave the public listener");
    ops.shutdown().await;
}

on_both_backends!(
    admin_keys_scoped_and_revoked_everywhere,
    server_key_wrapped_and_rotated,
    metrics_on_ops_listener,
);
