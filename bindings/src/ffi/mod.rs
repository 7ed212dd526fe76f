//! Everything that crosses the FFI, one module per flow. Types here are wrappers
//! and mirrors converted with `From`; the logic is in `pushauth-core` and in
//! [`crate::device`].

pub mod client;
pub mod enrollment;
pub mod error;
pub mod helpers;
pub mod key_store;
pub mod push;
pub mod testing;
pub mod types;
