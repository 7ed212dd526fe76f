//! Mapping of sqlx errors and undecodable columns to [`StoreError`].

use pushauth_store::StoreError;
pub(crate) use pushauth_store::decode::{corrupt, json, json_text, parse_enum, parse_with};

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
