//! Black-box tests of the HTTP API: the real server (router, workers, storage) on a
//! random port, driven over HTTP by virtual devices built on `pushauth-core`. Every
//! case runs on SQLite and on PostgreSQL (a fresh schema per test).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

mod device_keys;
mod helpers;

mod admin;
mod authz;
mod console;
mod decisions;
mod device;
mod events;
mod keys;
mod openapi;
mod ops;
mod strict;

/// Runs each listed `async fn(TestApp)` on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$case($crate::helpers::spawn($crate::helpers::Backend::Sqlite, |_| {}).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$case($crate::helpers::spawn($crate::helpers::Backend::Postgres, |_| {}).await).await
                }
            }
        )+
    };
}
