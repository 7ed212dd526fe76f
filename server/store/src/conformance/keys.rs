//! Admin key life cycle and the server keyring.

use super::*;

fn new_key(name: &str, secret: &str, scope: AdminScope, origin: KeyOrigin) -> NewAdminKey {
    NewAdminKey {
        name: name.into(),
        key_hash: KeyHash::of(secret.as_bytes()),
        scope,
        origin,
        created_at: T0,
    }
}

/// Keys are listed with scope and origin; a revoked key is no longer found, and
/// revoking it again (or an unknown id) writes nothing.
pub async fn admin_key_list_and_revoke<S: Store>(store: S) {
    let s = ready(store).await;
    let full = s
        .admin_key_insert(new_key(
            "ops",
            "secret-ops",
            AdminScope::Full,
            KeyOrigin::Created,
        ))
        .await
        .unwrap();
    let read = s
        .admin_key_insert(new_key(
            "audit",
            "secret-ro",
            AdminScope::Read,
            KeyOrigin::Created,
        ))
        .await
        .unwrap();
    assert_eq!(read.scope, AdminScope::Read);
    assert_eq!(
        s.admin_key_list().await.unwrap(),
        vec![full.clone(), read.clone()]
    );
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"secret-ro")).await.unwrap(),
        Some(read.clone())
    );
    assert!(
        s.admin_key_revoke(read.id, T0.plus(5), draft("admin_key.revoked"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"secret-ro")).await.unwrap(),
        None
    );
    assert!(
        !s.admin_key_revoke(read.id, T0.plus(6), draft("admin_key.revoked"))
            .await
            .unwrap()
    );
    assert!(
        !s.admin_key_revoke(999_999, T0.plus(6), draft("admin_key.revoked"))
            .await
            .unwrap()
    );
    let listed = s.admin_key_list().await.unwrap();
    assert_eq!(listed[1].revoked_at, Some(T0.plus(5)));
    assert_eq!(listed[0].revoked_at, None);
}

/// Configuring a new key revokes the previously configured one (not created or
/// generated keys); configuring the same key again changes nothing.
pub async fn admin_key_configured_replaces_previous<S: Store>(store: S) {
    let s = ready(store).await;
    let other = s
        .admin_key_insert(new_key(
            "ci",
            "secret-ci",
            AdminScope::Full,
            KeyOrigin::Created,
        ))
        .await
        .unwrap();
    let (first, revoked) = s
        .admin_key_sync_configured(new_key(
            "configured",
            "conf-1",
            AdminScope::Full,
            KeyOrigin::Configured,
        ))
        .await
        .unwrap();
    assert_eq!((first.origin, revoked), (KeyOrigin::Configured, 0));
    let (same, revoked) = s
        .admin_key_sync_configured(new_key(
            "configured",
            "conf-1",
            AdminScope::Full,
            KeyOrigin::Configured,
        ))
        .await
        .unwrap();
    assert_eq!((same.id, revoked), (first.id, 0));
    let (second, revoked) = s
        .admin_key_sync_configured(new_key(
            "configured",
            "conf-2",
            AdminScope::Full,
            KeyOrigin::Configured,
        ))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(revoked, 1);
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"conf-1")).await.unwrap(),
        None
    );
    assert!(
        s.admin_key_find(&KeyHash::of(b"conf-2"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"secret-ci")).await.unwrap(),
        Some(other)
    );
    // going back to the revoked key: it is returned as revoked, not revived
    let (back, _) = s
        .admin_key_sync_configured(new_key(
            "configured",
            "conf-1",
            AdminScope::Full,
            KeyOrigin::Configured,
        ))
        .await
        .unwrap();
    assert!(back.revoked_at.is_some());
    assert_eq!(
        s.admin_key_find(&KeyHash::of(b"conf-1")).await.unwrap(),
        None
    );
}

fn record(kid: &str, byte: u8, at: i64) -> ServerKeyRecord {
    ServerKeyRecord {
        kid: kid.into(),
        pkcs8: vec![byte; 48],
        wrapped: false,
        created_at: T0.plus(at),
        retired_at: None,
    }
}

/// Rotation makes the new key active and keeps the old one as previous; a rotation
/// from a key that is no longer active writes nothing; re-wrapping is conditional.
pub async fn server_key_rotate_and_rewrap<S: Store>(store: S) {
    let s = ready(store).await;
    let first = s
        .server_key_get_or_insert(record("k1", 1, 0))
        .await
        .unwrap();
    assert_eq!(first, record("k1", 1, 0));
    assert!(
        s.server_key_rotate("k1", record("k2", 2, 10), T0.plus(10))
            .await
            .unwrap()
    );
    assert!(
        !s.server_key_rotate("k1", record("k3", 3, 20), T0.plus(20))
            .await
            .unwrap()
    );
    let ring = s.server_key_list().await.unwrap();
    assert_eq!(
        ring,
        vec![
            record("k2", 2, 10),
            ServerKeyRecord {
                retired_at: Some(T0.plus(10)),
                ..record("k1", 1, 0)
            }
        ]
    );
    assert_eq!(
        s.server_key_get_or_insert(record("k9", 9, 30))
            .await
            .unwrap()
            .kid,
        "k2"
    );
    assert!(
        s.server_key_rewrap("k1", &[1; 48], vec![7; 80], true)
            .await
            .unwrap()
    );
    assert!(
        !s.server_key_rewrap("k1", &[1; 48], vec![8; 80], true)
            .await
            .unwrap()
    );
    let ring = s.server_key_list().await.unwrap();
    assert_eq!(
        (ring[1].pkcs8.clone(), ring[1].wrapped),
        (vec![7; 80], true)
    );
}
