//! Adyen to the letter (issue 16): Adyen's own minor units, `sdkInput` from either
//! header, `sdkOutput` required with an approval, Basic finalize auth, `purchase`
//! required, the purchase date signed, and the final status matched on what the two
//! webhooks share when their ids differ.

use std::time::Duration;

use pushauth_core::ids::Provider;
use pushauth_core::proof::Decision;
use serde_json::json;

use crate::adyen::{
    CREATED, Env, PI, RELAYED, SDK_OUTPUT, config, decision, hmac, relayed_body, setup, setup_with,
};
use crate::helpers::{Backend, assert_nothing_stored, basic, new_ref, spawn};
use crate::mock::Mock;

on_both_backends!(
    sdk_input_from_a_header_named_sdk_input,
    approval_without_sdk_output_is_refused,
    finalize_with_basic_auth,
    purchase_is_required,
    adyen_minor_units_are_converted,
    purchase_date_is_signed,
    final_status_matched_on_purchase_when_ids_differ,
    lookup_by_processor_reference
);

const BLOB: &str = "Ed/7NHSAcIK4kq43+JlcWowFNPagS8dSg60OE";

impl Env {
    /// A relayed webhook with the given extra headers (and no `WWW-Authenticate`).
    async fn relayed_with(&self, body: &str, extra: &[(&str, String)]) -> crate::helpers::Answer {
        let mut headers = vec![
            ("Content-Type", "application/json".to_owned()),
            ("Authorization", Env::auth()),
            ("HmacSignature", hmac(body)),
        ];
        headers.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        self.app.post(RELAYED, &headers, body.to_owned()).await
    }
}

async fn sdk_input_from_a_header_named_sdk_input(backend: Backend) {
    let env = setup(backend).await;
    for value in [
        format!("SCA realm=\"Challenge\" authparm1=\"{BLOB}\""),
        BLOB.to_owned(),
    ] {
        let reference = new_ref();
        let a = env
            .relayed_with(&relayed_body(&reference, PI), &[("sdkInput", value)])
            .await;
        assert_eq!(decision(&a), "proceed", "{}", a.text);
        let c = env.app.find(Provider::Adyen, &reference).await.unwrap();
        assert_eq!(c.processor_input.as_deref(), Some(BLOB));
    }
    // Only WWW-Authenticate configured: the sdkInput header is not read, and the
    // authentication is refused as documented (require_sdk_input).
    let env = setup_with(
        backend,
        None,
        json!({"sdk_input_headers": ["WWW-Authenticate"]}),
    )
    .await;
    let reference = new_ref();
    let a = env
        .relayed_with(
            &relayed_body(&reference, PI),
            &[("sdkInput", BLOB.to_owned())],
        )
        .await;
    assert_eq!(decision(&a), "refused");
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
}

async fn approval_without_sdk_output_is_refused(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref()).await;
    let (s, v, _) = env.device.decide(&id, Decision::Approve, None).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["reason"], "processor_output_required", "{v}");
    // Nothing was recorded or sent: the cardholder can still approve properly.
    assert_eq!(env.app.view(&id).await["challenge"]["status"], "pending");
    assert!(env.mock.calls().is_empty());
    // An output that would end the header's quoted parameter: refused the same way.
    let forged = format!("{SDK_OUTPUT}\", authparm2=\"x");
    let (s, v, _) = env
        .device
        .decide(&id, Decision::Approve, Some(&forged))
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["reason"], "processor_output_invalid", "{v}");
    assert_eq!(env.app.view(&id).await["challenge"]["status"], "pending");
    let (s, v, _) = env
        .device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    assert_eq!(s, 200, "{v}");
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
    // A deny needs no SDK output.
    let id = env.challenge(&new_ref()).await;
    let (s, v, _) = env.device.decide(&id, Decision::Deny, None).await;
    assert_eq!(s, 200, "{v}");
}

async fn finalize_with_basic_auth(backend: Backend) {
    let expected = basic("ws_123456@BalancePlatform.Test", "ws-password");
    let want = expected.clone();
    let mock =
        Mock::start(move |call, _| call.header("authorization") == Some(want.as_str())).await;
    let cfg = config(
        &mock.url(),
        json!({
            "finalize_auth": "basic",
            "finalize_user": "ws_123456@BalancePlatform.Test",
            "finalize_password": "ws-password",
        }),
    );
    let app = spawn(backend, |c| c.providers.adyen = Some(cfg)).await;
    let (_, device) = app.cardholder_with_device("adyen", PI).await;
    let env = Env { app, mock, device };
    let id = env.challenge(&new_ref()).await;
    env.device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    let calls = env.mock.wait_calls(1, Duration::from_secs(10)).await;
    assert!(
        calls[0].accepted,
        "Basic credentials of the web-service user"
    );
    assert_eq!(calls[0].header("x-api-key"), None);
    env.app
        .wait_upstream(&id, "delivered", Duration::from_secs(10))
        .await;
}

async fn purchase_is_required(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let full = relayed_body(&reference, PI);
    for body in [
        full.replace("\"merchantName\":\"TeaShop_NL\",", ""),
        full.replace(",\"originalAmount\":{\"currency\":\"EUR\",\"value\":1000}", ""),
        full.replace(
            "\"purchase\":{\"date\":\"2026-11-18T11:06:24Z\",\"merchantName\":\"TeaShop_NL\",\"originalAmount\":{\"currency\":\"EUR\",\"value\":1000}},",
            "",
        ),
        full.replace("\"TeaShop_NL\"", "\"\\u200B\\u202E\""),
    ] {
        assert_ne!(body, full);
        assert_eq!(decision(&env.relayed(&body).await), "refused", "{body}");
    }
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
}

async fn adyen_minor_units_are_converted(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    // Adyen's ISK has two decimals (ISO 4217: none): 279000 is ISK 2790.
    let body = relayed_body(&reference, PI).replace(
        "\"currency\":\"EUR\",\"value\":1000",
        "\"currency\":\"ISK\",\"value\":279000",
    );
    let id = env.challenge_from(&reference, &body).await;
    let c = env.device.challenge(&id).await;
    let amount = c.claims().txn.amount().unwrap();
    assert_eq!((amount.minor(), amount.currency().code()), (2790, "ISK"));
    assert_eq!(c.claims().txn.display_amount().unwrap(), "ISK 2790");
    // IDR: Adyen 0 decimals, ISO 2.
    let reference = new_ref();
    let body = relayed_body(&reference, PI).replace(
        "\"currency\":\"EUR\",\"value\":1000",
        "\"currency\":\"IDR\",\"value\":150000",
    );
    let id = env.challenge_from(&reference, &body).await;
    let c = env.device.challenge(&id).await;
    assert_eq!(c.claims().txn.display_amount().unwrap(), "IDR 150000.00");
    // An ISK amount with öre cannot be shown exactly: refused, nothing stored.
    let reference = new_ref();
    let body = relayed_body(&reference, PI).replace(
        "\"currency\":\"EUR\",\"value\":1000",
        "\"currency\":\"ISK\",\"value\":279050",
    );
    assert_eq!(env.relayed(&body).await.status, 422);
    assert_nothing_stored(&env.app, Provider::Adyen, &reference).await;
}

impl Env {
    async fn challenge_from(&self, reference: &str, body: &str) -> String {
        let a = self.relayed(body).await;
        assert_eq!(decision(&a), "proceed", "{}", a.text);
        self.app
            .find(Provider::Adyen, reference)
            .await
            .unwrap()
            .id
            .to_string()
    }
}

async fn purchase_date_is_signed(backend: Backend) {
    let env = setup(backend).await;
    let id = env.challenge(&new_ref()).await;
    let c = env.device.challenge(&id).await;
    let date = c.claims().txn.details().purchase_date.clone().unwrap();
    assert_eq!(date.as_str(), "2026-11-18T11:06:24Z");
    assert!(
        c.claims()
            .txn
            .canonical_json()
            .contains("\"purchase_date\":\"2026-11-18T11:06:24Z\"")
    );
    // What the device signs is what the server stored.
    let (s, v, _) = env
        .device
        .decide(&id, Decision::Approve, Some(SDK_OUTPUT))
        .await;
    assert_eq!(s, 200, "{v}");
}

async fn final_status_matched_on_purchase_when_ids_differ(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let id = env.challenge(&reference).await;
    // Adyen's created webhook names the authentication, not the challenge: another id,
    // the same payment instrument and purchase.
    let body = json!({
        "data": {
            "id": new_ref(),
            "paymentInstrumentId": PI,
            "purchase": {"date": "2026-11-18T11:06:24Z", "merchantName": "TeaShop_NL",
                         "originalAmount": {"currency": "EUR", "value": 1000}},
            "status": "authenticated",
            "authentication": {"transStatus": "Y", "challenge": {"flow": "OOB"}}
        },
        "environment": "test",
        "type": "balancePlatform.authentication.created"
    })
    .to_string();
    let a = env
        .post(CREATED, &body, Some(Env::auth()), Some(hmac(&body)), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let fs = &env.app.view(&id).await["challenge"]["final_status"];
    assert_eq!(
        (&fs["status"], &fs["matched_by"]),
        (&json!("authenticated"), &json!("purchase")),
        "{fs:#}"
    );
    // Another purchase of the same card matches nothing.
    let other = body.replace("\"value\":1000", "\"value\":1001");
    let reference2 = new_ref();
    let id2 = env.challenge(&reference2).await;
    let a = env
        .post(CREATED, &other, Some(Env::auth()), Some(hmac(&other)), None)
        .await;
    assert_eq!(a.status, 200);
    assert!(env.app.view(&id2).await["challenge"]["final_status"].is_null());
}

async fn lookup_by_processor_reference(backend: Backend) {
    let env = setup(backend).await;
    let reference = new_ref();
    let id = env.challenge(&reference).await;
    let path = format!("/v1/admin/challenges?provider=adyen&reference={reference}");
    let (s, v) = env.app.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(s, 200, "{v}");
    let list = v["challenges"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["status"], "pending");
    let path = format!("/v1/admin/challenges?provider=enfuce&reference={reference}");
    let (s, v) = env.app.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!((s, v["challenges"].as_array().unwrap().len()), (200, 0));
    // without the processor: looked up under every processor
    let (s, v) = env
        .app
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/challenges?reference={reference}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["challenges"][0]["id"], id, "{v}");
    assert_eq!(v["challenges"].as_array().unwrap().len(), 1, "{v}");
}
