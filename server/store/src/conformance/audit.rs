//! The audit hash chain and change notifications.

use pushauth_core::ids::CardholderId;

use super::*;

/// After a mixed workload the chain verifies, with exactly one entry per unit of
/// work that wrote something (losing and refused calls append nothing), plus the
/// entries the store writes itself (`device.locked`, `outbox.<kind>.<status>`).
/// Entries read back equal what was appended, float and unicode details included.
pub async fn audit_chain_intact<S: Store>(store: S) {
    let s = ready(store).await;
    assert_eq!(
        s.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 0 }
    );
    let mut appended = 0;
    let anna = new_cardholder(&*s).await;
    appended += 1;
    let link = NewCardLink {
        cardholder: anna.clone(),
        provider: pushauth_core::ids::Provider::Enfuce,
        provider_key: "C-9".into(),
        label: None,
        created_at: T0,
    };
    s.card_link_create(link, draft("link.created").cardholder(&anna))
        .await
        .unwrap();
    appended += 1;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    appended += 2;

    let new = new_challenge(&anna, T0.plus(60_000));
    let created_draft = draft("challenge.created")
        .challenge(&new.id)
        .cardholder(&anna);
    let mut dup = new_challenge(&anna, T0.plus(60_000));
    dup.provider_ref = new.provider_ref.clone();
    let c = created(&*s, new, vec![]).await;
    appended += 1;
    assert!(matches!(
        s.challenge_create(dup, vec![], draft("challenge.created"))
            .await
            .unwrap(),
        CreateOutcome::Duplicate(_)
    ));

    let decided = draft("decision.accepted")
        .challenge(&c.id)
        .device(&d.id)
        .details(serde_json::json!({ "decision": "approve" }));
    let rows = vec![outbox_row(OutboxKind::Upstream, &c.id, None, T0.plus(1))];
    let won = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(1)),
            rows,
            decided.clone(),
        )
        .await
        .unwrap();
    assert!(matches!(won, DecideOutcome::Accepted(_)));
    appended += 1;
    let lost = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Deny, T0.plus(2)),
            vec![],
            draft("decision.accepted"),
        )
        .await
        .unwrap();
    assert!(matches!(lost, DecideOutcome::AlreadyClosed(_)));

    let e = enrolled(&*s, &anna, None).await;
    appended += 2;
    for n in 1..=5 {
        s.device_record_failure(&e.id, 5, T0.plus(n), draft("proof.refused").device(&e.id))
            .await
            .unwrap();
        appended += 1;
    }
    appended += 1; // device.locked, written by the store on the locking failure

    let odd = draft("note.added").challenge(&c.id).details(serde_json::json!({
        "z": 0.1, "a": [1.5e-7, 3, -2.5e300, 0.30000000000000004], "m": { "b": true, "a": null },
        "s": "ünï \"quoted\" \n\t €", "big": u64::MAX, "neg": i64::MIN,
    }));
    s.audit_append(odd.clone()).await.unwrap();
    appended += 1;

    let up = s.outbox_claim(T0.plus(10), 1_000, 10).await.unwrap();
    assert_eq!(up.len(), 1);
    s.outbox_complete(
        up[0].id,
        up[0].claim,
        attempt(
            T0.plus(10),
            AttemptOutcome::Retry,
            Some(502),
            Some("bad gateway"),
        ),
        OutboxNext::RetryAt(T0.plus(20)),
    )
    .await
    .unwrap();
    s.outbox_complete(
        up[0].id,
        up[0].claim,
        attempt(T0.plus(20), AttemptOutcome::Ok, Some(200), None),
        OutboxNext::Done,
    )
    .await
    .unwrap();
    appended += 1;

    let other = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    appended += 1;
    assert!(
        s.challenge_close(
            &other.id,
            ChallengeStatus::Cancelled,
            T0.plus(3),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    appended += 1;
    assert!(
        !s.challenge_close(
            &other.id,
            ChallengeStatus::Cancelled,
            T0.plus(4),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.cardholder_set_status(
            &CardholderId::generate().unwrap(),
            CardholderStatus::Blocked,
            draft("x")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.device_push_token_dead(&d.id, "not-the-token", draft("push.token_dead"))
            .await
            .unwrap()
    );

    assert_eq!(
        s.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: appended }
    );

    let entries = s.audit_for_challenge(&c.id).await.unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.draft.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "challenge.created",
            "decision.accepted",
            "note.added",
            "outbox.upstream.done"
        ]
    );
    assert_eq!(
        (
            entries[0].draft.clone(),
            entries[1].draft.clone(),
            entries[2].draft.clone()
        ),
        (created_draft, decided, odd)
    );
    for pair in entries.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "in chain order");
    }
    for entry in &entries {
        assert_eq!(
            entry.hash,
            entry_hash(&entry.prev_hash, entry.seq, &entry.draft),
            "entry {} hashes",
            entry.seq
        );
    }
    let done = &entries[3].draft;
    assert_eq!(
        (done.actor.as_str(), done.cardholder.clone(), done.at),
        ("system", Some(anna), T0.plus(20))
    );
}

/// Subscribers hear `Challenge { cardholder }` when a challenge is created or
/// closed, and `OutboxReady` when outbox rows are written or rescheduled.
pub async fn subscribe_events<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, Some("tok")).await;
    let challenge_of = |want: CardholderId| {
        move |e: &StoreEvent| {
            *e == StoreEvent::Challenge {
                cardholder: want.clone(),
            }
        }
    };
    let ready_event = |e: &StoreEvent| *e == StoreEvent::OutboxReady;

    let (mut challenges, mut outbox) = (s.subscribe(), s.subscribe());
    let new = new_challenge(&anna, T0.plus(60_000));
    let push = outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0);
    let c = created(&*s, new, vec![push]).await;
    expect_event(
        &mut challenges,
        "Challenge after create",
        challenge_of(anna.clone()),
    )
    .await;
    expect_event(&mut outbox, "OutboxReady after create", ready_event).await;

    let mut decided = s.subscribe();
    let out = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(1)),
            vec![],
            draft("decision.accepted"),
        )
        .await;
    assert!(matches!(out, Ok(DecideOutcome::Accepted(_))));
    expect_event(
        &mut decided,
        "Challenge after decide",
        challenge_of(anna.clone()),
    )
    .await;

    let claimed = s.outbox_claim(T0.plus(1), 1_000, 10).await.unwrap();
    let mut retried = s.subscribe();
    s.outbox_complete(
        claimed[0].id,
        claimed[0].claim,
        attempt(T0.plus(1), AttemptOutcome::Retry, Some(503), None),
        OutboxNext::RetryAt(T0.plus(500)),
    )
    .await
    .unwrap();
    expect_event(
        &mut retried,
        "OutboxReady after a retry is scheduled",
        ready_event,
    )
    .await;

    let ben = new_cardholder(&*s).await;
    let theirs = created(&*s, new_challenge(&ben, T0.plus(60_000)), vec![]).await;
    let mut closed = s.subscribe();
    assert!(
        s.challenge_close(
            &theirs.id,
            ChallengeStatus::Cancelled,
            T0.plus(2),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    expect_event(&mut closed, "Challenge after close", challenge_of(ben)).await;
}

/// Many writers at once, a third of them refused inside their transaction after part
/// of their work was written (a challenge whose push row names an unknown device):
/// every accepted write is there, the refused ones left nothing, and the audit chain
/// verifies with exactly the accepted writes' entries. (SQLite commits concurrent
/// writes in groups, each writer in a savepoint of its own.)
pub async fn concurrent_writers_some_refused<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let ChainCheck::Intact { entries: before } = s.audit_verify().await.unwrap() else {
        panic!("chain broken before the test");
    };
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let (s, anna, device) = (s.clone(), anna.clone(), d.id.clone());
            tokio::spawn(async move {
                let new = new_challenge(&anna, T0.plus(60_000));
                let id = new.id.clone();
                match i % 3 {
                    0 => {
                        let jti = format!("jti-{i}");
                        assert!(
                            s.request_nonce_use(&device, &jti, T0.plus(60_000))
                                .await
                                .unwrap()
                        );
                        (id, false, false)
                    }
                    1 => {
                        let push = outbox_row(OutboxKind::Push, &id, Some(&device), T0);
                        created(&*s, new, vec![push]).await;
                        (id, true, true)
                    }
                    _ => {
                        let ghost = DeviceId::generate().unwrap();
                        let push = outbox_row(OutboxKind::Push, &id, Some(&ghost), T0);
                        let out = s
                            .challenge_create(new, vec![push], draft("challenge.created"))
                            .await;
                        assert!(matches!(out, Err(StoreError::NotFound(_))), "{out:?}");
                        (id, false, true)
                    }
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        let (id, kept, challenge) = task.await.unwrap();
        if challenge {
            let found = s.challenge_get(&id).await.unwrap();
            assert_eq!(found.is_some(), kept, "challenge {id:?}");
        }
        accepted += i64::from(kept);
    }
    for i in (0..90).step_by(3) {
        let jti = format!("jti-{i}");
        let again = s
            .request_nonce_use(&d.id, &jti, T0.plus(60_000))
            .await
            .unwrap();
        assert!(!again, "nonce {jti} was not kept");
    }
    assert_eq!(
        s.audit_verify().await.unwrap(),
        ChainCheck::Intact {
            entries: before + accepted
        }
    );
}
