//! SQLite-specific behaviour: tampering with the audit log through raw SQL is
//! detected, and in-memory URLs work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushauth_core::ids::CardholderId;
use pushauth_store::{AuditDraft, ChainCheck, Millis, NewCardholder, Store, entry_hash};
use pushauth_store_sqlite::SqliteStore;
use sqlx::Connection as _;

const T0: Millis = Millis(1_700_000_000_000);

/// Creates `n` cardholders, one audit entry each.
async fn workload(store: &SqliteStore, n: i64) {
    for i in 0..n {
        let id = CardholderId::generate().unwrap();
        let new = NewCardholder {
            id: id.clone(),
            external_ref: None,
            label: None,
            created_at: T0.plus(i),
        };
        let audit = AuditDraft::new(T0.plus(i), "admin:test", "cardholder.created")
            .cardholder(&id)
            .details(serde_json::json!({ "i": i }));
        store.cardholder_create(new, audit).await.unwrap();
    }
}

async fn raw(path: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn audit_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    workload(&store, 5).await;
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );

    let mut conn = raw(&path).await;
    // editing the content of entry 3 (hash left alone)
    sqlx::query(r#"UPDATE audit_log SET details = '{"i":99}' WHERE seq = 3"#)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 3 }
    );
    sqlx::query(r#"UPDATE audit_log SET details = '{"i":2}' WHERE seq = 3"#)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 5 },
        "restored"
    );

    // an edited actor on the last entry
    sqlx::query("UPDATE audit_log SET actor = 'admin:someone-else' WHERE seq = 5")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 5 }
    );
    sqlx::query("UPDATE audit_log SET actor = 'admin:test' WHERE seq = 5")
        .execute(&mut conn)
        .await
        .unwrap();

    // a rewritten entry whose own hash is recomputed still breaks the next link
    let (prev, cardholder): (String, String) =
        sqlx::query_as("SELECT prev_hash, cardholder_id FROM audit_log WHERE seq = 2")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let forged = AuditDraft::new(T0.plus(1), "admin:test", "cardholder.deleted")
        .cardholder(&CardholderId::parse(&cardholder).unwrap())
        .details(serde_json::json!({ "i": 1 }));
    sqlx::query("UPDATE audit_log SET action = 'cardholder.deleted', hash = ?1 WHERE seq = 2")
        .bind(entry_hash(&prev, 2, &forged))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 3 }
    );

    // a removed entry is reported by its sequence number
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = dir2.path().join("pushauth.db");
    let store2 = SqliteStore::open(&path2).await.unwrap();
    store2.migrate().await.unwrap();
    workload(&store2, 4).await;
    let mut conn2 = raw(&path2).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&mut conn2)
        .await
        .unwrap();
    assert_eq!(
        store2.audit_verify().await.unwrap(),
        ChainCheck::Broken { seq: 2 }
    );
}

#[tokio::test]
async fn in_memory_url_works() {
    let store = SqliteStore::open_url("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    workload(&store, 3).await;
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 3 }
    );
    assert_eq!(store.backend(), "sqlite");
}

#[tokio::test]
async fn open_creates_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/pushauth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    assert!(path.exists(), "the file and its directories are created");
    let mut conn = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

/// Each store keeps the chain's head in memory; entries appended by another process
/// on the same file (here: a second store) make the next append re-read the head, so
/// interleaved appends still form one intact chain.
#[tokio::test]
async fn audit_appends_from_two_processes_stay_chained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    let a = SqliteStore::open(&path).await.unwrap();
    a.migrate().await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    for _ in 0..3 {
        workload(&a, 2).await;
        workload(&b, 3).await;
    }
    assert_eq!(
        a.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 15 }
    );
    assert_eq!(
        b.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 15 }
    );
}

/// Commits never checkpoint (`wal_autocheckpoint=0`); the background checkpointer
/// copies the WAL into the database file, so the file grows without anyone reading or
/// writing, and the WAL does not grow for ever.
#[tokio::test]
async fn wal_is_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = size();
    workload(&store, 200).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {before} bytes: nothing checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: 200 }
    );
}

/// The WAL file's checkpoint sequence number (header bytes 12..16, big-endian): SQLite
/// increments it each time the WAL starts over.
fn wal_restarts(path: &std::path::Path) -> Option<u32> {
    let wal = std::fs::read(path.with_extension("db-wal")).ok()?;
    Some(u32::from_be_bytes(wal.get(12..16)?.try_into().ok()?))
}

/// Under writes that never pause, the WAL still starts over (the checkpointer's second
/// phase runs under the write gate, so it copies every frame, and the next write
/// restarts the file) instead of growing for as long as the load lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_starts_over_under_sustained_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    workload(&store, 10).await;
    let first = wal_restarts(&path).expect("a WAL with a header");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    workload(&store, 1).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = first;
    while seen < first + 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = wal_restarts(&path).unwrap_or(seen).max(seen);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 10;
    for w in writers {
        written += w.await.unwrap();
    }
    assert!(
        seen >= first + 2,
        "the WAL started over {} times during {written} writes that never paused",
        seen - first
    );
    assert_eq!(
        store.audit_verify().await.unwrap(),
        ChainCheck::Intact { entries: written }
    );
}

/// 0007 rebuilds `devices` to allow platform `webpush`: a database migrated before it
/// keeps its devices (same rows, same rowids) and the rows that reference them, and
/// foreign keys are enforced again afterwards.
#[tokio::test]
async fn webpush_platform_migration_keeps_devices() {
    use pushauth_core::ids::DeviceId;
    use pushauth_store::Platform;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let mut conn = raw(&path).await;
    sqlx::migrate!("./migrations")
        .run_to(5, &mut conn)
        .await
        .unwrap();
    let (ch, dev) = (
        CardholderId::generate().unwrap(),
        DeviceId::generate().unwrap(),
    );
    sqlx::query("INSERT INTO cardholders (id, created_at, updated_at) VALUES (?, 1, 1)")
        .bind(ch.as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    let insert = "INSERT INTO devices (id, cardholder_id, platform, signing_jwk, \
        signing_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment, \
        created_at, updated_at, approval_jwk, approval_thumbprint) \
        VALUES (?, ?, ?, '{\"kty\":\"EC\"}', 'ts', '{\"kty\":\"EC\"}', 'ta', 'tok', ?, 2, 3, '{}', 'tp')";
    let refused = sqlx::query(insert)
        .bind(DeviceId::generate().unwrap().as_str())
        .bind(ch.as_str())
        .bind("webpush")
        .bind(None::<&str>)
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "0005 has no webpush platform");
    sqlx::query(insert)
        .bind(dev.as_str())
        .bind(ch.as_str())
        .bind("ios")
        .bind(Some("sandbox"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO request_nonces (device_id, jti, expires_at) VALUES (?, 'j1', 9)")
        .bind(dev.as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    let rowid: i64 = sqlx::query_scalar("SELECT rowid FROM devices WHERE id = ?")
        .bind(dev.as_str())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let device = store.device_get(&dev).await.unwrap().unwrap();
    assert_eq!(
        (device.platform, device.push.unwrap().token.as_str()),
        (Platform::Ios, "tok")
    );
    let mut conn = raw(&path).await;
    let after: i64 = sqlx::query_scalar("SELECT rowid FROM devices WHERE id = ?")
        .bind(dev.as_str())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, rowid);
    let webpush = DeviceId::generate().unwrap();
    sqlx::query(insert)
        .bind(webpush.as_str())
        .bind(ch.as_str())
        .bind("webpush")
        .bind(None::<&str>)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.device_get(&webpush).await.unwrap().unwrap().platform,
        Platform::WebPush
    );
    let orphans: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(orphans.is_empty(), "{orphans:?}");
    for (table, sql) in [
        (
            "request_nonces",
            "INSERT INTO request_nonces (device_id, jti, expires_at) VALUES ('nobody', 'j', 1)",
        ),
        (
            "devices",
            "INSERT INTO devices (id, cardholder_id, platform, signing_jwk, signing_thumbprint, agreement_jwk, agreement_thumbprint, created_at, updated_at) VALUES ('x', 'nobody', 'ios', '{}', 't', '{}', 'a', 1, 1)",
        ),
    ] {
        let e = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(e.to_string().contains("FOREIGN KEY"), "{table}: {e}");
    }
}

/// A claimed row that does not decode (here a malformed device id written behind the
/// store's back) is left out of the claim instead of failing it: the row claimed with
/// it is still delivered.
#[tokio::test]
async fn an_undecodable_row_does_not_fail_its_claim() {
    use pushauth_store::OutboxKind;
    use pushauth_store::conformance::{created, new_cardholder, new_challenge, outbox_row};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let holder = new_cardholder(&store).await;
    let new = new_challenge(&holder, T0.plus(600_000));
    let id = new.id.clone();
    let rows = vec![
        outbox_row(OutboxKind::Upstream, &id, None, T0),
        outbox_row(OutboxKind::Upstream, &id, None, T0.plus(1)),
    ];
    created(&store, new, rows).await;
    let mut conn = raw(&path).await;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET device_id = 'not a device id' WHERE next_attempt_at = ?1")
        .bind(T0.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let claimed = store.outbox_claim(T0.plus(10), 5_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].next_attempt_at, T0.plus(1));
}
