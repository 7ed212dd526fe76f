//! Two `pushauth` instances on one PostgreSQL database, no load balancer: the test
//! sends each webhook to one instance (round-robin) and the phones' decisions to the
//! other. Every result reaches the processor exactly once and every push reaches a
//! phone exactly once, whichever instance's worker takes it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use pushauth::{DecisionOutcome, DenyReason, Platform};
use pushauth_tests::processor::{Ending, Processor};
use pushauth_tests::server::Backend;
use pushauth_tests::world::World;

const WAIT: Duration = Duration::from_secs(20);
const ROUNDS: usize = 6;

async fn webhooks_on_one_decisions_on_the_other(p: Processor) {
    let w = World::start(p, Backend::Postgres, 40, 2, &[]).await;
    let ch = w.cardholder(0, &[Platform::Ios, Platform::Android]).await;
    let (iphone, android) = (&ch.phones[0], &ch.phones[1]);
    let via = [iphone.via(&w.servers[0].url), iphone.via(&w.servers[1].url)];
    let android_via = [
        android.via(&w.servers[0].url),
        android.via(&w.servers[1].url),
    ];
    let mut cases = Vec::new();
    for round in 0..ROUNDS {
        let (inbound, decider) = (round % 2, (round + 1) % 2);
        let (reference, id) = w.webhook(inbound, &ch.card).await;
        iphone.wait_push("challenge", Some(&id), WAIT).await;
        android.wait_push("challenge", Some(&id), WAIT).await;
        // Alternate approvals on the iPhone and denials on the Android phone.
        let ending = if round % 3 == 2 {
            let client = &android_via[decider];
            let view = client.challenge(id.clone()).await.unwrap();
            let out = client.deny(view, DenyReason::Declined).await.unwrap();
            assert_eq!(out, DecisionOutcome::Denied);
            Ending::Denied
        } else {
            let client = &via[decider];
            let view = client.challenge(id.clone()).await.unwrap();
            let out = client.approve(view, p.processor_output()).await.unwrap();
            assert_eq!(out, DecisionOutcome::Approved);
            Ending::Approved
        };
        cases.push((reference, id, ending, round));
    }
    for (reference, id, ending, round) in &cases {
        let server = &w.servers[*round % 2];
        if p.expected_result(*ending).is_some() {
            let calls = w.mock.wait_delivered(reference, 1, WAIT).await;
            p.check_result(&calls[0], *ending, reference);
            server
                .wait_challenge(id, "upstream", "delivered", WAIT)
                .await;
        }
        let loser = if *ending == Ending::Approved {
            android
        } else {
            iphone
        };
        loser.wait_push("dismiss", Some(id), WAIT).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (reference, id, ending, _) in &cases {
        let expected = usize::from(p.expected_result(*ending).is_some());
        assert_eq!(
            w.mock.calls_for(reference).len(),
            expected,
            "results for {reference}: {:#?}",
            w.mock.calls_for(reference)
        );
        // Both instances see the same state.
        let (a, b) = (w.servers[0].view(id).await, w.servers[1].view(id).await);
        assert_eq!(a["challenge"], b["challenge"]);
        assert_eq!(a["challenge"]["upstream"], p.expected_upstream(*ending));
    }
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for m in w.push.all() {
        *seen.entry((m.token, m.cid, m.kind)).or_default() += 1;
    }
    // 2 challenge pushes + 1 dismiss per round, each sent once.
    assert_eq!(seen.len(), ROUNDS * 3, "{seen:#?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "a push was sent twice: {seen:#?}"
    );
    let (s, v) = w.servers[1]
        .admin(reqwest::Method::GET, "/v1/admin/audit/verify", None)
        .await;
    assert_eq!(
        (s, &v["result"]),
        (200, &serde_json::json!("intact")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enfuce() {
    webhooks_on_one_decisions_on_the_other(Processor::Enfuce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyen() {
    webhooks_on_one_decisions_on_the_other(Processor::Adyen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paysafe() {
    webhooks_on_one_decisions_on_the_other(Processor::Paysafe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn treezor() {
    webhooks_on_one_decisions_on_the_other(Processor::Treezor).await;
}
