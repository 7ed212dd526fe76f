//! Treezor to the letter (issues 15 §5 and 16): the SCA proof's source, the signed
//! payload (not the unsigned envelope) deciding create vs update and their order,
//! card identifiers matched per kind, and the richer signed display.

use std::time::Duration;

use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use serde_json::json;

use crate::helpers::{Backend, assert_nothing_stored, new_ref};
use crate::treezor::{
    CARD_ID, PUBLIC_TOKEN, create_body, resign, setup, setup_full, treezor_now, webhook,
};

on_both_backends!(
    sdk_proof_passed_through_when_configured,
    card_identifiers_match_their_own_kind,
    payload_decides_create_or_update,
    updates_ordered_by_signed_time,
    merchant_country_and_url_are_signed
);

const SDK_PROOF: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzY2EiOiJ0cmVlem9yIn0.c2lnbmF0dXJl";

async fn sdk_proof_passed_through_when_configured(backend: Backend) {
    let env = setup_full(
        backend,
        CARD_ID,
        None,
        json!({"signature_source": "processor_output"}),
    )
    .await;
    let id = env.challenge(&new_ref()).await;
    let (s, v, _) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["reason"], "processor_output_required", "{v}");
    assert_eq!(env.app.view(&id).await["challenge"]["status"], "pending");
    let (s, v, _) = env
        .device
        .decide(&id, Decision::Approve, Some(SDK_PROOF))
        .await;
    assert_eq!(s, 200, "{v}");
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(
        calls[0].json(),
        json!({"authenticationResult": "OK", "authenticationSignature": SDK_PROOF})
    );
}

async fn card_identifiers_match_their_own_kind(backend: Backend) {
    // Another card whose publicToken happens to equal our card's cardId.
    let other_card = |auth_id: &str| {
        resign(
            &create_body(auth_id)
                .replace(&format!("\"cardId\":\"{CARD_ID}\""), "\"cardId\":\"111\"")
                .replace(PUBLIC_TOKEN, CARD_ID),
        )
    };
    // Linked by cardId (a bare key, as before kinds existed): the other card's
    // publicToken must not match it.
    let env = setup(backend).await;
    let auth_id = new_ref();
    let body = other_card(&auth_id);
    assert!(body.contains(&format!("\"publicToken\":\"{CARD_ID}\"")));
    assert_eq!(env.post(&body, "text/plain").await.status, 200);
    assert_nothing_stored(&env.app, Provider::Treezor, &auth_id).await;
    // Linked as `publicToken:<value>`: it matches that publicToken, never a cardId.
    let env = setup_full(backend, &format!("publicToken:{CARD_ID}"), None, json!({})).await;
    let auth_id = new_ref();
    assert_eq!(
        env.post(&create_body(&auth_id), "text/plain").await.status,
        200
    );
    assert_nothing_stored(&env.app, Provider::Treezor, &auth_id).await;
    let auth_id = new_ref();
    assert_eq!(
        env.post(&other_card(&auth_id), "text/plain").await.status,
        200
    );
    assert!(env.app.find(Provider::Treezor, &auth_id).await.is_some());
}

async fn payload_decides_create_or_update(backend: Backend) {
    let env = setup(backend).await;
    // A signed authentication request under an envelope that calls it an update is
    // still an authentication request.
    let auth_id = new_ref();
    let body = webhook(
        "card3DSv2Authentication.update",
        &auth_id,
        &new_ref(),
        treezor_now(),
        None,
    );
    assert_eq!(env.post(&body, "text/plain").await.status, 200);
    let id = env
        .app
        .find(Provider::Treezor, &auth_id)
        .await
        .expect("created from the signed payload")
        .id
        .to_string();
    // A signed final status under an envelope that calls it a create is a final status.
    let body = webhook(
        "card3DSv2Authentication.create",
        &auth_id,
        &new_ref(),
        treezor_now(),
        Some("SUCCESS"),
    );
    assert_eq!(env.post(&body, "text/plain").await.status, 200);
    let fs = env.app.view(&id).await["challenge"]["final_status"].clone();
    assert_eq!(fs["authentication_final_result"], "SUCCESS", "{fs:#}");
    assert_eq!(env.app.count("treezor").await, 1);
}

/// An update whose signed payload carries `modifiedDate`.
fn update_at(auth_id: &str, emitted: u64, modified: &str, result: &str) -> String {
    let body = webhook(
        "card3DSv2Authentication.update",
        auth_id,
        &new_ref(),
        emitted,
        Some(result),
    );
    resign(&body.replace(
        "\"authenticationMethod\":\"OOB\"",
        &format!("\"authenticationMethod\":\"OOB\",\"modifiedDate\":\"{modified}\""),
    ))
}

async fn updates_ordered_by_signed_time(backend: Backend) {
    let env = setup(backend).await;
    let auth_id = new_ref();
    let id = env.challenge(&auth_id).await;
    let t = treezor_now();
    // The envelope times (unsigned) say the TIMEOUT is newer; the signed times say the
    // SUCCESS is: the signed time decides.
    let late_signed = update_at(&auth_id, t, "2026-11-18T11:08:00Z", "SUCCESS");
    let early_signed = update_at(&auth_id, t + 50_000, "2026-11-18T11:07:00Z", "TIMEOUT");
    assert_eq!(env.post(&early_signed, "text/plain").await.status, 200);
    assert_eq!(env.post(&late_signed, "text/plain").await.status, 200);
    let fs = env.app.view(&id).await["challenge"]["final_status"].clone();
    assert_eq!(fs["authentication_final_result"], "SUCCESS", "{fs:#}");
    // Replaying the older one changes nothing.
    assert_eq!(env.post(&early_signed, "text/plain").await.status, 200);
    let fs = env.app.view(&id).await["challenge"]["final_status"].clone();
    assert_eq!(fs["authentication_final_result"], "SUCCESS", "{fs:#}");
}

async fn merchant_country_and_url_are_signed(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref()).await;
    let c = env.device.challenge(&id).await;
    let d = c.claims().txn.details();
    assert_eq!(d.merchant_country.as_ref().unwrap().as_str(), "CH");
    assert_eq!(
        d.merchant_url.as_ref().unwrap().as_str(),
        "https://shop.example/pay/628154"
    );
    let (s, v, _) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 200, "{v}");
}
