//! Property tests: any change to a signed field breaks verification, and the parsers
//! of untrusted tokens and envelopes never panic, whatever the input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use std::sync::OnceLock;

use proptest::prelude::*;
use pushauth_core::challenge::{self, ChallengeClaims, VerifiedChallenge};
use pushauth_core::ids::{ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
use pushauth_core::keys::{SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::money::{Currency, Money};
use pushauth_core::proof::{self, Decision, DecisionInput, UserVerification};
use pushauth_core::transaction::{Payee, Transaction, TransactionKind};
use pushauth_core::{UnixTime, b64, jws, push, request};

struct Fixture {
    device_key: SoftwareSigningKey,
    device: DeviceId,
    verified: VerifiedChallenge,
    token: String,
}

fn txn() -> Transaction {
    Transaction {
        provider: Provider::Enfuce,
        reference: ProviderRef::parse("session-1").unwrap(),
        kind: TransactionKind::Payment,
        amount: Some(Money::from_minor(4990, Currency::parse("EUR").unwrap()).unwrap()),
        payee: Some(Payee::parse("Example Shop").unwrap()),
        details: Default::default(),
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let server = SoftwareSigningKey::generate().unwrap();
        let device_key = SoftwareSigningKey::generate().unwrap();
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
        let t = challenge::sign(&claims, &server).unwrap();
        let verified = challenge::verify(
            &t,
            &server.public(),
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
        let token =
            proof::sign(&proof::claims_for(&verified, &input).unwrap(), &device_key).unwrap();
        Fixture {
            device_key,
            device,
            verified,
            token,
        }
    })
}

fn verify_with(
    f: &Fixture,
    t: &Transaction,
) -> Result<proof::VerifiedDecision, pushauth_core::Error> {
    let c = f.verified.claims();
    let key = f.device_key.public();
    let digest = t.digest();
    proof::verify(
        &f.token,
        &proof::Expectations {
            kind: proof::ProofKind::Approval,
            device: &f.device,
            key: &key,
            min_user_verification: proof::UserVerification::Passcode,
            audience: &c.iss,
            challenge: &c.jti,
            nonce: &c.nonce,
            txn: &digest,
            deadline: c.exp,
            processor_output: None,
            now: UnixTime(1_020),
            skew_secs: 30,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Changing the amount, currency or payee the server holds makes the proof fail.
    #[test]
    fn any_change_to_amount_currency_or_payee_is_refused(
        minor in 0i64..10_000_000,
        currency in prop::sample::select(vec!["EUR", "USD", "JPY", "BHD", "SEK"]),
        payee in "[ -~]{1,40}",
    ) {
        let f = fixture();
        prop_assert!(verify_with(f, &txn()).is_ok());
        let changed = Transaction {
            amount: Some(Money::from_minor(minor, Currency::parse(currency).unwrap()).unwrap()),
            payee: Payee::parse(&payee).ok(),
            ..txn()
        };
        prop_assume!(changed != txn());
        prop_assert_eq!(verify_with(f, &changed).unwrap_err(), pushauth_core::Error::TransactionMismatch);
    }

    /// Flipping any single byte of the token makes it fail (never verify, never panic).
    #[test]
    fn any_byte_flip_breaks_the_proof(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = fixture();
        let mut bytes = f.token.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(tampered) = String::from_utf8(bytes) {
            let c = f.verified.claims();
            let key = f.device_key.public();
            let digest = txn().digest();
            let r = proof::verify(&tampered, &proof::Expectations {
                kind: proof::ProofKind::Approval, device: &f.device, key: &key, min_user_verification: proof::UserVerification::Passcode, audience: &c.iss, challenge: &c.jti, nonce: &c.nonce,
                txn: &digest, deadline: c.exp, processor_output: None, now: UnixTime(1_020), skew_secs: 30,
            });
            prop_assert!(r.is_err(), "tampered token verified at byte {}", i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The JWS parser never panics on arbitrary text, nor on arbitrary JSON headers.
    #[test]
    fn jws_parser_never_panics(text in ".{0,300}", header in ".{0,120}", payload in ".{0,120}") {
        let _ = jws::parse(&text, proof::APPROVAL_TYP);
        let token = format!("{}.{}.{}", b64::encode(&header), b64::encode(&payload), b64::encode([0u8; 64]));
        let _ = jws::parse(&token, proof::APPROVAL_TYP).map(|u| u.verify::<serde_json::Value>(&fixture().device_key.public()));
        let _ = proof::peek_device(&text);
        let _ = request::peek_device(&token);
    }

    /// Claims of any JSON shape never panic the typed decoders.
    #[test]
    fn claims_decoders_never_panic(json in "[\\[\\]{}\":,0-9a-z_ .-]{0,200}") {
        let _ = serde_json::from_str::<proof::ApprovalClaims>(&json);
        let _ = serde_json::from_str::<ChallengeClaims>(&json);
        let _ = serde_json::from_str::<Transaction>(&json);
        let _ = serde_json::from_str::<push::PushDetails>(&json);
    }

    /// Push envelopes: arbitrary input is refused, never a panic.
    #[test]
    fn push_envelope_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        static KEY: OnceLock<SoftwareAgreementKey> = OnceLock::new();
        let key = KEY.get_or_init(|| SoftwareAgreementKey::generate().unwrap());
        let c = ChallengeId::parse("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f").unwrap();
        prop_assert!(push::open(key, &c, &b64::encode(&bytes)).is_err());
        let mut with_version = vec![1u8];
        with_version.extend(&bytes);
        prop_assert!(push::open(key, &c, &b64::encode(&with_version)).is_err());
    }

    /// DER normalisation never panics and only accepts what re-encodes to itself.
    #[test]
    fn signature_normaliser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = pushauth_core::keys::normalize_signature(&bytes);
    }
}
