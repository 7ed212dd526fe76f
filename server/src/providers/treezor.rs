//! Treezor: card 3-D Secure v2 out-of-band authentication.
//!
//! Inbound webhooks arrive as a `text/plain` (or JSON) body whose `object_payload` is
//! signed (`object_payload_signature`, checked in `auth`). Treezor's rule: answer 200
//! when the signature matches, 5xx when it does not. Only `object_payload` is signed
//! (the envelope's `webhook`, `webhook_id` and `webhook_created_at` are not), so what
//! an item is comes from the payload: an item carrying `authenticationFinalResult` is
//! a final status (`card3DSv2Authentication.update`), stored against its challenge and
//! ordered by a time inside the payload; any other item asks for an authentication
//! (`.create`) and becomes a challenge (deduplicated on `authenticationRequestId`).
//! Field names are configurable (`treezor_fields`). The result goes to
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
use pushauth_core::transaction::{CountryCode, MerchantUrl, Payee, TransactionKind, TxnDetails};
use pushauth_store::{AuditDraft, Millis};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::treezor_fields::{Item, TreezorFields};

use super::auth::{AuthError, TreezorEnvelope, TreezorVerifier};
use super::common::{self, BodyError, Meter, lenient_enum};
use super::config::{TreezorConfig, check_path, check_window, require_secret};
use crate::error::ApiError;
use crate::services::challenges::{ChallengeRequest, Created, LateWrite, create};
use crate::state::{AppState, now};

const PROVIDER: Provider = Provider::Treezor;
const UPDATE: &str = "card3DSv2Authentication.update";

/// The webhook side, built from configuration.
#[derive(Debug)]
pub struct Inbound {
    verifier: TreezorVerifier,
    window_secs: u64,
    margin_secs: u64,
    fields: TreezorFields,
    untyped_links: super::treezor_fields::UntypedLinks,
    ack_budget: std::time::Duration,
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
        cfg.fields.check()?;
        Ok(Inbound {
            verifier,
            window_secs: cfg.window_secs,
            margin_secs: cfg.result_margin_secs,
            fields: cfg.fields.clone(),
            untyped_links: cfg.untyped_links,
            ack_budget: super::budget::ack_budget("providers.treezor", cfg.ack_budget_ms)?,
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

#[derive(Debug, Deserialize)]
struct Wrapped {
    #[serde(rename = "card3DSv2Authentications", default)]
    list: Option<Box<RawValue>>,
    #[serde(rename = "card3DSv2Authentication", default)]
    one: Option<Box<RawValue>>,
}

/// The items of `object_payload`: "generally in an array" under
/// `card3DSv2Authentications`; a lone object or a bare array are accepted too.
fn items(payload: &RawValue) -> Result<Vec<Item>, BodyError> {
    let text = payload.get().trim_start();
    let one_or_list = |t: &str| {
        if t.trim_start().starts_with('[') {
            common::parse_body::<Vec<Item>>(t.as_bytes())
        } else {
            common::parse_body::<Item>(t.as_bytes()).map(|i| vec![i])
        }
    };
    if text.starts_with('[') {
        return one_or_list(text);
    }
    let wrapped: Wrapped = common::parse_body(text.as_bytes())?;
    match (wrapped.list, wrapped.one) {
        (Some(list), _) => one_or_list(list.get()),
        (None, Some(one)) => one_or_list(one.get()),
        (None, None) => one_or_list(text),
    }
}

/// The amount (major units, string or number) in its currency (ISO 4217 numeric like
/// `"978"`, or alphabetic).
fn amount_of(item: &Item, f: &TreezorFields) -> Result<Option<Money>, String> {
    let Some(lexeme) = item.text(&f.amount) else {
        return Ok(None);
    };
    let code = item
        .text(&f.currency)
        .ok_or_else(|| format!("{}: missing", f.currency[0]))?;
    let currency = match code.parse::<u16>() {
        Ok(n) => Currency::from_numeric(n)
            .ok_or_else(|| format!("{}: unknown ISO 4217 numeric code", f.currency[0]))?,
        Err(_) => Currency::parse(&code).map_err(|e| format!("{}: {e}", f.currency[0]))?,
    };
    Money::from_major_lexeme(&lexeme, currency)
        .map(Some)
        .map_err(|e| format!("{}: {e}", f.amount[0]))
}

/// Merchant country and card last four, when the item has them in a usable form.
fn details_of(item: &Item, f: &TreezorFields) -> TxnDetails {
    TxnDetails {
        merchant_country: item
            .text(&f.merchant_country)
            .as_deref()
            .and_then(super::iso3166::alpha2)
            .and_then(|c| CountryCode::parse(c).ok()),
        merchant_url: item
            .text(&f.merchant_url)
            .as_deref()
            .and_then(MerchantUrl::sanitize),
        card_last4: item
            .text(&f.masked_pan)
            .as_deref()
            .and_then(super::enfuce::last4),
        ..TxnDetails::default()
    }
}

/// Whether the signed item is a final status (it carries the final result).
fn is_final(item: &Item, f: &TreezorFields) -> bool {
    item.raw(&f.final_result).is_some()
}

/// A final status's signed time: RFC 3339, or Treezor's zone-less `YYYY-MM-DD
/// HH:MM:SS` (its other objects' form), read as UTC. Only the order of two such times
/// of one authentication matters, and both are in Treezor's one zone.
fn signed_time(text: &str) -> Option<Millis> {
    common::parse_rfc3339(text).or_else(|| {
        (text.len() == 19 && text.as_bytes()[10] == b' ')
            .then(|| common::parse_rfc3339(&format!("{text}Z")))
            .flatten()
    })
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
    let budget = super::budget::Budget::start(inbound.ack_budget);
    let work = route(&state, &inbound, &envelope, &budget);
    let (outcome, response) = match budget.run(PROVIDER, work).await {
        Some(Ok(done)) => done,
        Some(Err(e)) => (
            "error",
            error(
                e.status(),
                "unexpected_internal_server_error",
                "unexpected_error",
                "internal error",
            ),
        ),
        None => ("over_budget", over_budget()),
    };
    meter.done(&state, outcome);
    response
}

/// The answer past the acknowledgement budget: a 5xx, which Treezor treats as not
/// delivered and retries. Nothing was written, or a write still under way is kept
/// (`LateWrite::Keep`) and the redelivery is answered as its duplicate.
fn over_budget() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unexpected_internal_server_error",
        "unexpected_error",
        "the webhook could not be taken in time",
    )
}

/// Dispatches on the signed payload, not on the unsigned envelope's `webhook`: items
/// with an authentication request id and a final result are final statuses, those
/// with the id only are authentication requests; a payload with neither (another
/// Treezor object) is acknowledged and ignored.
async fn route(
    state: &AppState,
    inbound: &Inbound,
    envelope: &TreezorEnvelope,
    budget: &super::budget::Budget,
) -> Result<(&'static str, Response), ApiError> {
    let name = envelope.webhook.to_ascii_lowercase();
    let named_ours = name.starts_with("card3dsv2authentication.");
    let list = match items(&envelope.object_payload) {
        Ok(l) => l,
        Err(e) if named_ours => return Ok(("bad_request", invalid(&e))),
        Err(_) => return Ok(("ignored", StatusCode::OK.into_response())),
    };
    // What the signed payload holds decides: authentications carry their request id.
    let list: Vec<Item> = list
        .into_iter()
        .filter(|i| i.raw(&inbound.fields.auth_request_id).is_some())
        .collect();
    if list.is_empty() {
        if named_ours {
            let field = &inbound.fields.auth_request_id[0];
            return Ok((
                "bad_request",
                invalid(&BodyError::invalid(format!(
                    "object_payload: no card3DSv2Authentication with {field}"
                ))),
            ));
        }
        return Ok(("ignored", StatusCode::OK.into_response()));
    }
    let finals = list.iter().filter(|i| is_final(i, &inbound.fields)).count();
    let says_update = name == UPDATE.to_ascii_lowercase();
    if (finals > 0) != says_update {
        tracing::warn!(
            webhook = %envelope.webhook,
            "Treezor envelope name disagrees with the signed payload; the payload decides"
        );
    }
    let mut last = ("ignored", StatusCode::OK.into_response());
    for item in &list {
        last = if is_final(item, &inbound.fields) {
            on_update(state, inbound, envelope, item).await?
        } else {
            create_one(state, inbound, envelope, item, budget).await?
        };
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
    budget: &super::budget::Budget,
) -> Result<(&'static str, Response), ApiError> {
    let f = &inbound.fields;
    let bad = |m: String| Ok(("bad_request", invalid(&BodyError::invalid(m))));
    let Some(auth_request_id) = item.text(&f.auth_request_id) else {
        return bad(format!("{}: missing", f.auth_request_id[0]));
    };
    let Ok(reference) = ProviderRef::parse(&auth_request_id) else {
        return bad(format!(
            "{}: must be 1 to 256 visible ASCII characters",
            f.auth_request_id[0]
        ));
    };
    if state
        .store
        .challenge_find(PROVIDER, &reference)
        .await?
        .is_some()
    {
        return Ok(("duplicate", StatusCode::OK.into_response()));
    }
    let amount = match amount_of(item, f) {
        Ok(a) => a,
        Err(m) => return bad(m),
    };
    let card_id = item.text(&f.card_id);
    let public_token = item.text(&f.public_token);
    // Each identifier is matched against links of its own kind only.
    let owned = super::treezor_fields::link_keys(
        card_id.as_deref(),
        public_token.as_deref(),
        inbound.untyped_links,
    );
    let keys: Vec<&str> = owned.iter().map(String::as_str).collect();
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
        payee: item
            .text(&f.merchant_name)
            .as_deref()
            .and_then(Payee::sanitize),
        details: details_of(item, f),
        deadline: deadlines.decision,
        upstream_deadline: deadlines.upstream,
        processor_input: None,
        context: serde_json::json!({
            "auth_request_id": auth_request_id,
            "webhook_id": envelope.webhook_id,
            "card_id": card_id,
            "public_token": public_token,
        }),
        ack_by: Some(budget.commit_by()),
        late_write: LateWrite::Keep,
        actor: format!("provider:{}", PROVIDER.as_str()),
    };
    Ok(match create(state, req).await? {
        Created::New { .. } => ("created", StatusCode::OK.into_response()),
        Created::Duplicate(_) => ("duplicate", StatusCode::OK.into_response()),
        Created::CardholderBlocked | Created::NoActiveDevice | Created::TooManyPending => {
            ("refused", StatusCode::OK.into_response())
        }
        Created::Abandoned => ("over_budget", over_budget()),
    })
}

/// A final status (an item with `authenticationFinalResult`): stored against its
/// challenge. Treezor does not guarantee order and only the payload is signed, so a
/// stored status is replaced only by one whose signed time (`modified_at` field) is
/// later; without signed times the first one stays. The same payload again is a
/// duplicate.
async fn on_update(
    state: &AppState,
    inbound: &Inbound,
    envelope: &TreezorEnvelope,
    item: &Item,
) -> Result<(&'static str, Response), ApiError> {
    let f = &inbound.fields;
    let Some(reference) = item
        .text(&f.auth_request_id)
        .and_then(|r| ProviderRef::parse(&r).ok())
    else {
        return Ok(("ignored", StatusCode::OK.into_response()));
    };
    let Some(challenge) = state.store.challenge_find(PROVIDER, &reference).await? else {
        return Ok(("ignored", StatusCode::OK.into_response()));
    };
    let final_result = item.text(&f.final_result).map(|r| FinalResult::parse(&r));
    let signed_at = item.text(&f.modified_at).as_deref().and_then(signed_time);
    let payload: serde_json::Value =
        serde_json::from_str(envelope.object_payload.get()).unwrap_or_default();
    if let Some(previous) = &challenge.final_status {
        let same = previous.get("object_payload") == Some(&payload);
        let previous_at = previous
            .get("signed_at")
            .and_then(serde_json::Value::as_i64)
            .map(Millis);
        let later = matches!((previous_at, signed_at), (Some(p), Some(n)) if n > p);
        if same || !later {
            return Ok(("duplicate", StatusCode::OK.into_response()));
        }
    }
    let status = serde_json::json!({
        "type": UPDATE,
        "authentication_final_result": final_result,
        "signed_at": signed_at,
        "webhook_id": envelope.webhook_id,
        "webhook_created_at": envelope.webhook_created_at,
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
    .details(serde_json::json!({ "authentication_final_result": final_result }));
    state
        .store
        .challenge_final_status(PROVIDER, &reference, status, audit)
        .await?;
    Ok(("final_status", StatusCode::OK.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn signed_times() {
        let utc = signed_time("2024-07-18T12:54:28Z").unwrap();
        assert_eq!(signed_time("2024-07-18 12:54:28"), Some(utc));
        assert_eq!(signed_time("2024-07-18T14:54:28+02:00"), Some(utc));
        assert!(signed_time("2024-07-18 12:54:29").unwrap() > utc);
        for bad in ["2024-07-18", "2024-07-18 12:54", "2024-07-18X12:54:28", ""] {
            assert_eq!(signed_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn payload_shapes() {
        let f = TreezorFields::default();
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
            assert_eq!(list[0].text(&f.auth_request_id).as_deref(), Some("a"));
            assert_eq!(list[0].text(&f.card_id).as_deref(), Some("8638629"));
            let m = amount_of(&list[0], &f).unwrap().unwrap();
            assert_eq!((m.minor(), m.currency().code()), (1234, "EUR"));
            assert!(!is_final(&list[0], &f));
        }
        let old = items(&raw(
            r#"[{"authenticationRequestID":"b","paymentAmount":5,"paymentCurrency":"JPY"}]"#,
        ))
        .unwrap();
        assert_eq!(old[0].text(&f.auth_request_id).as_deref(), Some("b"));
        assert_eq!(amount_of(&old[0], &f).unwrap().unwrap().minor(), 5);
        let bad = items(&raw(
            r#"[{"authenticationRequestId":"c","paymentAmount":"12.345","paymentCurrency":"978"}]"#,
        ))
        .unwrap();
        assert!(amount_of(&bad[0], &f).is_err());
        let no_amount = items(&raw(r#"[{"authenticationRequestId":"d"}]"#)).unwrap();
        assert_eq!(amount_of(&no_amount[0], &f).unwrap(), None);
        let fin = items(&raw(
            r#"[{"authenticationRequestId":"e","authenticationFinalResult":"SUCCESS"}]"#,
        ))
        .unwrap();
        assert!(is_final(&fin[0], &f));
    }

    #[test]
    fn field_names_are_configurable() {
        let f = TreezorFields {
            auth_request_id: vec!["authId".into()],
            amount: vec!["amount".into()],
            currency: vec!["currency".into()],
            merchant_country: vec!["country".into()],
            masked_pan: vec!["pan".into()],
            ..TreezorFields::default()
        };
        let list = items(&raw(
            r#"[{"authId":"z","amount":"1.50","currency":"EUR","country":"FIN","pan":"4111XXXXXXXX1234"}]"#,
        ))
        .unwrap();
        assert_eq!(list[0].text(&f.auth_request_id).as_deref(), Some("z"));
        assert_eq!(amount_of(&list[0], &f).unwrap().unwrap().minor(), 150);
        let d = details_of(&list[0], &f);
        assert_eq!(d.merchant_country.unwrap().as_str(), "FI");
        assert_eq!(d.card_last4.unwrap().as_str(), "1234");
        assert!(
            TreezorFields {
                card_id: vec![],
                ..TreezorFields::default()
            }
            .check()
            .is_err()
        );
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
