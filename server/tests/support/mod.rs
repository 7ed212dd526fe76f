//! Shared by the server's black-box test binaries (`api`, `providers`, `push`), each of
//! which includes it with `#[path = "../support/mod.rs"] mod support;`: the store a
//! case runs on, the protocol v2 key members of an enrollment body, and a device API
//! request signed with the device key.

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

/// The store crate's test schemas (`t_<random hex>` in `PUSHAUTH_TEST_PG_URL`, dropped
/// with the guard), shared with its own tests.
#[path = "../../store-postgres/tests/support/mod.rs"]
mod pg;

/// The test PostgreSQL server (`PUSHAUTH_TEST_PG_URL`, default the local one).
pub fn pg_url() -> String {
    pg::url()
}

/// Drops a test's PostgreSQL schema, with everything in it, when dropped: keep it for as
/// long as the store is used (after the server that uses it). `None` for SQLite, and for
/// a second handle on a store another guard owns.
pub type SchemaGuard = Option<pg::Schema>;

/// A migrated store: a SQLite file in `dir`, or a fresh schema of its own on the test
/// PostgreSQL server, so that cases run in parallel, with the schema's guard.
pub async fn open_store(backend: Backend, dir: &Path) -> (Arc<dyn Store>, SchemaGuard) {
    let (store, guard): (Arc<dyn Store>, _) = match backend {
        Backend::Sqlite => (
            Arc::new(
                pushauth_store_sqlite::SqliteStore::open(&dir.join("test.db"))
                    .await
                    .unwrap(),
            ),
            None,
        ),
        Backend::Postgres => {
            let schema = pg::Schema::fresh();
            let store =
                pushauth_store_postgres::PgStore::connect_in_schema(&pg_url(), &schema.name, 8)
                    .await
                    .unwrap();
            (Arc::new(store), Some(schema))
        }
    };
    store.migrate().await.unwrap();
    (store, guard)
}

/// The server's clock, in Unix seconds.
pub fn now() -> i64 {
    pushauth_server::state::now().as_unix_time().seconds()
}

/// The key members of a protocol v2 enrollment body (§6.2): the device key, the
/// approval key and the approval key's binding to the device key (audience `aud`).
pub fn enrollment_keys(
    key: &SoftwareSigningKey,
    approval: &SoftwareSigningKey,
    aud: &str,
) -> Value {
    let binding = pushauth_core::key_statement::sign_enrollment_binding(
        approval,
        &key.public(),
        aud,
        UnixTime(now()),
    )
    .unwrap();
    serde_json::json!({
        "device_key": key.public().to_jwk(),
        "approval_key": approval.public().to_jwk(),
        "approval_key_proof": binding,
    })
}

/// Adds the v2 key members to an enrollment body object.
pub fn with_enrollment_keys(
    mut body: Value,
    key: &SoftwareSigningKey,
    approval: &SoftwareSigningKey,
    aud: &str,
) -> Value {
    if let (Value::Object(b), Value::Object(k)) = (&mut body, enrollment_keys(key, approval, aud)) {
        b.extend(k);
    }
    body
}

/// A device who signs its API requests (request proofs, signed by the device key).
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
