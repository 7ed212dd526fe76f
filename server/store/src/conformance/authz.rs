//! Authorisation at commit: a decision needs an active device of the challenge's
//! cardholder and an active cardholder, checked by the transaction that writes it;
//! so do an enrollment and a migration grant; blocking a cardholder cancels their
//! pending challenges in the same transaction.

use super::device_keys::{consume, grant};
use super::*;

async fn decide_once<S: Store>(s: &S, c: &Challenge, device: &DeviceId) -> DecideOutcome {
    let d = decision(&c.id, device, DecisionKind::Approve, T0.plus(100));
    let rows = vec![outbox_row(OutboxKind::Upstream, &c.id, None, d.at)];
    s.challenge_decide(d, rows, draft("decision.accepted").challenge(&c.id))
        .await
        .unwrap()
}

/// Nothing of a refused decision is written: the challenge is still pending, with no
/// decision, no outbox row and only its creation's audit entry.
async fn untouched<S: Store>(s: &S, c: &Challenge) {
    assert_eq!(s.challenge_get(&c.id).await.unwrap().as_ref(), Some(c));
    assert_eq!(s.decision_get(&c.id).await.unwrap(), None);
    assert!(s.outbox_for_challenge(&c.id).await.unwrap().is_empty());
    assert_eq!(s.audit_for_challenge(&c.id).await.unwrap().len(), 1);
}

/// A locked device, a revoked device, another cardholder's device, an unknown device
/// and a blocked cardholder: each decision is refused with its reason, in time, and
/// writes nothing; once the device is unlocked and the cardholder unblocked it wins.
pub async fn challenge_decide_authorised_at_commit<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let bob = new_cardholder(&*s).await;
    let phone = enrolled(&*s, &anna, None).await;
    let old = enrolled(&*s, &anna, None).await;
    let bobs = enrolled(&*s, &bob, None).await;
    let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;

    s.device_set_status(&phone.id, DeviceStatus::Locked, draft("device.locked"))
        .await
        .unwrap();
    let out = decide_once(&*s, &c, &phone.id).await;
    assert!(
        matches!(
            out,
            DecideOutcome::Refused(DecideRefusal::DeviceNotActive(Some(DeviceStatus::Locked)))
        ),
        "{out:?}"
    );
    untouched(&*s, &c).await;

    s.device_set_status(&old.id, DeviceStatus::Revoked, draft("device.revoked"))
        .await
        .unwrap();
    let out = decide_once(&*s, &c, &old.id).await;
    assert!(
        matches!(
            out,
            DecideOutcome::Refused(DecideRefusal::DeviceNotActive(Some(DeviceStatus::Revoked)))
        ),
        "{out:?}"
    );
    let out = decide_once(&*s, &c, &bobs.id).await;
    assert!(
        matches!(
            out,
            DecideOutcome::Refused(DecideRefusal::DeviceNotActive(None))
        ),
        "another cardholder's device: {out:?}"
    );
    let out = decide_once(&*s, &c, &DeviceId::generate().unwrap()).await;
    assert!(
        matches!(
            out,
            DecideOutcome::Refused(DecideRefusal::DeviceNotActive(None))
        ),
        "unknown device: {out:?}"
    );
    untouched(&*s, &c).await;

    s.device_set_status(&phone.id, DeviceStatus::Active, draft("device.unlocked"))
        .await
        .unwrap();
    s.cardholder_set_status(
        &anna,
        CardholderStatus::Blocked,
        draft("cardholder.blocked"),
    )
    .await
    .unwrap();
    let out = decide_once(&*s, &c, &phone.id).await;
    assert!(
        matches!(
            out,
            DecideOutcome::Refused(DecideRefusal::CardholderBlocked)
        ),
        "{out:?}"
    );
    untouched(&*s, &c).await;

    s.cardholder_set_status(
        &anna,
        CardholderStatus::Active,
        draft("cardholder.unblocked"),
    )
    .await
    .unwrap();
    let out = decide_once(&*s, &c, &phone.id).await;
    assert!(matches!(out, DecideOutcome::Accepted(_)), "{out:?}");
}

fn cancel_plan() -> CancelPlanner {
    Box::new(|c: &Challenge, devices: &[Device]| {
        let mut rows: Vec<NewOutbox> = devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active)
            .map(|d| outbox_row(OutboxKind::Dismiss, &c.id, Some(&d.id), T0.plus(500)))
            .collect();
        rows.push(outbox_row(OutboxKind::Upstream, &c.id, None, T0.plus(500)));
        let audit = draft("challenge.cancelled")
            .challenge(&c.id)
            .cardholder(&c.cardholder);
        (rows, audit)
    })
}

/// Blocking cancels every pending challenge whose deadline has not passed, with the
/// planner's rows (upstream result queued, a dismiss per active device) and audit
/// entry; decided and expired ones are left alone; an unknown
/// cardholder is `NotFound` and writes nothing.
pub async fn cardholder_block_cancels_pending<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let phone = enrolled(&*s, &anna, Some("tok-a")).await;
    let old = enrolled(&*s, &anna, Some("tok-b")).await;
    s.device_set_status(&old.id, DeviceStatus::Revoked, draft("device.revoked"))
        .await
        .unwrap();
    let first = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let second = created(&*s, new_challenge(&anna, T0.plus(90_000)), vec![]).await;
    let late = created(&*s, new_challenge(&anna, T0.plus(100)), vec![]).await;
    let done = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let out = decide_once(&*s, &done, &phone.id).await;
    assert!(matches!(out, DecideOutcome::Accepted(_)), "{out:?}");

    let mut events = s.subscribe();
    let now = T0.plus(500);
    let out = s
        .cardholder_block(
            &anna,
            now,
            draft("cardholder.blocked").cardholder(&anna),
            cancel_plan(),
        )
        .await
        .unwrap();
    let BlockOutcome::Blocked { cancelled } = out else {
        panic!("expected Blocked, got {out:?}")
    };
    let mut got: Vec<_> = cancelled.iter().map(|c| c.id.as_str()).collect();
    let mut want = vec![first.id.as_str(), second.id.as_str()];
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    expect_event(
        &mut events,
        "challenge",
        |e| matches!(e, StoreEvent::Challenge { cardholder } if *cardholder == anna),
    )
    .await;
    for c in &cancelled {
        assert_eq!(
            (c.status, c.closed_at, c.upstream),
            (
                ChallengeStatus::Cancelled,
                Some(now),
                UpstreamStatus::Queued
            )
        );
        assert_eq!(s.challenge_get(&c.id).await.unwrap().as_ref(), Some(c));
        let rows = s.outbox_for_challenge(&c.id).await.unwrap();
        let mut kinds: Vec<_> = rows.iter().map(|r| (r.kind, r.device.clone())).collect();
        kinds.sort_by_key(|(k, _)| k.as_str());
        assert_eq!(
            kinds,
            vec![
                (OutboxKind::Dismiss, Some(phone.id.clone())),
                (OutboxKind::Upstream, None)
            ]
        );
        let audit = s.audit_for_challenge(&c.id).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .map(|a| a.draft.action.as_str())
                .collect::<Vec<_>>(),
            vec!["challenge.created", "challenge.cancelled"]
        );
    }
    assert_eq!(
        s.challenge_get(&late.id).await.unwrap().unwrap().status,
        ChallengeStatus::Pending,
        "past its deadline: left to the expiry sweeper"
    );
    assert_eq!(
        s.challenge_get(&done.id).await.unwrap().unwrap().status,
        ChallengeStatus::Approved
    );
    assert_eq!(
        s.cardholder_get(&anna).await.unwrap().unwrap().status,
        CardholderStatus::Blocked
    );
    let out = decide_once(&*s, &first, &phone.id).await;
    assert!(
        matches!(out, DecideOutcome::AlreadyClosed(ref c) if c.status == ChallengeStatus::Cancelled),
        "{out:?}"
    );
    // Blocking again cancels nothing more.
    let again = s
        .cardholder_block(&anna, now, draft("cardholder.blocked"), cancel_plan())
        .await
        .unwrap();
    assert_eq!(again, BlockOutcome::Blocked { cancelled: vec![] });
    let nobody = CardholderId::generate().unwrap();
    let out = s
        .cardholder_block(&nobody, now, draft("cardholder.blocked"), cancel_plan())
        .await
        .unwrap();
    assert_eq!(out, BlockOutcome::NotFound);
}

/// A decision racing with the block of its cardholder: exactly one of them closes
/// the challenge. Either the decision is accepted and the block does not cancel it,
/// or the block cancels it and the decision is refused or finds it closed; never a
/// decision recorded on a cancelled challenge.
pub async fn decide_races_block<S: Store>(store: S) {
    let s = ready(store).await;
    for round in 0..12 {
        let anna = new_cardholder(&*s).await;
        let phone = enrolled(&*s, &anna, None).await;
        let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
        let (s1, s2) = (s.clone(), s.clone());
        let (c1, phone_id, anna2) = (c.clone(), phone.id.clone(), anna.clone());
        let decide = tokio::spawn(async move { decide_once(&*s1, &c1, &phone_id).await });
        let block = tokio::spawn(async move {
            s2.cardholder_block(
                &anna2,
                T0.plus(50),
                draft("cardholder.blocked"),
                cancel_plan(),
            )
            .await
            .unwrap()
        });
        let (decided, blocked) = (decide.await.unwrap(), block.await.unwrap());
        let BlockOutcome::Blocked { cancelled } = blocked else {
            panic!("round {round}: {blocked:?}")
        };
        let stored = s.decision_get(&c.id).await.unwrap();
        let now = s.challenge_get(&c.id).await.unwrap().unwrap();
        match decided {
            DecideOutcome::Accepted(_) => {
                assert!(cancelled.is_empty(), "round {round}");
                assert_eq!(now.status, ChallengeStatus::Approved);
                assert!(stored.is_some());
            }
            DecideOutcome::AlreadyClosed(_)
            | DecideOutcome::Refused(DecideRefusal::CardholderBlocked) => {
                assert_eq!(cancelled.len(), 1, "round {round}");
                assert_eq!(now.status, ChallengeStatus::Cancelled);
                assert!(stored.is_none());
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}

async fn audit_entries<S: Store>(s: &S) -> i64 {
    match s.audit_verify().await.unwrap() {
        ChainCheck::Intact { entries } => entries,
        broken => panic!("audit chain: {broken:?}"),
    }
}

/// A blocked cardholder gets no new device: enrollment with a valid, unused code and
/// a migration grant of their enrolled device are both refused with
/// `CardholderBlocked` and write nothing (the code stays unused, no device, no code
/// from the grant, its `jti` not consumed, no audit entry). Once unblocked, the same
/// code enrolls and the same grant is issued.
pub async fn blocked_cardholder_cannot_enroll_or_migrate<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let phone = enrolled(&*s, &anna, None).await;
    let code = new_code(&*s, &anna, T0.plus(600_000)).await;
    let out = s
        .cardholder_block(
            &anna,
            T0.plus(10),
            draft("cardholder.blocked"),
            cancel_plan(),
        )
        .await
        .unwrap();
    assert_eq!(out, BlockOutcome::Blocked { cancelled: vec![] });
    let entries = audit_entries(&*s).await;

    let out = s
        .device_enroll(
            &code,
            T0.plus(100),
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    assert!(matches!(out, EnrollOutcome::CardholderBlocked), "{out:?}");
    let (g, granted) = grant(&phone, "jti-blocked");
    assert_eq!(consume(&*s, g).await, GrantOutcome::CardholderBlocked);

    let ids = |ds: Vec<Device>| ds.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.device_list(&anna).await.unwrap()),
        vec![phone.id.clone()]
    );
    assert_eq!(audit_entries(&*s).await, entries, "nothing audited");
    let out = s
        .device_enroll(
            &granted,
            T0.plus(100),
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    assert!(
        matches!(out, EnrollOutcome::CodeUnknown),
        "the refused grant left no code: {out:?}"
    );

    s.cardholder_set_status(
        &anna,
        CardholderStatus::Active,
        draft("cardholder.unblocked"),
    )
    .await
    .unwrap();
    let out = s
        .device_enroll(
            &code,
            T0.plus(200),
            new_device(None),
            draft("device.enrolled"),
        )
        .await
        .unwrap();
    let EnrollOutcome::Enrolled(new) = out else {
        panic!("the code stayed unused: {out:?}")
    };
    assert_eq!(new.cardholder, anna);
    let (g, _) = grant(&phone, "jti-blocked");
    assert_eq!(
        consume(&*s, g).await,
        GrantOutcome::Issued,
        "the jti was not consumed"
    );
}
