//! Everything that crosses the FFI, one module per flow. Types here are wrappers
//! and mirrors converted with `From`; the logic is in `pushauth-core` and in the
//! crate's flow modules (`device`, `enroll`, `decision`, `rotation`).

pub mod client;
pub mod enrollment;
pub mod error;
pub mod helpers;
pub mod key_store;
pub mod push;
pub mod testing;
pub mod transaction;
pub mod transport;
pub mod types;
pub mod webpush;
