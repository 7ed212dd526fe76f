//! Deliveries a request starts itself (a creation's pushes) share their lane's
//! `[workers] concurrency` slots with the workers: a slow push service cannot pile up
//! deliveries, and a push left without a slot is delivered by a worker, once.

use std::time::Duration;

use crate::app::{Backend, spawn_with, wait_count};
use crate::mock::MockFcm;
use crate::senders::push_config;

async fn slow_push_service_is_bounded(backend: Backend) {
    let fcm = MockFcm::start().await;
    let (config, _keys) = push_config(None, Some(&fcm));
    let app = spawn_with(backend, config, |c| {
        c.workers.concurrency = 1;
        c.workers.lease_ms = 1_500;
    })
    .await;
    let tokens = ["fcm:slot-slow-0", "fcm:slot-fast-1", "fcm:slot-fast-2"];
    // The slow push holds the only slot for twice the lease (renewed meanwhile); the
    // phones are enrolled first so that the creations come while it does.
    fcm.slow(tokens[0], 3_000);
    let mut cardholders = Vec::new();
    for token in tokens {
        let cardholder = app.cardholder().await;
        app.phone(&cardholder, "android", token, None).await;
        cardholders.push(cardholder);
    }
    for (i, cardholder) in cardholders.iter().enumerate() {
        app.challenge(cardholder, &format!("slot-{i}")).await;
    }
    for token in tokens {
        wait_count(&format!("the push to {token}"), 1, || {
            fcm.requests_for(token).len()
        })
        .await;
    }
    // Longer than a lease: a second delivery of a row (a takeover that repeats a
    // push already sent) would show up by now.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    for token in tokens {
        assert_eq!(fcm.requests_for(token).len(), 1, "{token} pushed once");
    }
    assert_eq!(
        fcm.max_in_flight(),
        1,
        "one push at a time with [workers] concurrency = 1"
    );
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let deferred = metrics
        .lines()
        .find(|l| l.starts_with("pushauth_outbox_inline_deferred_total"))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        deferred >= 1.0,
        "a creation that found no slot left its push to the workers: {deferred}"
    );
    app.server.shutdown().await;
}

mod slow_push_service_is_bounded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::slow_push_service_is_bounded(crate::app::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::slow_push_service_is_bounded(crate::app::Backend::Postgres).await
    }
}
