//! The backend conformance suite: one set of behavioural cases that every [`Store`]
//! implementation must pass, run by each backend's `tests/conformance.rs` through
//! [`store_conformance_suite!`](crate::store_conformance_suite) with its own
//! constructor.
//!
//! Each case is a generic `pub async fn case<S: Store>(store: S)` that migrates the
//! (fresh, empty) store it is given, exercises one rule of the contract and panics
//! when the backend breaks it. Concurrency cases spawn real tasks on a
//! multi-threaded runtime against the real database; nothing is mocked.
//!
//! Compiled only with the `conformance` feature (test support, so panicking asserts
//! and `unwrap` are the point here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod authz;
mod challenges;
mod decisions;
mod device_keys;
mod devices;
mod events;
mod keys;
mod outbox;
mod outbox_fence;
mod parties;
mod search;

use std::sync::Arc;
use std::time::Duration;

use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
use pushauth_core::money::{Currency, Money};
use pushauth_core::transaction::{Payee, TransactionKind, TxnDigest};

pub use audit::{audit_chain_intact, concurrent_writers_some_refused, subscribe_events};
pub use authz::{
    blocked_cardholder_cannot_enroll_or_migrate, cardholder_block_cancels_pending,
    challenge_decide_authorised_at_commit, decide_races_block,
};
pub use challenges::{
    challenge_create_and_duplicate, challenge_create_concurrent_duplicates,
    challenge_create_planned, challenge_create_planned_limit_under_race,
    challenge_create_unknown_cardholder, challenge_due, challenge_list_filters,
    challenge_pending_for_and_count,
};
pub use decisions::{
    challenge_close_expired_only_after_deadline, challenge_decide_first_wins,
    challenge_decide_on_closed, challenge_decide_past_deadline, challenge_final_status,
};
pub use device_keys::{
    device_inactive_cannot_rotate_or_set_push_token, device_migration_grant_concurrent,
    device_migration_grant_single_use, device_rotate_each_key_idempotent,
};
pub use devices::{
    activation_single_use, device_enroll_concurrent, device_every_platform,
    device_failures_lock_and_decide_resets, device_push_token_dead, device_rotate_key_cas,
    device_status, request_nonce_purge, request_nonce_replay,
};
pub use events::{
    issuer_event_claims_are_fenced, issuer_event_concurrent_fan_out_and_claims,
    issuer_event_orphans_given_up, issuer_events_purged, issuer_events_written_with_the_change,
};
pub use keys::{
    admin_key_configured_replaces_previous, admin_key_list_and_revoke, server_key_rotate_and_rewrap,
};
pub use outbox::{
    outbox_claim_concurrent, outbox_claim_due_and_lease, outbox_claim_lanes,
    outbox_complete_transitions, outbox_next_due,
};
pub use outbox_fence::{
    outbox_complete_race, outbox_row_claimed_by_its_writer, outbox_sending_mark_and_unknown,
    outbox_stale_holder_changes_nothing, push_rows_claimed_by_their_creation,
};
pub use parties::{
    admin_keys, card_links, cardholders, migrate_twice, server_key_concurrent_first_start,
    server_key_get_or_insert,
};
pub use search::{challenge_find_reference, challenge_list_time_window};

use crate::*;

/// Expands to one `#[tokio::test]` per conformance case. `$make` is evaluated inside
/// each (async) test and must give `(store, guard)`: a fresh, empty store and a value
/// dropped after the case (a temporary directory, a schema to drop…); it may use
/// `.await`. The calling crate needs `tokio` with `macros` and `rt-multi-thread`.
///
/// ```ignore
/// pushauth_store::store_conformance_suite!(support::fresh_store().await);
/// ```
#[macro_export]
macro_rules! store_conformance_suite {
    ($make:expr) => {
        $crate::store_conformance_suite!(@cases $make;
            migrate_twice, server_key_get_or_insert, server_key_concurrent_first_start, admin_keys,
            cardholders, card_links,
            activation_single_use, device_enroll_concurrent, device_status,
            device_failures_lock_and_decide_resets, device_push_token_dead, device_rotate_key_cas,
            device_every_platform,
            device_rotate_each_key_idempotent, device_inactive_cannot_rotate_or_set_push_token,
            device_migration_grant_single_use, device_migration_grant_concurrent,
            request_nonce_replay, request_nonce_purge,
            challenge_create_and_duplicate, challenge_create_concurrent_duplicates,
            challenge_create_unknown_cardholder, challenge_create_planned, challenge_create_planned_limit_under_race,
            challenge_pending_for_and_count, challenge_list_filters,
            challenge_list_time_window, challenge_find_reference,
            challenge_due, challenge_decide_first_wins, challenge_decide_past_deadline,
            challenge_decide_on_closed, challenge_close_expired_only_after_deadline, challenge_final_status,
            outbox_claim_due_and_lease, outbox_claim_concurrent, outbox_claim_lanes, outbox_complete_transitions, outbox_next_due,
            outbox_stale_holder_changes_nothing, outbox_sending_mark_and_unknown, outbox_complete_race,
            audit_chain_intact, subscribe_events,
            challenge_decide_authorised_at_commit, cardholder_block_cancels_pending, decide_races_block,
            blocked_cardholder_cannot_enroll_or_migrate,
            admin_key_list_and_revoke, admin_key_configured_replaces_previous, server_key_rotate_and_rewrap,
            issuer_events_written_with_the_change, issuer_event_claims_are_fenced,
            issuer_event_concurrent_fan_out_and_claims, issuer_event_orphans_given_up,
            issuer_events_purged, outbox_row_claimed_by_its_writer,
            push_rows_claimed_by_their_creation, concurrent_writers_some_refused,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $make;
                $crate::conformance::$case(store).await;
                drop(guard);
            }
        )+
    };
}

// ---- fixtures (public for backend-specific tests) -----------------------------------

/// The suite's clock origin (2023-11-14T22:13:20Z).
pub const T0: Millis = Millis(1_700_000_000_000);

/// Migrates the store and shares it between tasks.
pub async fn ready<S: Store>(store: S) -> Arc<S> {
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

/// A fresh random token (UUID text), for references, codes and keys.
pub fn unique() -> String {
    ChallengeId::generate().expect("random").as_str().to_owned()
}

/// An audit draft by an admin at [`T0`].
pub fn draft(action: &str) -> AuditDraft {
    AuditDraft::new(T0, "admin:conformance", action)
}

/// Creates a cardholder (one audit entry).
pub async fn new_cardholder<S: Store>(s: &S) -> CardholderId {
    let id = CardholderId::generate().expect("random");
    let new = NewCardholder {
        id: id.clone(),
        external_ref: None,
        label: None,
        created_at: T0,
    };
    s.cardholder_create(new, draft("cardholder.created").cardholder(&id))
        .await
        .expect("cardholder_create");
    id
}

/// A device key with a unique thumbprint.
pub fn device_key(tag: &str) -> DeviceKey {
    DeviceKey {
        jwk: format!(r#"{{"kty":"EC","crv":"P-256","x":"{tag}","y":"{tag}"}}"#),
        thumbprint: format!("tp-{tag}"),
    }
}

/// A device to enroll, with an optional push token.
pub fn new_device(push: Option<&str>) -> NewDevice {
    NewDevice {
        id: DeviceId::generate().expect("random"),
        platform: Platform::Ios,
        label: Some("Anna's iPhone".into()),
        device_key: device_key(&format!("sign-{}", unique())),
        approval_key: device_key(&format!("approve-{}", unique())),
        agreement_key: device_key(&format!("agree-{}", unique())),
        push: push.map(|t| PushTarget {
            token: t.into(),
            environment: Some(PushEnvironment::Sandbox),
        }),
        server_kid: Some("server-kid-1".into()),
        created_at: T0,
    }
}

/// Stores an activation code for `cardholder` valid until `expires_at` (one audit entry).
pub async fn new_code<S: Store>(s: &S, cardholder: &CardholderId, expires_at: Millis) -> KeyHash {
    let code_hash = KeyHash::of(unique().as_bytes());
    let new = NewActivation {
        code_hash,
        cardholder: cardholder.clone(),
        expires_at,
        created_at: T0,
    };
    s.activation_create(new, draft("activation.created").cardholder(cardholder))
        .await
        .expect("activation_create");
    code_hash
}

/// Enrolls a device through a fresh activation code (two audit entries).
pub async fn enrolled<S: Store>(s: &S, cardholder: &CardholderId, push: Option<&str>) -> Device {
    let code = new_code(s, cardholder, T0.plus(600_000)).await;
    let device = new_device(push);
    let audit = draft("device.enrolled").device(&device.id);
    match s
        .device_enroll(&code, T0, device, audit)
        .await
        .expect("device_enroll")
    {
        EnrollOutcome::Enrolled(d) => d,
        other => panic!("expected Enrolled, got {other:?}"),
    }
}

/// A payment challenge with a unique reference.
pub fn new_challenge(cardholder: &CardholderId, deadline: Millis) -> NewChallenge {
    let eur = Currency::parse("EUR").expect("EUR");
    NewChallenge {
        id: ChallengeId::generate().expect("random"),
        cardholder: cardholder.clone(),
        provider: Provider::Enfuce,
        provider_ref: ProviderRef::parse(&format!("ref-{}", unique())).expect("reference"),
        kind: TransactionKind::Payment,
        amount: Some(Money::from_minor(4990, eur).expect("money")),
        payee: Some(Payee::parse("Café Ünïcode & Co").expect("payee")),
        nonce: Nonce::generate().expect("nonce"),
        txn_digest: TxnDigest::from_bytes([7; 32]),
        deadline,
        upstream_deadline: deadline.plus(60_000),
        processor_input: Some("sdk-input".into()),
        context: serde_json::json!({ "callback": "https://issuer.example/cb", "n": 1, "nested": { "b": 2, "a": [1, 2] } }),
        created_at: T0,
    }
}

/// An outbox row of `kind` for a challenge, due at `not_before`.
pub fn outbox_row(
    kind: OutboxKind,
    challenge: &ChallengeId,
    device: Option<&DeviceId>,
    not_before: Millis,
) -> NewOutbox {
    NewOutbox {
        kind,
        challenge: challenge.clone(),
        device: device.cloned(),
        payload: serde_json::json!({ "kind": kind.as_str(), "tag": unique() }),
        not_before,
        deadline: not_before.plus(150_000),
        claimed_until: None,
    }
}

/// Creates a challenge that must be new (one audit entry).
pub async fn created<S: Store>(s: &S, new: NewChallenge, outbox: Vec<NewOutbox>) -> Challenge {
    let audit = draft("challenge.created")
        .challenge(&new.id)
        .cardholder(&new.cardholder);
    match s
        .challenge_create(new, outbox, audit)
        .await
        .expect("challenge_create")
    {
        CreateOutcome::Created(c) => c,
        CreateOutcome::Duplicate(c) => panic!("expected Created, got Duplicate({:?})", c.id),
    }
}

/// A decision by `device` at `at`.
pub fn decision(
    challenge: &ChallengeId,
    device: &DeviceId,
    kind: DecisionKind,
    at: Millis,
) -> NewDecision {
    NewDecision {
        challenge: challenge.clone(),
        device: device.clone(),
        decision: kind,
        reason: (kind == DecisionKind::Deny).then_some(DenyReasonKind::NotMe),
        user_verification: "biometric".into(),
        proof: format!("proof-{}", unique()),
        processor_output: Some("sdk-output".into()),
        at,
    }
}

/// An attempt record at `at`.
pub fn attempt(
    at: Millis,
    outcome: AttemptOutcome,
    http_status: Option<i32>,
    error: Option<&str>,
) -> AttemptRecord {
    AttemptRecord {
        at,
        latency_ms: 42,
        outcome,
        http_status,
        error: error.map(str::to_owned),
    }
}

/// Waits (at most 15 s: a loaded machine) for an event matching `want`, skipping others.
pub async fn expect_event(
    rx: &mut tokio::sync::broadcast::Receiver<StoreEvent>,
    what: &str,
    want: impl Fn(&StoreEvent) -> bool,
) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(event) if want(&event) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    panic!("event channel closed")
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .is_err()
    {
        panic!("no {what} event within 15 s");
    }
}
