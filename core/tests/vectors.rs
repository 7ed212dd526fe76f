//! Golden vectors for every byte format of docs/protocol.md.
//!
//! `cargo test -p pushauth-core --test vectors -- --ignored generate` writes fresh
//! files into `core/tests/vectors/` (ECDSA signatures are randomised, so every run
//! gives new bytes); the other tests lock the committed files in: they must keep
//! verifying exactly as recorded. The binding tests (Python, Kotlin) read the same
//! files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use pushauth_core::challenge::{self, ChallengeClaims};
use pushauth_core::ids::{ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
use pushauth_core::key_statement::{self, KeyClaims};
use pushauth_core::keys::{
    Jwk, KeyAgreement, KeyUse, PublicKey, SoftwareAgreementKey, SoftwareSigningKey,
    normalize_signature,
};
use pushauth_core::migration::{self, GrantClaims};
use pushauth_core::money::{Currency, Money};
use pushauth_core::proof::{
    self, Decision, DecisionInput, DenyReason, ProofKind, UserVerification,
};
use pushauth_core::push::{self, PushDetails};
use pushauth_core::request::{self, HttpRequest};
use pushauth_core::transaction::{
    CardLast4, CountryCode, Members, MerchantUrl, Operation, Payee, PurchaseDate,
    ReceivedTransaction, Transaction, TransactionKind, TxnDetails, TxnDigest, TxnValue,
};
use pushauth_core::{UnixTime, b64, jws};
use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const ISSUER: &str = "https://pushauth.example";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const DEADLINE: i64 = NOW + 150;

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

struct Keys {
    /// The device key (use `device`): requests, enrollment, declines.
    device: SoftwareSigningKey,
    /// The approval key (use `approval`): approvals, grants, its own statements.
    approval: SoftwareSigningKey,
    agreement: SoftwareAgreementKey,
    server: SoftwareSigningKey,
    device_id: DeviceId,
}

fn keys_from(v: &Value) -> Keys {
    Keys {
        device: SoftwareSigningKey::from_pkcs8(
            &b64::decode(s(&v["device_signing_pkcs8"])).unwrap(),
        )
        .unwrap(),
        approval: SoftwareSigningKey::from_pkcs8(
            &b64::decode(s(&v["device_approval_pkcs8"])).unwrap(),
        )
        .unwrap(),
        agreement: SoftwareAgreementKey::from_bytes(
            &b64::decode(s(&v["device_agreement_scalar"])).unwrap(),
        )
        .unwrap(),
        server: SoftwareSigningKey::from_pkcs8(
            &b64::decode(s(&v["server_signing_pkcs8"])).unwrap(),
        )
        .unwrap(),
        device_id: DeviceId::parse(s(&v["device_id"])).unwrap(),
    }
}

#[path = "support/vectors_build.rs"]
mod build;
#[path = "support/vectors_keys.rs"]
mod keys_build;

use build::*;
use keys_build::*;

#[test]
fn keys_and_signatures() {
    let v = load("keys.json");
    let k = keys_from(&v);
    let jwk: Jwk = serde_json::from_value(v["device_signing_jwk"].clone()).unwrap();
    assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), k.device.public());
    assert_eq!(
        k.device.public().thumbprint(),
        s(&v["device_signing_thumbprint"])
    );
    let ajwk: Jwk = serde_json::from_value(v["device_agreement_jwk"].clone()).unwrap();
    assert_eq!(
        PublicKey::from_jwk(&ajwk).unwrap(),
        k.agreement.public_key().unwrap()
    );
    assert_eq!(k.server.public().thumbprint(), s(&v["server_kid"]));
    for case in v["signatures"].as_array().unwrap() {
        let sig = b64::decode(s(&case["signature"])).unwrap();
        let got = normalize_signature(&sig);
        if case["valid"].as_bool().unwrap() {
            let raw = got.unwrap();
            assert_eq!(b64::encode(raw), s(&case["raw"]));
            k.device
                .public()
                .verify(s(&case["message"]).as_bytes(), &raw)
                .unwrap();
        } else {
            assert!(got.is_err(), "{}", case["name"]);
        }
    }
}

#[test]
fn transactions_canonical_and_digest() {
    let v = load("transactions.json");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), sample_transactions().len());
    let mut digests = std::collections::HashSet::new();
    for (case, (name, built)) in cases.iter().zip(sample_transactions()) {
        assert_eq!(s(&case["name"]), name);
        let parsed: Transaction = serde_json::from_value(case["transaction"].clone()).unwrap();
        assert_eq!(parsed, built);
        assert_eq!(parsed.canonical_json(), s(&case["canonical"]), "{name}");
        assert_eq!(parsed.digest().to_string(), s(&case["digest"]), "{name}");
        assert!(
            digests.insert(parsed.digest()),
            "digests must differ: {name}"
        );
        let received = parsed.received();
        assert_eq!(received.summary(), s(&case["summary"]), "{name}");
        assert_eq!(
            serde_json::to_value(received.display_fields()).unwrap(),
            case["display_fields"],
            "{name}"
        );
    }
    for case in v["device_cases"].as_array().unwrap() {
        let name = s(&case["name"]);
        let r: ReceivedTransaction = serde_json::from_value(case["transaction"].clone()).unwrap();
        assert_eq!(r.canonical_json(), s(&case["canonical"]), "{name}");
        assert_eq!(r.digest().to_string(), s(&case["digest"]), "{name}");
        let unknown: Vec<&str> = r.unknown_members().map(|(n, _)| n).collect();
        let expected: Vec<&str> = case["unknown_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(unknown, expected, "{name}");
        assert_eq!(r.summary(), s(&case["summary"]), "{name}");
        assert_eq!(
            serde_json::to_value(r.display_fields()).unwrap(),
            case["display_fields"]
        );
        assert_eq!(
            serde_json::from_value::<Transaction>(case["transaction"].clone()).is_ok(),
            case["server_accepts"].as_bool().unwrap(),
            "{name}"
        );
    }
    for case in v["invalid_cases"].as_array().unwrap() {
        let name = s(&case["name"]);
        assert!(
            serde_json::from_value::<ReceivedTransaction>(case["transaction"].clone()).is_err(),
            "device must refuse {name}"
        );
        assert!(
            serde_json::from_value::<Transaction>(case["transaction"].clone()).is_err(),
            "server must refuse {name}"
        );
    }
}

#[test]
fn challenges_verify_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("challenges.json");
    for case in v["cases"].as_array().unwrap() {
        let device = DeviceId::parse(s(&case["device"])).unwrap();
        let got = challenge::verify(
            s(&case["token"]),
            &k.server.public(),
            s(&v["issuer"]),
            &device,
            UnixTime(case["now"].as_i64().unwrap()),
            30,
        );
        match s(&case["result"]) {
            "ok" => {
                let c = got.unwrap();
                let expected: ChallengeClaims =
                    serde_json::from_value(case["claims"].clone()).unwrap();
                assert_eq!(c.claims(), &expected);
                assert_eq!(c.digest().to_string(), s(&case["digest"]));
                assert_eq!(
                    c.claims().txn.display_amount().unwrap(),
                    s(&case["display_amount"])
                );
                assert_eq!(c.claims().txn.summary(), s(&case["summary"]));
                if !case["display_fields"].is_null() {
                    assert_eq!(
                        serde_json::to_value(c.claims().txn.display_fields()).unwrap(),
                        case["display_fields"]
                    );
                }
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}

#[test]
fn proofs_verify_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("proofs.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let got = check_proof_case(&k, case);
        match s(&case["result"]) {
            "ok" => {
                let d = got.unwrap();
                let expected: proof::ApprovalClaims =
                    serde_json::from_value(case["claims"].clone()).unwrap();
                assert_eq!(d.claims(), &expected);
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}

#[test]
fn push_envelopes_open_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("push.json");
    for case in v["cases"].as_array().unwrap() {
        let challenge = ChallengeId::parse(s(&case["challenge"])).unwrap();
        let got = PushDetails::open(&k.agreement, &challenge, s(&case["envelope"]));
        match s(&case["result"]) {
            "ok" => {
                let d = got.unwrap();
                let expected: PushDetails =
                    serde_json::from_value(case["details"].clone()).unwrap();
                assert_eq!(d, expected);
                assert_eq!(d.summary(), s(&case["summary"]));
                let raw = push::open(&k.agreement, &challenge, s(&case["envelope"])).unwrap();
                assert_eq!(
                    serde_json::from_slice::<PushDetails>(&raw).unwrap(),
                    expected
                );
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}

#[test]
fn request_proofs_verify_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("requests.json");
    for case in v["cases"].as_array().unwrap() {
        let got = request::verify(
            s(&case["token"]),
            &k.device_id,
            &k.device.public(),
            &request::Expectations {
                audience: ISSUER,
                request: HttpRequest {
                    method: s(&case["method"]),
                    path: s(&case["path"]),
                    body: s(&case["body"]).as_bytes(),
                },
                now: UnixTime(case["now"].as_i64().unwrap()),
                window_secs: 60,
            },
        );
        match s(&case["result"]) {
            "ok" => {
                got.unwrap();
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}

/// The header of every JWS in the vectors is exactly what the protocol document shows.
#[test]
fn headers_are_as_documented() {
    let v = load("proofs.json");
    let token = s(&v["cases"][0]["token"]);
    let header = String::from_utf8(b64::decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        header,
        r#"{"alg":"ES256","typ":"pushauth-approval+jwt","kid":"0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"}"#
    );
    assert!(jws::parse(token, proof::APPROVAL_TYP).is_ok());
}

#[test]
fn approval_key_is_distinct() {
    let v = load("keys.json");
    let k = keys_from(&v);
    let jwk: Jwk = serde_json::from_value(v["device_approval_jwk"].clone()).unwrap();
    assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), k.approval.public());
    assert_eq!(
        k.approval.public().thumbprint(),
        s(&v["device_approval_thumbprint"])
    );
    assert_ne!(k.approval.public(), k.device.public());
}

#[test]
fn jws_profile_holes_refused_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("jws.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let got = check_proof_case(&k, case);
        match s(&case["result"]) {
            "ok" => {
                got.unwrap();
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}

#[test]
fn key_statements_verify_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("key_statements.json");
    let (d, a) = (k.device.public(), k.approval.public());
    for case in v["enrollment"].as_array().unwrap() {
        let got = key_statement::verify_enrollment_binding(
            s(&case["token"]),
            &key_statement::EnrollmentExpectations {
                audiences: &[ISSUER],
                device_key: &d,
                approval_key: &a,
                now: UnixTime(case["now"].as_i64().unwrap()),
                window_secs: 60,
            },
        );
        match s(&case["result"]) {
            "ok" => got.unwrap(),
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
    let new_device: Jwk = serde_json::from_value(v["new_device_jwk"].clone()).unwrap();
    let new_approval: Jwk = serde_json::from_value(v["new_approval_jwk"].clone()).unwrap();
    let new_device = PublicKey::from_jwk(&new_device).unwrap();
    let new_approval = PublicKey::from_jwk(&new_approval).unwrap();
    for case in v["rotation"].as_array().unwrap() {
        let key_use: KeyUse = serde_json::from_value(case["use"].clone()).unwrap();
        let (own, other, new) = match key_use {
            KeyUse::Device => (d, a, new_device),
            KeyUse::Approval => (a, d, new_approval),
        };
        let current = match s(&case["current"]) {
            "new" => new,
            _ => own,
        };
        let got = key_statement::verify_rotation(
            s(&case["statement"]),
            case["endorsement"].as_str(),
            &key_statement::RotationExpectations {
                audience: ISSUER,
                device: &k.device_id,
                key_use,
                current: &current,
                other: &other,
                now: UnixTime(case["now"].as_i64().unwrap()),
                window_secs: 60,
            },
        );
        let name = &case["name"];
        match s(&case["result"]) {
            "replace" => assert_eq!(
                got.unwrap(),
                key_statement::Rotation::Replace(new),
                "{name}"
            ),
            "already_current" => assert_eq!(
                got.unwrap(),
                key_statement::Rotation::AlreadyCurrent(new),
                "{name}"
            ),
            code => assert_eq!(got.unwrap_err().code(), code, "{name}"),
        }
        if let Some(jwk) = case["new_key"].as_object() {
            let jwk: Jwk = serde_json::from_value(Value::Object(jwk.clone())).unwrap();
            assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), new, "{name}");
        }
    }
    // the statement's claims are as documented (rotation of the approval key)
    let st = s(&v["rotation"][2]["statement"]);
    let claims: KeyClaims =
        serde_json::from_slice(&b64::decode(st.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims.key_use, KeyUse::Approval);
    assert_eq!(claims.old.as_deref(), Some(a.thumbprint().as_str()));
}

#[test]
fn migration_grants_verify_as_recorded() {
    let k = keys_from(&load("keys.json"));
    let v = load("migration.json");
    let a = k.approval.public();
    for case in v["cases"].as_array().unwrap() {
        let device = DeviceId::parse(s(&case["device"])).unwrap();
        let got = migration::verify_grant(
            s(&case["token"]),
            &migration::GrantExpectations {
                device: &device,
                approval_key: &a,
                audience: ISSUER,
                now: UnixTime(case["now"].as_i64().unwrap()),
                skew_secs: 30,
            },
        );
        match s(&case["result"]) {
            "ok" => {
                let g = got.unwrap();
                let claims: GrantClaims = serde_json::from_value(case["claims"].clone()).unwrap();
                assert_eq!(g.jti, claims.jti);
                assert_eq!(g.exp, claims.exp);
            }
            code => assert_eq!(got.unwrap_err().code(), code, "{}", case["name"]),
        }
    }
}
