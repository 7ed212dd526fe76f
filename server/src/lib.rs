//! placeholder
pub mod providers;
