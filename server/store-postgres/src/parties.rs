//! Cardholders and the processor identifiers linked to them.

use pushauth_core::ids::{CardholderId, Provider};
use pushauth_store::*;

use crate::PgStore;
use crate::audit::append;
use crate::error::{classify, db};
use crate::rows::{CardLinkRow, CardholderRow};

/// Largest page a listing returns.
const MAX_PAGE: i64 = 500;

pub(crate) async fn cardholder_create(
    s: &PgStore,
    new: NewCardholder,
    audit: AuditDraft,
) -> StoreResult<Cardholder> {
    let mut tx = s.begin().await?;
    sqlx::query!(
        "INSERT INTO cardholders (id, external_ref, label, status, created_at, updated_at)
         VALUES ($1, $2, $3, 'active', $4, $4)",
        new.id.as_str(),
        new.external_ref,
        new.label,
        new.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "cardholder id or external_ref exists", "referenced row"))?;
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Cardholder {
        id: new.id,
        external_ref: new.external_ref,
        label: new.label,
        status: CardholderStatus::Active,
        created_at: new.created_at,
    })
}

pub(crate) async fn cardholder_get(
    s: &PgStore,
    id: &CardholderId,
) -> StoreResult<Option<Cardholder>> {
    let id = id.as_str();
    let row = sqlx::query_as!(
        CardholderRow,
        "SELECT id, external_ref, label, status, created_at FROM cardholders WHERE id = $1",
        id
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(CardholderRow::decode).transpose()
}

pub(crate) async fn cardholder_list(s: &PgStore, page: Page) -> StoreResult<Vec<Cardholder>> {
    let before = page.before.map(|m| m.0);
    let limit = page.limit.clamp(0, MAX_PAGE);
    let rows = sqlx::query_as!(
        CardholderRow,
        "SELECT id, external_ref, label, status, created_at FROM cardholders
         WHERE ($1::BIGINT IS NULL OR created_at < $1)
         ORDER BY created_at DESC, id DESC LIMIT $2",
        before,
        limit
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(CardholderRow::decode).collect()
}

/// Sets the status; the audit draft's time stamps `updated_at`.
pub(crate) async fn cardholder_set_status(
    s: &PgStore,
    id: &CardholderId,
    status: CardholderStatus,
    audit: AuditDraft,
) -> StoreResult<bool> {
    let (id, status) = (id.as_str(), status.as_str());
    let mut tx = s.begin().await?;
    let done = sqlx::query!(
        "UPDATE cardholders SET status = $2, updated_at = $3 WHERE id = $1",
        id,
        status,
        audit.at.0
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

pub(crate) async fn card_link_create(
    s: &PgStore,
    new: NewCardLink,
    audit: AuditDraft,
) -> StoreResult<CardLink> {
    let (cardholder, provider) = (new.cardholder.as_str(), new.provider.as_str());
    let mut tx = s.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO card_links (cardholder_id, provider, provider_key, label, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id AS \"id!\"",
        cardholder,
        provider,
        new.provider_key,
        new.label,
        new.created_at.0,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| classify(e, "card link exists", "cardholder"))?;
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(CardLink {
        id: LinkId(id),
        cardholder: new.cardholder,
        provider: new.provider,
        provider_key: new.provider_key,
        label: new.label,
        created_at: new.created_at,
    })
}

pub(crate) async fn card_link_delete(
    s: &PgStore,
    id: LinkId,
    audit: AuditDraft,
) -> StoreResult<bool> {
    let mut tx = s.begin().await?;
    let done = sqlx::query!("DELETE FROM card_links WHERE id = $1", id.0)
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

pub(crate) async fn card_link_list(
    s: &PgStore,
    cardholder: &CardholderId,
) -> StoreResult<Vec<CardLink>> {
    let cardholder = cardholder.as_str();
    let rows = sqlx::query_as!(
        CardLinkRow,
        "SELECT id, cardholder_id, provider, provider_key, label, created_at
         FROM card_links WHERE cardholder_id = $1 ORDER BY id",
        cardholder
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(CardLinkRow::decode).collect()
}

pub(crate) async fn card_link_resolve(
    s: &PgStore,
    provider: Provider,
    key: &str,
) -> StoreResult<Option<CardLink>> {
    let provider = provider.as_str();
    let row = sqlx::query_as!(
        CardLinkRow,
        "SELECT id, cardholder_id, provider, provider_key, label, created_at
         FROM card_links WHERE provider = $1 AND provider_key = $2",
        provider,
        key
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(CardLinkRow::decode).transpose()
}
