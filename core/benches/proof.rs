//! Core benchmarks: approval proof create/verify next to raw ring ES256 sign/verify
//! in the same run (the target is proof verification ≥ 50 % of raw verify
//! throughput), canonicalisation, and push payload encryption.
//!
//! `cargo bench -p pushauth-core --bench proof`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, ChallengeClaims};
use pushauth_core::ids::{ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
use pushauth_core::keys::{KeyAgreement, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::money::{Currency, Money};
use pushauth_core::proof::{self, Decision, DecisionInput, UserVerification};
use pushauth_core::push::PushDetails;
use pushauth_core::transaction::{Payee, Transaction, TransactionKind};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

fn txn() -> Transaction {
    Transaction {
        provider: Provider::Enfuce,
        reference: ProviderRef::parse("6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11").unwrap(),
        kind: TransactionKind::Payment,
        amount: Some(Money::from_minor(4990, Currency::parse("EUR").unwrap()).unwrap()),
        payee: Some(Payee::parse("Example Shop").unwrap()),
        details: Default::default(),
    }
}

fn benches(c: &mut Criterion) {
    let device_key = SoftwareSigningKey::generate().unwrap();
    let server_key = SoftwareSigningKey::generate().unwrap();
    let device = DeviceId::generate().unwrap();
    let claims = ChallengeClaims {
        iss: "https://pushauth.example".into(),
        aud: device.clone(),
        jti: ChallengeId::generate().unwrap(),
        nonce: Nonce::generate().unwrap(),
        txn: txn().received(),
        iat: UnixTime(1_000),
        exp: UnixTime(1_600),
        pin: None,
    };
    let token = challenge::sign(&claims, &server_key).unwrap();
    let verified = challenge::verify(
        &token,
        &server_key.public(),
        &claims.iss,
        &device,
        UnixTime(1_010),
        30,
    )
    .unwrap();
    let input = DecisionInput {
        device: &device,
        decision: Decision::Approve,
        reason: None,
        uv: UserVerification::Biometric,
        processor_output: None,
        now: UnixTime(1_010),
        lifetime_secs: 120,
    };
    let proof_claims = proof::claims_for(&verified, &input).unwrap();
    let proof_token = proof::sign(&proof_claims, &device_key).unwrap();
    let public = device_key.public();
    let digest = txn().digest();
    let expect = proof::Expectations {
        device: &device,
        kind: proof::ProofKind::Approval,
        key: &public,
        min_user_verification: proof::UserVerification::Passcode,
        audience: &claims.iss,
        challenge: &claims.jti,
        nonce: &claims.nonce,
        txn: &digest,
        deadline: claims.exp,
        processor_output: None,
        now: UnixTime(1_020),
        skew_secs: 30,
    };
    proof::verify(&proof_token, &expect).unwrap();

    let message = proof_token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let raw_sig = device_key.sign_raw(&message).unwrap();
    let sec1 = public.to_sec1();

    let mut g = c.benchmark_group("es256");
    g.bench_function("ring_raw_sign", |b| {
        b.iter(|| device_key.sign_raw(black_box(&message)).unwrap())
    });
    g.bench_function("ring_raw_verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &sec1[..])
                .verify(black_box(&message), &raw_sig)
                .unwrap()
        })
    });
    g.bench_function("proof_create", |b| {
        b.iter(|| {
            let claims = proof::claims_for(&verified, black_box(&input)).unwrap();
            proof::sign(&claims, &device_key).unwrap()
        })
    });
    g.bench_function("proof_verify", |b| {
        b.iter(|| proof::verify(black_box(&proof_token), &expect).unwrap())
    });
    g.bench_function("challenge_sign", |b| {
        b.iter(|| challenge::sign(black_box(&claims), &server_key).unwrap())
    });
    g.bench_function("challenge_verify", |b| {
        b.iter(|| {
            challenge::verify(
                black_box(&token),
                &server_key.public(),
                &claims.iss,
                &device,
                UnixTime(1_010),
                30,
            )
            .unwrap()
        })
    });
    g.finish();

    let t = txn();
    c.bench_function("canonical_digest", |b| b.iter(|| black_box(&t).digest()));

    let agreement = SoftwareAgreementKey::generate().unwrap();
    let details = PushDetails {
        v: 1,
        challenge: claims.jti.clone(),
        txn: txn().received(),
        exp: claims.exp,
        otp: None,
    };
    let recipient = agreement.public_key().unwrap();
    let envelope = details.seal(&recipient).unwrap();
    c.bench_function("push_seal", |b| {
        b.iter(|| black_box(&details).seal(&recipient).unwrap())
    });
    c.bench_function("push_open", |b| {
        b.iter(|| PushDetails::open(&agreement, &claims.jti, black_box(&envelope)).unwrap())
    });
}

criterion_group!(core, benches);
criterion_main!(core);
