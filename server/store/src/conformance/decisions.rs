//! Decisions and closing: first decision wins, deadlines, closed challenges, final
//! status notifications.

use pushauth_core::ids::{ChallengeId, Provider};

use super::*;

/// Eight concurrent decisions: exactly one is accepted and recorded with its outbox
/// rows; the others see `AlreadyClosed` and write nothing.
pub async fn challenge_decide_first_wins<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let phones = [
        enrolled(&*s, &anna, None).await,
        enrolled(&*s, &anna, None).await,
    ];
    let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            let kind = if i % 2 == 0 {
                DecisionKind::Approve
            } else {
                DecisionKind::Deny
            };
            let d = decision(&c.id, &phones[i % 2].id, kind, T0.plus(100 + i as i64));
            let rows = vec![outbox_row(OutboxKind::Upstream, &c.id, None, d.at)];
            tokio::spawn(async move {
                let out = s
                    .challenge_decide(
                        d.clone(),
                        rows.clone(),
                        draft("decision.accepted").challenge(&d.challenge),
                    )
                    .await;
                (d, rows, out.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (d, rows, out) = t.await.unwrap();
        match out {
            DecideOutcome::Accepted(after) => winners.push((d, rows, after)),
            DecideOutcome::AlreadyClosed(now) => assert!(now.status.is_final()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one decision wins");
    let (d, rows, after) = winners.pop().unwrap();
    let want = if d.decision == DecisionKind::Approve {
        ChallengeStatus::Approved
    } else {
        ChallengeStatus::Denied
    };
    assert_eq!(
        (after.status, after.closed_at, after.upstream),
        (want, Some(d.at), UpstreamStatus::Queued)
    );
    assert_eq!(s.challenge_get(&c.id).await.unwrap(), Some(after));
    let stored = s.decision_get(&c.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.device.clone(),
            stored.decision,
            stored.reason,
            stored.proof.clone()
        ),
        (d.device.clone(), d.decision, d.reason, d.proof.clone())
    );
    assert_eq!(
        (
            stored.user_verification.as_str(),
            stored.processor_output.clone(),
            stored.at
        ),
        ("biometric", d.processor_output.clone(), d.at)
    );
    let outbox = s.outbox_for_challenge(&c.id).await.unwrap();
    assert_eq!(
        outbox.iter().map(|o| o.payload.clone()).collect::<Vec<_>>(),
        vec![rows[0].payload.clone()]
    );
    assert_eq!(
        s.audit_for_challenge(&c.id).await.unwrap().len(),
        2,
        "created + the one accepted decision"
    );
}

/// After the deadline a pending challenge refuses decisions and nothing is written;
/// at the deadline itself a decision is still accepted.
pub async fn challenge_decide_past_deadline<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    s.device_record_failure(&d.id, 5, T0, draft("proof.refused"))
        .await
        .unwrap();
    let c = created(&*s, new_challenge(&anna, T0.plus(1_000)), vec![]).await;
    let rows = vec![outbox_row(OutboxKind::Upstream, &c.id, None, T0)];
    let out = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(1_001)),
            rows,
            draft("decision.accepted").challenge(&c.id),
        )
        .await
        .unwrap();
    let DecideOutcome::PastDeadline(now) = out else {
        panic!("expected PastDeadline, got {out:?}")
    };
    assert_eq!(now, c);
    assert_eq!(s.challenge_get(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(s.decision_get(&c.id).await.unwrap(), None);
    assert!(s.outbox_for_challenge(&c.id).await.unwrap().is_empty());
    assert_eq!(s.audit_for_challenge(&c.id).await.unwrap().len(), 1);
    assert_eq!(
        s.device_get(&d.id).await.unwrap().unwrap().failures,
        1,
        "failures untouched"
    );

    let edge = created(&*s, new_challenge(&anna, T0.plus(1_000)), vec![]).await;
    let out = s
        .challenge_decide(
            decision(&edge.id, &d.id, DecisionKind::Approve, T0.plus(1_000)),
            vec![],
            draft("decision.accepted"),
        )
        .await;
    assert!(
        matches!(out, Ok(DecideOutcome::Accepted(_))),
        "valid at the deadline: {out:?}"
    );
}

/// Deciding a closed challenge gives `AlreadyClosed`; an unknown one `NotFound`.
pub async fn challenge_decide_on_closed<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    assert!(
        s.challenge_close(
            &c.id,
            ChallengeStatus::Cancelled,
            T0.plus(1),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    let out = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(2)),
            vec![],
            draft("decision.accepted"),
        )
        .await
        .unwrap();
    let DecideOutcome::AlreadyClosed(now) = out else {
        panic!("expected AlreadyClosed, got {out:?}")
    };
    assert_eq!(
        (now.status, now.closed_at),
        (ChallengeStatus::Cancelled, Some(T0.plus(1)))
    );
    assert_eq!(s.decision_get(&c.id).await.unwrap(), None);

    let twice = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let first = s
        .challenge_decide(
            decision(&twice.id, &d.id, DecisionKind::Deny, T0.plus(3)),
            vec![],
            draft("decision.accepted"),
        )
        .await
        .unwrap();
    let DecideOutcome::Accepted(after) = first else {
        panic!("expected Accepted, got {first:?}")
    };
    assert_eq!(
        (after.status, after.upstream),
        (ChallengeStatus::Denied, UpstreamStatus::None)
    );
    let second = s
        .challenge_decide(
            decision(&twice.id, &d.id, DecisionKind::Approve, T0.plus(4)),
            vec![],
            draft("decision.accepted"),
        )
        .await
        .unwrap();
    assert!(
        matches!(second, DecideOutcome::AlreadyClosed(ref c) if c.status == ChallengeStatus::Denied),
        "{second:?}"
    );
    assert_eq!(
        s.decision_get(&twice.id).await.unwrap().map(|d| d.decision),
        Some(DecisionKind::Deny)
    );

    let unknown = decision(
        &ChallengeId::generate().unwrap(),
        &d.id,
        DecisionKind::Approve,
        T0,
    );
    assert!(matches!(
        s.challenge_decide(unknown, vec![], draft("decision.accepted"))
            .await
            .unwrap(),
        DecideOutcome::NotFound
    ));
}

/// `expired` only once the deadline passed; `cancelled` any time while pending; a
/// closed challenge stays closed; closing queues upstream rows.
pub async fn challenge_close_expired_only_after_deadline<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let d = enrolled(&*s, &anna, None).await;
    let c = created(&*s, new_challenge(&anna, T0.plus(1_000)), vec![]).await;
    let timeout = vec![outbox_row(
        OutboxKind::Upstream,
        &c.id,
        None,
        T0.plus(1_001),
    )];
    assert!(
        !s.challenge_close(
            &c.id,
            ChallengeStatus::Expired,
            T0.plus(1_000),
            timeout.clone(),
            draft("challenge.expired")
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.challenge_get(&c.id).await.unwrap(),
        Some(c.clone()),
        "nothing written before the deadline"
    );
    assert!(s.outbox_for_challenge(&c.id).await.unwrap().is_empty());
    assert!(
        s.challenge_close(
            &c.id,
            ChallengeStatus::Expired,
            T0.plus(1_001),
            timeout,
            draft("challenge.expired").challenge(&c.id)
        )
        .await
        .unwrap()
    );
    let after = s.challenge_get(&c.id).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.closed_at, after.upstream),
        (
            ChallengeStatus::Expired,
            Some(T0.plus(1_001)),
            UpstreamStatus::Queued
        )
    );
    assert_eq!(s.outbox_for_challenge(&c.id).await.unwrap().len(), 1);
    assert_eq!(s.audit_for_challenge(&c.id).await.unwrap().len(), 2);
    assert!(
        !s.challenge_close(
            &c.id,
            ChallengeStatus::Cancelled,
            T0.plus(2_000),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    let late = s
        .challenge_decide(
            decision(&c.id, &d.id, DecisionKind::Approve, T0.plus(900)),
            vec![],
            draft("decision.accepted"),
        )
        .await
        .unwrap();
    assert!(matches!(late, DecideOutcome::AlreadyClosed(_)), "{late:?}");

    let early = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    assert!(
        s.challenge_close(
            &early.id,
            ChallengeStatus::Cancelled,
            T0.plus(1),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    let cancelled = s.challenge_get(&early.id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.closed_at, cancelled.upstream),
        (
            ChallengeStatus::Cancelled,
            Some(T0.plus(1)),
            UpstreamStatus::None
        )
    );
    assert!(
        !s.challenge_close(
            &ChallengeId::generate().unwrap(),
            ChallengeStatus::Cancelled,
            T0,
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    let pending = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let wrong = s
        .challenge_close(
            &pending.id,
            ChallengeStatus::Approved,
            T0,
            vec![],
            draft("challenge.approved"),
        )
        .await;
    assert!(
        wrong.is_err(),
        "closing as approved is not a close: {wrong:?}"
    );
    assert_eq!(
        s.challenge_get(&pending.id).await.unwrap().unwrap().status,
        ChallengeStatus::Pending
    );
}

/// A processor's final-status notification is stored against the challenge.
pub async fn challenge_final_status<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let c = created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let status = serde_json::json!({ "type": "authentication.created", "status": "authenticated", "eci": "05" });
    assert!(
        s.challenge_final_status(
            c.provider,
            &c.provider_ref,
            status.clone(),
            draft("challenge.final_status")
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.challenge_get(&c.id).await.unwrap().unwrap().final_status,
        Some(status.clone())
    );
    let unknown = pushauth_core::ids::ProviderRef::parse("no-such-ref").unwrap();
    assert!(
        !s.challenge_final_status(
            c.provider,
            &unknown,
            status.clone(),
            draft("challenge.final_status")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.challenge_final_status(
            Provider::Paysafe,
            &c.provider_ref,
            status,
            draft("challenge.final_status")
        )
        .await
        .unwrap()
    );
    let audit = s.audit_for_challenge(&c.id).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|e| e.draft.action.as_str())
            .collect::<Vec<_>>(),
        vec!["challenge.created", "challenge.final_status"]
    );
}
