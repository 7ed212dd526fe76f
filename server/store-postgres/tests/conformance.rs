//! The shared Store conformance suite against PostgreSQL: every case runs in a
//! fresh schema of the test database, so cases run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

pushauth_store::store_conformance_suite!(support::fresh_store().await);
