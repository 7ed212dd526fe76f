//! Searching challenges the way the ops console does: a time window (`since` and
//! `before`) and a processor reference with or without its processor.

use pushauth_core::ids::{ChallengeId, Provider, ProviderRef};

use super::*;

fn ids(list: &[Challenge]) -> Vec<ChallengeId> {
    list.iter().map(|c| c.id.clone()).collect()
}

/// `since` keeps challenges created at or after it, `before` those created strictly
/// before: together a half-open window, newest first.
pub async fn challenge_list_time_window<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let mut made = Vec::new();
    for at in [10, 20, 30, 40] {
        let mut new = new_challenge(&anna, T0.plus(60_000));
        new.created_at = T0.plus(at);
        made.push(created(&*s, new, vec![]).await);
    }
    let list = |since: Option<i64>, before: Option<i64>| {
        let s = s.clone();
        async move {
            ids(&s
                .challenge_list(ChallengeFilter {
                    since: since.map(|t| T0.plus(t)),
                    before: before.map(|t| T0.plus(t)),
                    limit: 50,
                    ..ChallengeFilter::default()
                })
                .await
                .unwrap())
        }
    };
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| made[i].id.clone());
    assert_eq!(
        list(Some(20), None).await,
        vec![d.clone(), c.clone(), b.clone()]
    );
    assert_eq!(list(Some(20), Some(40)).await, vec![c.clone(), b.clone()]);
    assert_eq!(list(Some(21), Some(30)).await, Vec::<ChallengeId>::new());
    assert_eq!(list(None, Some(20)).await, vec![a.clone()]);
    assert_eq!(list(Some(41), None).await, Vec::<ChallengeId>::new());
    assert_eq!(list(None, None).await, vec![d, c, b, a]);
}

/// A reference is looked up under every processor unless one is given; the other
/// conditions of the filter still apply, and the limit.
pub async fn challenge_find_reference<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let ben = new_cardholder(&*s).await;
    let shared = ProviderRef::parse(&format!("shared-{}", unique())).unwrap();
    let make = |who: &CardholderId, provider: Provider, at: i64| {
        let mut new = new_challenge(who, T0.plus(60_000));
        new.provider = provider;
        new.provider_ref = shared.clone();
        new.created_at = T0.plus(at);
        new
    };
    // The same reference under three processors; another challenge with another one.
    let enfuce = created(&*s, make(&anna, Provider::Enfuce, 1), vec![]).await;
    let adyen = created(&*s, make(&ben, Provider::Adyen, 2), vec![]).await;
    let api = created(&*s, make(&anna, Provider::Api, 3), vec![]).await;
    created(&*s, new_challenge(&anna, T0.plus(60_000)), vec![]).await;
    assert!(
        s.challenge_close(
            &api.id,
            ChallengeStatus::Cancelled,
            T0.plus(5),
            vec![],
            draft("challenge.cancelled")
        )
        .await
        .unwrap()
    );
    let find = |f: ChallengeFilter| {
        let s = s.clone();
        let shared = shared.clone();
        async move {
            ids(&s
                .challenge_find_reference(
                    &shared,
                    &ChallengeFilter {
                        limit: if f.limit == 0 { 50 } else { f.limit },
                        ..f
                    },
                )
                .await
                .unwrap())
        }
    };
    let all = ChallengeFilter::default();
    assert_eq!(
        find(all.clone()).await,
        vec![api.id.clone(), adyen.id.clone(), enfuce.id.clone()]
    );
    let only_adyen = ChallengeFilter {
        provider: Some(Provider::Adyen),
        ..all.clone()
    };
    assert_eq!(find(only_adyen).await, vec![adyen.id.clone()]);
    let none_at_paysafe = ChallengeFilter {
        provider: Some(Provider::Paysafe),
        ..all.clone()
    };
    assert!(find(none_at_paysafe).await.is_empty());
    let annas_pending = ChallengeFilter {
        cardholder: Some(anna.clone()),
        status: Some(ChallengeStatus::Pending),
        ..all.clone()
    };
    assert_eq!(find(annas_pending).await, vec![enfuce.id.clone()]);
    let window = ChallengeFilter {
        since: Some(T0.plus(2)),
        before: Some(T0.plus(3)),
        ..all.clone()
    };
    assert_eq!(find(window).await, vec![adyen.id.clone()]);
    let one = ChallengeFilter { limit: 1, ..all };
    assert_eq!(find(one).await, vec![api.id.clone()]);
    let unknown = ProviderRef::parse("never-used").unwrap();
    assert!(
        s.challenge_find_reference(
            &unknown,
            &ChallengeFilter {
                limit: 50,
                ..ChallengeFilter::default()
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
}
