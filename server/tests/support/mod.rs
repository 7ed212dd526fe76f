//! Shared by the server's black-box test binaries (`api`, `providers`, `push`), each of
//! which includes it with `#[path = "../support/mod.rs"] mod support;`: the store a
//! case runs on, and a device API request signed with protocol v1.

// Each binary uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use pushauth_core::UnixTime;
use pushauth_core::ids::DeviceId;
use pushauth_core::keys::SoftwareSigningKey;
use pushauth_core::request::{self, HttpRequest};
use pushauth_store::Store;
use serde_json::Value;

/// The admin key the test servers are configured with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// Which storage backend a case runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The test PostgreSQL server (`PUSHAUTH_TEST_PG_URL`, default the local one).
pub fn pg_url() -> String {
    std::env::var("PUSHAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A migrated store: a SQLite file in `dir`, or a fresh schema of its own on the test
/// PostgreSQL server, so that cases run in parallel.
pub async fn open_store(backend: Backend, dir: &Path) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(
            pushauth_store_sqlite::SqliteStore::open(&dir.join("test.db"))
                .await
                .unwrap(),
        ),
        Backend::Postgres => {
            let schema = format!(
                "t_{}",
                hex::encode(pushauth_core::keys::random_array::<8>().unwrap())
            );
            Arc::new(
                pushauth_store_postgres::PgStore::connect_in_schema(&pg_url(), &schema, 8)
                    .await
                    .unwrap(),
            )
        }
    };
    store.migrate().await.unwrap();
    store
}

/// The server's clock, in Unix seconds.
pub fn now() -> i64 {
    pushauth_server::state::now().as_unix_time().seconds()
}

/// A device who signs its API requests (protocol v1 request proofs).
pub struct Signer<'a> {
    pub id: &'a DeviceId,
    pub key: &'a SoftwareSigningKey,
    pub issuer: &'a str,
}

/// Sends `method path` with a JSON `body`, signed by `signer`; the status and the
/// JSON answer (`Null` when the answer is not JSON).
pub async fn signed_call(
    http: &reqwest::Client,
    base: &str,
    signer: Signer<'_>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let proof = request::sign(
        signer.id,
        signer.key,
        signer.issuer,
        HttpRequest {
            method,
            path,
            body: &bytes,
        },
        UnixTime(now()),
    )
    .unwrap();
    let resp = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("Authorization", format!("PushAuth {proof}"))
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
