//! Server-side flows, independent of HTTP: handlers and connectors parse and
//! authenticate, then call these.

pub mod admin_keys;
pub mod cardholders;
pub mod challenges;
pub mod decisions;
pub mod device_keys;
pub mod device_policy;
pub mod enrollment;
pub mod evidence;
