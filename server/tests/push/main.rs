//! Push delivery tests: mock APNs (HTTP/2 cleartext) and mock FCM (OAuth token endpoint
//! and HTTP v1 send) as real servers on 127.0.0.1, driven by the senders alone
//! (`senders`) and by the whole server with virtual phones (`e2e`, on SQLite and
//! PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

mod app;
mod e2e;
mod mock;
mod senders;
