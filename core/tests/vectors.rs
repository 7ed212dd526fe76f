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

fn sample_transactions() -> Vec<(&'static str, Transaction)> {
    let money = |m: i64, c: &str| Some(Money::from_minor(m, Currency::parse(c).unwrap()).unwrap());
    let base = Transaction {
        provider: Provider::Enfuce,
        reference: ProviderRef::parse("6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11").unwrap(),
        kind: TransactionKind::Payment,
        amount: money(4990, "EUR"),
        payee: Some(Payee::parse("Example Shop").unwrap()),
        details: TxnDetails::default(),
    };
    vec![
        ("enfuce_eur_payment", base.clone()),
        (
            "amount_plus_one_minor",
            Transaction {
                amount: money(4991, "EUR"),
                ..base.clone()
            },
        ),
        (
            "other_currency",
            Transaction {
                amount: money(4990, "USD"),
                ..base.clone()
            },
        ),
        (
            "other_payee",
            Transaction {
                payee: Some(Payee::parse("Example Shop Ltd").unwrap()),
                ..base.clone()
            },
        ),
        (
            "jpy_no_decimals",
            Transaction {
                amount: money(5000, "JPY"),
                ..base.clone()
            },
        ),
        (
            "bhd_three_decimals",
            Transaction {
                amount: money(1234, "BHD"),
                ..base.clone()
            },
        ),
        (
            "adyen_unicode_payee",
            Transaction {
                provider: Provider::Adyen,
                reference: ProviderRef::parse("EC42N2F6QKWWK2T3").unwrap(),
                payee: Some(Payee::parse("Café \"Zoë\" \\ 東京 😀").unwrap()),
                ..base.clone()
            },
        ),
        (
            "paysafe_wallet_operation_no_amount",
            Transaction {
                provider: Provider::Paysafe,
                reference: ProviderRef::parse("e1b0c1d2-3e4f-4a5b-8c6d-7e8f9a0b1c2d").unwrap(),
                kind: TransactionKind::WalletOperation,
                amount: None,
                payee: None,
                details: TxnDetails::default(),
            },
        ),
        (
            "enfuce_merchant_country_url_card",
            Transaction {
                details: TxnDetails {
                    merchant_country: Some(CountryCode::parse("FI").unwrap()),
                    merchant_url: Some(
                        MerchantUrl::parse("https://shop.example/checkout").unwrap(),
                    ),
                    card_last4: Some(CardLast4::parse("4242").unwrap()),
                    ..TxnDetails::default()
                },
                ..base.clone()
            },
        ),
        (
            "adyen_purchase_date_isk",
            Transaction {
                provider: Provider::Adyen,
                reference: ProviderRef::parse("EC42N2F6QKWWK2T3").unwrap(),
                amount: money(2790, "ISK"),
                details: TxnDetails {
                    purchase_date: Some(PurchaseDate::parse("2026-01-01T11:59:30Z").unwrap()),
                    card_last4: Some(CardLast4::parse("0005").unwrap()),
                    ..TxnDetails::default()
                },
                ..base.clone()
            },
        ),
        (
            "paysafe_transfer_operation",
            Transaction {
                provider: Provider::Paysafe,
                reference: ProviderRef::parse("e1b0c1d2-3e4f-4a5b-8c6d-7e8f9a0b1c2d").unwrap(),
                kind: TransactionKind::WalletOperation,
                amount: money(10000, "EUR"),
                payee: None,
                details: TxnDetails {
                    operation: Some(Operation::parse("TRANSFER").unwrap()),
                    operation_ref: Some(ProviderRef::parse("pay-7f3a9c").unwrap()),
                    ..TxnDetails::default()
                },
            },
        ),
    ]
}

/// A transaction as a NEWER server might send it: two members and a `kind` this
/// version does not know. An SDK built today must accept it, digest every member
/// and show the unknown ones generically (old SDK / new server).
fn newer_server_txn() -> ReceivedTransaction {
    let base = sample_transactions()[0].1.members();
    let mut pairs: Vec<(String, TxnValue)> = base
        .iter()
        .map(|(n, v)| (n.to_owned(), v.clone()))
        .filter(|(n, _)| n != "kind")
        .collect();
    pairs.push(("kind".into(), TxnValue::Str("instalment_plan".into())));
    pairs.push(("instalments".into(), TxnValue::Int(3)));
    pairs.push((
        "merchant_city".into(),
        TxnValue::Str("Espoo\u{200B}".into()),
    ));
    ReceivedTransaction::from_members(Members::from_pairs(pairs).unwrap()).unwrap()
}

/// transactions.json: server-built cases (strictly parsed), device-only cases and
/// cases every side must refuse.
fn transaction_vectors() -> Value {
    let cases: Vec<Value> = sample_transactions()
        .into_iter()
        .map(|(name, t)| {
            let r = t.received();
            json!({"name": name, "transaction": t, "canonical": t.canonical_json(),
                   "digest": t.digest().to_string(), "summary": r.summary(),
                   "display_fields": r.display_fields()})
        })
        .collect();
    let newer = newer_server_txn();
    let base = serde_json::to_value(&sample_transactions()[0].1).unwrap();
    let with = |key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        v
    };
    json!({
        "cases": cases,
        "device_cases": [
            {"name": "newer_server_unknown_members_and_kind", "transaction": newer,
             "canonical": newer.canonical_json(), "digest": newer.digest().to_string(),
             "unknown_members": ["instalments", "merchant_city"], "kind": "instalment_plan",
             "server_accepts": false, "summary": newer.summary(), "display_fields": newer.display_fields()},
        ],
        "invalid_cases": [
            {"name": "payee_with_rtl_override", "transaction": with("payee", json!("Shop\u{202E}gnp.exe"))},
            {"name": "payee_with_zero_width_space", "transaction": with("payee", json!("Ex\u{200B}ample"))},
            {"name": "payee_with_line_separator", "transaction": with("payee", json!("Shop\u{2028}Ltd"))},
            {"name": "float_member", "transaction": with("instalments", json!(1.5))},
            {"name": "object_member", "transaction": with("extra", json!({"a": 1}))},
            {"name": "boolean_member", "transaction": with("extra", json!(true))},
            {"name": "amount_as_string", "transaction": with("amount", json!("4990"))},
            {"name": "amount_above_2_53", "transaction": with("amount", json!(9_007_199_254_740_992_u64))},
            {"name": "version_1", "transaction": with("v", json!(1))},
            {"name": "card_last4_five_digits", "transaction": with("card_last4", json!("12345"))},
            {"name": "purchase_date_with_offset", "transaction": with("purchase_date", json!("2026-01-01T12:00:00+01:00"))},
        ],
    })
}

/// challenges.json: the valid challenge, the refusals, and a challenge from a newer
/// server (unknown transaction members and kind) that must verify.
fn challenge_vectors(k: &Keys, claims: &ChallengeClaims, good_challenge: &str) -> Value {
    let other_server = SoftwareSigningKey::generate().unwrap();
    let newer = challenge_claims(k, newer_server_txn(), None);
    let rich_txn = sample_transactions()
        .into_iter()
        .find(|(n, _)| *n == "paysafe_transfer_operation")
        .unwrap()
        .1
        .received();
    let rich = challenge_claims(k, rich_txn.clone(), None);
    json!({
        "issuer": ISSUER,
        "cases": [
            {"name": "valid", "token": good_challenge, "device": k.device_id.as_str(), "now": NOW + 5, "result": "ok",
             "claims": claims, "digest": claims.txn.digest().to_string(), "display_amount": "EUR 49.90",
             "summary": claims.txn.summary()},
            {"name": "valid_operation_and_reference", "token": challenge::sign(&rich, &k.server).unwrap(), "device": k.device_id.as_str(), "now": NOW + 5, "result": "ok",
             "claims": rich, "digest": rich_txn.digest().to_string(), "display_amount": "EUR 100.00",
             "summary": rich_txn.summary(), "display_fields": rich_txn.display_fields()},
            {"name": "newer_server_extra_members", "token": challenge::sign(&newer, &k.server).unwrap(), "device": k.device_id.as_str(), "now": NOW + 5, "result": "ok",
             "claims": newer, "digest": newer.txn.digest().to_string(), "display_amount": "EUR 49.90",
             "summary": newer.txn.summary(), "display_fields": newer.txn.display_fields()},
            {"name": "signed_by_other_key", "token": challenge::sign(claims, &other_server).unwrap(), "device": k.device_id.as_str(), "now": NOW + 5, "result": "wrong_key_id"},
            {"name": "for_other_device", "token": good_challenge, "device": "11111111-2222-4333-8444-555555555555", "now": NOW + 5, "result": "wrong_audience"},
            {"name": "past_deadline", "token": good_challenge, "device": k.device_id.as_str(), "now": DEADLINE + 31, "result": "past_deadline"},
        ]
    })
}

/// push.json: the valid envelope, refusals, and a plaintext from a newer server
/// (an unknown top-level field and unknown transaction members) that must open.
fn push_vectors(k: &Keys, claims: &ChallengeClaims) -> Value {
    let details = PushDetails {
        v: 1,
        challenge: claims.jti.clone(),
        txn: claims.txn.clone(),
        exp: UnixTime(DEADLINE),
        otp: None,
    };
    let recipient = k.agreement.public_key().unwrap();
    let envelope = details.seal(&recipient).unwrap();
    let mut tampered_env = b64::decode(&envelope).unwrap();
    let last = tampered_env.len() - 1;
    tampered_env[last] ^= 0x01;
    let newer = PushDetails {
        txn: newer_server_txn(),
        ..details.clone()
    };
    let mut newer_plain = serde_json::to_value(&newer).unwrap();
    newer_plain["badge"] = json!(2);
    let newer_env = push::seal(
        &recipient,
        &claims.jti,
        &serde_json::to_vec(&newer_plain).unwrap(),
    )
    .unwrap();
    json!({
        "cases": [
            {"name": "valid", "challenge": claims.jti.as_str(), "envelope": envelope, "result": "ok", "details": details, "summary": details.summary()},
            {"name": "newer_server_extra_fields", "challenge": claims.jti.as_str(), "envelope": newer_env, "result": "ok", "details": newer, "summary": newer.summary(),
             "plaintext": newer_plain},
            {"name": "other_challenge_id", "challenge": "99999999-8888-4777-8666-555555555555", "envelope": envelope, "result": "decrypt_failed"},
            {"name": "tampered_tag", "challenge": claims.jti.as_str(), "envelope": b64::encode(&tampered_env), "result": "decrypt_failed"},
        ]
    })
}

fn challenge_claims(k: &Keys, txn: ReceivedTransaction, pin: Option<&str>) -> ChallengeClaims {
    ChallengeClaims {
        iss: ISSUER.into(),
        aud: k.device_id.clone(),
        jti: ChallengeId::parse("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f").unwrap(),
        nonce: Nonce::parse("q3Jx9Zy0m1vTn8bK2cR5uWf7hL4sE6aD0pG9iN3oQ2k").unwrap(),
        txn,
        iat: UnixTime(NOW),
        exp: UnixTime(DEADLINE),
        pin: pin.map(str::to_owned),
    }
}

/// What a proof vector is checked against. `kind` names the `typ` expected
/// (`approval` | `decline`), `key` the device key it is verified with (`approval` |
/// `device`: the server picks the approval key for approvals and, by default, the
/// device key for declines).
fn expectation_json(
    k: &Keys,
    c: &ChallengeClaims,
    txn: &TxnDigest,
    pout: Option<&str>,
    now: i64,
) -> Value {
    json!({
        "kind": "approval",
        "key": "approval",
        "min_user_verification": "passcode",
        "device": k.device_id.as_str(),
        "audience": ISSUER,
        "challenge": c.jti.as_str(),
        "nonce": c.nonce.as_str(),
        "txn": txn.to_string(),
        "deadline": c.exp.0,
        "processor_output": pout,
        "now": now,
        "skew_secs": 30,
    })
}

fn check_proof_case(
    k: &Keys,
    case: &Value,
) -> Result<proof::VerifiedDecision, pushauth_core::Error> {
    let e = &case["expect"];
    let device = DeviceId::parse(s(&e["device"])).unwrap();
    let challenge = ChallengeId::parse(s(&e["challenge"])).unwrap();
    let nonce = Nonce::parse(s(&e["nonce"])).unwrap();
    let txn = TxnDigest::parse(s(&e["txn"])).unwrap();
    let key = match s(&e["key"]) {
        "approval" => k.approval.public(),
        "device" => k.device.public(),
        other => panic!("unknown key {other}"),
    };
    let kind = match s(&e["kind"]) {
        "approval" => ProofKind::Approval,
        "decline" => ProofKind::Decline,
        other => panic!("unknown kind {other}"),
    };
    let min_user_verification: UserVerification =
        serde_json::from_value(e["min_user_verification"].clone()).unwrap();
    proof::verify(
        s(&case["token"]),
        &proof::Expectations {
            kind,
            device: &device,
            key: &key,
            min_user_verification,
            audience: s(&e["audience"]),
            challenge: &challenge,
            nonce: &nonce,
            txn: &txn,
            deadline: UnixTime(e["deadline"].as_i64().unwrap()),
            processor_output: e["processor_output"].as_str(),
            now: UnixTime(e["now"].as_i64().unwrap()),
            skew_secs: e["skew_secs"].as_i64().unwrap(),
        },
    )
}

#[test]
#[ignore = "writes new vector files; run on purpose only"]
fn generate() {
    let device = SoftwareSigningKey::generate().unwrap();
    let approval = SoftwareSigningKey::generate().unwrap();
    let agreement = SoftwareAgreementKey::generate().unwrap();
    let server = SoftwareSigningKey::generate().unwrap();
    let device_id = DeviceId::parse("0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88").unwrap();
    let keys_json = json!({
        "about": "Fixed test keys (never use outside tests). PKCS#8 and scalars are base64url without padding.",
        "device_id": device_id.as_str(),
        "device_signing_pkcs8": b64::encode(&device.to_pkcs8()[..]),
        "device_signing_jwk": device.public().to_jwk(),
        "device_signing_thumbprint": device.public().thumbprint(),
        "device_approval_pkcs8": b64::encode(&approval.to_pkcs8()[..]),
        "device_approval_jwk": approval.public().to_jwk(),
        "device_approval_thumbprint": approval.public().thumbprint(),
        "device_agreement_scalar": b64::encode(&agreement.to_bytes()[..]),
        "device_agreement_jwk": agreement.public_key().unwrap().to_jwk(),
        "server_signing_pkcs8": b64::encode(&server.to_pkcs8()[..]),
        "server_signing_jwk": server.public().to_jwk(),
        "server_kid": server.public().thumbprint(),
        "signatures": signature_cases(&device),
    });
    let k = Keys {
        device,
        approval,
        agreement,
        server,
        device_id,
    };

    let txns_list = sample_transactions();
    let base_txn = txns_list[0].1.clone();
    let claims = challenge_claims(
        &k,
        base_txn.received(),
        Some("eyJzZGtJbnB1dCI6ImV4YW1wbGUifQ"),
    );
    let good_challenge = challenge::sign(&claims, &k.server).unwrap();
    let challenges = challenge_vectors(&k, &claims, &good_challenge);

    let verified = challenge::verify(
        &good_challenge,
        &k.server.public(),
        ISSUER,
        &k.device_id,
        UnixTime(NOW + 5),
        30,
    )
    .unwrap();
    let proofs = proof_vectors(&k, &claims, &verified, &txns_list[1].1);
    let jws_profile = jws_profile_vectors(&k, &claims, &verified);

    let pushes = push_vectors(&k, &claims);

    let requests = request_vectors(&k);
    let key_statements = key_statement_vectors(&k);
    let migration_grants = migration_vectors(&k);

    for (name, value) in [
        ("keys.json", keys_json),
        ("transactions.json", transaction_vectors()),
        ("challenges.json", challenges),
        ("proofs.json", proofs),
        ("push.json", pushes),
        ("requests.json", requests),
        ("jws.json", jws_profile),
        ("key_statements.json", key_statements),
        ("migration.json", migration_grants),
    ] {
        std::fs::write(
            format!("{DIR}/{name}"),
            serde_json::to_string_pretty(&value).unwrap() + "\n",
        )
        .unwrap();
    }
}

fn decision_input<'a>(
    k: &'a Keys,
    decision: Decision,
    reason: Option<DenyReason>,
    uv: UserVerification,
    pout: Option<&'static str>,
) -> DecisionInput<'a> {
    DecisionInput {
        device: &k.device_id,
        decision,
        reason,
        uv,
        processor_output: pout,
        now: UnixTime(NOW + 10),
        lifetime_secs: 120,
    }
}

/// proofs.json: approval proofs (approval key) and decline proofs (device key).
fn proof_vectors(
    k: &Keys,
    claims: &ChallengeClaims,
    verified: &challenge::VerifiedChallenge,
    tampered_txn: &Transaction,
) -> Value {
    let approve = proof::claims_for(
        verified,
        &decision_input(
            k,
            Decision::Approve,
            None,
            UserVerification::Biometric,
            Some("sdk-output-123"),
        ),
    )
    .unwrap();
    let approve_token = proof::sign(&approve, &k.approval).unwrap();
    let deny = proof::claims_for(
        verified,
        &decision_input(
            k,
            Decision::Deny,
            Some(DenyReason::NotMe),
            UserVerification::None,
            None,
        ),
    )
    .unwrap();
    let deny_token = proof::sign(&deny, &k.device).unwrap();
    // tampered: the device signed a different amount than the server stored
    let tampered = proof::ApprovalClaims {
        txn: tampered_txn.digest(),
        pout: None,
        ..approve.clone()
    };
    let tampered_token = proof::sign(&tampered, &k.approval).unwrap();
    let rogue = SoftwareSigningKey::generate().unwrap();
    let wrong_key_token = proof::sign(&approve, &rogue).unwrap();
    // v2: an approval signed by the device key (no biometric) is refused
    let device_signed_approval = proof::sign(&approve, &k.device).unwrap();
    let no_uv = proof::claims_for(
        verified,
        &decision_input(
            k,
            Decision::Approve,
            None,
            UserVerification::None,
            Some("sdk-output-123"),
        ),
    )
    .unwrap();
    let no_uv_token = proof::sign(&no_uv, &k.approval).unwrap();
    let deny_as_approval = jws::sign(
        proof::APPROVAL_TYP,
        Some(k.device_id.as_str()),
        None,
        &deny,
        &k.approval,
    )
    .unwrap();
    let payload = approve_token.split('.').nth(1).unwrap();
    let alg_none = format!(
        "{}.{payload}.",
        b64::encode(
            r#"{"alg":"none","typ":"pushauth-approval+jwt","kid":"0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"}"#
        )
    );
    let hs256 = {
        let head = b64::encode(
            r#"{"alg":"HS256","typ":"pushauth-approval+jwt","kid":"0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88"}"#,
        );
        let input = format!("{head}.{payload}");
        let jwk_text = serde_json::to_string(&k.approval.public().to_jwk()).unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk_text.as_bytes());
        format!(
            "{input}.{}",
            b64::encode(ring::hmac::sign(&key, input.as_bytes()))
        )
    };
    let der_sig = {
        let (signing_input, sig) = approve_token.rsplit_once('.').unwrap();
        let raw: [u8; 64] = b64::decode(sig).unwrap().try_into().unwrap();
        format!("{signing_input}.{}", b64::encode(to_der(&raw)))
    };
    let d = claims.txn.digest();
    let exp_ok = expectation_json(k, claims, &d, Some("sdk-output-123"), NOW + 12);
    let mut exp_deny = expectation_json(k, claims, &d, None, NOW + 12);
    exp_deny["kind"] = json!("decline");
    exp_deny["key"] = json!("device");
    let mut exp_deny_needs_approval_key = exp_deny.clone();
    exp_deny_needs_approval_key["key"] = json!("approval");
    let exp_tampered = expectation_json(k, claims, &d, None, NOW + 12);
    let mut exp_other_challenge = exp_ok.clone();
    exp_other_challenge["challenge"] = json!("99999999-8888-4777-8666-555555555555");
    let mut exp_other_aud = exp_ok.clone();
    exp_other_aud["audience"] = json!("https://other.example");
    let mut exp_swapped_output = exp_ok.clone();
    exp_swapped_output["processor_output"] = json!("sdk-output-456");
    let mut exp_deny_under_approval = exp_deny.clone();
    exp_deny_under_approval["kind"] = json!("approval");
    exp_deny_under_approval["key"] = json!("approval");
    let mut exp_decline_for_approve = exp_ok.clone();
    exp_decline_for_approve["kind"] = json!("decline");
    exp_decline_for_approve["key"] = json!("device");
    json!({
        "cases": [
            {"name": "approve_with_processor_output", "token": approve_token, "expect": exp_ok, "result": "ok", "claims": approve},
            {"name": "deny_not_me", "token": deny_token, "expect": exp_deny, "result": "ok", "claims": deny},
            {"name": "deny_signed_by_device_key_when_approval_key_required", "token": deny_token, "expect": exp_deny_needs_approval_key, "result": "bad_signature"},
            {"name": "approval_signed_by_device_key", "token": device_signed_approval, "expect": exp_ok, "result": "bad_signature"},
            {"name": "approval_without_user_verification", "token": no_uv_token, "expect": exp_ok, "result": "insufficient_user_verification"},
            {"name": "deny_under_approval_typ", "token": deny_as_approval, "expect": exp_deny_under_approval, "result": "wrong_decision"},
            {"name": "approval_where_decline_expected", "token": approve_token, "expect": exp_decline_for_approve, "result": "wrong_type"},
            {"name": "tampered_amount", "token": tampered_token, "expect": exp_tampered, "result": "transaction_mismatch"},
            {"name": "signed_by_other_key", "token": wrong_key_token, "expect": exp_ok, "result": "bad_signature"},
            {"name": "alg_none", "token": alg_none, "expect": exp_ok, "result": "unsupported_algorithm"},
            {"name": "hs256_with_public_key_as_secret", "token": hs256, "expect": exp_ok, "result": "unsupported_algorithm"},
            {"name": "der_signature_in_jws", "token": der_sig, "expect": exp_ok, "result": "malformed_jws"},
            {"name": "expired", "token": approve_token, "expect": expectation_json(k, claims, &d, Some("sdk-output-123"), NOW + 10 + 120 + 31), "result": "past_deadline"},
            {"name": "replayed_for_other_challenge", "token": approve_token, "expect": exp_other_challenge, "result": "wrong_challenge"},
            {"name": "wrong_audience", "token": approve_token, "expect": exp_other_aud, "result": "wrong_audience"},
            {"name": "processor_output_swapped", "token": approve_token, "expect": exp_swapped_output, "result": "processor_output_mismatch"},
        ]
    })
}

/// A correctly signed compact JWS with exactly these header and claims bytes.
fn raw_jws(key: &SoftwareSigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(claims));
    format!(
        "{input}.{}",
        b64::encode(key.sign_raw(input.as_bytes()).unwrap())
    )
}

/// jws.json: JWS profile holes (protocol §2), each correctly signed by the approval key
/// and checked as approval proofs.
fn jws_profile_vectors(
    k: &Keys,
    claims: &ChallengeClaims,
    verified: &challenge::VerifiedChallenge,
) -> Value {
    let approve = proof::claims_for(
        verified,
        &decision_input(
            k,
            Decision::Approve,
            None,
            UserVerification::Biometric,
            None,
        ),
    )
    .unwrap();
    let claims_text = serde_json::to_string(&approve).unwrap();
    let kid = k.device_id.as_str();
    let jwk = serde_json::to_string(&k.approval.public().to_jwk()).unwrap();
    let header = format!(r#"{{"alg":"ES256","typ":"pushauth-approval+jwt","kid":"{kid}"}}"#);
    let claims_array = serde_json::to_string(&[
        json!(approve.iss),
        json!(approve.aud),
        json!(approve.jti),
        json!(approve.nonce),
        json!(approve.decision),
        json!(null),
        json!(approve.txn),
        json!(null),
        json!(approve.iat),
        json!(approve.exp),
        json!(approve.uv),
    ])
    .unwrap();
    let d = claims.txn.digest();
    let exp = expectation_json(k, claims, &d, None, NOW + 12);
    json!({
        "about": "Correctly signed approval proofs that break the JWS profile of docs/protocol.md §2; checked as approval proofs (proofs.json expectations).",
        "cases": [
            {"name": "valid", "token": raw_jws(&k.approval, &header, &claims_text), "expect": exp, "result": "ok"},
            {"name": "kid_and_jwk", "token": raw_jws(&k.approval, &format!(r#"{{"alg":"ES256","typ":"pushauth-approval+jwt","kid":"{kid}","jwk":{jwk}}}"#), &claims_text), "expect": exp, "result": "kid_and_jwk"},
            {"name": "header_is_array", "token": raw_jws(&k.approval, &format!(r#"["ES256","pushauth-approval+jwt","{kid}"]"#), &claims_text), "expect": exp, "result": "header_not_object"},
            {"name": "claims_are_array", "token": raw_jws(&k.approval, &header, &claims_array), "expect": exp, "result": "claims_not_object"},
            {"name": "claims_with_trailing_object", "token": raw_jws(&k.approval, &header, &format!("{claims_text}{{}}")), "expect": exp, "result": "malformed_claims"},
        ]
    })
}

/// requests.json: request proofs (device key only).
fn request_vectors(k: &Keys) -> Value {
    let body = br#"{"proof":"..."}"#;
    let req = HttpRequest {
        method: "POST",
        path: "/v1/device/challenges/3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f/decision",
        body,
    };
    let req_token = request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(NOW)).unwrap();
    let by_approval_key =
        request::sign(&k.device_id, &k.approval, ISSUER, req, UnixTime(NOW)).unwrap();
    let extreme_past =
        request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(i64::MIN)).unwrap();
    let extreme_future =
        request::sign(&k.device_id, &k.device, ISSUER, req, UnixTime(i64::MAX)).unwrap();
    let body = std::str::from_utf8(body).unwrap();
    json!({
        "cases": [
            {"name": "valid", "token": req_token, "method": "POST", "path": req.path, "body": body, "now": NOW + 5, "result": "ok"},
            {"name": "signed_by_approval_key", "token": by_approval_key, "method": "POST", "path": req.path, "body": body, "now": NOW + 5, "result": "bad_signature"},
            {"name": "body_changed", "token": req_token, "method": "POST", "path": req.path, "body": r#"{"proof":"…"}"#, "now": NOW + 5, "result": "body_hash_mismatch"},
            {"name": "path_changed", "token": req_token, "method": "POST", "path": "/v1/device/push-token", "body": body, "now": NOW + 5, "result": "wrong_path"},
            {"name": "stale", "token": req_token, "method": "POST", "path": req.path, "body": body, "now": NOW + 61, "result": "stale_request"},
            {"name": "iat_i64_min", "token": extreme_past, "method": "POST", "path": req.path, "body": body, "now": NOW, "result": "stale_request"},
            {"name": "iat_i64_max", "token": extreme_future, "method": "POST", "path": req.path, "body": body, "now": -NOW, "result": "stale_request"},
        ]
    })
}

/// key_statements.json: the approval key's enrollment binding and rotations of each key.
fn key_statement_vectors(k: &Keys) -> Value {
    let new_device = SoftwareSigningKey::generate().unwrap();
    let new_approval = SoftwareSigningKey::generate().unwrap();
    let binding = key_statement::sign_enrollment_binding(
        &k.approval,
        &k.device.public(),
        ISSUER,
        UnixTime(NOW),
    )
    .unwrap();
    let binding_to_other = key_statement::sign_enrollment_binding(
        &k.approval,
        &new_device.public(),
        ISSUER,
        UnixTime(NOW),
    )
    .unwrap();
    let device_claims = key_statement::rotation_claims(
        &k.device_id,
        KeyUse::Device,
        &k.device.public(),
        ISSUER,
        UnixTime(NOW),
    );
    let device_rotation = key_statement::sign_statement(&device_claims, &new_device).unwrap();
    let approval_claims = key_statement::rotation_claims(
        &k.device_id,
        KeyUse::Approval,
        &k.approval.public(),
        ISSUER,
        UnixTime(NOW),
    );
    let approval_rotation = key_statement::sign_statement(&approval_claims, &new_approval).unwrap();
    let endorsement = key_statement::sign_endorsement(&approval_claims, &k.approval).unwrap();
    let endorsed_by_device_key =
        key_statement::sign_endorsement(&approval_claims, &k.device).unwrap();
    let rot = |name: &str,
               key_use: &str,
               statement: &str,
               endorsement: Option<&str>,
               current: &str,
               new: Option<&PublicKey>,
               result: &str| {
        json!({"name": name, "use": key_use, "statement": statement, "endorsement": endorsement,
               "current": current, "now": NOW + 5, "result": result,
               "new_key": new.map(PublicKey::to_jwk)})
    };
    json!({
        "about": "Key statements (pushauth-key+jwt). Enrollment cases are checked against keys.json's device and approval keys; rotation cases name the current key of that use (`device`, `approval`, or `new` = the statement's own key, a retry after the swap) and the result: `replace`, `already_current` or an error code.",
        "new_device_jwk": new_device.public().to_jwk(),
        "new_approval_jwk": new_approval.public().to_jwk(),
        "enrollment": [
            {"name": "valid", "token": binding, "now": NOW + 5, "result": "ok"},
            {"name": "bound_to_other_device_key", "token": binding_to_other, "now": NOW + 5, "result": "key_binding_mismatch"},
            {"name": "stale", "token": binding, "now": NOW + 61, "result": "stale_request"},
        ],
        "rotation": [
            rot("device_key", "device", &device_rotation, None, "device", Some(&new_device.public()), "replace"),
            rot("device_key_retry_after_swap", "device", &device_rotation, None, "new", Some(&new_device.public()), "already_current"),
            rot("approval_key", "approval", &approval_rotation, Some(&endorsement), "approval", Some(&new_approval.public()), "replace"),
            rot("approval_key_retry_after_swap", "approval", &approval_rotation, Some(&endorsement), "new", Some(&new_approval.public()), "already_current"),
            rot("approval_key_without_endorsement", "approval", &approval_rotation, None, "approval", None, "endorsement_required"),
            rot("approval_key_endorsed_by_device_key", "approval", &approval_rotation, Some(&endorsed_by_device_key), "approval", None, "bad_endorsement"),
            rot("statement_for_other_use", "approval", &device_rotation, Some(&endorsement), "approval", None, "wrong_key_use"),
        ]
    })
}

/// migration.json: migration grants signed by the approval key.
fn migration_vectors(k: &Keys) -> Value {
    let claims = GrantClaims {
        iss: k.device_id.clone(),
        aud: ISSUER.into(),
        jti: "mXf0q2n1XyTQm4x7cK1ZbA".into(),
        iat: UnixTime(NOW),
        exp: UnixTime(NOW + 300),
    };
    let grant = migration::sign_grant(&claims, &k.approval).unwrap();
    let by_device_key = migration::sign_grant(&claims, &k.device).unwrap();
    let too_long = migration::sign_grant(
        &GrantClaims {
            exp: UnixTime(NOW + 601),
            ..claims.clone()
        },
        &k.approval,
    )
    .unwrap();
    let d = k.device_id.as_str();
    let other = "11111111-2222-4333-8444-555555555555";
    json!({
        "about": "Migration grants (pushauth-migrate+jwt), checked with keys.json's approval key for the requesting `device`; skew 30 s.",
        "cases": [
            {"name": "valid", "token": grant, "device": d, "now": NOW + 5, "result": "ok", "claims": claims},
            {"name": "expired", "token": grant, "device": d, "now": NOW + 300, "result": "expired"},
            {"name": "other_device", "token": grant, "device": other, "now": NOW + 5, "result": "wrong_key_id"},
            {"name": "signed_by_device_key", "token": by_device_key, "device": d, "now": NOW + 5, "result": "bad_signature"},
            {"name": "lifetime_over_600_s", "token": too_long, "device": d, "now": NOW + 5, "result": "lifetime_too_long"},
        ]
    })
}

fn to_der(raw: &[u8; 64]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if v.is_empty() || v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![2, v.len() as u8];
        out.extend(v);
        out
    }
    let mut body = int(&raw[..32]);
    body.extend(int(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

fn signature_cases(key: &SoftwareSigningKey) -> Value {
    let msg = "pushauth signature vector";
    let raw = key.sign_raw(msg.as_bytes()).unwrap();
    let der = to_der(&raw);
    let mut bad_der = der.clone();
    bad_der[1] += 1;
    json!([
        {"name": "raw", "message": msg, "signature": b64::encode(raw), "valid": true, "raw": b64::encode(raw)},
        {"name": "der", "message": msg, "signature": b64::encode(&der), "valid": true, "raw": b64::encode(raw)},
        {"name": "der_bad_length", "message": msg, "signature": b64::encode(&bad_der), "valid": false},
        {"name": "too_short", "message": msg, "signature": b64::encode(&raw[..63]), "valid": false},
    ])
}

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
