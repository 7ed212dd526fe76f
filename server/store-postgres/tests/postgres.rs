//! PostgreSQL-specific behaviour: several `PgStore` instances on one schema (as
//! several server instances on one database), tampering detection, schema names,
//! and the LISTEN connection's recovery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use pushauth_store::conformance::{
    T0, created, draft, expect_event, new_cardholder, new_challenge, outbox_row,
};
use pushauth_store::{
    AuditDraft, ChainCheck, OutboxKind, Store, StoreError, StoreEvent, entry_hash,
};
use pushauth_store_postgres::PgStore;
use support::Schema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_instances() {
    let schema = Schema::fresh();
    let (a, b) = (schema.store().await, schema.store().await);
    a.migrate().await.unwrap();
    let anna = new_cardholder(&a).await;
    let (mut on_b_challenge, mut on_b_outbox) = (b.subscribe(), b.subscribe());
    let new = new_challenge(&anna, T0.plus(60_000));
    let row = outbox_row(OutboxKind::Push, &new.id, None, T0);
    created(&a, new, vec![row]).await;
    expect_event(
        &mut on_b_challenge,
        "Challenge on the other instance",
        |e| {
            *e == StoreEvent::Challenge {
                cardholder: anna.clone(),
            }
        },
    )
    .await;
    expect_event(&mut on_b_outbox, "OutboxReady on the other instance", |e| {
        *e == StoreEvent::OutboxReady
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_work_notifies_nobody() {
    let schema = Schema::fresh();
    let store = schema.store().await;
    store.migrate().await.unwrap();
    let anna = new_cardholder(&store).await;
    let mut rx = store.subscribe();
    // a duplicate id makes the transaction fail after the challenge row
    let first = created(&store, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    expect_event(&mut rx, "Challenge", |e| {
        matches!(e, StoreEvent::Challenge { .. })
    })
    .await;
    let mut again = new_challenge(&anna, T0.plus(60_000));
    again.id = first.id.clone();
    let failed = store
        .challenge_create(again, vec![], draft("challenge.created"))
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let quiet = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(
        quiet.is_err(),
        "a rolled-back transaction must not notify: {quiet:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_across_instances_never_overlap() {
    let schema = Schema::fresh();
    let (a, b) = (schema.store().await, schema.store().await);
    a.migrate().await.unwrap();
    let anna = new_cardholder(&a).await;
    for _ in 0..6 {
        let new = new_challenge(&anna, T0.plus(60_000));
        let rows = (0..10)
            .map(|_| outbox_row(OutboxKind::Push, &new.id, None, T0))
            .collect();
        created(&a, new, rows).await;
    }
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.outbox_claim(T0.plus(1), 60_000, 2).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|i| i.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "row {id:?} claimed twice");
        }
    }
    assert_eq!(seen.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_appends_across_instances_stay_chained() {
    let schema = Schema::fresh();
    let (a, b) = (schema.store().await, schema.store().await);
    a.migrate().await.unwrap();
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let audit = AuditDraft::new(T0.plus(n), format!("worker:{i}"), "test.append")
                    .details(serde_json::json!({ "n": n }));
                store.audit_append(audit).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The background chainers link the rows without anyone reading the log.
    let mut conn = schema.raw().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (unchained,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM audit_log WHERE seq IS NULL")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        if unchained == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{unchained} rows still unchained"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        a.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 40 }
    );
    assert_eq!(
        b.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 40 }
    );
}

#[tokio::test]
async fn audit_tampering_is_detected() {
    let schema = Schema::fresh();
    let store = schema.store().await;
    store.migrate().await.unwrap();
    for _ in 0..5 {
        new_cardholder(&store).await;
    }
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );
    let mut conn = schema.raw().await;

    sqlx::query("UPDATE audit_log SET at = at + 1 WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 3 }
    );
    sqlx::query("UPDATE audit_log SET at = at - 1 WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 5 },
        "restored"
    );

    sqlx::query(r#"UPDATE audit_log SET details = '{"forged":true}' WHERE seq = 5"#)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 5 }
    );
    sqlx::query("UPDATE audit_log SET details = 'null' WHERE seq = 5")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );

    // rewriting entry 2 with a correct own hash still breaks entry 3's link
    let (prev, cardholder): (String, String) =
        sqlx::query_as("SELECT prev_hash, cardholder_id FROM audit_log WHERE seq = 2")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let forged = AuditDraft {
        action: "cardholder.deleted".into(),
        ..draft("x")
    }
    .cardholder(&pushauth_core::ids::CardholderId::parse(&cardholder).unwrap());
    sqlx::query("UPDATE audit_log SET action = 'cardholder.deleted', hash = $1 WHERE seq = 2")
        .bind(entry_hash(&prev, 2, &forged))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 3 }
    );

    sqlx::query("DELETE FROM audit_log WHERE seq = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 1 }
    );
}

/// A row edited before the chainer linked it (here: inserted with a column that does
/// not decode) is never vouched for: the chain stops before it and verify says so.
#[tokio::test]
async fn unchained_row_that_does_not_decode_is_not_linked() {
    let schema = Schema::fresh();
    let store = schema.store().await;
    store.migrate().await.unwrap();
    for _ in 0..3 {
        new_cardholder(&store).await;
    }
    let mut conn = schema.raw().await;
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, challenge_id, details)
         VALUES (1, 'x', 'forged', 'not a challenge id', 'null')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 4 }
    );
    let (unchained,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log WHERE seq IS NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(unchained, 1);
}

#[tokio::test]
async fn schema_names_are_validated() {
    for bad in [
        "",
        "Public",
        "a-b",
        "x\"; DROP TABLE y; --",
        "1abc",
        &"a".repeat(64),
    ] {
        let out = PgStore::connect_in_schema(&support::url(), bad, 1).await;
        assert!(
            matches!(out, Err(StoreError::Backend(_))),
            "{bad:?} accepted"
        );
    }
}

/// The LISTEN connection is killed from the server side; the store reconnects,
/// tells subscribers to re-read, and hears other instances' notifications again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_after_its_connection_dies() {
    let schema = Schema::fresh();
    let (store, other) = (schema.store().await, schema.store().await);
    store.migrate().await.unwrap();
    let anna = new_cardholder(&store).await;
    let mut rx = store.subscribe();
    let mut conn = schema.raw().await;
    let pattern = format!("LISTEN%{}%", schema.name);
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid =
           (SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()
            ORDER BY backend_start LIMIT 1)",
    )
    .bind(&pattern)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "the first store's LISTEN connection");
    expect_event(&mut rx, "OutboxReady after the reconnect", |e| {
        *e == StoreEvent::OutboxReady
    })
    .await;
    created(&other, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    expect_event(&mut rx, "Challenge after the reconnect", |e| {
        *e == StoreEvent::Challenge {
            cardholder: anna.clone(),
        }
    })
    .await;
}

/// A store's own changes reach its subscribers once: directly at commit, not again
/// through its own NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_changes_are_announced_once() {
    let schema = Schema::fresh();
    let (a, b) = (schema.store().await, schema.store().await);
    a.migrate().await.unwrap();
    let anna = new_cardholder(&a).await;
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    created(&a, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    let first = on_a.try_recv();
    assert!(
        matches!(first, Ok(StoreEvent::Challenge { .. })),
        "announced by the time the call returns: {first:?}"
    );
    // The other instance hearing it means the NOTIFY went out (and came back here).
    expect_event(&mut on_b, "Challenge on the other instance", |e| {
        matches!(e, StoreEvent::Challenge { .. })
    })
    .await;
    let again = tokio::time::timeout(Duration::from_millis(300), on_a.recv()).await;
    assert!(
        again.is_err(),
        "own notification delivered twice: {again:?}"
    );
}

/// The connection that sends a store's notifications is killed: the next change is
/// still announced to other instances (reconnect and resend).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_a_lost_sending_connection() {
    let schema = Schema::fresh();
    let (a, b) = (schema.store().await, schema.store().await);
    a.migrate().await.unwrap();
    let anna = new_cardholder(&a).await;
    let mut on_b = b.subscribe();
    created(&a, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    expect_event(&mut on_b, "first Challenge", |e| {
        matches!(e, StoreEvent::Challenge { .. })
    })
    .await;
    let mut conn = schema.raw().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("pushauth notify pushauth_outbox_{}", schema.name))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "exactly the sending connection");
    let bob = new_cardholder(&a).await;
    created(&a, new_challenge(&bob, T0.plus(60_000)), vec![]).await;
    expect_event(&mut on_b, "Challenge after the sender reconnected", |e| {
        *e == StoreEvent::Challenge {
            cardholder: bob.clone(),
        }
    })
    .await;
}
