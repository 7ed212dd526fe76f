//! The outbox: due time, leases, concurrent claimers, completion.

use std::collections::HashSet;

use super::*;

fn row_ids(items: &[OutboxItem]) -> Vec<OutboxId> {
    items.iter().map(|i| i.id).collect()
}

/// A row is claimable from `next_attempt_at` on and while not leased; a lease hides
/// it until it runs out; claims come earliest-due first, at most `limit`.
pub async fn outbox_claim_due_and_lease<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let id = pushauth_core::ids::ChallengeId::generate().unwrap();
    let mut new = new_challenge(&anna, T0.plus(60_000));
    new.id = id.clone();
    let rows = vec![
        outbox_row(OutboxKind::Push, &id, None, T0.plus(200)),
        outbox_row(OutboxKind::Push, &id, None, T0.plus(100)),
        outbox_row(OutboxKind::Dismiss, &id, None, T0.plus(5_000)),
    ];
    created(&*s, new, rows).await;
    let stored = s.outbox_for_challenge(&id).await.unwrap();
    let (r200, r100, r5000) = (stored[0].id, stored[1].id, stored[2].id);

    assert!(
        s.outbox_claim(T0.plus(50), 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing due yet"
    );
    let first = s.outbox_claim(T0.plus(250), 1_000, 10).await.unwrap();
    assert_eq!(row_ids(&first), vec![r100, r200], "earliest due first");
    assert!(
        first
            .iter()
            .all(|i| i.status == OutboxStatus::Pending && i.attempts == 0)
    );
    assert_eq!(first[0].payload, stored[1].payload);
    assert!(
        s.outbox_claim(T0.plus(300), 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased rows are hidden"
    );
    assert!(
        s.outbox_claim(T0.plus(1_250), 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "lease runs through its last instant"
    );
    let again = s.outbox_claim(T0.plus(1_251), 100_000, 1).await.unwrap();
    assert_eq!(
        row_ids(&again),
        vec![r100],
        "an expired lease makes the row claimable; limit holds"
    );
    let rest = s.outbox_claim(T0.plus(10_000), 1_000, 10).await.unwrap();
    assert_eq!(row_ids(&rest), vec![r200, r5000]);
    assert!(
        s.outbox_claim(T0.plus(10_000), 1_000, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Four workers claiming at once never get the same row, and together get all.
pub async fn outbox_claim_concurrent<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    for _ in 0..5 {
        let new = new_challenge(&anna, T0.plus(60_000));
        let rows = (0..8)
            .map(|_| outbox_row(OutboxKind::Push, &new.id, None, T0))
            .collect();
        created(&*s, new, rows).await;
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                // 40 rows need at most 14 claims of 3; a backend that hands rows out
                // again would loop forever without this bound
                for _ in 0..40 {
                    let got = s.outbox_claim(T0.plus(1), 60_000, 3).await.unwrap();
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(row_ids(&got));
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "row {id:?} claimed twice");
        }
    }
    assert_eq!((total, seen.len()), (40, 40));
}

/// Completion records the attempt, moves the row (done / retry / failed / too late),
/// clears the lease, and sets the challenge's upstream status for upstream rows.
pub async fn outbox_complete_transitions<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    let decide = |deadline: i64| {
        let s = s.clone();
        let (anna, device) = (anna.clone(), d.id.clone());
        async move {
            let new = new_challenge(&anna, T0.plus(deadline));
            let push = outbox_row(OutboxKind::Push, &new.id, Some(&device), T0.plus(50_000));
            let c = created(&*s, new, vec![push]).await;
            let rows = vec![outbox_row(OutboxKind::Upstream, &c.id, None, T0.plus(1))];
            let out = s
                .challenge_decide(
                    decision(&c.id, &device, DecisionKind::Approve, T0.plus(1)),
                    rows,
                    draft("decision.accepted"),
                )
                .await;
            assert!(matches!(out, Ok(DecideOutcome::Accepted(_))), "{out:?}");
            let rows = s.outbox_for_challenge(&c.id).await.unwrap();
            (c.id, rows[0].id, rows[1].id)
        }
    };

    // retry, then done
    let (c1, push1, up1) = decide(60_000).await;
    assert_eq!(
        row_ids(&s.outbox_claim(T0.plus(10), 30_000, 10).await.unwrap()),
        vec![up1]
    );
    s.outbox_complete(
        up1,
        1,
        attempt(
            T0.plus(10),
            AttemptOutcome::Retry,
            Some(503),
            Some("unavailable"),
        ),
        OutboxNext::RetryAt(T0.plus(5_000)),
    )
    .await
    .unwrap();
    let row = s.outbox_for_challenge(&c1).await.unwrap().remove(1);
    assert_eq!(
        (
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.last_error.as_deref()
        ),
        (
            OutboxStatus::Pending,
            1,
            T0.plus(5_000),
            Some("unavailable")
        )
    );
    assert_eq!(
        s.challenge_get(&c1).await.unwrap().unwrap().upstream,
        UpstreamStatus::Queued
    );
    assert!(
        s.outbox_claim(T0.plus(4_999), 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not before the retry time"
    );
    assert_eq!(
        row_ids(&s.outbox_claim(T0.plus(5_000), 30_000, 10).await.unwrap()),
        vec![up1],
        "lease cleared"
    );
    s.outbox_complete(
        up1,
        2,
        attempt(T0.plus(5_000), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    let row = s.outbox_for_challenge(&c1).await.unwrap().remove(1);
    assert_eq!((row.status, row.attempts), (OutboxStatus::Done, 2));
    assert_eq!(
        s.challenge_get(&c1).await.unwrap().unwrap().upstream,
        UpstreamStatus::Delivered
    );
    s.outbox_complete(
        push1,
        0,
        attempt(T0.plus(50_000), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    assert_eq!(
        s.challenge_get(&c1).await.unwrap().unwrap().upstream,
        UpstreamStatus::Delivered,
        "push rows leave upstream alone"
    );
    let attempts = s.attempts_for_challenge(&c1).await.unwrap();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.outbox, a.kind, a.attempt_no, a.outcome, a.http_status))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                up1,
                OutboxKind::Upstream,
                1,
                AttemptOutcome::Retry,
                Some(503)
            ),
            (up1, OutboxKind::Upstream, 2, AttemptOutcome::Ok, Some(200)),
            (push1, OutboxKind::Push, 1, AttemptOutcome::Ok, Some(200)),
        ]
    );
    assert_eq!(
        (
            attempts[0].at,
            attempts[0].latency_ms,
            attempts[0].error.as_deref()
        ),
        (T0.plus(10), 42, Some("unavailable"))
    );
    assert_eq!(attempts[2].device, Some(d.id.clone()));
    let actions: Vec<_> = s
        .audit_for_challenge(&c1)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.draft.action)
        .collect();
    assert!(
        actions.contains(&"outbox.upstream.done".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"outbox.push.done".to_owned()),
        "{actions:?}"
    );

    // failed for good
    let (c2, _, up2) = decide(60_000).await;
    s.outbox_complete(
        up2,
        0,
        attempt(
            T0.plus(10),
            AttemptOutcome::Fatal,
            Some(400),
            Some("bad request"),
        ),
        OutboxNext::Failed,
    )
    .await
    .unwrap();
    let row = s.outbox_for_challenge(&c2).await.unwrap().remove(1);
    assert_eq!((row.status, row.attempts), (OutboxStatus::Failed, 1));
    assert_eq!(
        s.challenge_get(&c2).await.unwrap().unwrap().upstream,
        UpstreamStatus::Failed
    );
    assert!(
        s.audit_for_challenge(&c2)
            .await
            .unwrap()
            .iter()
            .any(|e| e.draft.action == "outbox.upstream.failed")
    );
    // a late completion of a final row records the attempt but changes nothing else
    s.outbox_complete(
        up2,
        0,
        attempt(T0.plus(20), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    let row = s.outbox_for_challenge(&c2).await.unwrap().remove(1);
    assert_eq!((row.status, row.attempts), (OutboxStatus::Failed, 2));
    assert_eq!(
        s.challenge_get(&c2).await.unwrap().unwrap().upstream,
        UpstreamStatus::Failed
    );

    // too late
    let (c3, _, up3) = decide(60_000).await;
    s.outbox_complete(
        up3,
        0,
        attempt(T0.plus(10), AttemptOutcome::Retry, None, Some("timeout")),
        OutboxNext::TooLate,
    )
    .await
    .unwrap();
    let row = s.outbox_for_challenge(&c3).await.unwrap().remove(1);
    assert_eq!(
        (row.status, row.attempts, row.last_error.as_deref()),
        (OutboxStatus::TooLate, 1, Some("timeout"))
    );
    assert_eq!(
        s.challenge_get(&c3).await.unwrap().unwrap().upstream,
        UpstreamStatus::TooLate
    );
    assert!(
        s.audit_for_challenge(&c3)
            .await
            .unwrap()
            .iter()
            .any(|e| e.draft.action == "outbox.upstream.too_late")
    );

    // final rows are never claimed again; unknown rows are NotFound
    let claimable = row_ids(&s.outbox_claim(T0.plus(100_000), 1_000, 100).await.unwrap());
    assert!(
        !claimable.contains(&up1) && !claimable.contains(&up2) && !claimable.contains(&up3),
        "{claimable:?}"
    );
    let unknown = s
        .outbox_complete(
            OutboxId(i64::MAX),
            0,
            attempt(T0, AttemptOutcome::Ok, None, None),
            OutboxNext::Done,
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

/// When workers may sleep until: the earliest claimable instant of a pending row
/// (after its lease when leased), none when nothing is pending.
pub async fn outbox_next_due<S: Store>(store: S) {
    let s = ready(store).await;
    assert_eq!(s.outbox_next_due().await.unwrap(), None);
    let anna = new_cardholder(&*s).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let id = new.id.clone();
    let rows = vec![
        outbox_row(OutboxKind::Push, &id, None, T0.plus(100)),
        outbox_row(OutboxKind::Push, &id, None, T0.plus(200)),
    ];
    created(&*s, new, rows).await;
    assert_eq!(s.outbox_next_due().await.unwrap(), Some(T0.plus(100)));
    let r1 = s.outbox_claim(T0.plus(150), 1_000, 1).await.unwrap()[0].id;
    assert_eq!(s.outbox_next_due().await.unwrap(), Some(T0.plus(200)));
    let r2 = s.outbox_claim(T0.plus(250), 1_000, 1).await.unwrap()[0].id;
    assert_eq!(
        s.outbox_next_due().await.unwrap(),
        Some(T0.plus(1_151)),
        "just after the first lease ends"
    );
    s.outbox_complete(
        r1,
        1,
        attempt(T0.plus(300), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_next_due().await.unwrap(), Some(T0.plus(1_251)));
    s.outbox_complete(
        r2,
        1,
        attempt(T0.plus(300), AttemptOutcome::Retry, None, Some("x")),
        OutboxNext::RetryAt(T0.plus(3_000)),
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_next_due().await.unwrap(), Some(T0.plus(3_000)));
    s.outbox_complete(
        r2,
        1,
        attempt(T0.plus(3_000), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_next_due().await.unwrap(), None);
}

/// A lane claims only its kinds: `Devices` takes push and dismiss rows, `Upstream`
/// the processor's, `All` both; a row another lane leased is not claimed again.
pub async fn outbox_claim_lanes<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let rows = vec![
        outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0),
        outbox_row(OutboxKind::Upstream, &new.id, None, T0),
        outbox_row(OutboxKind::Dismiss, &new.id, Some(&d.id), T0),
        outbox_row(OutboxKind::Upstream, &new.id, None, T0),
    ];
    created(&*s, new, rows).await;
    let kinds = |items: &[OutboxItem]| items.iter().map(|i| i.kind).collect::<Vec<_>>();

    let upstream = s
        .outbox_claim_lane(T0.plus(1), 60_000, 10, OutboxLane::Upstream)
        .await
        .unwrap();
    assert_eq!(
        kinds(&upstream),
        vec![OutboxKind::Upstream, OutboxKind::Upstream]
    );
    let devices = s
        .outbox_claim_lane(T0.plus(1), 60_000, 1, OutboxLane::Devices)
        .await
        .unwrap();
    assert_eq!(
        kinds(&devices),
        vec![OutboxKind::Push],
        "limit respected, oldest first"
    );
    let rest = s
        .outbox_claim_lane(T0.plus(1), 60_000, 10, OutboxLane::All)
        .await
        .unwrap();
    assert_eq!(
        kinds(&rest),
        vec![OutboxKind::Dismiss],
        "leased rows are not claimed again"
    );
    assert!(
        s.outbox_claim_lane(T0.plus(1), 60_000, 10, OutboxLane::Upstream)
            .await
            .unwrap()
            .is_empty()
    );
}
