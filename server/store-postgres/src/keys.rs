//! The server's signing keys (the keyring: one active, earlier ones kept) and the
//! admin API keys.

use pushauth_store::decode::parse_enum;
use pushauth_store::{
    AdminKey, AdminScope, AuditDraft, KeyHash, KeyOrigin, Millis, NewAdminKey, ServerKeyRecord,
    StoreResult,
};

use crate::PgStore;
use crate::audit::append;
use crate::error::{classify, db};

/// Inserts `candidate` as the active key unless there is one (a no-op then) and
/// returns the active key, so concurrent first starts agree on one key.
pub(crate) async fn server_key_get_or_insert(
    s: &PgStore,
    candidate: ServerKeyRecord,
) -> StoreResult<ServerKeyRecord> {
    let mut tx = s.begin().await?;
    sqlx::query!(
        "INSERT INTO server_signing_keys (kid, material, wrapped, status, created_at)
         VALUES ($1, $2, $3, 'active', $4)
         ON CONFLICT DO NOTHING",
        candidate.kid,
        candidate.pkcs8,
        candidate.wrapped,
        candidate.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let row = sqlx::query!(
        r#"SELECT kid, material, wrapped AS "wrapped!: bool", created_at, retired_at
           FROM server_signing_keys WHERE status = 'active'"#
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(ServerKeyRecord {
        kid: row.kid,
        pkcs8: row.material,
        wrapped: row.wrapped,
        created_at: Millis(row.created_at),
        retired_at: row.retired_at.map(Millis),
    })
}

pub(crate) async fn server_key_list(s: &PgStore) -> StoreResult<Vec<ServerKeyRecord>> {
    let rows = sqlx::query!(
        r#"SELECT kid, material, wrapped AS "wrapped!: bool", created_at, retired_at
           FROM server_signing_keys
           ORDER BY status = 'active' DESC, created_at DESC, kid"#
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|row| ServerKeyRecord {
            kid: row.kid,
            pkcs8: row.material,
            wrapped: row.wrapped,
            created_at: Millis(row.created_at),
            retired_at: row.retired_at.map(Millis),
        })
        .collect())
}

pub(crate) async fn server_key_rotate(
    s: &PgStore,
    current_kid: &str,
    new: ServerKeyRecord,
    now: Millis,
) -> StoreResult<bool> {
    let mut tx = s.begin().await?;
    let retired = sqlx::query!(
        "UPDATE server_signing_keys SET status = 'previous', retired_at = $2
         WHERE kid = $1 AND status = 'active'",
        current_kid,
        now.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if retired.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query!(
        "INSERT INTO server_signing_keys (kid, material, wrapped, status, created_at)
         VALUES ($1, $2, $3, 'active', $4)",
        new.kid,
        new.pkcs8,
        new.wrapped,
        new.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "server key exists", "referenced row"))?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(crate) async fn server_key_rewrap(
    s: &PgStore,
    kid: &str,
    expected: &[u8],
    material: Vec<u8>,
    wrapped: bool,
) -> StoreResult<bool> {
    let done = sqlx::query!(
        "UPDATE server_signing_keys SET material = $3, wrapped = $4
         WHERE kid = $1 AND material = $2",
        kid,
        expected,
        material,
        wrapped,
    )
    .execute(s.pool())
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

struct AdminKeyRow {
    id: i64,
    name: String,
    scope: String,
    origin: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl AdminKeyRow {
    fn decode(self) -> StoreResult<AdminKey> {
        Ok(AdminKey {
            id: self.id,
            name: self.name,
            scope: parse_enum("admin_keys.scope", &self.scope, AdminScope::parse)?,
            origin: parse_enum("admin_keys.origin", &self.origin, KeyOrigin::parse)?,
            created_at: Millis(self.created_at),
            revoked_at: self.revoked_at.map(Millis),
        })
    }
}

pub(crate) async fn admin_key_insert(s: &PgStore, key: NewAdminKey) -> StoreResult<AdminKey> {
    let mut tx = s.begin().await?;
    let stored = insert_in(&mut tx, &key).await?;
    tx.commit().await.map_err(db)?;
    Ok(stored)
}

async fn insert_in(conn: &mut sqlx::PgConnection, key: &NewAdminKey) -> StoreResult<AdminKey> {
    let hash = key.key_hash.to_hex();
    let id = sqlx::query_scalar!(
        "INSERT INTO admin_keys (name, key_hash, scope, origin, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id AS \"id!\"",
        key.name,
        hash,
        key.scope.as_str(),
        key.origin.as_str(),
        key.created_at.0,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| classify(e, "admin key exists", "referenced row"))?;
    Ok(AdminKey {
        id,
        name: key.name.clone(),
        scope: key.scope,
        origin: key.origin,
        created_at: key.created_at,
        revoked_at: None,
    })
}

pub(crate) async fn admin_key_find(
    s: &PgStore,
    key_hash: &KeyHash,
) -> StoreResult<Option<AdminKey>> {
    let hash = key_hash.to_hex();
    let row = sqlx::query_as!(
        AdminKeyRow,
        "SELECT id, name, scope, origin, created_at, revoked_at FROM admin_keys
         WHERE key_hash = $1 AND revoked_at IS NULL",
        hash
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(AdminKeyRow::decode).transpose()
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

pub(crate) async fn admin_key_list(s: &PgStore) -> StoreResult<Vec<AdminKey>> {
    let rows = sqlx::query_as!(
        AdminKeyRow,
        "SELECT id, name, scope, origin, created_at, revoked_at FROM admin_keys ORDER BY id"
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(AdminKeyRow::decode).collect()
}

pub(crate) async fn admin_key_revoke(
    s: &PgStore,
    id: i64,
    now: Millis,
    audit: AuditDraft,
) -> StoreResult<bool> {
    let mut tx = s.begin().await?;
    let done = sqlx::query!(
        "UPDATE admin_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        id,
        now.0
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(crate) async fn admin_key_sync_configured(
    s: &PgStore,
    key: NewAdminKey,
) -> StoreResult<(AdminKey, u64)> {
    let hash = key.key_hash.to_hex();
    let now = key.created_at;
    let mut tx = s.begin().await?;
    let found = sqlx::query_as!(
        AdminKeyRow,
        "SELECT id, name, scope, origin, created_at, revoked_at FROM admin_keys WHERE key_hash = $1",
        hash
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let current = match found {
        Some(row) => row.decode()?,
        None => insert_in(&mut tx, &key).await?,
    };
    let stale = sqlx::query!(
        "UPDATE admin_keys SET revoked_at = $2
         WHERE origin = 'configured' AND revoked_at IS NULL AND id <> $1
         RETURNING id, name",
        current.id,
        now.0
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    for row in &stale {
        let audit =
            AuditDraft::new(now, "system", "admin_key.revoked").details(serde_json::json!({
                "id": row.id,
                "name": row.name,
                "reason": "another admin key is configured",
            }));
        append(&mut tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok((current, stale.len() as u64))
}
