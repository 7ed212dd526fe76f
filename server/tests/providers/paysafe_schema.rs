//! Paysafe to the letter (issue 16): the attempt body follows the published schema
//! (never `verification: {}`; the OTP value only when configured), and the flow type
//! and payment id reach the device inside the signed transaction.

use std::time::Duration;

use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use serde_json::json;

use crate::helpers::{Backend, assert_nothing_stored, new_ref};
use crate::paysafe::{OTP, assert_error, event, setup, setup_tweaked, sign};

on_both_backends!(
    flow_type_and_payment_id_are_signed,
    attempt_as_announced_with_value_when_configured,
    attempt_never_has_an_empty_verification,
    flow_type_is_required
);

async fn flow_type_and_payment_id_are_signed(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref(), 600).await;
    let c = env.device.challenge(&id).await;
    let d = c.claims().txn.details();
    assert_eq!(d.operation.as_ref().unwrap().as_str(), "TRANSFER");
    assert_eq!(d.operation_ref.as_ref().unwrap().as_str(), "2561271558");
    let canonical = c.claims().txn.canonical_json();
    assert!(
        canonical.contains("\"operation\":\"TRANSFER\",\"operation_ref\":\"2561271558\""),
        "{canonical}"
    );
    assert_eq!(c.claims().txn.summary(), "Approve TRANSFER");
    // The signed digest covers them: an approval verifies against the stored transaction.
    env.mock
        .script(&[(200, r#"{"id":"a1","status":"VERIFIED"}"#)]);
    let (s, v, _) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 200, "{v}");
    // A login and a withdrawal are told apart from a transfer.
    let event_id = new_ref();
    let body = event(&event_id, 600).replace("\"TRANSFER\"", "\"AUTHENTICATION\"");
    assert_eq!(env.send(&body).await.status, 200);
    let stored = env.app.find(Provider::Paysafe, &event_id).await.unwrap();
    assert_eq!(
        stored.transaction().details.operation.unwrap().as_str(),
        "AUTHENTICATION"
    );
}

async fn attempt_as_announced_with_value_when_configured(backend: Backend) {
    let env = setup_tweaked(
        backend,
        None,
        json!({"attempt_method": "announced", "attempt_channel": "announced", "attempt_send_value": true}),
    )
    .await;
    env.mock
        .script(&[(200, r#"{"id":"a1","status":"VERIFIED"}"#)]);
    let event_id = new_ref();
    let id = env.challenge(&event_id, 600).await;
    env.device.decide(&id, Decision::Approve, None).await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(
        calls[0].json(),
        json!({
            "walletOperationId": "7767a3c3-c461-41ed-99d2-010861f3cee4",
            "verification": {"method": "OTP", "channel": "PUSH_NOTIFICATION"},
            "value": OTP,
        })
    );
}

async fn attempt_never_has_an_empty_verification(backend: Backend) {
    // The event announces no verification and the method is "announced": there is no
    // method to name, so no attempt is sent (rather than `verification: {}`).
    let env = setup_tweaked(backend, None, json!({"attempt_method": "announced"})).await;
    let event_id = new_ref();
    let body = event(&event_id, 600);
    let start = body.find("\"verification\"").unwrap();
    let end = start + body[start..].find('}').unwrap() + 1;
    let without = format!("{}{}", &body[..start], &body[end..].trim_start_matches(','));
    let a = env.send(&without).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = env
        .app
        .find(Provider::Paysafe, &event_id)
        .await
        .unwrap()
        .id
        .to_string();
    env.device.decide(&id, Decision::Approve, None).await;
    let view = env
        .app
        .wait_upstream(&id, "failed", Duration::from_secs(10))
        .await;
    assert!(env.mock.calls().is_empty(), "{view:#}");
    // The default names our method, whatever the event announced.
    let env = setup(backend).await;
    env.mock
        .script(&[(200, r#"{"id":"a1","status":"VERIFIED"}"#)]);
    let event_id = new_ref();
    let body = event(&event_id, 600);
    let start = body.find("\"verification\"").unwrap();
    let end = start + body[start..].find('}').unwrap() + 1;
    let without = format!("{}{}", &body[..start], &body[end..].trim_start_matches(','));
    assert_eq!(env.send(&without).await.status, 200);
    let id = env
        .app
        .find(Provider::Paysafe, &event_id)
        .await
        .unwrap()
        .id
        .to_string();
    env.device.decide(&id, Decision::Approve, None).await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(
        calls[0].json()["verification"],
        json!({"method": "BIOMETRIC", "channel": "PUSH_NOTIFICATION"})
    );
}

async fn flow_type_is_required(backend: Backend) {
    let env = setup(backend).await;
    let event_id = new_ref();
    let body = event(&event_id, 600).replace("\"type\": \"TRANSFER\",", "");
    assert!(!body.contains("TRANSFER"));
    let a = env.send(&body).await;
    assert_error(&a, 400, "INVALID_REQUEST");
    assert_nothing_stored(&env.app, Provider::Paysafe, &event_id).await;
    let _ = sign;
}
