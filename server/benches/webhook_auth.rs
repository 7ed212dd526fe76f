//! Cost of each webhook check on a realistic request, since every one runs before the ack.
//!
//! `fixtures/` holds byte-identical copies of the pushauth team's shared example requests
//! (`credentials.json` and one `*-webhook.json` per processor request). Their signatures and
//! Basic credentials are valid for the test values in `credentials.json`.
//!
//! Run with `cargo bench -p pushauth-server --bench webhook_auth`.

#![allow(
    clippy::unwrap_used,
    reason = "bench setup: a broken fixture must stop the run"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pushauth_server::providers::auth::{
    AdyenHmacVerifier, BasicVerifier, PaysafeVerifier, TreezorVerifier, php_json_encode_raw,
};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Credentials {
    enfuce_user: String,
    enfuce_password: String,
    adyen_hmac_key_hex: String,
    paysafe_key_b64: String,
    treezor_webhook_secret: String,
}

/// One example request: its exact body and a header, `""` when it has none of that name.
struct Request {
    body: String,
    headers: serde_json::Map<String, serde_json::Value>,
}

impl Request {
    fn load(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Raw {
            body: String,
            headers: serde_json::Map<String, serde_json::Value>,
        }
        let raw: Raw = serde_json::from_str(text).unwrap();
        Self {
            body: raw.body,
            headers: raw.headers,
        }
    }

    fn header(&self, name: &str) -> &[u8] {
        self.headers
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .as_bytes()
    }
}

fn webhook_auth(c: &mut Criterion) {
    let creds: Credentials =
        serde_json::from_str(include_str!("fixtures/credentials.json")).unwrap();
    let enfuce = Request::load(include_str!("fixtures/enfuce-webhook.json"));
    let adyen = Request::load(include_str!("fixtures/adyen-webhook.json"));
    let paysafe_sca = Request::load(include_str!("fixtures/paysafe-webhook.json"));
    let paysafe_3ds = Request::load(include_str!("fixtures/paysafe_3ds-webhook.json"));
    let treezor = Request::load(include_str!("fixtures/treezor-webhook.json"));

    let basic = BasicVerifier::new(&creds.enfuce_user, &creds.enfuce_password).unwrap();
    let adyen_hmac = AdyenHmacVerifier::new(&creds.adyen_hmac_key_hex).unwrap();
    let paysafe = PaysafeVerifier::new(&creds.paysafe_key_b64).unwrap();
    let treezor_verifier = TreezorVerifier::new(&creds.treezor_webhook_secret).unwrap();

    // Measure the accepting path, which is the common one.
    let enfuce_auth = enfuce.header("Authorization");
    assert_eq!(basic.verify(enfuce_auth), Ok(()));
    let adyen_sig = adyen.header("HmacSignature");
    assert_eq!(adyen_hmac.verify(adyen.body.as_bytes(), adyen_sig), Ok(()));
    for request in [&paysafe_sca, &paysafe_3ds] {
        assert_eq!(
            paysafe.verify(request.body.as_bytes(), request.header("Signature")),
            Ok(())
        );
    }
    assert!(treezor_verifier.verify(treezor.body.as_bytes()).is_ok());
    #[derive(Deserialize)]
    struct TreezorPayload<'a> {
        #[serde(borrow)]
        object_payload: &'a RawValue,
    }
    let treezor_payload: TreezorPayload<'_> = serde_json::from_str(&treezor.body).unwrap();
    let treezor_payload = treezor_payload.object_payload.get();

    let mut group = c.benchmark_group("webhook_auth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("enfuce_basic", |b| {
        b.iter(|| basic.verify(black_box(enfuce_auth)))
    });
    group.bench_function("adyen_hmac", |b| {
        b.iter(|| adyen_hmac.verify(black_box(adyen.body.as_bytes()), black_box(adyen_sig)))
    });
    for (name, request) in [
        ("paysafe_sca_event", &paysafe_sca),
        ("paysafe_3ds_event", &paysafe_3ds),
    ] {
        let signature = request.header("Signature");
        group.bench_function(name, |b| {
            b.iter(|| paysafe.verify(black_box(request.body.as_bytes()), black_box(signature)))
        });
    }
    group.bench_function("paysafe_sign_outbound", |b| {
        b.iter(|| paysafe.sign(black_box(paysafe_3ds.body.as_bytes())))
    });
    group.bench_function("treezor_verify", |b| {
        b.iter(|| treezor_verifier.verify(black_box(treezor.body.as_bytes())))
    });
    group.bench_function("treezor_php_json_encode_raw", |b| {
        b.iter(|| php_json_encode_raw(black_box(treezor_payload)))
    });
    group.finish();
}

criterion_group!(benches, webhook_auth);
criterion_main!(benches);
