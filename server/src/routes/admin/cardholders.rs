//! Cardholders, processor links and activation codes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pushauth_core::ids::{CardholderId, Provider};
use pushauth_store::{
    AuditDraft, CardholderStatus, LinkId, Millis, NewCardLink, NewCardholder, Page,
};
use serde::Deserialize;

use super::{Admin, parse_id};
use crate::error::{ApiError, ApiResult, AppJson};
use crate::services::enrollment;
use crate::state::{AppState, now};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    #[serde(default)]
    external_ref: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

fn short_text(value: Option<String>, field: &str, max: usize) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                "invalid_field",
                format!("{field}: 1 to {max} characters, no control characters"),
            ))
        }
        other => Ok(other),
    }
}

/// `POST /v1/admin/cardholders`.
pub(super) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<CreateBody>,
) -> ApiResult<Response> {
    let t = now();
    let id = CardholderId::generate().map_err(ApiError::internal)?;
    let new = NewCardholder {
        id: id.clone(),
        external_ref: short_text(body.external_ref, "external_ref", 128)?,
        label: short_text(body.label, "label", 128)?,
        created_at: t,
    };
    let audit = AuditDraft::new(t, admin.actor(), "cardholder.created").cardholder(&id);
    let c = state
        .store
        .cardholder_create(new, audit)
        .await
        .map_err(|e| match e {
            pushauth_store::StoreError::Conflict(_) => {
                ApiError::conflict("external_ref_taken", "external_ref is already used")
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, AppJson(c)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/admin/cardholders`.
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = Page {
        before: q.before.map(Millis),
        limit: q.limit.unwrap_or(50).clamp(1, 500),
    };
    let items = state.store.cardholder_list(page).await?;
    Ok(AppJson(serde_json::json!({ "cardholders": items })).into_response())
}

/// `GET /v1/admin/cardholders/{id}`: the cardholder with links and devices.
pub(super) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    let c = state
        .store
        .cardholder_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("cardholder"))?;
    let links = state.store.card_link_list(&id).await?;
    let devices = state.store.device_list(&id).await?;
    Ok(
        AppJson(serde_json::json!({ "cardholder": c, "links": links, "devices": devices }))
            .into_response(),
    )
}

async fn set_status(
    state: &AppState,
    admin: &Admin,
    id: &str,
    status: CardholderStatus,
) -> ApiResult<StatusCode> {
    let id = parse_id(id, CardholderId::parse, "cardholder")?;
    let audit =
        AuditDraft::new(now(), admin.actor(), format!("cardholder.{status}")).cardholder(&id);
    if state
        .store
        .cardholder_set_status(&id, status, audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("cardholder"))
    }
}

/// `POST /v1/admin/cardholders/{id}/block`.
pub(super) async fn block(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    crate::services::cardholders::block(&state, admin.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/cardholders/{id}/unblock`.
pub(super) async fn unblock(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    set_status(&state, &admin, &id, CardholderStatus::Active).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkBody {
    provider: Provider,
    provider_key: String,
    #[serde(default)]
    label: Option<String>,
}

/// `POST /v1/admin/cardholders/{id}/links`: link a processor identifier (Enfuce
/// customerNumber, Adyen paymentInstrumentId, Paysafe customer id, Treezor cardId or
/// publicToken, or the issuer's own key for the generic API).
pub(super) async fn link(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    AppJson(body): AppJson<LinkBody>,
) -> ApiResult<Response> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    let key = body.provider_key;
    if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "provider_key: 1 to 256 visible ASCII characters",
        ));
    }
    let t = now();
    let audit = AuditDraft::new(t, admin.actor(), "card_link.created")
        .cardholder(&id)
        .details(serde_json::json!({ "provider": body.provider, "provider_key": key }));
    let new = NewCardLink {
        cardholder: id,
        provider: body.provider,
        provider_key: key,
        label: short_text(body.label, "label", 128)?,
        created_at: t,
    };
    let link = state
        .store
        .card_link_create(new, audit)
        .await
        .map_err(|e| match e {
            pushauth_store::StoreError::Conflict(_) => {
                ApiError::conflict("link_exists", "this processor identifier is already linked")
            }
            pushauth_store::StoreError::NotFound(_) => ApiError::not_found("cardholder"),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, AppJson(link)).into_response())
}

/// `GET /v1/admin/cardholders/{id}/links`.
pub(super) async fn links(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    if state.store.cardholder_get(&id).await?.is_none() {
        return Err(ApiError::not_found("cardholder"));
    }
    Ok(
        AppJson(serde_json::json!({ "links": state.store.card_link_list(&id).await? }))
            .into_response(),
    )
}

/// `DELETE /v1/admin/links/{id}`.
pub(super) async fn unlink(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("link"))?;
    let audit = AuditDraft::new(now(), admin.actor(), "card_link.deleted")
        .details(serde_json::json!({ "link": id }));
    if state.store.card_link_delete(&LinkId(id), audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("link"))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeBody {
    #[serde(default)]
    ttl_secs: Option<i64>,
    /// `"svg"`: also answer the deeplink as a QR code (`qr_svg`).
    #[serde(default)]
    qr: Option<QrFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum QrFormat {
    Svg,
}

/// `POST /v1/admin/cardholders/{id}/activation-codes`.
pub(super) async fn activation_code(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    crate::json::OptionalJson(body): crate::json::OptionalJson<CodeBody>,
) -> ApiResult<Response> {
    let id = parse_id(&id, CardholderId::parse, "cardholder")?;
    let mut issued = enrollment::issue(&state, &id, body.ttl_secs, &admin.actor()).await?;
    if let Some(QrFormat::Svg) = body.qr {
        issued.qr_svg = Some(enrollment::qr_svg(&issued.deeplink)?);
    }
    Ok((StatusCode::CREATED, AppJson(issued)).into_response())
}
