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
