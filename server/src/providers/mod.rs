//! Processor connectors.

pub mod auth;
