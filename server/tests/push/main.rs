//! Push delivery tests: mock APNs (HTTP/2 cleartext), mock FCM (OAuth token endpoint
//! and HTTP v1 send) and a mock Web Push service (HTTP/1.1 and HTTP/2) as real servers
//! on 127.0.0.1, driven by the senders alone (`senders`, `webpush`) and by the whole
//! server with virtual phones (`e2e`, `e2e_webpush`, `slots`, on SQLite and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

mod app;
mod e2e;
mod e2e_webpush;
mod mock;
mod mock_webpush;
mod senders;
mod slots;
mod webpush;
