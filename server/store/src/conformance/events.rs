//! Issuer events: written with the change that causes them (by the audit append, on
//! both write paths), fanned out once per wanted endpoint, claimed with fenced leases.

use super::*;

fn routes() -> Vec<EventRoute> {
    vec![
        EventRoute {
            endpoint: "all".into(),
            types: None,
        },
        EventRoute {
            endpoint: "fraud".into(),
            types: Some(vec![IssuerEventType::ChallengeDecided]),
        },
    ]
}

fn names() -> Vec<String> {
    vec!["all".into(), "fraud".into()]
}

/// A decision (the hot write path), a device enrolment and a plain audit append each
/// write their event in their own transaction; other changes write none. Fan-out gives
/// each event one delivery per endpoint that wants its type, once.
pub async fn issuer_events_written_with_the_change<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await; // cardholder.created: no event
    let phone = enrolled(&*s, &anna, None).await; // device.enrolled
    let new = new_challenge(&anna, T0.plus(60_000));
    let id = new.id.clone();
    created(&*s, new, vec![]).await; // challenge.created: no event
    let decision = NewDecision {
        challenge: id.clone(),
        device: phone.id.clone(),
        decision: DecisionKind::Deny,
        reason: Some(DenyReasonKind::NotMe),
        user_verification: "biometric".into(),
        proof: "proof".into(),
        processor_output: None,
        at: T0.plus(1),
    };
    let audit = AuditDraft::new(T0.plus(1), "device:x", "decision.accepted")
        .challenge(&id)
        .device(&phone.id)
        .cardholder(&anna)
        .details(serde_json::json!({
            "decision": "deny", "reason": "not_me", "provider": "enfuce", "reference": "s-1"
        }));
    assert!(matches!(
        s.challenge_decide(decision, vec![], audit).await.unwrap(),
        DecideOutcome::Accepted(_)
    ));
    s.audit_append(draft("cardholder.blocked").cardholder(&anna))
        .await
        .unwrap();

    let recent = s.issuer_events_recent(50).await.unwrap();
    let types: Vec<_> = recent.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            IssuerEventType::CardholderBlocked,
            IssuerEventType::ChallengeDecided,
            IssuerEventType::DeviceEnrolled
        ],
        "newest first, one per event-bearing change"
    );
    assert!(
        recent.iter().all(|e| e.deliveries.is_empty()),
        "not fanned out yet"
    );

    assert_eq!(
        s.issuer_events_fan_out(&routes(), T0, 100).await.unwrap(),
        3
    );
    assert_eq!(
        s.issuer_events_fan_out(&routes(), T0, 100).await.unwrap(),
        0,
        "once"
    );
    let recent = s.issuer_events_recent(50).await.unwrap();
    let endpoints = |i: usize| -> Vec<&str> {
        recent[i]
            .deliveries
            .iter()
            .map(|d| d.endpoint.as_str())
            .collect()
    };
    assert_eq!(endpoints(0), ["all"]);
    assert_eq!(endpoints(1), ["all", "fraud"]);
    assert_eq!(endpoints(2), ["all"]);

    let claimed = s
        .issuer_event_claim(&names(), T0, T0.plus(15_000), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    let decided = claimed
        .iter()
        .find(|d| d.endpoint == "fraud")
        .expect("the decision goes to fraud");
    assert_eq!(decided.event_id, recent[1].id);
    let body: serde_json::Value = serde_json::from_str(&decided.body).unwrap();
    assert_eq!(body["type"], "challenge.decided");
    assert_eq!(body["data"]["outcome"], "not_me");
    assert_eq!(body["data"]["challenge_id"], id.as_str());
    assert_eq!(body["data"]["device_id"], phone.id.as_str());
    assert_eq!(body["data"]["reference"], "s-1");
    let enrolled_body: serde_json::Value = serde_json::from_str(
        &claimed
            .iter()
            .find(|d| d.event_type == IssuerEventType::DeviceEnrolled)
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        enrolled_body["data"]["cardholder_id"],
        anna.as_str(),
        "filled in by the enrolment"
    );
}

/// Only the current claim completes a delivery; a stale holder changes nothing; a retry
/// comes back when due, keeps its event id and counts attempts; final rows stay final.
pub async fn issuer_event_claims_are_fenced<S: Store>(store: S) {
    let s = ready(store).await;
    s.audit_append(draft("cardholder.blocked")).await.unwrap();
    s.issuer_events_fan_out(&routes(), T0, 100).await.unwrap();
    let only = |v: Vec<EventDelivery>| {
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap()
    };
    let a = only(
        s.issuer_event_claim(&names(), T0, T0.plus(1_000), 10)
            .await
            .unwrap(),
    );
    assert!(
        s.issuer_event_claim(&names(), T0.plus(10), T0.plus(2_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    assert!(
        s.issuer_event_claim(&["other".to_owned()], T0.plus(2_000), T0.plus(3_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "only configured endpoints are claimed"
    );
    // A's lease runs out; B takes over.
    let b = only(
        s.issuer_event_claim(&names(), T0.plus(1_001), T0.plus(5_000), 10)
            .await
            .unwrap(),
    );
    assert_eq!((b.id, b.event_id.as_str()), (a.id, a.event_id.as_str()));
    assert!(b.claim > a.claim);
    let attempt = |status: Option<i32>| DeliveryAttempt {
        at: T0.plus(1_100),
        http_status: status,
        error: status
            .filter(|s| *s >= 300)
            .map(|s| format!("endpoint answered {s}")),
    };
    assert!(
        !s.issuer_event_complete(a.id, a.claim, DeliveryNext::Done, attempt(Some(200)))
            .await
            .unwrap(),
        "a stale holder changes nothing"
    );
    assert!(
        s.issuer_event_complete(
            b.id,
            b.claim,
            DeliveryNext::RetryAt(T0.plus(9_000)),
            attempt(Some(503))
        )
        .await
        .unwrap()
    );
    let view = &s.issuer_events_recent(10).await.unwrap()[0].deliveries[0];
    assert_eq!(
        (
            view.status,
            view.attempts,
            view.last_status,
            view.next_attempt_at
        ),
        (DeliveryStatus::Pending, 1, Some(503), Some(T0.plus(9_000)))
    );
    assert_eq!(view.last_error.as_deref(), Some("endpoint answered 503"));
    assert!(
        s.issuer_event_claim(&names(), T0.plus(8_999), T0.plus(20_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let c = only(
        s.issuer_event_claim(&names(), T0.plus(9_000), T0.plus(20_000), 10)
            .await
            .unwrap(),
    );
    assert_eq!((c.event_id.as_str(), c.attempts), (a.event_id.as_str(), 1));
    assert!(
        s.issuer_event_complete(c.id, c.claim, DeliveryNext::Done, attempt(Some(204)))
            .await
            .unwrap()
    );
    assert!(
        !s.issuer_event_complete(c.id, c.claim, DeliveryNext::Failed, attempt(None))
            .await
            .unwrap(),
        "final stays final"
    );
    let view = &s.issuer_events_recent(10).await.unwrap()[0].deliveries[0];
    assert_eq!(
        (view.status, view.attempts, view.next_attempt_at),
        (DeliveryStatus::Done, 2, None)
    );
    assert!(
        s.issuer_event_claim(&names(), T0.plus(99_000), T0.plus(100_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Concurrent fan-outs and claims (several instances) hand each delivery out once.
pub async fn issuer_event_concurrent_fan_out_and_claims<S: Store>(store: S) {
    let s = ready(store).await;
    for _ in 0..40 {
        s.audit_append(draft("cardholder.blocked")).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                s.issuer_events_fan_out(&routes(), T0, 7).await.unwrap();
                for d in s
                    .issuer_event_claim(&names(), T0, T0.plus(60_000), 3)
                    .await
                    .unwrap()
                {
                    got.push(d.id);
                }
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    s.issuer_events_fan_out(&routes(), T0, 100).await.unwrap();
    all.extend(
        s.issuer_event_claim(&names(), T0, T0.plus(60_000), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id),
    );
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        (n, all.len()),
        (40, 40),
        "40 events × the one endpoint that wants them, each once"
    );
}

/// Deliveries to an endpoint that no instance has configured any more are given up
/// once they have been due since before the cut-off: not before, never one another
/// instance holds, never one of a configured endpoint; the holder of one given up
/// meanwhile changes nothing.
pub async fn issuer_event_orphans_given_up<S: Store>(store: S) {
    let s = ready(store).await;
    for _ in 0..3 {
        s.audit_append(draft("cardholder.blocked")).await.unwrap();
    }
    let before = vec![
        EventRoute {
            endpoint: "all".into(),
            types: None,
        },
        EventRoute {
            endpoint: "gone".into(),
            types: None,
        },
    ];
    s.issuer_events_fan_out(&before, T0, 100).await.unwrap();
    // An instance that still has "gone" configured holds one of its deliveries.
    let held = s
        .issuer_event_claim(&["gone".to_owned()], T0, T0.plus(100_000), 1)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let now_known = ["all".to_owned()];
    let give_up = |due_before: Millis, now: Millis, limit: i64| {
        s.issuer_event_orphans_fail(&now_known, due_before, now, "endpoint gone", limit)
    };
    assert_eq!(
        give_up(T0, T0.plus(50_000), 10).await.unwrap(),
        0,
        "not due before the cut-off"
    );
    assert_eq!(
        give_up(T0.plus(1), T0.plus(50_000), 1).await.unwrap(),
        1,
        "the limit holds"
    );
    assert_eq!(
        give_up(T0.plus(1), T0.plus(50_000), 10).await.unwrap(),
        1,
        "the held one stays"
    );
    assert_eq!(give_up(T0.plus(1), T0.plus(50_000), 10).await.unwrap(), 0);
    // Its lease ran out (its instance is gone too): given up, and its holder is fenced.
    assert_eq!(give_up(T0.plus(1), T0.plus(100_001), 10).await.unwrap(), 1);
    let attempt = DeliveryAttempt {
        at: T0.plus(100_002),
        http_status: Some(200),
        error: None,
    };
    assert!(
        !s.issuer_event_complete(held[0].id, held[0].claim, DeliveryNext::Done, attempt)
            .await
            .unwrap(),
        "the holder of a given-up delivery changes nothing"
    );
    let mut seen = Vec::new();
    for event in s.issuer_events_recent(10).await.unwrap() {
        for d in event.deliveries {
            seen.push((d.endpoint, d.status, d.last_error));
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let gone = (
        "gone".to_owned(),
        DeliveryStatus::Failed,
        Some("endpoint gone".to_owned()),
    );
    let all = ("all".to_owned(), DeliveryStatus::Pending, None);
    assert_eq!(
        seen,
        [
            all.clone(),
            all.clone(),
            all,
            gone.clone(),
            gone.clone(),
            gone
        ]
    );
    assert_eq!(
        s.issuer_event_claim(&now_known, T0.plus(100_003), T0.plus(200_000), 10)
            .await
            .unwrap()
            .len(),
        3,
        "the configured endpoint's deliveries are still claimed"
    );
}

/// Events written before the cut-off are deleted with their deliveries once every
/// delivery has ended (`done`, `failed`) or none was wanted, at most `limit` at a time;
/// an event with a delivery still pending, one not fanned out yet and one written
/// after the cut-off stay. Deleted deliveries are never claimed again.
pub async fn issuer_events_purged<S: Store>(store: S) {
    let s = ready(store).await;
    let blocked_at =
        |ms: i64| AuditDraft::new(T0.plus(ms), "admin:conformance", "cardholder.blocked");
    let all = vec![EventRoute {
        endpoint: "all".into(),
        types: None,
    }];
    // e0, e1, e2: old, one delivery each; e3: new, wanted by nobody; e4: old, not fanned out.
    for ms in 0..3 {
        s.audit_append(blocked_at(ms)).await.unwrap();
    }
    assert_eq!(s.issuer_events_fan_out(&all, T0, 100).await.unwrap(), 3);
    s.audit_append(blocked_at(100_000)).await.unwrap();
    assert_eq!(s.issuer_events_fan_out(&[], T0, 100).await.unwrap(), 1);
    s.audit_append(blocked_at(3)).await.unwrap();
    let ids: Vec<String> = s
        .issuer_events_recent(10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 5);

    let mut claimed = s
        .issuer_event_claim(&["all".to_owned()], T0, T0.plus(10_000), 10)
        .await
        .unwrap();
    claimed.sort_by_key(|d| d.id);
    assert_eq!(claimed.len(), 3);
    let attempt = |status| DeliveryAttempt {
        at: T0.plus(10),
        http_status: Some(status),
        error: None,
    };
    for (d, next, status) in [
        (&claimed[0], DeliveryNext::Done, 204),
        (&claimed[1], DeliveryNext::Failed, 500),
        (&claimed[2], DeliveryNext::RetryAt(T0.plus(20_000)), 503),
    ] {
        assert!(
            s.issuer_event_complete(d.id, d.claim, next, attempt(status))
                .await
                .unwrap()
        );
    }

    let cut_off = T0.plus(50_000);
    assert_eq!(s.issuer_events_purge(cut_off, 0).await.unwrap(), 0);
    assert_eq!(
        s.issuer_events_purge(cut_off, 1).await.unwrap(),
        1,
        "the limit holds"
    );
    assert_eq!(s.issuer_events_purge(cut_off, 10).await.unwrap(), 1);
    assert_eq!(
        s.issuer_events_purge(cut_off, 10).await.unwrap(),
        0,
        "pending, new and not fanned out stay"
    );
    let left =
        |v: Vec<IssuerEventView>| -> Vec<String> { v.into_iter().rev().map(|e| e.id).collect() };
    assert_eq!(left(s.issuer_events_recent(10).await.unwrap()), ids[2..]);

    // e2's retry succeeds and e4 is fanned out (to nobody): both go; e3 is still new.
    let retry = s
        .issuer_event_claim(&["all".to_owned()], T0.plus(20_000), T0.plus(30_000), 10)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert!(
        s.issuer_event_complete(
            retry[0].id,
            retry[0].claim,
            DeliveryNext::Done,
            attempt(200)
        )
        .await
        .unwrap()
    );
    assert_eq!(s.issuer_events_fan_out(&[], T0, 100).await.unwrap(), 1);
    assert_eq!(s.issuer_events_purge(cut_off, 10).await.unwrap(), 2);
    assert_eq!(
        left(s.issuer_events_recent(10).await.unwrap()),
        [ids[3].clone()]
    );
    // (The deliveries went with their events: both backends enforce the foreign key
    // from a delivery to its event, so deleting the events alone would have failed.)
    assert_eq!(
        s.issuer_events_purge(T0.plus(100_001), 10).await.unwrap(),
        1,
        "past its time, the new one goes too"
    );
    assert!(s.issuer_events_recent(10).await.unwrap().is_empty());
}
