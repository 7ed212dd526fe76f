//! Black-box tests of the processor connectors: the real server (router, workers,
//! storage) on a random port, a mock processor on another (a real HTTP server that checks
//! credentials and signatures and records every call), and virtual devices built on
//! `pushauth-core`. Every case runs on SQLite and on PostgreSQL (a fresh schema per test).
//! Deadlines are shortened through configuration so that timeouts take seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

/// Runs each listed `async fn(Backend)` on both backends.
macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$case($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$case($crate::helpers::Backend::Postgres).await
                }
            }
        )+
    };
}

mod delivery;
mod helpers;
mod mock;

mod adyen;
mod adyen_sca;
mod enfuce;
mod enfuce_more;
mod paysafe;
mod paysafe_schema;
mod strict;
mod treezor;
mod treezor_sca;
