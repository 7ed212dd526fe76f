//! # pushauth-server
//!
//! The issuer's side of out-of-band cardholder authentication: processor webhooks in,
//! pushes out, signed decisions verified with `pushauth-core`, results forwarded
//! upstream exactly once through a durable outbox.
//!
//! `main.rs` is thin; [`startup::build_state`] opens storage and keys,
//! [`routes::router`] is the HTTP surface, [`workers`] the background side, and
//! [`startup::Server`] ties them together (also used by the tests).

pub mod config;
pub mod console;
pub mod error;
pub mod events;
pub mod json;
pub mod keyring;
pub mod metrics;
pub mod providers;
pub mod push;
pub mod ready;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod upstream;
pub mod workers;

pub use config::Config;
pub use startup::{Server, build_state, open_store};
pub use state::AppState;
