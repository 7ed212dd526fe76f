//! Mapping of sqlx errors and undecodable columns to [`StoreError`].

use std::fmt::Display;

use pushauth_store::StoreError;

/// Maps a database error: unique violations → `Conflict(conflict)`, foreign-key
/// violations → `NotFound(missing)`, anything else → `Backend`.
pub(crate) fn classify(
    e: sqlx::Error,
    conflict: &'static str,
    missing: &'static str,
) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(conflict);
        }
        if d.is_foreign_key_violation() {
            return StoreError::NotFound(missing);
        }
    }
    StoreError::Backend(e.to_string())
}

/// [`classify`] with generic messages, for statements where no particular rule is expected
/// to fire.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    classify(e, "unique constraint", "referenced row")
}

/// A column that does not decode into its domain type.
pub(crate) fn corrupt(column: &str, e: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

/// Decodes a closed-vocabulary column with the enum's `parse`.
pub(crate) fn parse_enum<T>(
    column: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

/// Decodes a column with a fallible parser (core newtypes).
pub(crate) fn parse_with<T, E: Display>(column: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| corrupt(column, e))
}

/// Parses a JSON text column.
pub(crate) fn json(column: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e))
}

/// Serialises a JSON value for a TEXT column.
pub(crate) fn json_text(value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("json encoding: {e}")))
}

/// Converts a stored integer to `i32` (failures, attempts, HTTP status).
pub(crate) fn int32(column: &str, v: i64) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|e| corrupt(column, e))
}
