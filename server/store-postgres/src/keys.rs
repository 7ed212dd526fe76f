//! The server's signing key (one `active` slot) and admin API keys.

use pushauth_store::{AdminKey, KeyHash, Millis, NewAdminKey, ServerKeyRecord, StoreResult};

use crate::PgStore;
use crate::error::{classify, db};

/// Inserts `candidate` into the empty `active` slot (a no-op when taken) and
/// returns whatever the slot holds, so concurrent first starts agree on one key.
pub(crate) async fn server_key_get_or_insert(
    s: &PgStore,
    candidate: ServerKeyRecord,
) -> StoreResult<ServerKeyRecord> {
    let mut tx = s.begin().await?;
    sqlx::query!(
        "INSERT INTO server_keys (slot, kid, pkcs8, created_at) VALUES ('active', $1, $2, $3)
         ON CONFLICT (slot) DO NOTHING",
        candidate.kid,
        candidate.pkcs8,
        candidate.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let row = sqlx::query!("SELECT kid, pkcs8, created_at FROM server_keys WHERE slot = 'active'")
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(ServerKeyRecord {
        kid: row.kid,
        pkcs8: row.pkcs8,
        created_at: Millis(row.created_at),
    })
}

pub(crate) async fn admin_key_insert(s: &PgStore, key: NewAdminKey) -> StoreResult<AdminKey> {
    let hash = key.key_hash.to_hex();
    let mut tx = s.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO admin_keys (name, key_hash, created_at) VALUES ($1, $2, $3) RETURNING id AS \"id!\"",
        key.name,
        hash,
        key.created_at.0,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| classify(e, "admin key exists", "referenced row"))?;
    tx.commit().await.map_err(db)?;
    Ok(AdminKey {
        id,
        name: key.name,
        created_at: key.created_at,
    })
}

pub(crate) async fn admin_key_find(
    s: &PgStore,
    key_hash: &KeyHash,
) -> StoreResult<Option<AdminKey>> {
    let hash = key_hash.to_hex();
    let row = sqlx::query!(
        "SELECT id, name, created_at FROM admin_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    Ok(row.map(|r| AdminKey {
        id: r.id,
        name: r.name,
        created_at: Millis(r.created_at),
    }))
}

pub(crate) async fn admin_key_any(s: &PgStore) -> StoreResult<bool> {
    let any = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM admin_keys WHERE revoked_at IS NULL) AS "any!: bool""#
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)?;
    Ok(any)
}
