//! Challenges: the generic challenge API (provider `api`, for issuers' own systems),
//! listing, the evidence view of one challenge, cancelling, and the audit check.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pushauth_core::ids::{CardholderId, ChallengeId, Provider, ProviderRef};
use pushauth_core::money::Money;
use pushauth_core::transaction::{Payee, TransactionKind, TxnDetails};
use pushauth_store::{AuditDraft, ChallengeFilter, ChallengeStatus, Millis};
use serde::Deserialize;

use super::{Admin, parse_id};
use crate::error::{ApiError, ApiResult, AppJson};
use crate::providers::api::validate_callback;
use crate::services::challenges::{ChallengeRequest, Created, create as create_challenge};
use crate::services::decisions::{dismiss_rows, upstream_row};
use crate::state::{AppState, now};
use crate::upstream::Outcome;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// The cardholder, by id …
    #[serde(default)]
    cardholder_id: Option<CardholderId>,
    /// … or by the issuer's key linked with provider `api`.
    #[serde(default)]
    provider_key: Option<String>,
    /// The issuer's reference; a repeated reference returns the existing challenge.
    reference: ProviderRef,
    #[serde(default = "default_kind")]
    kind: TransactionKind,
    #[serde(default)]
    amount: Option<Money>,
    #[serde(default)]
    payee: Option<Payee>,
    /// Further signed display members (`merchant_country`, `merchant_url`,
    /// `purchase_date`, `card_last4`, `operation`, `operation_ref`).
    #[serde(default)]
    details: Option<TxnDetails>,
    #[serde(default)]
    ttl_secs: Option<i64>,
    #[serde(default)]
    callback_url: Option<String>,
}

fn default_kind() -> TransactionKind {
    TransactionKind::Payment
}

/// `POST /v1/admin/challenges`: create a challenge from any issuer system.
pub(super) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<CreateBody>,
) -> ApiResult<Response> {
    let cardholder = match (body.cardholder_id, body.provider_key) {
        (Some(id), None) => id,
        (None, Some(key)) => {
            state
                .store
                .card_link_resolve(Provider::Api, &key)
                .await?
                .ok_or_else(|| ApiError::not_found("cardholder"))?
                .cardholder
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "exactly one of cardholder_id and provider_key is required",
            ));
        }
    };
    let cfg = &state.config.challenges;
    let ttl = body.ttl_secs.unwrap_or(cfg.default_ttl_secs);
    if !(1..=cfg.max_ttl_secs).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("ttl_secs: must be 1 to {}", cfg.max_ttl_secs),
        ));
    }
    let callback = match body.callback_url {
        Some(url) => Some(validate_callback(&state.config.api, &url)?),
        None => None,
    };
    let t = now();
    let deadline = t.plus(ttl * 1000);
    let req = ChallengeRequest {
        cardholder,
        provider: Provider::Api,
        reference: body.reference,
        kind: body.kind,
        amount: body.amount,
        payee: body.payee,
        details: body.details.unwrap_or_default(),
        deadline,
        // callbacks get a grace period after the decision deadline
        upstream_deadline: deadline.plus(300_000),
        processor_input: None,
        context: serde_json::json!({ "callback_url": callback }),
        ack_by: None,
        late_write: crate::services::challenges::LateWrite::Cancel,
        actor: admin.actor(),
    };
    match create_challenge(&state, req).await? {
        Created::New { challenge, pushes } => {
            let body = serde_json::json!({ "challenge": challenge, "pushes": pushes });
            Ok((StatusCode::CREATED, AppJson(body)).into_response())
        }
        Created::Duplicate(challenge) => Ok((
            StatusCode::OK,
            AppJson(serde_json::json!({ "challenge": challenge })),
        )
            .into_response()),
        Created::CardholderBlocked => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cardholder_blocked",
            "the cardholder is blocked",
        )),
        Created::NoActiveDevice => Err(ApiError::unprocessable(
            "no_active_device",
            "the cardholder has no active device",
        )),
        Created::TooManyPending => Err(ApiError::too_many(
            "too_many_pending",
            "too many challenges pending for this cardholder",
        )),
        // No acknowledgement budget on this API (`ack_by` is None): not reached.
        Created::Abandoned => Err(ApiError::internal("challenge abandoned")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: Option<ChallengeStatus>,
    #[serde(default)]
    cardholder: Option<CardholderId>,
    #[serde(default)]
    provider: Option<Provider>,
    /// The processor's reference (Enfuce `sessionId`, Adyen `id`, Paysafe `eventId`,
    /// Treezor `authenticationRequestId`, the issuer's reference), under `provider` or
    /// under any processor.
    #[serde(default)]
    reference: Option<String>,
    /// Created at or after (Unix ms).
    #[serde(default)]
    since: Option<i64>,
    /// Created strictly before (Unix ms).
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/admin/challenges?status=&cardholder=&provider=&reference=&since=&before=&limit=`:
/// newest first. With `reference`, the challenges that processor reference names
/// (one per processor at most; support answers "did the cardholder approve order
/// X?"), found on the `(provider, reference)` index, the other filters applied.
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let filter = ChallengeFilter {
        status: q.status,
        cardholder: q.cardholder,
        provider: q.provider,
        since: q.since.map(Millis),
        before: q.before.map(Millis),
        limit: q.limit.unwrap_or(50).clamp(1, 500),
    };
    let mut challenges = match &q.reference {
        Some(reference) => {
            let reference = ProviderRef::parse(reference).map_err(|_| {
                ApiError::bad_request(
                    "invalid_field",
                    "reference: must be 1 to 256 visible ASCII characters",
                )
            })?;
            state
                .store
                .challenge_find_reference(&reference, &filter)
                .await?
        }
        None => state.store.challenge_list(filter).await?,
    };
    challenges
        .iter_mut()
        .for_each(crate::providers::redact_context);
    Ok(AppJson(serde_json::json!({ "challenges": challenges })).into_response())
}

/// `GET /v1/admin/challenges/{id}`: the evidence of one challenge
/// ([`crate::services::evidence`]).
pub(super) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, ChallengeId::parse, "challenge")?;
    let body = crate::services::evidence::of_challenge(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("challenge"))?;
    Ok(AppJson(body).into_response())
}

/// `POST /v1/admin/challenges/{id}/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, ChallengeId::parse, "challenge")?;
    let challenge = state
        .store
        .challenge_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("challenge"))?;
    if challenge.status.is_final() {
        return Err(ApiError::conflict(
            "already_closed",
            format!("the challenge is already {}", challenge.status),
        )
        .with(serde_json::json!({ "challenge_status": challenge.status })));
    }
    let mut outbox = dismiss_rows(&state, &challenge, None).await?;
    outbox.extend(upstream_row(&state, &challenge, Outcome::Cancelled));
    let t = now();
    let audit = AuditDraft::new(t, admin.actor(), "challenge.cancelled")
        .challenge(&id)
        .cardholder(&challenge.cardholder);
    if !state
        .store
        .challenge_close(&id, ChallengeStatus::Cancelled, t, outbox, audit)
        .await?
    {
        return Err(ApiError::conflict(
            "already_closed",
            "the challenge was closed concurrently",
        ));
    }
    Ok(AppJson(serde_json::json!({ "status": ChallengeStatus::Cancelled })).into_response())
}

/// `GET /v1/admin/audit/verify`: re-computes the audit hash chain.
pub(super) async fn audit_verify(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<Response> {
    Ok(AppJson(state.store.audit_verify().await?).into_response())
}
