//! Activation codes, devices and request nonces.

use pushauth_core::ids::{CardholderId, DeviceId};

use super::*;

/// A code enrolls exactly one device; then `CodeUsed`. Unknown and expired codes are
/// told apart; a code is valid up to and including `expires_at`.
pub async fn activation_single_use<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let code = new_code(&*s, &anna, T0.plus(1_000)).await;

    let first = new_device(Some("tok-1"));
    let first_id = first.id.clone();
    let EnrollOutcome::Enrolled(device) = s
        .device_enroll(&code, T0, first.clone(), draft("device.enrolled"))
        .await
        .unwrap()
    else {
        panic!("first use must enroll");
    };
    assert_eq!(device.id, first_id);
    assert_eq!(device.cardholder, anna);
    assert_eq!(
        (device.status, device.failures, device.platform),
        (DeviceStatus::Active, 0, Platform::Ios)
    );
    assert_eq!(
        (
            device.device_key.clone(),
            device.approval_key.clone(),
            device.agreement_key.clone()
        ),
        (first.device_key, first.approval_key, first.agreement_key)
    );
    assert_eq!(device.push, first.push);
    assert_eq!(s.device_get(&first_id).await.unwrap(), Some(device.clone()));

    let second = new_device(None);
    let second_id = second.id.clone();
    let again = s
        .device_enroll(&code, T0, second, draft("device.enrolled"))
        .await
        .unwrap();
    assert!(
        matches!(again, EnrollOutcome::CodeUsed),
        "second use: {again:?}"
    );
    assert_eq!(
        s.device_get(&second_id).await.unwrap(),
        None,
        "nothing written for a used code"
    );

    let unknown = s
        .device_enroll(
            &KeyHash::of(b"never issued"),
            T0,
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    assert!(
        matches!(unknown, EnrollOutcome::CodeUnknown),
        "unknown code: {unknown:?}"
    );

    let short = new_code(&*s, &anna, T0.plus(1_000)).await;
    let late = s
        .device_enroll(
            &short,
            T0.plus(1_001),
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    assert!(
        matches!(late, EnrollOutcome::CodeExpired),
        "expired code: {late:?}"
    );
    let on_time = s
        .device_enroll(
            &short,
            T0.plus(1_000),
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    assert!(
        matches!(on_time, EnrollOutcome::Enrolled(_)),
        "valid at expires_at: {on_time:?}"
    );
    assert_eq!(s.device_list(&anna).await.unwrap().len(), 2);

    let orphan = NewActivation {
        code_hash: KeyHash::of(b"orphan"),
        cardholder: CardholderId::generate().unwrap(),
        expires_at: T0.plus(1_000),
        created_at: T0,
    };
    let orphan = s
        .activation_create(orphan, draft("activation.created"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound(_))),
        "unknown cardholder: {orphan:?}"
    );
    let dup = NewActivation {
        code_hash: code,
        cardholder: anna.clone(),
        expires_at: T0.plus(1_000),
        created_at: T0,
    };
    assert!(matches!(
        s.activation_create(dup, draft("activation.created")).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Eight concurrent enrollments with one code: exactly one device is created.
pub async fn device_enroll_concurrent<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let code = new_code(&*s, &anna, T0.plus(60_000)).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.device_enroll(&code, T0, new_device(None), draft("device.enrolled"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut enrolled, mut used) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            EnrollOutcome::Enrolled(_) => enrolled += 1,
            EnrollOutcome::CodeUsed => used += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((enrolled, used), (1, 7));
    assert_eq!(s.device_list(&anna).await.unwrap().len(), 1);
}

/// Lock, unlock (resets failures), revoke (final), unknown device.
pub async fn device_status<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    assert_eq!(
        s.device_get(&d.id)
            .await
            .unwrap()
            .unwrap()
            .server_kid
            .as_deref(),
        Some("server-kid-1"),
        "the pinned server key's kid is kept"
    );
    assert!(
        s.device_set_status(&d.id, DeviceStatus::Locked, draft("device.locked"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().status,
        DeviceStatus::Locked
    );
    let failure = s
        .device_record_failure(&d.id, 5, T0, draft("proof.refused"))
        .await
        .unwrap();
    assert_eq!(
        failure,
        FailureOutcome {
            failures: 1,
            locked: true
        }
    );

    assert!(
        s.device_set_status(&d.id, DeviceStatus::Active, draft("device.unlocked"))
            .await
            .unwrap()
    );
    let active = s.device_get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (active.status, active.failures),
        (DeviceStatus::Active, 0),
        "unlock resets the counter"
    );

    assert!(
        s.device_set_status(&d.id, DeviceStatus::Revoked, draft("device.revoked"))
            .await
            .unwrap()
    );
    assert!(
        !s.device_set_status(&d.id, DeviceStatus::Active, draft("device.unlocked"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().status,
        DeviceStatus::Revoked,
        "revoked is final"
    );
    assert!(
        !s.device_set_status(
            &DeviceId::generate().unwrap(),
            DeviceStatus::Locked,
            draft("device.locked")
        )
        .await
        .unwrap()
    );
    assert_eq!(s.device_list(&anna).await.unwrap().len(), 1);
}

/// Consecutive failures lock an active device at `lock_after`; an accepted decision
/// resets the counter; an unknown device is `NotFound`.
pub async fn device_failures_lock_and_decide_resets<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    for n in 1..=4 {
        let out = s
            .device_record_failure(&d.id, 5, T0.plus(n.into()), draft("proof.refused"))
            .await
            .unwrap();
        assert_eq!(
            out,
            FailureOutcome {
                failures: n,
                locked: false
            }
        );
    }
    let fifth = s
        .device_record_failure(&d.id, 5, T0.plus(5), draft("proof.refused"))
        .await
        .unwrap();
    assert_eq!(
        fifth,
        FailureOutcome {
            failures: 5,
            locked: true
        }
    );
    let sixth = s
        .device_record_failure(&d.id, 5, T0.plus(6), draft("proof.refused"))
        .await
        .unwrap();
    assert_eq!(
        sixth,
        FailureOutcome {
            failures: 6,
            locked: true
        }
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().status,
        DeviceStatus::Locked
    );
    let unknown = s
        .device_record_failure(
            &DeviceId::generate().unwrap(),
            5,
            T0,
            draft("proof.refused"),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "unknown device: {unknown:?}"
    );

    let e = enrolled(&*s, &anna, None).await;
    for n in 1..=3 {
        s.device_record_failure(&e.id, 5, T0.plus(n), draft("proof.refused"))
            .await
            .unwrap();
    }
    assert_eq!(s.device_get(&e.id).await.unwrap().unwrap().failures, 3);
    // A new challenge of anna's, approved by `e` at `at`.
    let approve = |at: Millis| {
        let (s, anna, e) = (&s, &anna, &e);
        async move {
            let c = created(&**s, new_challenge(anna, T0.plus(60_000)), vec![]).await;
            let out = s
                .challenge_decide(
                    decision(&c.id, &e.id, DecisionKind::Approve, at),
                    vec![],
                    draft("decision.accepted"),
                )
                .await;
            assert!(matches!(out, Ok(DecideOutcome::Accepted(_))), "{out:?}");
        }
    };
    approve(T0.plus(10)).await;
    let after = s.device_get(&e.id).await.unwrap().unwrap();
    assert_eq!(
        (after.failures, after.status, after.updated_at),
        (0, DeviceStatus::Active, T0.plus(10)),
        "an accepted decision resets failures"
    );
    // With no failures to reset, a decision leaves the device's row alone.
    approve(T0.plus(20)).await;
    assert_eq!(s.device_get(&e.id).await.unwrap().unwrap(), after);
}

/// A dead-token report clears the push target only if it still is that token.
pub async fn device_push_token_dead<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok-A")).await;
    assert!(
        !s.device_push_token_dead(&d.id, "tok-B", draft("push.token_dead"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.device_get(&d.id)
            .await
            .unwrap()
            .unwrap()
            .push
            .map(|p| p.token),
        Some("tok-A".into())
    );
    assert!(
        s.device_push_token_dead(&d.id, "tok-A", draft("push.token_dead"))
            .await
            .unwrap()
    );
    assert_eq!(s.device_get(&d.id).await.unwrap().unwrap().push, None);
    assert!(
        !s.device_push_token_dead(&d.id, "tok-A", draft("push.token_dead"))
            .await
            .unwrap()
    );

    let fresh = PushTarget {
        token: "tok-C".into(),
        environment: Some(PushEnvironment::Production),
    };
    assert_eq!(
        s.device_set_push_token(&d.id, Some(fresh.clone()), draft("push.token_set"))
            .await
            .unwrap(),
        DeviceWrite::Done
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().push,
        Some(fresh)
    );
    assert_eq!(
        s.device_set_push_token(&d.id, None, draft("push.token_set"))
            .await
            .unwrap(),
        DeviceWrite::Done
    );
    assert_eq!(s.device_get(&d.id).await.unwrap().unwrap().push, None);
    let unknown = DeviceId::generate().unwrap();
    assert_eq!(
        s.device_set_push_token(&unknown, None, draft("push.token_set"))
            .await
            .unwrap(),
        DeviceWrite::NotFound
    );
}

/// Every platform is stored and read back (the columns' CHECK constraints know them
/// all), with its push target: a Web Push device's token is its subscription JSON,
/// long and full of quotes, and comes back byte for byte.
pub async fn device_every_platform<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let subscription = format!(
        r#"{{"endpoint":"https://push.example/wpush/v2/{}","keys":{{"p256dh":"{}","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}}}"#,
        "x".repeat(200),
        "B".repeat(87)
    );
    for &platform in Platform::ALL {
        let code = new_code(&*s, &anna, T0.plus(600_000)).await;
        let mut device = new_device(None);
        device.platform = platform;
        device.push = Some(PushTarget {
            token: subscription.clone(),
            environment: (platform == Platform::Ios).then_some(PushEnvironment::Production),
        });
        let id = device.id.clone();
        let outcome = s
            .device_enroll(&code, T0, device.clone(), draft("device.enrolled"))
            .await
            .unwrap();
        assert!(
            matches!(outcome, EnrollOutcome::Enrolled(_)),
            "{platform}: {outcome:?}"
        );
        let stored = s.device_get(&id).await.unwrap().unwrap();
        assert_eq!((stored.platform, stored.push), (platform, device.push));
    }
}

/// Key rotation is a compare-and-swap on the old thumbprint.
pub async fn device_rotate_key_cas<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let old = d.device_key.thumbprint.clone();
    let next = device_key("rotated");
    let rotate = |old: String, key: DeviceKey| {
        let (s, id) = (s.clone(), d.id.clone());
        async move {
            s.device_rotate_key(&id, KeyUse::Device, &old, key, draft("device.key_rotated"))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        rotate("tp-wrong".into(), next.clone()).await,
        RotateOutcome::KeyChanged
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().device_key,
        d.device_key
    );
    assert_eq!(
        rotate(old.clone(), next.clone()).await,
        RotateOutcome::Rotated
    );
    let after = s.device_get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (after.device_key, after.approval_key, after.agreement_key),
        (next.clone(), d.approval_key, d.agreement_key)
    );
    assert_eq!(
        rotate(old.clone(), device_key("again")).await,
        RotateOutcome::KeyChanged
    );
    let unknown = DeviceId::generate().unwrap();
    assert_eq!(
        s.device_rotate_key(
            &unknown,
            KeyUse::Device,
            &old,
            next,
            draft("device.key_rotated")
        )
        .await
        .unwrap(),
        RotateOutcome::NotFound
    );
}

/// A request `jti` is accepted once per device.
pub async fn request_nonce_replay<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let e = enrolled(&*s, &anna, None).await;
    assert!(
        s.request_nonce_use(&d.id, "jti-1", T0.plus(60_000))
            .await
            .unwrap()
    );
    assert!(
        !s.request_nonce_use(&d.id, "jti-1", T0.plus(60_000))
            .await
            .unwrap(),
        "replay refused"
    );
    assert!(
        s.request_nonce_use(&e.id, "jti-1", T0.plus(60_000))
            .await
            .unwrap(),
        "nonces are per device"
    );
    assert!(
        s.request_nonce_use(&d.id, "jti-2", T0.plus(60_000))
            .await
            .unwrap()
    );
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (s, id) = (s.clone(), d.id.clone());
            tokio::spawn(async move {
                s.request_nonce_use(&id, "jti-race", T0.plus(60_000))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1, "one of six concurrent uses wins");
}

/// Purging forgets nonces that expired strictly before `now`.
pub async fn request_nonce_purge<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    for (jti, exp) in [("j1", 10), ("j2", 20), ("j3", 30)] {
        assert!(s.request_nonce_use(&d.id, jti, T0.plus(exp)).await.unwrap());
    }
    assert_eq!(s.request_nonce_purge(T0.plus(20)).await.unwrap(), 1);
    assert!(
        !s.request_nonce_use(&d.id, "j2", T0.plus(20)).await.unwrap(),
        "j2 is kept until it expires"
    );
    assert!(
        s.request_nonce_use(&d.id, "j1", T0.plus(10)).await.unwrap(),
        "j1 was forgotten"
    );
    assert_eq!(s.request_nonce_purge(T0.plus(1_000)).await.unwrap(), 3);
    assert_eq!(s.request_nonce_purge(T0.plus(1_000)).await.unwrap(), 0);
}
