//! Support library of the end-to-end tests: the real `pushauth` binary as a child
//! process ([`server::ServerProcess`]) on SQLite or a fresh PostgreSQL database
//! ([`server::Database`]), mock processors ([`processor::MockProcessor`]), mock APNs
//! and FCM ([`push::PushMocks`]), and virtual phones driven through the mobile SDK's
//! Rust API ([`phone::VirtualPhone`]).
//!
//! Everything listens on 127.0.0.1 port 0 and keeps its state in temporary
//! directories or its own database, so test cases run in parallel.
//!
//! Run with `cargo test -p pushauth-tests`. Environment:
//!
//! - `PUSHAUTH_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`): a role
//!   that may `CREATE DATABASE`; every PostgreSQL case gets a database of its own
//!   (`pa_e2e_<uuid>`), dropped at the end (`DROP DATABASE … WITH (FORCE)`);
//! - `PUSHAUTH_BIN`: the server binary to test instead of `target/debug/pushauth`
//!   (which is otherwise rebuilt when older than its sources, see [`server::binary`]).
//!
//! Test binaries: `processors` (each processor × approve, deny, `not_me`, timeout, two
//! devices, lost push × SQLite and PostgreSQL), `crash` (SIGKILL with queued pushes and
//! results, restart) and `instances` (two servers on one PostgreSQL database).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

pub mod phone;
pub mod processor;
pub mod push;
pub mod server;
pub mod world;

use std::future::Future;
use std::time::Duration;

/// Unix time, seconds.
pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Unix time, milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn wait_for<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh processor reference.
pub fn new_ref() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Reads a file of `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A JSON file of `tests/fixtures/`.
pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// RFC 3339 UTC text of a Unix time in seconds.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Authorization: Basic …`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
