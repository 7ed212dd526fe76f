//! Challenges: creation and duplicate collapse, and the listings.

use std::collections::HashSet;

use pushauth_core::ids::{CardholderId, ChallengeId, Provider};

use super::*;

fn ids(list: &[Challenge]) -> Vec<ChallengeId> {
    list.iter().map(|c| c.id.clone()).collect()
}

/// A new challenge is stored as given with its outbox rows; a second webhook with
/// the same (provider, reference) writes nothing and returns the first challenge.
pub async fn challenge_create_and_duplicate<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let push = outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0.plus(5));
    let c = created(&*s, new.clone(), vec![push.clone()]).await;
    assert_eq!(
        (
            c.id.clone(),
            c.cardholder.clone(),
            c.provider,
            c.provider_ref.clone()
        ),
        (
            new.id.clone(),
            anna.clone(),
            new.provider,
            new.provider_ref.clone()
        )
    );
    assert_eq!(
        (c.kind, c.amount, c.payee.clone(), c.nonce.clone()),
        (new.kind, new.amount, new.payee.clone(), new.nonce.clone())
    );
    assert_eq!(
        (c.txn_digest, c.deadline, c.upstream_deadline),
        (new.txn_digest, new.deadline, new.upstream_deadline)
    );
    assert_eq!(
        (c.processor_input.clone(), c.context.clone(), c.created_at),
        (new.processor_input.clone(), new.context.clone(), T0)
    );
    assert_eq!(
        (c.status, c.upstream, c.closed_at, c.final_status.clone()),
        (ChallengeStatus::Pending, UpstreamStatus::None, None, None)
    );
    assert_eq!(s.challenge_get(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(
        s.challenge_find(new.provider, &new.provider_ref)
            .await
            .unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        s.challenge_get(&ChallengeId::generate().unwrap())
            .await
            .unwrap(),
        None
    );

    let rows = s.outbox_for_challenge(&c.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.kind, row.device.clone(), row.payload.clone()),
        (OutboxKind::Push, Some(d.id.clone()), push.payload.clone())
    );
    assert_eq!(
        (row.status, row.attempts, row.next_attempt_at, row.deadline),
        (OutboxStatus::Pending, 0, push.not_before, push.deadline)
    );
    assert_eq!(row.last_error, None);

    let mut dup = new_challenge(&anna, T0.plus(90_000));
    dup.provider_ref = new.provider_ref.clone();
    let dup_id = dup.id.clone();
    let dup_rows = vec![outbox_row(OutboxKind::Push, &dup_id, None, T0)];
    match s
        .challenge_create(dup, dup_rows, draft("challenge.created").challenge(&dup_id))
        .await
        .unwrap()
    {
        CreateOutcome::Duplicate(existing) => assert_eq!(existing, c),
        CreateOutcome::Created(_) => panic!("same (provider, reference) must be a duplicate"),
    }
    assert_eq!(s.challenge_get(&dup_id).await.unwrap(), None);
    assert_eq!(s.outbox_for_challenge(&c.id).await.unwrap().len(), 1);
    assert!(s.outbox_for_challenge(&dup_id).await.unwrap().is_empty());
    assert!(
        s.audit_for_challenge(&dup_id).await.unwrap().is_empty(),
        "a duplicate writes no audit entry"
    );
    assert_eq!(s.audit_for_challenge(&c.id).await.unwrap().len(), 1);

    // the reference is unique per provider only
    let mut other = new_challenge(&anna, T0.plus(60_000));
    other.provider = Provider::Adyen;
    other.provider_ref = new.provider_ref.clone();
    created(&*s, other, vec![]).await;
}

/// Ten concurrent deliveries of one webhook: one `Created`, nine `Duplicate` of it,
/// one set of outbox rows.
pub async fn challenge_create_concurrent_duplicates<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let template = new_challenge(&anna, T0.plus(60_000));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            let mut new = template.clone();
            new.id = ChallengeId::generate().unwrap();
            let rows = vec![
                outbox_row(OutboxKind::Push, &new.id, None, T0),
                outbox_row(OutboxKind::Push, &new.id, None, T0),
            ];
            tokio::spawn(async move {
                let audit = draft("challenge.created").challenge(&new.id);
                s.challenge_create(new, rows, audit).await.unwrap()
            })
        })
        .collect();
    let (mut created_ids, mut duplicate_ids) = (Vec::new(), HashSet::new());
    for t in tasks {
        match t.await.unwrap() {
            CreateOutcome::Created(c) => created_ids.push(c.id),
            CreateOutcome::Duplicate(c) => {
                duplicate_ids.insert(c.id);
            }
        }
    }
    assert_eq!(created_ids.len(), 1, "exactly one Created");
    assert_eq!(
        duplicate_ids.into_iter().collect::<Vec<_>>(),
        created_ids,
        "every duplicate is the created one"
    );
    assert_eq!(
        s.outbox_for_challenge(&created_ids[0]).await.unwrap().len(),
        2,
        "one set of outbox rows"
    );
    let filter = ChallengeFilter {
        cardholder: Some(anna),
        limit: 100,
        ..ChallengeFilter::default()
    };
    assert_eq!(s.challenge_list(filter).await.unwrap().len(), 1);
    assert_eq!(
        s.outbox_claim(T0.plus(1), 1_000, 100).await.unwrap().len(),
        2
    );
}

/// A challenge for an unknown cardholder is refused with `NotFound`.
pub async fn challenge_create_unknown_cardholder<S: Store>(store: S) {
    let s = ready(store).await;
    let new = new_challenge(&CardholderId::generate().unwrap(), T0.plus(60_000));
    let out = s
        .challenge_create(new, vec![], draft("challenge.created"))
        .await;
    assert!(matches!(out, Err(StoreError::NotFound(_))), "{out:?}");
}

/// Only pending challenges with a deadline after `now`, oldest first, per cardholder.
pub async fn challenge_pending_for_and_count<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let ben = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let mut made = Vec::new();
    for (i, deadline) in [(1, 60_000), (2, 60_000), (3, 10), (4, 60_000)] {
        let mut new = new_challenge(&anna, T0.plus(deadline));
        new.created_at = T0.plus(i);
        made.push(created(&*s, new, vec![]).await);
    }
    created(&*s, new_challenge(&ben, T0.plus(60_000)), vec![]).await;
    let decided = s
        .challenge_decide(
            decision(&made[3].id, &d.id, DecisionKind::Deny, T0.plus(5)),
            vec![],
            draft("decision.accepted"),
        )
        .await;
    assert!(matches!(decided, Ok(DecideOutcome::Accepted(_))));

    let early = s.challenge_pending_for(&anna, T0.plus(5)).await.unwrap();
    assert_eq!(ids(&early), ids(&made[..3]));
    assert_eq!(
        s.challenge_count_pending(&anna, T0.plus(5)).await.unwrap(),
        3
    );
    let later = s.challenge_pending_for(&anna, T0.plus(20)).await.unwrap();
    assert_eq!(ids(&later), ids(&made[..2]));
    assert_eq!(
        s.challenge_count_pending(&anna, T0.plus(20)).await.unwrap(),
        2
    );
    // at its deadline a challenge is no longer offered
    assert_eq!(
        s.challenge_count_pending(&anna, T0.plus(10)).await.unwrap(),
        2
    );
    assert_eq!(
        s.challenge_pending_for(&ben, T0.plus(20))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.challenge_count_pending(&CardholderId::generate().unwrap(), T0)
            .await
            .unwrap(),
        0
    );
}

/// Listing filters by status, cardholder, provider and time, newest first.
pub async fn challenge_list_filters<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let ben = new_cardholder(&*s).await;
    let make = |who: &CardholderId, provider: Provider, at: i64| {
        let mut new = new_challenge(who, T0.plus(60_000));
        new.provider = provider;
        new.created_at = T0.plus(at);
        new
    };
    let a = created(&*s, make(&anna, Provider::Enfuce, 1), vec![]).await;
    let b = created(&*s, make(&anna, Provider::Adyen, 2), vec![]).await;
    let c = created(&*s, make(&anna, Provider::Enfuce, 3), vec![]).await;
    let d = created(&*s, make(&ben, Provider::Treezor, 4), vec![]).await;
    assert!(
        s.challenge_close(
            &c.id,
            ChallengeStatus::Cancelled,
            T0.plus(5),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );

    let list = |f: ChallengeFilter| {
        let s = s.clone();
        async move {
            ids(&s
                .challenge_list(ChallengeFilter {
                    limit: if f.limit == 0 { 50 } else { f.limit },
                    ..f
                })
                .await
                .unwrap())
        }
    };
    let all = ChallengeFilter::default();
    assert_eq!(
        list(all.clone()).await,
        ids(&[d.clone(), c.clone(), b.clone(), a.clone()])
    );
    let pending = ChallengeFilter {
        status: Some(ChallengeStatus::Pending),
        ..all.clone()
    };
    assert_eq!(list(pending).await, ids(&[d.clone(), b.clone(), a.clone()]));
    let cancelled = ChallengeFilter {
        status: Some(ChallengeStatus::Cancelled),
        ..all.clone()
    };
    assert_eq!(list(cancelled).await, ids(std::slice::from_ref(&c)));
    let annas = ChallengeFilter {
        cardholder: Some(anna.clone()),
        ..all.clone()
    };
    assert_eq!(list(annas).await, ids(&[c.clone(), b.clone(), a.clone()]));
    let adyen = ChallengeFilter {
        provider: Some(Provider::Adyen),
        ..all.clone()
    };
    assert_eq!(list(adyen).await, ids(std::slice::from_ref(&b)));
    let before = ChallengeFilter {
        before: Some(T0.plus(3)),
        ..all.clone()
    };
    assert_eq!(list(before).await, ids(&[b.clone(), a.clone()]));
    let two = ChallengeFilter {
        limit: 2,
        ..all.clone()
    };
    assert_eq!(list(two).await, ids(&[d.clone(), c.clone()]));
    let none = ChallengeFilter {
        status: Some(ChallengeStatus::Approved),
        cardholder: Some(anna),
        ..all
    };
    assert!(list(none).await.is_empty());
}

/// The expiry sweeper's list: pending and past deadline, earliest deadline first.
pub async fn challenge_due<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let late = created(&*s, new_challenge(&anna, T0.plus(20)), vec![]).await;
    let later = created(&*s, new_challenge(&anna, T0.plus(10)), vec![]).await;
    let answered = created(&*s, new_challenge(&anna, T0.plus(30)), vec![]).await;
    created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let won = s
        .challenge_decide(
            decision(&answered.id, &d.id, DecisionKind::Approve, T0.plus(1)),
            vec![],
            draft("decision.accepted"),
        )
        .await;
    assert!(matches!(won, Ok(DecideOutcome::Accepted(_))));
    assert_eq!(
        ids(&s.challenge_due(T0.plus(100), 10).await.unwrap()),
        ids(&[later.clone(), late.clone()])
    );
    assert_eq!(
        ids(&s.challenge_due(T0.plus(100), 1).await.unwrap()),
        ids(std::slice::from_ref(&later))
    );
    assert_eq!(
        ids(&s.challenge_due(T0.plus(15), 10).await.unwrap()),
        ids(&[later])
    );
    assert!(
        s.challenge_due(T0.plus(10), 10).await.unwrap().is_empty(),
        "not due at its deadline"
    );
}

/// A planner that writes `new` (with one push row per device it saw) when fewer than
/// `limit` challenges are pending, and records what it saw.
fn planner_upto(
    new: NewChallenge,
    limit: i64,
    saw: Arc<std::sync::Mutex<Option<CreateContext>>>,
) -> Planner {
    Box::new(move |seen: &CreateContext| {
        *saw.lock().unwrap() = Some(seen.clone());
        if seen.pending >= limit {
            return CreatePlan::Refuse(Refusal::TooManyPending);
        }
        let outbox = seen
            .devices
            .iter()
            .map(|d| outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0))
            .collect();
        let audit = draft("challenge.created")
            .challenge(&new.id)
            .cardholder(&new.cardholder);
        CreatePlan::Write { new, outbox, audit }
    })
}

/// `challenge_create_planned`: the planner sees the cardholder's status, devices and
/// pending count; a refusal writes nothing; a known reference is returned as
/// `Duplicate` without running the planner, even once the cardholder is blocked; an
/// unknown cardholder is `NoCardholder`; a plan for another reference is an error.
pub async fn challenge_create_planned<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    let saw = Arc::new(std::sync::Mutex::new(None));

    let first = new_challenge(&anna, T0.plus(60_000));
    let (provider, reference) = (first.provider, first.provider_ref.clone());
    let out = s
        .challenge_create_planned(
            provider,
            &reference,
            &anna,
            T0,
            planner_upto(first.clone(), 1, saw.clone()),
        )
        .await
        .unwrap();
    let PlannedOutcome::Created {
        challenge: created,
        outbox_rows,
        claimed,
        devices,
    } = out
    else {
        panic!("expected Created, got {out:?}")
    };
    assert_eq!((created.id.clone(), outbox_rows), (first.id.clone(), 1));
    assert!(
        claimed.is_empty(),
        "no row was written claimed: {claimed:?}"
    );
    assert_eq!(
        devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        vec![d.id.clone()],
        "the devices the transaction saw"
    );
    let seen = saw.lock().unwrap().take().expect("planner ran");
    assert_eq!(seen.cardholder_status, CardholderStatus::Active);
    assert_eq!(
        seen.devices
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        vec![d.id.clone()]
    );
    assert_eq!(seen.pending, 0);
    assert_eq!(
        s.outbox_for_challenge(&first.id).await.unwrap().len(),
        1,
        "the plan's push row"
    );
    let audit_after_first = s.audit_verify().await.unwrap();

    // the limit (1 pending) is reached: refused, nothing written
    let second = new_challenge(&anna, T0.plus(60_000));
    let out = s
        .challenge_create_planned(
            second.provider,
            &second.provider_ref.clone(),
            &anna,
            T0,
            planner_upto(second.clone(), 1, saw.clone()),
        )
        .await
        .unwrap();
    assert!(
        matches!(out, PlannedOutcome::Refused(Refusal::TooManyPending)),
        "{out:?}"
    );
    assert_eq!(saw.lock().unwrap().take().expect("planner ran").pending, 1);
    assert_eq!(s.challenge_get(&second.id).await.unwrap(), None);
    assert_eq!(
        s.audit_verify().await.unwrap(),
        audit_after_first,
        "no audit entry"
    );
    // once the first has expired it no longer counts
    let later = s
        .challenge_create_planned(
            second.provider,
            &second.provider_ref.clone(),
            &anna,
            T0.plus(60_000),
            planner_upto(second.clone(), 1, saw.clone()),
        )
        .await
        .unwrap();
    assert!(matches!(later, PlannedOutcome::Created { .. }), "{later:?}");
    assert_eq!(saw.lock().unwrap().take().expect("planner ran").pending, 0);

    // duplicate of the first, after the cardholder was blocked: the planner never runs
    s.cardholder_set_status(
        &anna,
        CardholderStatus::Blocked,
        draft("cardholder.blocked"),
    )
    .await
    .unwrap();
    let mut again = new_challenge(&anna, T0.plus(60_000));
    again.provider_ref = reference.clone();
    let out = s
        .challenge_create_planned(
            provider,
            &reference,
            &anna,
            T0,
            planner_upto(again, 9, saw.clone()),
        )
        .await
        .unwrap();
    let PlannedOutcome::Duplicate(dup) = out else {
        panic!("expected Duplicate, got {out:?}")
    };
    assert_eq!(dup.id, first.id);
    assert!(
        saw.lock().unwrap().is_none(),
        "planner not run for a duplicate"
    );

    // a blocked cardholder is shown to the planner
    let third = new_challenge(&anna, T0.plus(60_000));
    let blocked: Planner = Box::new(|seen: &CreateContext| {
        assert_eq!(seen.cardholder_status, CardholderStatus::Blocked);
        CreatePlan::Refuse(Refusal::CardholderBlocked)
    });
    let out = s
        .challenge_create_planned(
            third.provider,
            &third.provider_ref.clone(),
            &anna,
            T0,
            blocked,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, PlannedOutcome::Refused(Refusal::CardholderBlocked)),
        "{out:?}"
    );

    // unknown cardholder
    let nobody = CardholderId::generate().unwrap();
    let stray = new_challenge(&nobody, T0.plus(60_000));
    let out = s
        .challenge_create_planned(
            stray.provider,
            &stray.provider_ref.clone(),
            &nobody,
            T0,
            planner_upto(stray.clone(), 9, saw.clone()),
        )
        .await
        .unwrap();
    assert!(matches!(out, PlannedOutcome::NoCardholder), "{out:?}");
    assert!(
        saw.lock().unwrap().is_none(),
        "planner not run for an unknown cardholder"
    );

    // a plan for another reference than the one looked up is refused as an error
    let ben = new_cardholder(&*s).await;
    let looked_up = new_challenge(&ben, T0.plus(60_000));
    let other = new_challenge(&ben, T0.plus(60_000));
    let out = s
        .challenge_create_planned(
            looked_up.provider,
            &looked_up.provider_ref.clone(),
            &ben,
            T0,
            planner_upto(other.clone(), 9, saw.clone()),
        )
        .await;
    assert!(out.is_err(), "{out:?}");
    assert_eq!(s.challenge_get(&other.id).await.unwrap(), None);
}

/// Concurrent planned creations for one cardholder never exceed the planner's
/// pending limit: each sees the count left by those before it.
pub async fn challenge_create_planned_limit_under_race<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    enrolled(&*s, &anna, None).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let s = s.clone();
            let anna = anna.clone();
            tokio::spawn(async move {
                let new = new_challenge(&anna, T0.plus(60_000));
                let (provider, reference) = (new.provider, new.provider_ref.clone());
                let saw = Arc::new(std::sync::Mutex::new(None));
                s.challenge_create_planned(
                    provider,
                    &reference,
                    &anna,
                    T0,
                    planner_upto(new, 3, saw),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            PlannedOutcome::Created { .. } => created += 1,
            PlannedOutcome::Refused(Refusal::TooManyPending) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 3, "exactly the limit");
    assert_eq!(s.challenge_count_pending(&anna, T0).await.unwrap(), 3);
}
