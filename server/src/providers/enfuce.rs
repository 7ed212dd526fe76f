//! Enfuce ID third-party authentication.
//!
//! Inbound: `POST {prefix}/v1/authenticate/{customerNumber}/{sessionId}`, HTTP Basic
//! (RFC 7617), answered `200` with no body within Enfuce's 2 s, or an Enfuce
//! `errorResponse`. Outbound: `POST {callbackUrl}` with `{"result": …}` within 150 s of
//! the webhook, authenticated with Basic (or Bearer, configurable).
//! <https://docs.enfuce.com/payment/api/initiate-3rd-party-authentication-flow/outgoing-webhook-endpoint-to-initiate-3rd-party-authentication-flow>
//! <https://docs.enfuce.com/payment/api/callback-to-complete-authentication-flow/callback-endpoint-to-be-used-by-3rd-party-authentication-system-to-report-about-authentication-validation>

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use pushauth_core::ids::{Provider, ProviderRef};
use pushauth_core::money::{Currency, Money};
use pushauth_core::transaction::{
    CardLast4, CountryCode, MerchantUrl, Payee, TransactionKind, TxnDetails,
};
use pushauth_store::Challenge;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::auth::BasicVerifier;
use super::common::{self, BodyError, Meter, lenient_enum};
use super::config::{CallAuth, EnfuceConfig, check_path, check_window, require_secret};
use crate::services::challenges::{ChallengeRequest, Created, LateWrite, create};
use crate::state::{AppState, now};
use crate::upstream::{Delivery, Job, Outcome, Upstream};

const PROVIDER: Provider = Provider::Enfuce;

/// The webhook side, built from configuration.
#[derive(Debug)]
pub struct Inbound {
    verifier: BasicVerifier,
    callback_hosts: Vec<String>,
    allow_http: bool,
    check_callback_session: bool,
    window_secs: u64,
    margin_secs: u64,
    ack_budget: std::time::Duration,
}

impl Inbound {
    /// Checks the configuration and prepares the credential check.
    pub fn new(cfg: &EnfuceConfig) -> Result<Self, String> {
        check_path("providers.enfuce.path_prefix", &cfg.path_prefix, true)?;
        check_window(
            "providers.enfuce",
            cfg.window_secs,
            cfg.result_margin_secs,
            Some(150),
        )?;
        if cfg.callback_hosts.iter().all(|h| h.trim().is_empty()) {
            return Err(
                "providers.enfuce.callback_hosts must list Enfuce's callback host(s)".into(),
            );
        }
        let password = require_secret(
            &cfg.webhook_password,
            &cfg.webhook_password_file,
            "providers.enfuce.webhook_password",
        )?;
        let verifier = BasicVerifier::new(&cfg.webhook_user, password.expose())
            .map_err(|e| format!("providers.enfuce: {e}"))?;
        Ok(Inbound {
            verifier,
            callback_hosts: cfg.callback_hosts.clone(),
            allow_http: cfg.allow_http_callbacks,
            check_callback_session: cfg.check_callback_session,
            window_secs: cfg.window_secs,
            margin_secs: cfg.result_margin_secs,
            ack_budget: super::budget::ack_budget("providers.enfuce", cfg.ack_budget_ms)?,
        })
    }
}

/// Routes: `POST {path_prefix}/v1/authenticate/{customerNumber}/{sessionId}`.
pub fn router(cfg: &EnfuceConfig, inbound: Arc<Inbound>) -> Router<AppState> {
    let path = format!(
        "{}/v1/authenticate/{{customer}}/{{session}}",
        cfg.path_prefix
    );
    Router::new()
        .route(&path, post(authenticate))
        .layer(Extension(inbound))
}

lenient_enum! {
    /// `transaction.type`.
    enum TxnType {
        /// A one-time transaction.
        Payment = ["PAYMENT"],
        /// A recurring transaction.
        Recurring = ["RECURRING"],
    }
}

/// `initiateAuthenticationBody`; unknown fields are ignored ("a client must be able to
/// handle cases where elements are added").
#[derive(Debug, Deserialize)]
struct Body {
    #[serde(rename = "callbackUrl")]
    callback_url: String,
    #[serde(default)]
    transaction: Option<Transaction>,
    #[serde(default)]
    merchant: Option<Merchant>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    #[serde(rename = "type", default)]
    kind: Option<TxnType>,
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(rename = "cardId", default)]
    card_id: Option<String>,
    /// Truncated PAN, e.g. `342170______9554`: its last four digits are shown.
    #[serde(rename = "cardNumber", default)]
    card_number: Option<String>,
}

/// `money`: the amount is a JSON number in major units, kept as its lexeme so that it
/// converts exactly (never through f64).
#[derive(Debug, Deserialize)]
struct Amount {
    amount: Box<RawValue>,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct Merchant {
    #[serde(default)]
    name: Option<String>,
    /// ISO 3166-1 alpha-3 (`FIN`; Enfuce also names `QZZ` and `ROM`).
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// The signed display members Enfuce gives beyond amount and payee: merchant country
/// (alpha-3 converted to alpha-2), merchant URL and the card's last four digits. A
/// value that cannot be shown faithfully is left out rather than failing the webhook.
fn details_of(body: &Body) -> TxnDetails {
    let merchant = body.merchant.as_ref();
    TxnDetails {
        merchant_country: merchant
            .and_then(|m| m.country.as_deref())
            .and_then(super::iso3166::alpha2)
            .and_then(|c| CountryCode::parse(c).ok()),
        merchant_url: merchant
            .and_then(|m| m.url.as_deref())
            .and_then(MerchantUrl::sanitize),
        card_last4: body
            .transaction
            .as_ref()
            .and_then(|t| t.card_number.as_deref())
            .and_then(last4),
        ..TxnDetails::default()
    }
}

/// The last four characters of a truncated PAN when they are digits.
pub(super) fn last4(pan: &str) -> Option<CardLast4> {
    let tail = pan.trim().get(pan.trim().len().checked_sub(4)?..)?;
    CardLast4::parse(tail).ok()
}

/// Whether `callback` belongs to the path's customer and session. Enfuce's callback
/// is `…/v1/callback/{institutionCode}/{customerNumber}/{sessionId}`: a URL with a
/// `v1/callback` part must have exactly those three segments after it (one trailing
/// `/` allowed), the last two the path's `customerNumber` and `sessionId`. A URL
/// without that part cannot be checked and is accepted (the host allow-list still
/// applies).
pub(super) fn callback_matches_session(callback: &url::Url, customer: &str, session: &str) -> bool {
    let Some(segments) = callback.path_segments() else {
        return true;
    };
    let mut segments: Vec<&str> = segments.collect();
    if segments.last() == Some(&"") {
        segments.pop();
    }
    let Some(at) = segments.windows(2).rposition(|w| w == ["v1", "callback"]) else {
        return true;
    };
    let decode = |v: &str| {
        percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned()
    };
    match &segments[at + 2..] {
        [_institution, c, s] => decode(c) == customer && decode(s) == session,
        _ => false,
    }
}

/// Enfuce's `errorResponse`.
fn error_response(
    status: StatusCode,
    error_type: &str,
    error_code: &str,
    message: &str,
) -> Response {
    let id = uuid::Uuid::new_v4();
    let body = serde_json::json!({
        "code": status.as_u16().to_string(),
        "message": status.canonical_reason().unwrap_or("Error"),
        "id": id,
        "errorCode": error_code,
        "errorType": error_type,
        "errorReason": message,
        "timestamp": rfc3339_now(),
    });
    (status, Json(body)).into_response()
}

fn rfc3339_now() -> String {
    now().to_rfc3339()
}

fn bad_request(e: &BodyError) -> Response {
    error_response(
        e.status,
        "STATIC_VALIDATION_ERROR",
        "INVALID_REQUEST",
        &e.message,
    )
}

/// `POST {prefix}/v1/authenticate/{customerNumber}/{sessionId}`: Enfuce asks us to
/// authenticate a cardholder. Persist the challenge and its pushes, then `200`.
async fn authenticate(
    State(state): State<AppState>,
    Extension(inbound): Extension<Arc<Inbound>>,
    Path((customer, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let meter = Meter::start(PROVIDER);
    // "For the outgoing webhook basic authentication according to RFC 7617 is the
    // method that is supported."
    let presented = headers
        .get(header::AUTHORIZATION)
        .map_or(&b""[..], |v| v.as_bytes());
    if let Err(e) = inbound.verifier.verify(presented) {
        meter.unauthorized(&state, common::auth_reason(&e));
        return error_response(
            StatusCode::UNAUTHORIZED,
            "SECURITY_ERROR",
            "UNAUTHORIZED",
            "invalid credentials",
        );
    }
    let budget = super::budget::Budget::start(inbound.ack_budget);
    let work = handle(&state, &inbound, &customer, &session, body, &budget);
    match budget.run(PROVIDER, work).await {
        Some(Ok((outcome, response))) => {
            meter.done(&state, outcome);
            response
        }
        None => {
            meter.done(&state, "over_budget");
            over_budget()
        }
        Some(Err(e)) => {
            let internal = e.status() == StatusCode::INTERNAL_SERVER_ERROR;
            meter.done(&state, if internal { "error" } else { "bad_request" });
            let kind = if internal {
                "UNEXPECTED_ERROR"
            } else {
                "STATIC_VALIDATION_ERROR"
            };
            error_response(
                e.status(),
                kind,
                e.reason(),
                if internal {
                    "internal error"
                } else {
                    "invalid request"
                },
            )
        }
    }
}

/// The answer when the acknowledgement budget ran out: a 500 `errorResponse` (Enfuce
/// treats any non-200 as a failed initiation; it stops waiting after 2 s anyway).
fn over_budget() -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNEXPECTED_ERROR",
        "ACK_BUDGET_EXCEEDED",
        "the authentication could not be initiated in time",
    )
}

async fn handle(
    state: &AppState,
    inbound: &Inbound,
    customer: &str,
    session: &str,
    body: Result<Bytes, BytesRejection>,
    budget: &super::budget::Budget,
) -> Result<(&'static str, Response), crate::error::ApiError> {
    let parsed = common::body_bytes(body).and_then(|b| common::parse_body::<Body>(&b));
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return Ok(("bad_request", bad_request(&e))),
    };
    let invalid = |msg: String| Ok(("bad_request", bad_request(&BodyError::invalid(msg))));
    let Ok(reference) = ProviderRef::parse(session) else {
        return invalid("sessionId: must be 1 to 256 visible ASCII characters".into());
    };
    let callback = match common::check_callback_url(
        &body.callback_url,
        &inbound.callback_hosts,
        inbound.allow_http,
    ) {
        Ok(url) => url,
        Err(why) => return invalid(format!("callbackUrl: {why}")),
    };
    if inbound.check_callback_session && !callback_matches_session(&callback, customer, session) {
        return invalid("callbackUrl: names another customer or session than the path".into());
    }
    let txn = body.transaction.as_ref();
    let amount = match txn.and_then(|t| t.amount.as_ref()) {
        None => None,
        Some(a) => match Currency::parse(&a.currency)
            .and_then(|c| Money::from_major_lexeme(a.amount.get(), c))
        {
            Ok(m) => Some(m),
            Err(e) => return invalid(format!("transaction.amount: {e}")),
        },
    };
    let kind = match txn.and_then(|t| t.kind.as_ref()) {
        Some(TxnType::Recurring) => TransactionKind::Recurring,
        _ => TransactionKind::Payment,
    };
    let payee = body
        .merchant
        .as_ref()
        .and_then(|m| m.name.as_deref())
        .and_then(Payee::sanitize);
    let Some(cardholder) = common::resolve_cardholder(state, PROVIDER, &[customer]).await? else {
        return Ok((
            "unknown_card",
            error_response(
                StatusCode::NOT_FOUND,
                "DYNAMIC_VALIDATION_ERROR",
                "CUSTOMER_NOT_FOUND",
                "Customer does not exist",
            ),
        ));
    };
    let t = now();
    // The window runs from the webhook; the decision deadline keeps a margin so that a
    // TIMEOUT still reaches Enfuce before it invalidates the callback.
    let Some(deadlines) = common::deadlines(t, inbound.window_secs, inbound.margin_secs, None)
    else {
        return Err(crate::error::ApiError::internal(
            "enfuce window leaves no time",
        ));
    };
    let req = ChallengeRequest {
        cardholder,
        provider: PROVIDER,
        reference,
        kind,
        amount,
        payee,
        details: details_of(&body),
        deadline: deadlines.decision,
        upstream_deadline: deadlines.upstream,
        processor_input: None,
        context: serde_json::json!({
            "callback_url": callback.as_str(),
            "customer_number": customer,
            "card_id": txn.and_then(|t| t.card_id.as_deref()),
        }),
        ack_by: Some(budget.commit_by()),
        late_write: LateWrite::Cancel,
        actor: format!("provider:{}", PROVIDER.as_str()),
    };
    let refused = |code: &str, msg: &str| {
        error_response(StatusCode::FORBIDDEN, "DYNAMIC_VALIDATION_ERROR", code, msg)
    };
    Ok(match create(state, req).await? {
        Created::New { .. } => ("created", StatusCode::OK.into_response()),
        Created::Duplicate(_) => ("duplicate", StatusCode::OK.into_response()),
        Created::CardholderBlocked => (
            "refused",
            refused("CARDHOLDER_BLOCKED", "the cardholder is blocked"),
        ),
        Created::NoActiveDevice => (
            "refused",
            refused("NO_ACTIVE_DEVICE", "the cardholder has no active device"),
        ),
        Created::TooManyPending => (
            "refused",
            refused("TOO_MANY_PENDING", "too many authentications pending"),
        ),
        Created::Abandoned => ("over_budget", over_budget()),
    })
}

/// The result leg: `POST {callbackUrl}` with `{"result": …}`.
#[derive(Debug)]
pub struct EnfuceUpstream {
    http: reqwest::Client,
    authorization: reqwest::header::HeaderValue,
    callback_hosts: Vec<String>,
    allow_http: bool,
}

impl EnfuceUpstream {
    /// Builds the connector from configuration.
    pub fn new(cfg: &EnfuceConfig, http: reqwest::Client) -> Result<Self, String> {
        let value = match cfg.callback_auth {
            CallAuth::Basic => {
                let user = cfg
                    .callback_user
                    .as_deref()
                    .filter(|u| !u.is_empty() && !u.contains(':'));
                let user = user.ok_or(
                    "providers.enfuce.callback_user is required (no colon) for Basic callbacks",
                )?;
                let password = require_secret(
                    &cfg.callback_password,
                    &cfg.callback_password_file,
                    "providers.enfuce.callback_password",
                )?;
                common::basic_authorization(user, password.expose())
            }
            CallAuth::Bearer => {
                let token = require_secret(
                    &cfg.callback_token,
                    &cfg.callback_token_file,
                    "providers.enfuce.callback_token",
                )?;
                format!("Bearer {}", token.expose())
            }
        };
        Ok(EnfuceUpstream {
            http,
            authorization: common::sensitive(&value)?,
            callback_hosts: cfg.callback_hosts.clone(),
            allow_http: cfg.allow_http_callbacks,
        })
    }
}

/// Enfuce's result for an outcome. A deny is `FAIL` (not "REJECTED"); an issuer's
/// cancellation is a refusal too; a technical failure that prevented a decision (no
/// device reachable under the close policy) is `ERROR`.
pub fn result_for(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "SUCCESS",
        Outcome::Denied { .. } | Outcome::Cancelled => "FAIL",
        Outcome::Expired => "TIMEOUT",
        Outcome::Failed => "ERROR",
    }
}

fn callback_url(challenge: &Challenge) -> Option<&str> {
    challenge
        .context
        .get("callback_url")
        .and_then(|v| v.as_str())
}

#[async_trait]
impl Upstream for EnfuceUpstream {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    /// Every outcome is reported: Enfuce wants a result for success and failure alike,
    /// and `TIMEOUT` when nobody answered.
    fn wants(&self, challenge: &Challenge, _outcome: Outcome) -> bool {
        callback_url(challenge).is_some()
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let Some(raw) = callback_url(job.challenge) else {
            return Delivery::Fatal {
                http_status: None,
                error: "no callbackUrl".into(),
            };
        };
        // Checked at the webhook already; checked again in case the allow-list changed.
        let url = match common::check_callback_url(raw, &self.callback_hosts, self.allow_http) {
            Ok(url) => url,
            Err(why) => {
                return Delivery::Fatal {
                    http_status: None,
                    error: format!("callbackUrl {why}"),
                };
            }
        };
        let body = serde_json::json!({ "result": result_for(job.outcome) });
        let result = self
            .http
            .post(url)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .json(&body)
            .send()
            .await;
        match result {
            Ok(resp) => super::api::classify(
                resp.status(),
                resp.headers().get(reqwest::header::RETRY_AFTER),
            ),
            Err(e) => Delivery::Retry {
                http_status: None,
                error: super::transport::failure(&e),
                after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results() {
        assert_eq!(result_for(Outcome::Approved), "SUCCESS");
        assert_eq!(result_for(Outcome::Denied { reason: None }), "FAIL");
        assert_eq!(result_for(Outcome::Expired), "TIMEOUT");
        assert_eq!(result_for(Outcome::Cancelled), "FAIL");
        assert_eq!(result_for(Outcome::Failed), "ERROR");
    }

    #[test]
    fn callback_session_shape() {
        let ok = |u: &str| callback_matches_session(&url::Url::parse(u).unwrap(), "cust 1", "sess");
        assert!(ok("https://id.enfuce.com/v1/callback/inst/cust%201/sess"));
        assert!(ok(
            "https://id.enfuce.com/api/v1/callback/inst/cust%201/sess/"
        ));
        assert!(!ok("https://id.enfuce.com/v1/callback/inst/other/sess"));
        assert!(!ok(
            "https://id.enfuce.com/v1/callback/inst/cust%201/other/"
        ));
        assert!(
            !ok("https://id.enfuce.com/v1/callback/inst/other/other/x"),
            "a segment more"
        );
        assert!(
            !ok("https://id.enfuce.com/v1/callback/cust%201/sess"),
            "one less"
        );
        assert!(
            ok("https://id.enfuce.com/cb/sess"),
            "another shape: not checkable"
        );
    }

    #[test]
    fn body_keeps_the_amount_lexeme_and_tolerates_new_fields() {
        let raw = br#"{"callbackUrl":"https://x/cb","newField":{"a":1},"transaction":{"type":"INSTALMENT","amount":{"amount":49.90,"currency":"EUR"},"cardId":"1"}}"#;
        let b: Body = common::parse_body(raw).unwrap();
        let t = b.transaction.unwrap();
        assert_eq!(t.kind, Some(TxnType::Other("INSTALMENT".into())));
        let a = t.amount.unwrap();
        assert_eq!(a.amount.get(), "49.90");
        let m = Money::from_major_lexeme(a.amount.get(), Currency::parse(&a.currency).unwrap())
            .unwrap();
        assert_eq!(m.minor(), 4990);
    }

    #[test]
    fn timestamps_format() {
        assert!(rfc3339_now().ends_with('Z'));
    }
}
