//! Tests of the approval proof (claims, signing, every refusal of `verify`).

use super::*;
use crate::challenge;
use crate::keys::SoftwareSigningKey;

struct Fixture {
    server: SoftwareSigningKey,
    device_key: SoftwareSigningKey,
    device: DeviceId,
    challenge: VerifiedChallenge,
}

fn fixture() -> Fixture {
    let server = SoftwareSigningKey::generate().unwrap();
    let device_key = SoftwareSigningKey::generate().unwrap();
    let device = DeviceId::generate().unwrap();
    let c = challenge::tests::claims(&device);
    let token = challenge::sign(&c, &server).unwrap();
    let challenge = challenge::verify(
        &token,
        &server.public(),
        &c.iss,
        &device,
        UnixTime(1_100),
        30,
    )
    .unwrap();
    Fixture {
        server,
        device_key,
        device,
        challenge,
    }
}

fn input(f: &Fixture, decision: Decision) -> DecisionInput<'_> {
    DecisionInput {
        device: &f.device,
        decision,
        reason: None,
        uv: UserVerification::Biometric,
        processor_output: Some("sdk-output"),
        now: UnixTime(1_100),
        lifetime_secs: 120,
    }
}

fn expect<'a>(f: &'a Fixture, key: &'a PublicKey) -> Expectations<'a> {
    let c = f.challenge.claims();
    Expectations {
        kind: ProofKind::Approval,
        device: &f.device,
        key,
        min_user_verification: UserVerification::Passcode,
        audience: &c.iss,
        challenge: &c.jti,
        nonce: &c.nonce,
        txn: Box::leak(Box::new(c.txn.digest())),
        deadline: c.exp,
        processor_output: Some("sdk-output"),
        now: UnixTime(1_105),
        skew_secs: 30,
    }
}

#[test]
fn approve_round_trip() {
    let f = fixture();
    let claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
    assert_eq!(claims.exp, UnixTime(1_220));
    let token = sign(&claims, &f.device_key).unwrap();
    assert_eq!(peek_device(&token).unwrap(), f.device);
    assert_eq!(
        peek(&token).unwrap(),
        (ProofKind::Approval, f.device.clone())
    );
    let key = f.device_key.public();
    let v = verify(&token, &expect(&f, &key)).unwrap();
    assert_eq!(v.decision(), Decision::Approve);
    assert_eq!(v.claims(), &claims);
    let _ = &f.server;
}

#[test]
fn exp_is_capped_by_deadline() {
    let f = fixture();
    let mut i = input(&f, Decision::Deny);
    i.now = UnixTime(1_590);
    i.reason = Some(DenyReason::NotMe);
    let claims = claims_for(&f.challenge, &i).unwrap();
    assert_eq!(claims.exp, UnixTime(1_600));
    assert!(
        claims_for(
            &f.challenge,
            &DecisionInput {
                reason: Some(DenyReason::NotMe),
                ..input(&f, Decision::Approve)
            }
        )
        .is_err()
    );
}

#[test]
fn every_mismatch_is_refused() {
    let f = fixture();
    let key = f.device_key.public();
    let claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
    let token = sign(&claims, &f.device_key).unwrap();
    let base = expect(&f, &key);

    let other_key = SoftwareSigningKey::generate().unwrap().public();
    let other_device = DeviceId::generate().unwrap();
    let other_challenge = ChallengeId::generate().unwrap();
    let other_nonce = Nonce::generate().unwrap();
    let other_txn = TxnDigest::from_bytes([9; 32]);
    let cases: Vec<(Expectations<'_>, Error)> = vec![
        (
            Expectations {
                key: &other_key,
                ..base.clone()
            },
            Error::BadSignature,
        ),
        (
            Expectations {
                device: &other_device,
                ..base.clone()
            },
            Error::WrongKeyId,
        ),
        (
            Expectations {
                audience: "https://other",
                ..base.clone()
            },
            Error::WrongAudience,
        ),
        (
            Expectations {
                challenge: &other_challenge,
                ..base.clone()
            },
            Error::WrongChallenge,
        ),
        (
            Expectations {
                nonce: &other_nonce,
                ..base.clone()
            },
            Error::WrongNonce,
        ),
        (
            Expectations {
                txn: &other_txn,
                ..base.clone()
            },
            Error::TransactionMismatch,
        ),
        (
            Expectations {
                processor_output: Some("swapped"),
                ..base.clone()
            },
            Error::ProcessorOutputMismatch,
        ),
        (
            Expectations {
                processor_output: None,
                ..base.clone()
            },
            Error::ProcessorOutputMismatch,
        ),
        (
            Expectations {
                now: UnixTime(1_601),
                ..base.clone()
            },
            Error::PastDeadline,
        ),
        (
            Expectations {
                now: UnixTime(1_000),
                skew_secs: 0,
                ..base.clone()
            },
            Error::IssuedInFuture,
        ),
        (
            Expectations {
                deadline: UnixTime(1_150),
                now: UnixTime(1_140),
                ..base.clone()
            },
            Error::LifetimeTooLong,
        ),
    ];
    for (e, err) in cases {
        assert_eq!(verify(&token, &e).unwrap_err(), err);
    }
    // expired: proof lifetime over while the challenge is still open
    let mut short = input(&f, Decision::Approve);
    short.lifetime_secs = 10;
    let t = sign(&claims_for(&f.challenge, &short).unwrap(), &f.device_key).unwrap();
    assert_eq!(
        verify(
            &t,
            &Expectations {
                now: UnixTime(1_141),
                ..base.clone()
            }
        )
        .unwrap_err(),
        Error::Expired
    );
}

#[test]
fn iss_must_match_kid() {
    let f = fixture();
    let key = f.device_key.public();
    let mut claims = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
    let real = f.device.clone();
    claims.iss = DeviceId::generate().unwrap();
    let token = jws::sign(
        APPROVAL_TYP,
        Some(real.as_str()),
        None,
        &claims,
        &f.device_key,
    )
    .unwrap();
    assert_eq!(
        verify(&token, &expect(&f, &key)).unwrap_err(),
        Error::WrongIssuer
    );
}

#[test]
fn decline_proofs_have_their_own_type() {
    let f = fixture();
    let device_key = SoftwareSigningKey::generate().unwrap();
    let mut i = input(&f, Decision::Deny);
    i.reason = Some(DenyReason::Declined);
    i.uv = UserVerification::None;
    let claims = claims_for(&f.challenge, &i).unwrap();
    let token = sign(&claims, &device_key).unwrap();
    assert_eq!(
        peek(&token).unwrap(),
        (ProofKind::Decline, f.device.clone())
    );
    let key = device_key.public();
    let e = Expectations {
        kind: ProofKind::Decline,
        // a decline needs no user verification, whatever the approval minimum
        min_user_verification: UserVerification::Biometric,
        ..expect(&f, &key)
    };
    let v = verify(&token, &e).unwrap();
    assert_eq!(v.decision(), Decision::Deny);
    assert_eq!(v.reason(), Some(DenyReason::Declined));
    // a decline token is not an approval proof
    assert_eq!(
        verify(
            &token,
            &Expectations {
                kind: ProofKind::Approval,
                ..e.clone()
            }
        )
        .unwrap_err(),
        Error::WrongType {
            expected: APPROVAL_TYP
        }
    );
}

#[test]
fn decision_must_match_type() {
    let f = fixture();
    let key = f.device_key.public();
    // a deny signed under the approval typ (and the reverse) is refused
    let deny = claims_for(&f.challenge, &input(&f, Decision::Deny)).unwrap();
    let as_approval = jws::sign(
        APPROVAL_TYP,
        Some(f.device.as_str()),
        None,
        &deny,
        &f.device_key,
    )
    .unwrap();
    assert_eq!(
        verify(&as_approval, &expect(&f, &key)).unwrap_err(),
        Error::WrongDecision
    );
    let approve = claims_for(&f.challenge, &input(&f, Decision::Approve)).unwrap();
    let as_decline = jws::sign(
        DECLINE_TYP,
        Some(f.device.as_str()),
        None,
        &approve,
        &f.device_key,
    )
    .unwrap();
    let e = Expectations {
        kind: ProofKind::Decline,
        ..expect(&f, &key)
    };
    assert_eq!(verify(&as_decline, &e).unwrap_err(), Error::WrongDecision);
}

#[test]
fn user_verification_minimum() {
    use UserVerification::{Biometric, None as NoUv, Passcode, Unknown};
    let order = [Unknown, NoUv, Passcode, Biometric];
    for (i, a) in order.iter().enumerate() {
        for (j, b) in order.iter().enumerate() {
            assert_eq!(a.satisfies(*b), i >= j, "{a:?} vs {b:?}");
        }
    }
    let f = fixture();
    let key = f.device_key.public();
    for (uv, min, ok) in [
        (NoUv, Passcode, false),
        (Passcode, Passcode, true),
        (Biometric, Passcode, true),
        (Passcode, Biometric, false),
        (NoUv, NoUv, true),
    ] {
        let mut i = input(&f, Decision::Approve);
        i.uv = uv;
        let token = sign(&claims_for(&f.challenge, &i).unwrap(), &f.device_key).unwrap();
        let e = Expectations {
            min_user_verification: min,
            ..expect(&f, &key)
        };
        let got = verify(&token, &e);
        if ok {
            got.unwrap();
        } else {
            assert_eq!(
                got.unwrap_err(),
                Error::InsufficientUserVerification,
                "{uv:?} {min:?}"
            );
        }
    }
    // a uv this version does not know parses (forward compatibility) and ranks lowest
    let parsed: UserVerification = serde_json::from_str("\"hardware_token\"").unwrap();
    assert_eq!(parsed, Unknown);
}
