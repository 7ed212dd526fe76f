//! The SQLite backend's hot write transactions, one at a time (no contention): what
//! one webhook's challenge creation and one device request's nonce cost the single
//! writer. `cargo bench -p pushauth-store-sqlite --bench write_path`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use pushauth_store::conformance::{T0, draft, enrolled, new_cardholder, new_challenge};
use pushauth_store::{CreateContext, CreatePlan, Millis, PlannedOutcome, Planner, Store};
use pushauth_store_sqlite::SqliteStore;

fn write_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, anna, device) = rt.block_on(async {
        let store = SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let anna = new_cardholder(&store).await;
        let device = enrolled(&store, &anna, Some("push-token")).await;
        (store, anna, device)
    });
    // Decided "now" lies after every bench challenge's deadline: the pending count
    // stays 0 however many challenges the run creates.
    let now = Millis(T0.0 + 3_600_000);

    c.bench_function("sqlite/challenge_create_planned", |b| {
        b.iter(|| {
            rt.block_on(async {
                let new = new_challenge(&anna, T0.plus(60_000));
                let (provider, reference) = (new.provider, new.provider_ref.clone());
                let plan: Planner = Box::new(move |_seen: &CreateContext| {
                    let audit = draft("challenge.created")
                        .challenge(&new.id)
                        .cardholder(&new.cardholder);
                    CreatePlan::Write {
                        new,
                        outbox: Vec::new(),
                        audit,
                    }
                });
                let out = store
                    .challenge_create_planned(provider, &reference, &anna, now, plan)
                    .await
                    .unwrap();
                assert!(matches!(out, PlannedOutcome::Created { .. }));
            })
        })
    });

    let mut n = 0u64;
    c.bench_function("sqlite/request_nonce_use", |b| {
        b.iter(|| {
            n += 1;
            let jti = format!("jti-{n}");
            rt.block_on(async {
                assert!(
                    store
                        .request_nonce_use(&device.id, &jti, now)
                        .await
                        .unwrap()
                );
            })
        })
    });

    c.bench_function("sqlite/challenge_get (read, pooled connection)", |b| {
        let id = rt.block_on(async {
            let new = new_challenge(&anna, T0.plus(60_000));
            let id = new.id.clone();
            let audit = draft("challenge.created").challenge(&id);
            store
                .challenge_create(new, Vec::new(), audit)
                .await
                .unwrap();
            id
        });
        b.iter(|| rt.block_on(async { store.challenge_get(&id).await.unwrap().unwrap() }))
    });
}

criterion_group!(benches, write_path);
criterion_main!(benches);
