//! Fenced outbox claims: only the current holder of a row can complete, retry, renew
//! its lease or mark a call as sent; a stale holder's attempt is recorded and changes
//! nothing else. The sending mark survives a lost holder, so the next claimer sees that
//! a call was in flight.

use super::*;

async fn upstream_row<S: Store>(s: &S) -> (pushauth_core::ids::ChallengeId, OutboxId) {
    let anna = new_cardholder(s).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let id = new.id.clone();
    created(
        s,
        new,
        vec![outbox_row(OutboxKind::Upstream, &id, None, T0)],
    )
    .await;
    let row = s.outbox_for_challenge(&id).await.unwrap().remove(0);
    assert_eq!((row.claim, row.sending_since), (0, None));
    (id, row.id)
}

/// A holder whose lease ran out and was taken over cannot complete, retry, renew or
/// mark the row; the new holder can. The stale attempts are on record.
pub async fn outbox_stale_holder_changes_nothing<S: Store>(store: S) {
    let s = ready(store).await;
    let (c, row) = upstream_row(&*s).await;
    let a = s.outbox_claim(T0.plus(1), 1_000, 10).await.unwrap();
    assert_eq!((a.len(), a[0].claim), (1, 1));
    assert!(
        s.outbox_mark_sending(row, 1, T0.plus(2)).await.unwrap(),
        "the holder marks its call"
    );
    assert!(s.outbox_renew(row, 1, T0.plus(1_500)).await.unwrap());
    // A's lease (renewed to 1_500) runs out; B takes the row over and sees A's call.
    assert!(
        s.outbox_claim(T0.plus(1_500), 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let b = s.outbox_claim(T0.plus(1_501), 1_000, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].claim, b[0].sending_since), (2, Some(T0.plus(2))));

    // A's late outcomes: recorded, not applied.
    let retry = s
        .outbox_complete(
            row,
            1,
            attempt(
                T0.plus(1_600),
                AttemptOutcome::Retry,
                Some(500),
                Some("500"),
            ),
            OutboxNext::RetryAt(T0.plus(1_700)),
        )
        .await
        .unwrap();
    let done = s
        .outbox_complete(
            row,
            1,
            attempt(T0.plus(1_650), AttemptOutcome::Ok, Some(200), None),
            OutboxNext::Done,
        )
        .await
        .unwrap();
    assert!(!retry && !done, "a stale holder's outcome is not applied");
    assert!(!s.outbox_renew(row, 1, T0.plus(90_000)).await.unwrap());
    assert!(!s.outbox_mark_sending(row, 1, T0.plus(1_700)).await.unwrap());
    let now = s.outbox_for_challenge(&c).await.unwrap().remove(0);
    assert_eq!(
        (now.status, now.claim, now.attempts, now.sending_since),
        (OutboxStatus::Pending, 2, 2, Some(T0.plus(2)))
    );
    assert_eq!(
        s.challenge_get(&c).await.unwrap().unwrap().upstream,
        UpstreamStatus::Queued
    );
    assert!(
        s.outbox_claim(T0.plus(2_000), 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "A's retry did not clear B's lease"
    );
    let attempts = s.attempts_for_challenge(&c).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|a| a
            .error
            .as_deref()
            .is_some_and(|e| e.contains("stale claim"))),
        "{attempts:?}"
    );

    // B renews, marks, and completes.
    assert!(s.outbox_renew(row, 2, T0.plus(5_000)).await.unwrap());
    assert!(
        s.outbox_claim(T0.plus(4_000), 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "renewal extends the lease"
    );
    assert!(s.outbox_mark_sending(row, 2, T0.plus(4_100)).await.unwrap());
    assert!(
        s.outbox_complete(
            row,
            2,
            attempt(T0.plus(4_100), AttemptOutcome::Ok, Some(200), None),
            OutboxNext::Done,
        )
        .await
        .unwrap()
    );
    let now = s.outbox_for_challenge(&c).await.unwrap().remove(0);
    assert_eq!(
        (now.status, now.attempts, now.sending_since),
        (OutboxStatus::Done, 3, None)
    );
    assert_eq!(
        s.challenge_get(&c).await.unwrap().unwrap().upstream,
        UpstreamStatus::Delivered
    );
    // Final rows: nobody renews or marks them.
    assert!(!s.outbox_renew(row, 2, T0.plus(9_000)).await.unwrap());
    assert!(!s.outbox_mark_sending(row, 2, T0.plus(9_000)).await.unwrap());
}

/// A retry clears the sending mark (the outcome is known); giving up with an unknown
/// outcome keeps it, records `failed` and audits `outbox.upstream.outcome_unknown`.
pub async fn outbox_sending_mark_and_unknown<S: Store>(store: S) {
    let s = ready(store).await;
    let (c, row) = upstream_row(&*s).await;
    let claim = s.outbox_claim(T0.plus(1), 1_000, 1).await.unwrap()[0].claim;
    assert!(s.outbox_mark_sending(row, claim, T0.plus(2)).await.unwrap());
    assert!(
        s.outbox_complete(
            row,
            claim,
            attempt(T0.plus(2), AttemptOutcome::Retry, Some(503), Some("503")),
            OutboxNext::RetryAt(T0.plus(10)),
        )
        .await
        .unwrap()
    );
    let now = s.outbox_for_challenge(&c).await.unwrap().remove(0);
    assert_eq!(
        (now.sending_since, now.status),
        (None, OutboxStatus::Pending)
    );
    let again = s.outbox_claim(T0.plus(10), 1_000, 1).await.unwrap();
    assert_eq!((again[0].claim, again[0].sending_since), (claim + 1, None));
    let claim = again[0].claim;
    assert!(
        s.outbox_mark_sending(row, claim, T0.plus(11))
            .await
            .unwrap()
    );
    assert!(
        s.outbox_complete(
            row,
            claim,
            attempt(
                T0.plus(70_000),
                AttemptOutcome::Fatal,
                None,
                Some("outcome unknown")
            ),
            OutboxNext::Unknown,
        )
        .await
        .unwrap()
    );
    let now = s.outbox_for_challenge(&c).await.unwrap().remove(0);
    assert_eq!(
        (now.status, now.sending_since),
        (OutboxStatus::Failed, Some(T0.plus(11)))
    );
    assert_eq!(
        s.challenge_get(&c).await.unwrap().unwrap().upstream,
        UpstreamStatus::Failed
    );
    let actions: Vec<_> = s
        .audit_for_challenge(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.draft.action)
        .collect();
    assert!(
        actions.contains(&"outbox.upstream.outcome_unknown".to_owned()),
        "{actions:?}"
    );
}

/// Two holders racing to complete one row (the stale one and the current one, at the
/// same time): exactly the current one's outcome applies, both attempts are recorded.
pub async fn outbox_complete_race<S: Store>(store: S) {
    let s = ready(store).await;
    for round in 0..5 {
        let (c, row) = upstream_row(&*s).await;
        let first = s.outbox_claim(T0.plus(1), 100, 1).await.unwrap()[0].claim;
        let second = s.outbox_claim(T0.plus(200), 100_000, 1).await.unwrap()[0].claim;
        let tasks: Vec<_> = [(first, OutboxNext::Failed), (second, OutboxNext::Done)]
            .into_iter()
            .map(|(claim, next)| {
                let s = s.clone();
                tokio::spawn(async move {
                    let outcome = if next == OutboxNext::Done {
                        AttemptOutcome::Ok
                    } else {
                        AttemptOutcome::Fatal
                    };
                    s.outbox_complete(row, claim, attempt(T0.plus(300), outcome, None, None), next)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut applied = Vec::new();
        for t in tasks {
            applied.push(t.await.unwrap());
        }
        assert_eq!(applied, vec![false, true], "round {round}");
        let now = s.outbox_for_challenge(&c).await.unwrap().remove(0);
        assert_eq!((now.status, now.attempts), (OutboxStatus::Done, 2));
    }
}

/// A decision can write its upstream row already claimed (claim 1) for its own task to
/// deliver: the row comes back from the decide call, workers do not take it while the
/// lease runs, and take it over (claim 2, the first holder fenced out) once it ran out.
pub async fn outbox_row_claimed_by_its_writer<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let mut claimed_row = outbox_row(OutboxKind::Upstream, &c.id, None, T0);
    claimed_row.claimed_until = Some(T0.plus(5_000));
    let dismiss = outbox_row(OutboxKind::Dismiss, &c.id, Some(&d.id), T0);
    let (out, items) = s
        .challenge_decide_claiming(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(1)),
            vec![dismiss, claimed_row],
            draft("decision.accepted").challenge(&c.id),
        )
        .await
        .unwrap();
    assert!(matches!(out, DecideOutcome::Accepted(_)), "{out:?}");
    assert_eq!(items.len(), 1, "only the claimed row comes back: {items:?}");
    let item = &items[0];
    assert_eq!(
        (item.kind, item.claim, item.attempts),
        (OutboxKind::Upstream, 1, 0)
    );
    let stored = s.outbox_for_challenge(&c.id).await.unwrap();
    let row = stored
        .iter()
        .find(|r| r.id == item.id)
        .expect("the returned id is the row");
    assert_eq!((row.claim, row.status), (1, OutboxStatus::Pending));
    // workers take the dismiss row only
    let taken = s.outbox_claim(T0.plus(10), 1_000, 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [OutboxKind::Dismiss]
    );
    // the writer's lease runs out: a worker takes the row over, the writer is fenced out
    let over = s.outbox_claim(T0.plus(5_001), 1_000, 10).await.unwrap();
    let over = over
        .iter()
        .find(|r| r.id == item.id)
        .expect("taken over after the lease");
    assert_eq!(over.claim, 2);
    let attempt = AttemptRecord {
        at: T0.plus(5_002),
        latency_ms: 1,
        outcome: AttemptOutcome::Ok,
        http_status: Some(200),
        error: None,
    };
    assert!(
        !s.outbox_complete(item.id, 1, attempt.clone(), OutboxNext::Done)
            .await
            .unwrap()
    );
    assert!(
        s.outbox_complete(item.id, 2, attempt, OutboxNext::Done)
            .await
            .unwrap()
    );
}

/// A creation can write its push rows already claimed (claim 1) for its own task to
/// deliver: `challenge_create_planned` returns exactly those rows as items, with the
/// devices its plan saw; workers take the other rows at once and the claimed ones only
/// after the lease ran out.
pub async fn push_rows_claimed_by_their_creation<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d1 = enrolled(&*s, &anna, Some("tok-1")).await;
    let d2 = enrolled(&*s, &anna, Some("tok-2")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let (provider, reference, id) = (new.provider, new.provider_ref.clone(), new.id.clone());
    let planner: Planner = Box::new(move |seen: &CreateContext| {
        let outbox = seen
            .devices
            .iter()
            .map(|d| {
                let mut row = outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0);
                if d.push.as_ref().is_some_and(|p| p.token == "tok-1") {
                    row.claimed_until = Some(T0.plus(5_000));
                }
                row
            })
            .collect();
        let audit = draft("challenge.created")
            .challenge(&new.id)
            .cardholder(&new.cardholder);
        CreatePlan::Write { new, outbox, audit }
    });
    let out = s
        .challenge_create_planned(provider, &reference, &anna, T0, planner)
        .await
        .unwrap();
    let PlannedOutcome::Created {
        outbox_rows,
        claimed,
        devices,
        ..
    } = out
    else {
        panic!("expected Created, got {out:?}")
    };
    assert_eq!(outbox_rows, 2);
    let mut seen: Vec<_> = devices.iter().map(|d| d.id.clone()).collect();
    seen.sort();
    let mut expected = vec![d1.id.clone(), d2.id.clone()];
    expected.sort();
    assert_eq!(seen, expected, "the devices the plan saw");
    assert_eq!(
        claimed.len(),
        1,
        "only the claimed row comes back: {claimed:?}"
    );
    let item = &claimed[0];
    assert_eq!(
        (item.kind, item.claim, item.attempts, item.device.clone()),
        (OutboxKind::Push, 1, 0, Some(d1.id.clone()))
    );
    let stored = s.outbox_for_challenge(&id).await.unwrap();
    let row = stored
        .iter()
        .find(|r| r.id == item.id)
        .expect("the returned id is the row");
    assert_eq!((row.claim, row.status), (1, OutboxStatus::Pending));
    let taken = s.outbox_claim(T0.plus(10), 1_000, 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|r| r.device.clone()).collect::<Vec<_>>(),
        [Some(d2.id.clone())],
        "workers take the unclaimed row only"
    );
    let over = s.outbox_claim(T0.plus(5_001), 1_000, 10).await.unwrap();
    let over = over
        .iter()
        .find(|r| r.id == item.id)
        .expect("taken over after the lease");
    assert_eq!(over.claim, 2);
}
