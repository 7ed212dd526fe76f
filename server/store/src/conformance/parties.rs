//! Migrations, keys, cardholders and card links.

use std::collections::HashSet;

use pushauth_core::ids::{CardholderId, Provider};

use super::*;

/// Running the migrations twice is harmless and the schema works afterwards.
pub async fn migrate_twice<S: Store>(store: S) {
    store.migrate().await.expect("first migrate");
    store.migrate().await.expect("second migrate");
    store.ping().await.expect("ping");
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "backend name {}",
        store.backend()
    );
    let id = new_cardholder(&store).await;
    assert!(store.cardholder_get(&id).await.unwrap().is_some());
}

fn server_key(kid: &str, byte: u8) -> ServerKeyRecord {
    ServerKeyRecord {
        kid: kid.into(),
        pkcs8: vec![byte; 48],
        wrapped: false,
        created_at: T0,
        retired_at: None,
    }
}

/// The first inserted server key stays: later candidates get it back.
pub async fn server_key_get_or_insert<S: Store>(store: S) {
    let s = ready(store).await;
    let first = s
        .server_key_get_or_insert(server_key("kid-1", 1))
        .await
        .unwrap();
    assert_eq!(
        (first.kid.as_str(), first.pkcs8.clone(), first.created_at),
        ("kid-1", vec![1; 48], T0)
    );
    let again = s
        .server_key_get_or_insert(server_key("kid-2", 2))
        .await
        .unwrap();
    assert_eq!(again.kid, "kid-1");
    assert_eq!(again.pkcs8, vec![1; 48]);
}

/// Four instances starting at once agree on one key, which is one of the candidates.
pub async fn server_key_concurrent_first_start<S: Store>(store: S) {
    let s = ready(store).await;
    let tasks: Vec<_> = (0u8..4)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.server_key_get_or_insert(server_key(&format!("kid-{i}"), i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut kids = HashSet::new();
    for t in tasks {
        let key = t.await.unwrap();
        let i: u8 = key.kid.trim_start_matches("kid-").parse().unwrap();
        assert_eq!(
            key.pkcs8,
            vec![i; 48],
            "kid and key bytes come from one candidate"
        );
        kids.insert(key.kid);
    }
    assert_eq!(kids.len(), 1, "all callers got the same key: {kids:?}");
}

/// Admin keys: found by hash while not revoked; `any` tells whether one exists.
pub async fn admin_keys<S: Store>(store: S) {
    let s = ready(store).await;
    assert!(!s.admin_key_any().await.unwrap());
    let hash = KeyHash::of(b"admin-secret-1");
    let key = s
        .admin_key_insert(NewAdminKey {
            name: "ops".into(),
            scope: AdminScope::Full,
            origin: KeyOrigin::Created,
            key_hash: hash,
            created_at: T0,
        })
        .await
        .unwrap();
    assert_eq!((key.name.as_str(), key.created_at), ("ops", T0));
    assert!(s.admin_key_any().await.unwrap());
    assert_eq!(s.admin_key_find(&hash).await.unwrap(), Some(key.clone()));
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"other")).await.unwrap(),
        None
    );
    let dup = s
        .admin_key_insert(NewAdminKey {
            name: "dup".into(),
            scope: AdminScope::Full,
            origin: KeyOrigin::Created,
            key_hash: hash,
            created_at: T0,
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "same hash twice: {dup:?}"
    );
    let second = KeyHash::of(b"admin-secret-2");
    let key2 = s
        .admin_key_insert(NewAdminKey {
            name: "ci".into(),
            scope: AdminScope::Full,
            origin: KeyOrigin::Created,
            key_hash: second,
            created_at: T0,
        })
        .await
        .unwrap();
    assert_ne!(key2.id, key.id);
    assert_eq!(
        s.admin_key_find(&second).await.unwrap().map(|k| k.name),
        Some("ci".into())
    );
}

fn cardholder_at(external_ref: Option<&str>, at: i64) -> NewCardholder {
    NewCardholder {
        id: CardholderId::generate().unwrap(),
        external_ref: external_ref.map(str::to_owned),
        label: Some(format!("label {at}")),
        created_at: T0.plus(at),
    }
}

/// Create, read, list newest first with paging, status changes, and the
/// `external_ref` uniqueness rule.
pub async fn cardholders<S: Store>(store: S) {
    let s = ready(store).await;
    let a = s
        .cardholder_create(cardholder_at(Some("ext-1"), 1), draft("cardholder.created"))
        .await
        .unwrap();
    assert_eq!(
        (a.external_ref.as_deref(), a.status, a.created_at),
        (Some("ext-1"), CardholderStatus::Active, T0.plus(1))
    );
    assert_eq!(s.cardholder_get(&a.id).await.unwrap(), Some(a.clone()));
    let taken = s
        .cardholder_create(cardholder_at(Some("ext-1"), 2), draft("cardholder.created"))
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "external_ref taken: {taken:?}"
    );
    let b = s
        .cardholder_create(cardholder_at(None, 2), draft("cardholder.created"))
        .await
        .unwrap();
    let c = s
        .cardholder_create(cardholder_at(None, 3), draft("cardholder.created"))
        .await
        .unwrap();
    assert!(
        s.cardholder_get(&CardholderId::generate().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let all = s
        .cardholder_list(Page {
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![c.id.clone(), b.id.clone(), a.id.clone()]
    );
    let page = s
        .cardholder_list(Page {
            before: Some(T0.plus(3)),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![b.id.clone()]
    );
    assert!(
        s.cardholder_list(Page {
            before: Some(T0.plus(1)),
            limit: 10
        })
        .await
        .unwrap()
        .is_empty()
    );

    assert!(
        s.cardholder_set_status(
            &b.id,
            CardholderStatus::Blocked,
            draft("cardholder.blocked")
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.cardholder_get(&b.id).await.unwrap().unwrap().status,
        CardholderStatus::Blocked
    );
    let unknown = CardholderId::generate().unwrap();
    assert!(
        !s.cardholder_set_status(
            &unknown,
            CardholderStatus::Blocked,
            draft("cardholder.blocked")
        )
        .await
        .unwrap()
    );
}

fn link(cardholder: &CardholderId, provider: Provider, key: &str) -> NewCardLink {
    NewCardLink {
        cardholder: cardholder.clone(),
        provider,
        provider_key: key.into(),
        label: Some("•• 4242".into()),
        created_at: T0,
    }
}

/// Links resolve to their cardholder; (provider, key) is unique; an unknown
/// cardholder is `NotFound`; deleting works once.
pub async fn card_links<S: Store>(store: S) {
    let s = ready(store).await;
    let anna = new_cardholder(&*s).await;
    let ben = new_cardholder(&*s).await;
    let l1 = s
        .card_link_create(link(&anna, Provider::Enfuce, "C-1"), draft("link.created"))
        .await
        .unwrap();
    assert_eq!(
        (l1.cardholder.clone(), l1.provider, l1.provider_key.as_str()),
        (anna.clone(), Provider::Enfuce, "C-1")
    );
    // the same key under another provider is another link
    let l2 = s
        .card_link_create(link(&anna, Provider::Adyen, "C-1"), draft("link.created"))
        .await
        .unwrap();
    assert_ne!(l1.id, l2.id);
    let taken = s
        .card_link_create(link(&ben, Provider::Enfuce, "C-1"), draft("link.created"))
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "link taken: {taken:?}"
    );
    let orphan = s
        .card_link_create(
            link(&CardholderId::generate().unwrap(), Provider::Api, "X"),
            draft("link.created"),
        )
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound(_))),
        "unknown cardholder: {orphan:?}"
    );

    assert_eq!(
        s.card_link_resolve(Provider::Enfuce, "C-1").await.unwrap(),
        Some(l1.clone())
    );
    assert_eq!(
        s.card_link_resolve(Provider::Adyen, "C-1").await.unwrap(),
        Some(l2.clone())
    );
    assert_eq!(
        s.card_link_resolve(Provider::Treezor, "C-1").await.unwrap(),
        None
    );
    assert_eq!(
        s.card_link_list(&anna).await.unwrap(),
        vec![l1.clone(), l2.clone()]
    );
    assert!(s.card_link_list(&ben).await.unwrap().is_empty());

    assert!(
        s.card_link_delete(&l1.id, draft("link.deleted"))
            .await
            .unwrap()
    );
    assert!(
        !s.card_link_delete(&l1.id, draft("link.deleted"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.card_link_resolve(Provider::Enfuce, "C-1").await.unwrap(),
        None
    );
    assert_eq!(s.card_link_list(&anna).await.unwrap(), vec![l2]);
    // the key is free again
    s.card_link_create(link(&ben, Provider::Enfuce, "C-1"), draft("link.created"))
        .await
        .unwrap();
}
