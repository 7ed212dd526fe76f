//! Every processor (Enfuce, Adyen, Paysafe, Treezor) × every scenario (approve, deny,
//! `not_me`, timeout, two devices with first-answer-wins and a dismiss push, lost push
//! recovered by polling) × both storage backends, against the real `pushauth` binary,
//! a mock processor, mock APNs / FCM and phones on the mobile SDK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use pushauth::{DecisionOutcome, DenyReason, Platform, PushAuthError};
use pushauth_tests::processor::{Ending, Processor};
use pushauth_tests::server::Backend;
use pushauth_tests::world::World;

/// Decision window of the scenarios that answer (generous: a loaded CI machine).
const WINDOW: u64 = 30;
/// Decision window of the timeout scenario (half of it kept for the result call).
const SHORT_WINDOW: u64 = 6;
const WAIT: Duration = Duration::from_secs(15);

/// Waits for the result `ending` must produce at the processor, checks it, and checks
/// that it was sent exactly once.
async fn assert_result_once(w: &World, reference: &str, id: &str, ending: Ending) {
    let p = w.processor;
    match p.expected_result(ending) {
        Some(_) => {
            let calls = w.mock.wait_delivered(reference, 1, WAIT).await;
            p.check_result(&calls[0], ending, reference);
            w.server()
                .wait_challenge(id, "upstream", "delivered", WAIT)
                .await;
        }
        None => {
            // Nothing to send: give a wrong call the time to show up.
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = w.mock.calls_for(reference);
    let expected = usize::from(p.expected_result(ending).is_some());
    assert_eq!(
        calls.len(),
        expected,
        "{} result calls for {ending:?}: {calls:#?}",
        p.name()
    );
    let view = w.server().view(id).await;
    assert_eq!(
        view["challenge"]["upstream"],
        p.expected_upstream(ending),
        "{view:#}"
    );
}

/// Approve, deny or `not_me` by one phone that got the push.
async fn answer(p: Processor, backend: Backend, ending: Ending) {
    let w = World::start(p, backend, WINDOW, 1, &[]).await;
    let ch = w.cardholder(0, &[Platform::Ios]).await;
    let phone = &ch.phones[0];
    let (reference, id) = w.webhook(0, &ch.card).await;
    // The push: only the challenge id and an envelope the SDK opens.
    let push = phone.wait_push("challenge", Some(&id), WAIT).await;
    let preview = phone.open(&push).await;
    let shown = p.shown();
    assert_eq!(preview.payee, shown.payee);
    if p == Processor::Paysafe {
        assert_eq!(preview.otp.as_deref(), Some("532032"));
    }
    // What the app shows before the cardholder decides: the processor's amount and payee.
    let view = phone.show(&id).await;
    assert_eq!(
        (view.amount_minor, view.currency.clone(), view.payee.clone()),
        (shown.amount_minor, shown.currency, shown.payee)
    );
    let outcome = match ending {
        Ending::Approved => phone.approve(&id, p.processor_output()).await,
        Ending::Denied => phone.deny(&id, DenyReason::Declined).await,
        Ending::NotMe => phone.deny(&id, DenyReason::NotMe).await,
        Ending::TimedOut => unreachable!(),
    };
    let expected = if ending == Ending::Approved {
        DecisionOutcome::Approved
    } else {
        DecisionOutcome::Denied
    };
    assert_eq!(outcome.unwrap(), expected);
    assert_result_once(&w, &reference, &id, ending).await;
    let view = w.server().view(&id).await;
    let reason = match ending {
        Ending::NotMe => "not_me",
        Ending::Denied => "declined",
        _ => "",
    };
    if !reason.is_empty() {
        assert_eq!(view["decision"]["reason"], reason, "{view:#}");
    }
    // A second answer is refused.
    let again = phone.approve(&id, p.processor_output()).await;
    assert!(
        matches!(again, Err(PushAuthError::AlreadyAnswered { .. })),
        "{again:?}"
    );
}

async fn approve(p: Processor, backend: Backend) {
    answer(p, backend, Ending::Approved).await;
}

async fn deny(p: Processor, backend: Backend) {
    answer(p, backend, Ending::Denied).await;
}

async fn not_me(p: Processor, backend: Backend) {
    answer(p, backend, Ending::NotMe).await;
}

/// Nobody answers: the challenge expires and the processor gets its timeout result
/// (or nothing, where it times out by itself); a late answer is refused.
async fn timeout(p: Processor, backend: Backend) {
    let w = World::start(p, backend, SHORT_WINDOW, 1, &[]).await;
    let ch = w.cardholder(0, &[Platform::Android]).await;
    let (reference, id) = w.webhook(0, &ch.card).await;
    // (Whether the push makes it within the 3 s is not the point here: a push for a
    // challenge that closed before it went out is skipped.)
    w.server()
        .wait_challenge(
            &id,
            "status",
            "expired",
            Duration::from_secs(SHORT_WINDOW + 8),
        )
        .await;
    assert_result_once(&w, &reference, &id, Ending::TimedOut).await;
    let late = ch.phones[0].approve(&id, p.processor_output()).await;
    assert!(
        matches!(
            late,
            Err(PushAuthError::ChallengeExpired | PushAuthError::AlreadyAnswered { .. })
        ),
        "{late:?}"
    );
}

/// Two phones answer at once: the first answer wins, the other is told so and its
/// prompt is dismissed by a push; the processor gets one result.
async fn two_devices(p: Processor, backend: Backend) {
    let w = World::start(p, backend, WINDOW, 1, &[]).await;
    let ch = w.cardholder(0, &[Platform::Ios, Platform::Android]).await;
    let (iphone, android) = (&ch.phones[0], &ch.phones[1]);
    let (reference, id) = w.webhook(0, &ch.card).await;
    let a = iphone.wait_push("challenge", Some(&id), WAIT).await;
    let b = android.wait_push("challenge", Some(&id), WAIT).await;
    assert_eq!((a.service, b.service), ("apns", "fcm"));
    assert_eq!(iphone.open(&a).await.payee, android.open(&b).await.payee);
    iphone.show(&id).await;
    android.show(&id).await;
    let (approved, denied) = tokio::join!(
        iphone.approve(&id, p.processor_output()),
        android.deny(&id, DenyReason::Declined)
    );
    let (winner, loser, ending) = match (&approved, &denied) {
        (Ok(DecisionOutcome::Approved), Err(PushAuthError::AlreadyAnswered { status })) => {
            assert_eq!(status, "approved");
            (iphone, android, Ending::Approved)
        }
        (Err(PushAuthError::AlreadyAnswered { status }), Ok(DecisionOutcome::Denied)) => {
            assert_eq!(status, "denied");
            (android, iphone, Ending::Denied)
        }
        other => panic!("exactly one answer must win: {other:?}"),
    };
    assert_result_once(&w, &reference, &id, ending).await;
    // The other phone's prompt goes away; the winner gets no dismiss.
    loser.wait_push("dismiss", Some(&id), WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !winner.inbox().iter().any(|m| m.kind == "dismiss"),
        "{:#?}",
        winner.inbox()
    );
    assert_eq!(
        loser.inbox().iter().filter(|m| m.kind == "dismiss").count(),
        1,
        "{:#?}",
        loser.inbox()
    );
}

/// The push never reaches the phone (APNs accepted it): the app finds the challenge by
/// polling and answers in time.
async fn push_lost(p: Processor, backend: Backend) {
    let w = World::start(p, backend, WINDOW, 1, &[]).await;
    let ch = w.cardholder(0, &[Platform::Ios]).await;
    let phone = &ch.phones[0];
    w.push.lose(&phone.token, 1);
    let (reference, id) = w.webhook(0, &ch.card).await;
    let sent = pushauth_tests::wait_for(WAIT, || async {
        w.push
            .all()
            .iter()
            .any(|m| m.cid == id && m.token == phone.token)
    })
    .await;
    assert!(sent, "the server never pushed");
    assert!(phone.inbox().is_empty(), "the push was meant to be lost");
    let pending = phone.poll().await;
    let found = pending
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not pending: {pending:#?}"));
    assert_eq!(found.payee, p.shown().payee);
    assert!(found.deadline > pushauth_tests::now());
    assert_eq!(
        phone.approve(&id, p.processor_output()).await.unwrap(),
        DecisionOutcome::Approved
    );
    assert_result_once(&w, &reference, &id, Ending::Approved).await;
}

macro_rules! matrix {
    ($($processor:ident => $p:expr),+ $(,)?) => {
        $(
            mod $processor {
                use super::*;
                matrix!(@cases $p; approve, deny, not_me, timeout, two_devices, push_lost);
            }
        )+
    };
    (@cases $p:expr; $($case:ident),+) => {
        $(
            mod $case {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::super::$case($p, Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::super::$case($p, Backend::Postgres).await
                }
            }
        )+
    };
}

matrix!(
    enfuce => Processor::Enfuce,
    adyen => Processor::Adyen,
    paysafe => Processor::Paysafe,
    treezor => Processor::Treezor,
);
