//! Protocol v2 device keys: rotation of each key with idempotent retry, the active
//! status checked in the same transaction as a key or push-token write, and single-use
//! migration grants.

use pushauth_core::ids::DeviceId;

use super::*;

async fn rotate<S: Store>(
    s: &S,
    id: &DeviceId,
    key_use: KeyUse,
    old: &str,
    new: &DeviceKey,
) -> RotateOutcome {
    s.device_rotate_key(id, key_use, old, new.clone(), draft("device.key_rotated"))
        .await
        .unwrap()
}

/// Each key rotates on its own; a retry with the same new key (answer lost) is
/// `AlreadyCurrent` and writes nothing; a stale old key is `KeyChanged`.
pub async fn device_rotate_each_key_idempotent<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let new_approval = device_key(&format!("approval-{}", unique()));
    let old_approval = d.approval_key.thumbprint.clone();

    assert_eq!(
        rotate(&*s, &d.id, KeyUse::Approval, &old_approval, &new_approval).await,
        RotateOutcome::Rotated
    );
    let after = s.device_get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (&after.device_key, &after.approval_key),
        (&d.device_key, &new_approval),
        "only the approval key changed"
    );
    let later = AuditDraft::new(T0.plus(5_000), "device:retry", "device.key_rotated");
    assert_eq!(
        s.device_rotate_key(
            &d.id,
            KeyUse::Approval,
            &old_approval,
            new_approval.clone(),
            later
        )
        .await
        .unwrap(),
        RotateOutcome::AlreadyCurrent,
        "retry after a lost answer"
    );
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().updated_at,
        after.updated_at,
        "a retry writes nothing"
    );
    // the approval thumbprint does not match the device key column, and vice versa
    let new_device = device_key(&format!("device-{}", unique()));
    assert_eq!(
        rotate(
            &*s,
            &d.id,
            KeyUse::Device,
            &new_approval.thumbprint,
            &new_device
        )
        .await,
        RotateOutcome::KeyChanged
    );
    assert_eq!(
        rotate(
            &*s,
            &d.id,
            KeyUse::Device,
            &d.device_key.thumbprint,
            &new_device
        )
        .await,
        RotateOutcome::Rotated
    );
    assert_eq!(
        rotate(
            &*s,
            &d.id,
            KeyUse::Device,
            &d.device_key.thumbprint,
            &new_device
        )
        .await,
        RotateOutcome::AlreadyCurrent
    );
    // a third key presented with the superseded old key
    assert_eq!(
        rotate(
            &*s,
            &d.id,
            KeyUse::Approval,
            &old_approval,
            &device_key(&format!("third-{}", unique()))
        )
        .await,
        RotateOutcome::KeyChanged
    );
    let last = s.device_get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (last.device_key, last.approval_key, last.agreement_key),
        (new_device, new_approval, d.agreement_key)
    );
}

/// A locked or revoked device can neither rotate a key (not even a retry) nor change
/// its push token; unlocking lets it again.
pub async fn device_inactive_cannot_rotate_or_set_push_token<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok-old")).await;
    let next = device_key(&format!("next-{}", unique()));
    let token = || {
        Some(PushTarget {
            token: "tok-new".into(),
            environment: Some(PushEnvironment::Production),
        })
    };
    assert!(
        s.device_set_status(&d.id, DeviceStatus::Locked, draft("device.locked"))
            .await
            .unwrap()
    );
    for key_use in [KeyUse::Device, KeyUse::Approval] {
        let old = match key_use {
            KeyUse::Device => &d.device_key.thumbprint,
            KeyUse::Approval => &d.approval_key.thumbprint,
        };
        assert_eq!(
            rotate(&*s, &d.id, key_use, old, &next).await,
            RotateOutcome::NotActive(DeviceStatus::Locked)
        );
    }
    assert_eq!(
        s.device_set_push_token(&d.id, token(), draft("device.push_token_updated"))
            .await
            .unwrap(),
        DeviceWrite::NotActive(DeviceStatus::Locked)
    );
    let locked = s.device_get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (&locked.device_key, &locked.approval_key, &locked.push),
        (&d.device_key, &d.approval_key, &d.push),
        "nothing written while locked"
    );

    assert!(
        s.device_set_status(&d.id, DeviceStatus::Active, draft("device.unlocked"))
            .await
            .unwrap()
    );
    assert_eq!(
        rotate(&*s, &d.id, KeyUse::Device, &d.device_key.thumbprint, &next).await,
        RotateOutcome::Rotated
    );
    assert_eq!(
        s.device_set_push_token(&d.id, token(), draft("device.push_token_updated"))
            .await
            .unwrap(),
        DeviceWrite::Done
    );

    assert!(
        s.device_set_status(&d.id, DeviceStatus::Revoked, draft("device.revoked"))
            .await
            .unwrap()
    );
    // even a retry of the rotation that already happened is refused once revoked
    assert_eq!(
        rotate(&*s, &d.id, KeyUse::Device, &d.device_key.thumbprint, &next).await,
        RotateOutcome::NotActive(DeviceStatus::Revoked)
    );
    assert_eq!(
        s.device_set_push_token(&d.id, None, draft("device.push_token_updated"))
            .await
            .unwrap(),
        DeviceWrite::NotActive(DeviceStatus::Revoked)
    );
}

/// A migration grant `jti` of `device` and the hash of the code it would create.
pub(super) fn grant(device: &Device, jti: &str) -> (NewMigrationGrant, KeyHash) {
    let code_hash = KeyHash::of(unique().as_bytes());
    (
        NewMigrationGrant {
            device: device.id.clone(),
            jti: jti.into(),
            expires_at: T0.plus(300_000),
            at: T0,
            activation: NewActivation {
                code_hash,
                cardholder: device.cardholder.clone(),
                expires_at: T0.plus(300_000),
                created_at: T0,
            },
        },
        code_hash,
    )
}

/// Consumes a migration grant.
pub(super) async fn consume<S: Store>(s: &S, g: NewMigrationGrant) -> GrantOutcome {
    let audit = draft("device.migration_granted").device(&g.device);
    s.device_migration_grant(g, audit).await.unwrap()
}

/// A grant's `jti` is single use per device; the code it produced enrolls a new
/// device of the same cardholder; a reused grant writes no code; an inactive device
/// or a foreign cardholder gets nothing.
pub async fn device_migration_grant_single_use<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let bob = new_cardholder(&*s).await;
    let old = enrolled(&*s, &anna, None).await;
    let other = enrolled(&*s, &anna, None).await;

    let (g, code) = grant(&old, "jti-1");
    assert_eq!(consume(&*s, g).await, GrantOutcome::Issued);
    let EnrollOutcome::Enrolled(new) = s
        .device_enroll(&code, T0, new_device(None), draft("device.enrolled"))
        .await
        .unwrap()
    else {
        panic!("the grant's code must enroll");
    };
    assert_eq!(new.cardholder, anna);

    let (again, again_code) = grant(&old, "jti-1");
    assert_eq!(consume(&*s, again).await, GrantOutcome::Reused);
    assert!(
        matches!(
            s.device_enroll(&again_code, T0, new_device(None), draft("device.enrolled"))
                .await
                .unwrap(),
            EnrollOutcome::CodeUnknown
        ),
        "a reused grant leaves no code behind"
    );
    // jti is per device
    let (g, _) = grant(&other, "jti-1");
    assert_eq!(consume(&*s, g).await, GrantOutcome::Issued);

    // the activation must be for the device's own cardholder
    let (mut foreign, _) = grant(&old, "jti-2");
    foreign.activation.cardholder = bob;
    assert_eq!(consume(&*s, foreign).await, GrantOutcome::NotFound);
    let (mut unknown, _) = grant(&old, "jti-3");
    unknown.device = DeviceId::generate().unwrap();
    assert_eq!(consume(&*s, unknown).await, GrantOutcome::NotFound);

    assert!(
        s.device_set_status(&old.id, DeviceStatus::Locked, draft("device.locked"))
            .await
            .unwrap()
    );
    let (g, code) = grant(&old, "jti-4");
    assert_eq!(
        consume(&*s, g).await,
        GrantOutcome::NotActive(DeviceStatus::Locked)
    );
    assert!(matches!(
        s.device_enroll(&code, T0, new_device(None), draft("device.enrolled"))
            .await
            .unwrap(),
        EnrollOutcome::CodeUnknown
    ));
    // after unlocking, jti-4 was never consumed
    assert!(
        s.device_set_status(&old.id, DeviceStatus::Active, draft("device.unlocked"))
            .await
            .unwrap()
    );
    let (g, _) = grant(&old, "jti-4");
    assert_eq!(consume(&*s, g).await, GrantOutcome::Issued);
}

/// Racing tasks posting the same grant: exactly one gets a code.
pub async fn device_migration_grant_concurrent<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (s, d) = (s.clone(), d.clone());
            tokio::spawn(async move { consume(&*s, grant(&d, "jti-race").0).await })
        })
        .collect();
    let mut issued = 0;
    for t in tasks {
        match t.await.unwrap() {
            GrantOutcome::Issued => issued += 1,
            GrantOutcome::Reused => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(issued, 1);
}
