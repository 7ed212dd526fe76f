//! The shared Store conformance suite against SQLite: every case gets a fresh
//! database file in its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushauth_store_sqlite::SqliteStore;

async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("pushauth.db"))
        .await
        .expect("open");
    (store, dir)
}

pushauth_store::store_conformance_suite!(fresh_store().await);
