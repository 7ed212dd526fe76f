//! Builders of the vector files: transactions, challenges, push envelopes, approval
//! proofs, and the `generate` entry point that writes them all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use super::*;

pub(crate) fn sample_transactions() -> Vec<(&'static str, Transaction)> {
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
pub(crate) fn newer_server_txn() -> ReceivedTransaction {
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
pub(crate) fn transaction_vectors() -> Value {
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
pub(crate) fn challenge_vectors(k: &Keys, claims: &ChallengeClaims, good_challenge: &str) -> Value {
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
pub(crate) fn push_vectors(k: &Keys, claims: &ChallengeClaims) -> Value {
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

pub(crate) fn challenge_claims(
    k: &Keys,
    txn: ReceivedTransaction,
    pin: Option<&str>,
) -> ChallengeClaims {
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
pub(crate) fn expectation_json(
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

pub(crate) fn check_proof_case(
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
pub(crate) fn generate() {
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

pub(crate) fn decision_input<'a>(
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
pub(crate) fn proof_vectors(
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
