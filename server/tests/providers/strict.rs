//! Strict parsing on a processor endpoint (issue 15 §6), with Enfuce's webhook: a
//! JSON array where the body object is expected, trailing bytes after the object,
//! invalid UTF-8 or a lone surrogate inside a field the connector ignores. Each is
//! refused in Enfuce's own error shape and nothing is stored; the same body made
//! valid is accepted.

use pushauth_core::ids::Provider;
use pushauth_server::providers::config::EnfuceConfig;
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_nothing_stored, credentials, fixture, new_ref, spawn};
use crate::mock::Mock;

const PREFIX: &str = "/enfuce";
const CUSTOMER: &str = "940102053";

async fn strict_webhook_bodies(backend: Backend) {
    let mock = Mock::start(|_, _| true).await;
    let c = credentials();
    let config: EnfuceConfig = serde_json::from_value(json!({
        "path_prefix": PREFIX,
        "webhook_user": c["enfuce_user"],
        "webhook_password": c["enfuce_password"],
        "callback_hosts": ["127.0.0.1"],
        "allow_http_callbacks": true,
        "callback_user": "pushauth",
        "callback_password": "callback-password-0123",
    }))
    .unwrap();
    let app = spawn(backend, |c| c.providers.enfuce = Some(config)).await;
    app.cardholder_with_device("enfuce", CUSTOMER).await;
    let example: Value = fixture(include_str!("fixtures/enfuce-webhook.json"));
    let auth = example["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    let original = "https://id.enfuce.example/v1/callback/kitbank/940102053/4914f82b-c0cb-4b3d-a390-67e7831f8908";
    let send = |session: String, body: Vec<u8>| {
        let (app, auth) = (&app, auth.clone());
        async move {
            app.post(
                &format!("{PREFIX}/v1/authenticate/{CUSTOMER}/{session}"),
                &[
                    ("Content-Type", "application/json".to_owned()),
                    ("Authorization", auth),
                ],
                body,
            )
            .await
        }
    };
    let good = |session: &str| {
        example["body"].as_str().unwrap().replace(
            original,
            &format!("{}/v1/callback/kitbank/{CUSTOMER}/{session}", mock.url()),
        )
    };
    let with_field = |session: &str, raw: &[u8]| {
        let body = good(session);
        let mut out = body.as_bytes()[..body.len() - 1].to_vec();
        out.extend_from_slice(b",\"ignoredByUs\":\"");
        out.extend_from_slice(raw);
        out.extend_from_slice(b"\"}");
        out
    };
    let session = new_ref();
    let callback = format!("{}/v1/callback/kitbank/{CUSTOMER}/{session}", mock.url());
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("array", serde_json::to_vec(&json!([callback])).unwrap()),
        (
            "two objects",
            format!("{}{}", good(&session), good(&session)).into_bytes(),
        ),
        (
            "trailing garbage",
            format!("{} x", good(&session)).into_bytes(),
        ),
        ("invalid UTF-8", with_field(&session, &[0xff, 0xfe, 0x41])),
        ("lone surrogate", with_field(&session, b"\\ud800")),
        (
            "nested array",
            good(&session)
                .replace("{\"amount\":49.90,\"currency\":\"EUR\"}", "[49.90,\"EUR\"]")
                .into_bytes(),
        ),
    ];
    for (what, body) in refused {
        let a = send(session.clone(), body).await;
        assert_eq!(a.status, 400, "{what}: {}", a.text);
        let v = a.json();
        assert_eq!(v["errorType"], "STATIC_VALIDATION_ERROR", "{what}: {v}");
        assert_nothing_stored(&app, Provider::Enfuce, &session).await;
    }
    // the same body, valid, is accepted
    let a = send(
        session.clone(),
        with_field(&session, "ok \\ud83d\\ude00".as_bytes()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(app.find(Provider::Enfuce, &session).await.is_some());
}

on_both_backends!(strict_webhook_bodies);
