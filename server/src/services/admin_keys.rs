//! Admin API keys, for the admin API and the `pushauth admin-key` CLI alike.

use pushauth_store::{AdminKey, AdminScope, AuditDraft, KeyHash, KeyOrigin, NewAdminKey, Store};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now};

/// A key just created: the stored record and the key itself, shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    /// The stored record.
    #[serde(flatten)]
    pub record: AdminKey,
    /// The key (`pa_…`); never stored, never shown again.
    pub key: String,
}

/// Checks a key name: 1 to 64 visible ASCII characters.
pub fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "name: 1 to 64 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Creates a key on `store` with its audit entry (by `actor`).
pub async fn create_in(
    store: &dyn Store,
    actor: &str,
    name: String,
    scope: AdminScope,
) -> ApiResult<CreatedKey> {
    check_name(&name)?;
    let key = crate::startup::new_admin_key().map_err(ApiError::internal)?;
    let t = now();
    let record = store
        .admin_key_insert(NewAdminKey {
            name,
            key_hash: KeyHash::of(key.as_bytes()),
            scope,
            origin: KeyOrigin::Created,
            created_at: t,
        })
        .await?;
    store
        .audit_append(
            AuditDraft::new(t, actor, "admin_key.created").details(serde_json::json!({
                "id": record.id,
                "name": record.name,
                "scope": record.scope,
            })),
        )
        .await?;
    Ok(CreatedKey { record, key })
}

/// [`create_in`] on the server's store.
pub async fn create(
    state: &AppState,
    actor: &str,
    name: String,
    scope: AdminScope,
) -> ApiResult<CreatedKey> {
    create_in(state.store.as_ref(), actor, name, scope).await
}

/// Revokes key `id` on `store`; 404 when unknown or already revoked.
pub async fn revoke_in(store: &dyn Store, actor: &str, id: i64) -> ApiResult<()> {
    let t = now();
    let audit =
        AuditDraft::new(t, actor, "admin_key.revoked").details(serde_json::json!({ "id": id }));
    if store.admin_key_revoke(id, t, audit).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("admin key"))
    }
}

/// [`revoke_in`] on the server's store.
pub async fn revoke(state: &AppState, actor: &str, id: i64) -> ApiResult<()> {
    revoke_in(state.store.as_ref(), actor, id).await
}
