//! Decoding stored columns into the contract's types, shared by both backends: every
//! text column that holds a core newtype or a closed vocabulary goes through its parsing
//! constructor, and a value that does not parse is [`StoreError::Corrupt`] naming the
//! column.

use std::fmt::Display;

use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Provider};

use crate::StoreError;

/// A column that does not decode into its domain type.
pub fn corrupt(column: &str, e: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

/// Decodes a closed-vocabulary column with the enum's `parse`.
pub fn parse_enum<T>(
    column: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

/// Decodes a column with a fallible parser (core newtypes).
pub fn parse_with<T, E: Display>(column: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| corrupt(column, e))
}

/// Parses a JSON text column.
pub fn json(column: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e))
}

/// Serialises a JSON value for a TEXT column.
pub fn json_text(value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("json encoding: {e}")))
}

/// A cardholder id column.
pub fn cardholder_id(column: &str, s: &str) -> Result<CardholderId, StoreError> {
    parse_with(column, CardholderId::parse(s))
}

/// A challenge id column.
pub fn challenge_id(column: &str, s: &str) -> Result<ChallengeId, StoreError> {
    parse_with(column, ChallengeId::parse(s))
}

/// A device id column.
pub fn device_id(column: &str, s: &str) -> Result<DeviceId, StoreError> {
    parse_with(column, DeviceId::parse(s))
}

/// A `provider` column.
pub fn provider(s: &str) -> Result<Provider, StoreError> {
    parse_with("provider", Provider::parse(s))
}

/// Decodes an optional column.
pub fn opt<T>(
    v: Option<String>,
    f: impl FnOnce(&str) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    v.as_deref().map(f).transpose()
}
