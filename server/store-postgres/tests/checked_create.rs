//! The planned creation's two paths on PostgreSQL: the checked write of a plan made on
//! an unlocked read, and the locked transaction it falls back to when the state the
//! plan saw changed before the write. Each fallback test changes the database between
//! the read and the write from inside the planner's first run (the planner runs with
//! no lock held on this path), then checks that the plan was made again from the new
//! state and that the stale plan wrote nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};

use pushauth_store::conformance::{
    T0, created, draft, enrolled, new_cardholder, new_challenge, outbox_row,
};
use pushauth_store::{
    CardholderStatus, CreateContext, CreatePlan, DeviceStatus, NewChallenge, OutboxKind,
    PlannedOutcome, Planner, Refusal, Store,
};
use pushauth_store_postgres::PgStore;
use support::Schema;

/// Every context the planner was given, in order.
type Seen = Arc<Mutex<Vec<CreateContext>>>;

/// Runs `f` to completion from synchronous code inside the multi-threaded runtime.
fn blocking<F: Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// A planner like the server's: refuses for a blocked cardholder, otherwise writes
/// `new` with one push row per active device, the last one claimed. It records what
/// it saw and, on its first run only, calls `meddle`.
fn planner(new: NewChallenge, seen: Seen, meddle: impl Fn() + Send + Sync + 'static) -> Planner {
    Box::new(move |ctx: &CreateContext| {
        let first = {
            let mut seen = seen.lock().unwrap();
            seen.push(ctx.clone());
            seen.len() == 1
        };
        if first {
            meddle();
        }
        if ctx.cardholder_status == CardholderStatus::Blocked {
            return CreatePlan::Refuse(Refusal::CardholderBlocked);
        }
        let active: Vec<_> = ctx
            .devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active)
            .collect();
        let outbox = active
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut row = outbox_row(OutboxKind::Push, &new.id, Some(&d.id), T0);
                if i + 1 == active.len() {
                    row.claimed_until = Some(T0.plus(5_000));
                }
                row
            })
            .collect();
        let audit = draft("challenge.created")
            .challenge(&new.id)
            .cardholder(&new.cardholder);
        CreatePlan::Write {
            new: new.clone(),
            outbox,
            audit,
        }
    })
}

async fn create(s: &PgStore, new: &NewChallenge, plan: Planner) -> PlannedOutcome {
    s.challenge_create_planned(new.provider, &new.provider_ref, &new.cardholder, T0, plan)
        .await
        .unwrap()
}

async fn store() -> (PgStore, Schema) {
    let schema = Schema::fresh();
    let s = schema.store().await;
    s.migrate().await.unwrap();
    (s, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_state_is_written_once_with_outbox_ids_in_order() {
    let (s, _schema) = store().await;
    let anna = new_cardholder(&s).await;
    let d1 = enrolled(&s, &anna, Some("tok-1")).await;
    let d2 = enrolled(&s, &anna, Some("tok-2")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let seen = Seen::default();
    let out = create(&s, &new, planner(new.clone(), seen.clone(), || {})).await;
    let PlannedOutcome::Created {
        challenge,
        outbox_rows,
        claimed,
        devices,
    } = out
    else {
        panic!("expected Created, got {out:?}");
    };
    assert_eq!(seen.lock().unwrap().len(), 1, "planned once");
    assert_eq!(
        (challenge.id.clone(), outbox_rows, devices.len()),
        (new.id.clone(), 2, 2)
    );
    assert_eq!(s.challenge_get(&new.id).await.unwrap(), Some(challenge));
    let rows = s.outbox_for_challenge(&new.id).await.unwrap();
    assert_eq!(rows.len(), 2);
    let stored = |dev| {
        rows.iter()
            .find(|r| r.device.as_ref() == Some(dev))
            .unwrap()
    };
    // The plan's order is the devices' order; its last row was written claimed and is
    // handed back with the id it was stored under.
    let (first, last) = (&devices[0].id, &devices[1].id);
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].id, claimed[0].device.as_ref()),
        (stored(last).id, Some(last))
    );
    assert!(
        stored(first).id.0 < stored(last).id.0,
        "rows inserted in the plan's order"
    );
    assert!([first, last].contains(&&d1.id) && [first, last].contains(&&d2.id));
    assert_eq!(s.challenge_count_pending(&anna, T0).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_after_the_read_is_refused_and_the_stale_plan_writes_nothing() {
    let (s, _schema) = store().await;
    let anna = new_cardholder(&s).await;
    enrolled(&s, &anna, Some("tok-1")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let seen = Seen::default();
    let (s2, who) = (s.clone(), anna.clone());
    let meddle = move || {
        let block =
            s2.cardholder_set_status(&who, CardholderStatus::Blocked, draft("cardholder.blocked"));
        assert!(blocking(block).unwrap());
    };
    let out = create(&s, &new, planner(new.clone(), seen.clone(), meddle)).await;
    assert!(
        matches!(out, PlannedOutcome::Refused(Refusal::CardholderBlocked)),
        "{out:?}"
    );
    let statuses: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.cardholder_status)
        .collect();
    assert_eq!(
        statuses,
        [CardholderStatus::Active, CardholderStatus::Blocked]
    );
    assert_eq!(s.challenge_get(&new.id).await.unwrap(), None);
    assert!(s.outbox_for_challenge(&new.id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_created_after_the_read_is_counted() {
    let (s, _schema) = store().await;
    let anna = new_cardholder(&s).await;
    enrolled(&s, &anna, Some("tok-1")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let seen = Seen::default();
    let (s2, who) = (s.clone(), anna.clone());
    let meddle = move || {
        blocking(created(&s2, new_challenge(&who, T0.plus(60_000)), vec![]));
    };
    let out = create(&s, &new, planner(new.clone(), seen.clone(), meddle)).await;
    assert!(matches!(out, PlannedOutcome::Created { .. }), "{out:?}");
    let pending: Vec<_> = seen.lock().unwrap().iter().map(|c| c.pending).collect();
    assert_eq!(
        pending,
        [0, 1],
        "planned again with the other challenge counted"
    );
    assert_eq!(s.challenge_count_pending(&anna, T0).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_changed_after_the_read_is_planned_with() {
    let (s, _schema) = store().await;
    let anna = new_cardholder(&s).await;
    let d1 = enrolled(&s, &anna, Some("tok-1")).await;
    let d2 = enrolled(&s, &anna, Some("tok-2")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let seen = Seen::default();
    let (s2, gone) = (s.clone(), d2.id.clone());
    let meddle = move || {
        let revoke = s2.device_set_status(&gone, DeviceStatus::Revoked, draft("device.revoked"));
        assert!(blocking(revoke).unwrap());
    };
    let out = create(&s, &new, planner(new.clone(), seen.clone(), meddle)).await;
    let PlannedOutcome::Created { outbox_rows, .. } = out else {
        panic!("expected Created, got {out:?}");
    };
    assert_eq!(seen.lock().unwrap().len(), 2, "planned again");
    assert_eq!(outbox_rows, 1);
    let rows = s.outbox_for_challenge(&new.id).await.unwrap();
    let devices: Vec<_> = rows.iter().map(|r| r.device.clone()).collect();
    assert_eq!(devices, [Some(d1.id)], "no push row for the revoked device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_reference_created_after_the_read_is_a_duplicate() {
    let (s, _schema) = store().await;
    let anna = new_cardholder(&s).await;
    enrolled(&s, &anna, Some("tok-1")).await;
    let new = new_challenge(&anna, T0.plus(60_000));
    let mut other = new_challenge(&anna, T0.plus(60_000));
    other.provider_ref = new.provider_ref.clone();
    let other_id = other.id.clone();
    let seen = Seen::default();
    let s2 = s.clone();
    let meddle = move || {
        blocking(created(&s2, other.clone(), vec![]));
    };
    let out = create(&s, &new, planner(new.clone(), seen.clone(), meddle)).await;
    let PlannedOutcome::Duplicate(existing) = out else {
        panic!("expected Duplicate, got {out:?}");
    };
    assert_eq!(existing.id, other_id);
    assert_eq!(seen.lock().unwrap().len(), 1, "a duplicate is not planned");
    assert_eq!(s.challenge_get(&new.id).await.unwrap(), None);
    assert_eq!(s.challenge_count_pending(&anna, T0).await.unwrap(), 1);
}
