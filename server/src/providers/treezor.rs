//! Treezor: card 3-D Secure v2 out-of-band authentication.
//!
//! Inbound webhooks arrive as a `text/plain` (or JSON) body whose `object_payload` is
//! signed (`object_payload_signature`, checked in `auth`). Treezor's rule: answer 200
//! when the signature matches, 5xx when it does not. `card3DSv2Authentication.create`
//! becomes a challenge (deduplicated on `authenticationRequestId`; `webhook_id` is kept);
//! `card3DSv2Authentication.update` is stored as the final status. The result goes to
//! `PUT {baseUrl}/v1/auth-requests/{id}/result` (module `treezor_api`).
//! <https://docs.treezor.com/guide/cards/transactions-authentication.html>
//! <https://docs.treezor.com/guide/webhooks/integrity-checks.html>

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use pushauth_core::ids::{Provider, ProviderRef};
use pushauth_core::money::{Currency, Money};
use pushauth_core::transaction::{Payee, TransactionKind};
use pushauth_store::{AuditDraft, Millis};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::auth::{AuthError, TreezorEnvelope, TreezorVerifier};
use super::common::{self, BodyError, Meter, lenient_enum};
use super::config::{TreezorConfig, check_path, check_window, require_secret};
use crate::error::ApiError;
use crate::services::challenges::{ChallengeRequest, Created, create};
use crate::state::{AppState, now};

const PROVIDER: Provider = Provider::Treezor;
const CREATE: &str = "card3DSv2Authentication.create";
const UPDATE: &str = "card3DSv2Authentication.update";

/// The webhook side, built from configuration.
#[derive(Debug)]
pub struct Inbound {
    verifier: TreezorVerifier,
    window_secs: u64,
    margin_secs: u64,
}

impl Inbound {
    /// Checks the configuration and prepares the signature check.
    pub fn new(cfg: &TreezorConfig) -> Result<Self, String> {
        check_path("providers.treezor.path", &cfg.path, false)?;
        check_window(
            "providers.treezor",
            cfg.window_secs,
            cfg.result_margin_secs,
            None,
        )?;
        let secret = require_secret(
            &cfg.webhook_secret,
            &cfg.webhook_secret_file,
            "providers.treezor.webhook_secret",
        )?;
        let verifier = TreezorVerifier::new(secret.expose())
            .map_err(|e| format!("providers.treezor.webhook_secret: {e}"))?;
        Ok(Inbound {
            verifier,
            window_secs: cfg.window_secs,
            margin_secs: cfg.result_margin_secs,
        })
    }
}

/// Routes: `POST {path}`.
pub fn router(cfg: &TreezorConfig, inbound: Arc<Inbound>) -> Router<AppState> {
    Router::new()
        .route(&cfg.path, post(webhook))
        .layer(Extension(inbound))
}

/// Treezor's error body.
fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "type": kind, "code": code, "message": message }] });
    (status, Json(body)).into_response()
}

fn invalid(e: &BodyError) -> Response {
    error(
        e.status,
        "invalid_request",
        "input_validation_error",
        &e.message,
    )
}

lenient_enum! {
    /// `authenticationFinalResult` of `card3DSv2Authentication.update`.
    pub enum FinalResult {
        /// The card transaction proceeds.
        Success = ["SUCCESS"],
        /// Authentication failed.
        Unauthenticated = ["UNAUTHENTICATED"],
        /// Processor-side error.
        Error = ["ERROR"],
        /// Switched to SMS OTP.
        Fallback = ["FALLBACK"],
        /// Timed out.
        Timeout = ["TIMEOUT"],
    }
}

/// One `card3DSv2Authentication` (the published fields are few; the rest is lenient).
#[derive(Debug, Deserialize)]
struct Item {
    #[serde(rename = "authenticationRequestId", alias = "authenticationRequestID")]
    auth_request_id: String,
    #[serde(rename = "cardId", default)]
    card_id: Option<Box<RawValue>>,
    #[serde(rename = "publicToken", default)]
    public_token: Option<Box<RawValue>>,
    #[serde(rename = "merchantName", default)]
    merchant_name: Option<String>,
    #[serde(rename = "paymentAmount", default)]
    payment_amount: Option<Box<RawValue>>,
    #[serde(rename = "paymentCurrency", default)]
    payment_currency: Option<Box<RawValue>>,
    #[serde(rename = "authenticationFinalResult", default)]
    final_result: Option<FinalResult>,
}

#[derive(Debug, Deserialize)]
struct Wrapped {
    #[serde(rename = "card3DSv2Authentications", default)]
    list: Option<Vec<Item>>,
    #[serde(rename = "card3DSv2Authentication", default)]
    one: Option<Box<RawValue>>,
}

/// The items of `object_payload`: "generally in an array" under
/// `card3DSv2Authentications`; a lone object or a bare array are accepted too.
fn items(payload: &RawValue) -> Result<Vec<Item>, BodyError> {
    let text = payload.get().trim_start();
    let parse_list = |t: &str| common::parse_body::<Vec<Item>>(t.as_bytes());
    if text.starts_with('[') {
        return parse_list(text);
    }
    let wrapped: Wrapped = common::parse_body(text.as_bytes())?;
    match (wrapped.list, wrapped.one) {
        (Some(list), _) => Ok(list),
        (None, Some(one)) if one.get().trim_start().starts_with('[') => parse_list(one.get()),
        (None, Some(one)) => common::parse_body::<Item>(one.get().as_bytes()).map(|i| vec![i]),
        (None, None) => common::parse_body::<Item>(text.as_bytes()).map(|i| vec![i]),
    }
}

/// A string or number field as text (`"8638629"` and `8638629` alike).
fn text_of(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?.get().trim();
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()
    } else {
        Some(raw.to_owned()).filter(|r| r != "null")
    }
}

/// `paymentAmount` (major units, string or number) in `paymentCurrency` (ISO 4217
/// numeric like `"978"`, or alphabetic).
fn amount_of(item: &Item) -> Result<Option<Money>, String> {
    let Some(lexeme) = text_of(item.payment_amount.as_deref()) else {
        return Ok(None);
    };
    let code = text_of(item.payment_currency.as_deref()).ok_or("paymentCurrency: missing")?;
    let currency = match code.parse::<u16>() {
        Ok(n) => Currency::from_numeric(n)
            .ok_or_else(|| "paymentCurrency: unknown ISO 4217 numeric code".to_owned())?,
        Err(_) => Currency::parse(&code).map_err(|e| format!("paymentCurrency: {e}"))?,
    };
    Money::from_major_lexeme(&lexeme, currency)
        .map(Some)
        .map_err(|e| format!("paymentAmount: {e}"))
}

/// `webhook_created_at` is in 10⁻⁴ s.
fn created_at(envelope: &TreezorEnvelope) -> Option<Millis> {
    envelope
        .webhook_created_at
        .and_then(|t| i64::try_from(t / 10).ok())
        .map(Millis)
}

/// `POST {path}`: any Treezor webhook.
async fn webhook(
    State(state): State<AppState>,
    Extension(inbound): Extension<Arc<Inbound>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let meter = Meter::start(PROVIDER);
    let raw = match common::body_bytes(body) {
        Ok(b) => b,
        Err(e) => {
            meter.done(&state, "bad_request");
            return invalid(&e);
        }
    };
    let envelope = match inbound.verifier.verify(&raw) {
        Ok(e) => e,
        Err(e @ (AuthError::MalformedBody(_) | AuthError::TooDeep)) => {
            meter.done(&state, "bad_request");
            return invalid(&BodyError::invalid(e.to_string()));
        }
        // "return a 5xx HTTP code if the signatures don't match"
        Err(e) => {
            meter.unauthorized(&state, common::auth_reason(&e));
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "invalid_grant",
                "invalid_signature",
                "the object_payload_signature does not match",
            );
        }
    };
    let result = if envelope.webhook.eq_ignore_ascii_case(CREATE) {
        on_create(&state, &inbound, &envelope).await
    } else if envelope.webhook.eq_ignore_ascii_case(UPDATE) {
        on_update(&state, &envelope).await
    } else {
        Ok(("ignored", StatusCode::OK.into_response()))
    };
    let (outcome, response) = result.unwrap_or_else(|e| {
        (
            "error",
            error(
                e.status(),
                "unexpected_internal_server_error",
                "unexpected_error",
                "internal error",
            ),
        )
    });
    meter.done(&state, outcome);
    response
}

async fn on_create(
    state: &AppState,
    inbound: &Inbound,
    envelope: &TreezorEnvelope,
) -> Result<(&'static str, Response), ApiError> {
    let list = match items(&envelope.object_payload) {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            return Ok((
                "bad_request",
                invalid(&BodyError::invalid(
                    "object_payload: no card3DSv2Authentication",
                )),
            ));
        }
        Err(e) => return Ok(("bad_request", invalid(&e))),
    };
    let mut last = ("ignored", StatusCode::OK.into_response());
    for item in &list {
        last = create_one(state, inbound, envelope, item).await?;
        if last.1.status() != StatusCode::OK {
            break;
        }
    }
    Ok(last)
}

async fn create_one(
    state: &AppState,
    inbound: &Inbound,
    envelope: &TreezorEnvelope,
    item: &Item,
) -> Result<(&'static str, Response), ApiError> {
    let bad = |m: String| Ok(("bad_request", invalid(&BodyError::invalid(m))));
    let Ok(reference) = ProviderRef::parse(&item.auth_request_id) else {
        return bad("authenticationRequestId: must be 1 to 256 visible ASCII characters".into());
    };
    if state
        .store
        .challenge_find(PROVIDER, &reference)
        .await?
        .is_some()
    {
        return Ok(("duplicate", StatusCode::OK.into_response()));
    }
    let amount = match amount_of(item) {
        Ok(a) => a,
        Err(m) => return bad(m),
    };
    let card_id = text_of(item.card_id.as_deref());
    let public_token = text_of(item.public_token.as_deref());
    let keys = [
        card_id.as_deref().unwrap_or_default(),
        public_token.as_deref().unwrap_or_default(),
    ];
    // A valid webhook gets 200 whatever we make of it (Treezor's rule); Treezor then
    // times the authentication out.
    let Some(cardholder) = common::resolve_cardholder(state, PROVIDER, &keys).await? else {
        return Ok(("unknown_card", StatusCode::OK.into_response()));
    };
    let end = created_at(envelope).map(|t| t.plus(common::secs_ms(inbound.window_secs)));
    let Some(deadlines) = common::deadlines(now(), inbound.window_secs, inbound.margin_secs, end)
    else {
        return Ok(("ignored", StatusCode::OK.into_response()));
    };
    let req = ChallengeRequest {
        cardholder,
        provider: PROVIDER,
        reference,
        kind: TransactionKind::Payment,
        amount,
        payee: item.merchant_name.as_deref().and_then(Payee::sanitize),
        details: pushauth_core::transaction::TxnDetails::default(),
        deadline: deadlines.decision,
        upstream_deadline: deadlines.upstream,
        processor_input: None,
        context: serde_json::json!({
            "auth_request_id": item.auth_request_id,
            "webhook_id": envelope.webhook_id,
            "card_id": card_id,
            "public_token": public_token,
        }),
        actor: format!("provider:{}", PROVIDER.as_str()),
    };
    Ok(match create(state, req).await? {
        Created::New { .. } => ("created", StatusCode::OK.into_response()),
        Created::Duplicate(_) => ("duplicate", StatusCode::OK.into_response()),
        Created::CardholderBlocked | Created::NoActiveDevice | Created::TooManyPending => {
            ("refused", StatusCode::OK.into_response())
        }
    })
}

/// `card3DSv2Authentication.update`: stored against the challenge, unless an update
/// emitted later (by `webhook_created_at`) or this very delivery (`webhook_id`) is
/// stored already, since Treezor does not guarantee order.
async fn on_update(
    state: &AppState,
    envelope: &TreezorEnvelope,
) -> Result<(&'static str, Response), ApiError> {
    let list = match items(&envelope.object_payload) {
        Ok(l) => l,
        Err(e) => return Ok(("bad_request", invalid(&e))),
    };
    let payload: serde_json::Value =
        serde_json::from_str(envelope.object_payload.get()).unwrap_or_default();
    let mut outcome = "ignored";
    for item in &list {
        let Ok(reference) = ProviderRef::parse(&item.auth_request_id) else {
            continue;
        };
        let Some(challenge) = state.store.challenge_find(PROVIDER, &reference).await? else {
            continue;
        };
        let emitted = envelope.webhook_created_at;
        if let Some(previous) = &challenge.final_status {
            let same = previous.get("webhook_id").and_then(|v| v.as_str())
                == Some(envelope.webhook_id.as_str());
            let newer = previous
                .get("webhook_created_at")
                .and_then(serde_json::Value::as_u64)
                .zip(emitted)
                .is_some_and(|(p, e)| p > e);
            if same || newer {
                outcome = "duplicate";
                continue;
            }
        }
        let status = serde_json::json!({
            "type": UPDATE,
            "authentication_final_result": item.final_result,
            "webhook_id": envelope.webhook_id,
            "webhook_created_at": emitted,
            "received_at": now(),
            "object_payload": payload,
        });
        let audit = AuditDraft::new(
            now(),
            format!("provider:{}", PROVIDER.as_str()),
            "challenge.final_status",
        )
        .challenge(&challenge.id)
        .cardholder(&challenge.cardholder)
        .details(serde_json::json!({ "authentication_final_result": item.final_result }));
        state
            .store
            .challenge_final_status(PROVIDER, &reference, status, audit)
            .await?;
        outcome = "final_status";
    }
    Ok((outcome, StatusCode::OK.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn payload_shapes() {
        let one = r#"{"authenticationRequestId":"a","paymentAmount":"12.34","paymentCurrency":"978","cardId":8638629}"#;
        for text in [
            format!(r#"{{"card3DSv2Authentications":[{one}]}}"#),
            format!(r#"{{"card3DSv2Authentication":{one}}}"#),
            format!(r#"{{"card3DSv2Authentication":[{one}]}}"#),
            format!("[{one}]"),
            one.to_owned(),
        ] {
            let list = items(&raw(&text)).unwrap();
            assert_eq!(list.len(), 1, "{text}");
            assert_eq!(list[0].auth_request_id, "a");
            assert_eq!(
                text_of(list[0].card_id.as_deref()).as_deref(),
                Some("8638629")
            );
            let m = amount_of(&list[0]).unwrap().unwrap();
            assert_eq!((m.minor(), m.currency().code()), (1234, "EUR"));
        }
        let old = items(&raw(
            r#"[{"authenticationRequestID":"b","paymentAmount":5,"paymentCurrency":"JPY"}]"#,
        ))
        .unwrap();
        assert_eq!(old[0].auth_request_id, "b");
        assert_eq!(amount_of(&old[0]).unwrap().unwrap().minor(), 5);
        assert!(items(&raw(r#"{"card3DSv2Authentications":[{"cardId":"1"}]}"#)).is_err());
        let bad = items(&raw(
            r#"[{"authenticationRequestId":"c","paymentAmount":"12.345","paymentCurrency":"978"}]"#,
        ))
        .unwrap();
        assert!(amount_of(&bad[0]).is_err());
        let no_amount = items(&raw(r#"[{"authenticationRequestId":"d"}]"#)).unwrap();
        assert_eq!(amount_of(&no_amount[0]).unwrap(), None);
    }

    #[test]
    fn final_results_are_lenient() {
        assert_eq!(FinalResult::parse("SUCCESS"), FinalResult::Success);
        assert_eq!(
            FinalResult::parse("NEW_RESULT"),
            FinalResult::Other("NEW_RESULT".into())
        );
    }
}
