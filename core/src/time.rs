//! Time as plain data: the core never reads a clock, callers pass `now`.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (UTC), as in JWT `iat`/`exp` (RFC 7519 NumericDate,
/// restricted to integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The number of seconds since the epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// This instant plus `secs` (saturating).
    pub fn plus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// This instant minus `secs` (saturating).
    pub fn minus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_sub(secs))
    }
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
