//! Paysafe embedded wallets: Strong Customer Authentication in OUTSOURCED mode.
//!
//! Inbound `POST {prefix}/sca/events`, signed with `Signature` = base64 HMAC-SHA256 of
//! the raw body (key base64-decoded), delivered at least once: deduplicated on
//! `authenticationProcess.eventId`. Only `OUTSOURCED` processes are acted on. The OTP
//! (`value`) is kept in the challenge's secret context, never logged, and reaches the
//! cardholder only inside the encrypted push. An approval is submitted as
//! `POST {base}/sca/events/{eventId}/attempts` (Bearer + `Signature`). Each attempt
//! burns one of Paysafe's `allowableAttempts` and the latest attempt decides, and the
//! published business API offers no way to look an event's attempts up. So a failure
//! before sending (connection refused) is retried freely; a 5xx, 429, timeout or reset
//! is retried with the same body only while the configured attempt budget
//! (`allowable_attempts` minus attempts that may have counted) and the window allow; a
//! 4xx, or a `FAILED`/`REJECTED` status, is final.
//! <https://docs.paysafe.com/api/embedded-wallets/webhooks/post-sca-authentication-events>
//! <https://developer.paysafe.com/en/api-docs/embedded-wallets/request-signing/>

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use pushauth_core::ids::{Provider, ProviderRef};
use pushauth_core::transaction::{Operation, TransactionKind, TxnDetails};
use serde::Deserialize;

use super::auth::PaysafeVerifier;
use super::common::{self, BodyError, Meter, SECRET_CONTEXT_KEY, lenient_enum};
use super::config::{PaysafeConfig, Secret, check_path, require_secret};
use crate::services::challenges::{ChallengeRequest, Created, LateWrite, create};
use crate::state::{AppState, now};

const PROVIDER: Provider = Provider::Paysafe;

/// The webhook side, built from configuration.
#[derive(Debug)]
pub struct Inbound {
    verifier: PaysafeVerifier,
    ack_budget: std::time::Duration,
    default_window_secs: u64,
    max_window_secs: u64,
    margin_secs: u64,
}

impl Inbound {
    /// Checks the configuration and prepares the signature check.
    pub fn new(cfg: &PaysafeConfig) -> Result<Self, String> {
        check_path("providers.paysafe.path_prefix", &cfg.path_prefix, true)?;
        if cfg.default_window_secs == 0 || cfg.max_window_secs < cfg.default_window_secs {
            return Err(
                "providers.paysafe: default_window_secs must be positive and ≤ max_window_secs"
                    .into(),
            );
        }
        if cfg.result_margin_secs >= cfg.default_window_secs {
            return Err(
                "providers.paysafe.result_margin_secs must be smaller than default_window_secs"
                    .into(),
            );
        }
        let key = require_secret(
            &cfg.webhook_key,
            &cfg.webhook_key_file,
            "providers.paysafe.webhook_key",
        )?;
        let verifier = PaysafeVerifier::new(key.expose())
            .map_err(|e| format!("providers.paysafe.webhook_key: {e}"))?;
        Ok(Inbound {
            verifier,
            ack_budget: super::budget::ack_budget("providers.paysafe", cfg.ack_budget_ms)?,
            default_window_secs: cfg.default_window_secs,
            max_window_secs: cfg.max_window_secs,
            margin_secs: cfg.result_margin_secs,
        })
    }
}

/// Routes: `POST {prefix}/sca/events` and `POST {prefix}/prepaid/card/threedsecure/events`.
pub fn router(cfg: &PaysafeConfig, inbound: Arc<Inbound>) -> Router<AppState> {
    Router::new()
        .route(&format!("{}/sca/events", cfg.path_prefix), post(sca_event))
        .route(
            &format!("{}/prepaid/card/threedsecure/events", cfg.path_prefix),
            post(threeds_event),
        )
        .layer(Extension(inbound))
}

/// Paysafe's error body.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn invalid(e: &BodyError) -> Response {
    error(e.status, "INVALID_REQUEST", &e.message)
}

lenient_enum! {
    /// `authenticationProcess.authenticationMode`.
    enum Mode {
        /// The partner (we) runs the SCA.
        Outsourced = ["OUTSOURCED"],
        /// Paysafe runs it.
        Embedded = ["EMBEDDED"],
        /// Paysafe runs it except for talking to the user.
        Hybrid = ["HYBRID"],
    }
}

/// The SCA authentication event; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct ScaEvent {
    #[serde(default)]
    customer: Option<Customer>,
    #[serde(rename = "authenticationProcess")]
    process: Process,
}

#[derive(Debug, Deserialize)]
struct Customer {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Process {
    #[serde(rename = "eventId")]
    event_id: String,
    #[serde(rename = "walletOperationId")]
    wallet_operation_id: String,
    #[serde(rename = "authenticationMode")]
    mode: Mode,
    #[serde(default)]
    flow: Option<Flow>,
    #[serde(default)]
    verification: Option<Verification>,
    /// The OTP: `Secret`, so that `Debug` never shows it.
    #[serde(default)]
    value: Option<Secret>,
    #[serde(rename = "expirationTime", default)]
    expiration_time: Option<String>,
}

/// `authenticationProcess.flow`: what the SCA protects (`TRANSFER`, `WITHDRAWAL`,
/// `PREPAID_CARD`, `AUTHENTICATION`) and its ids (`PAYMENT_ID`, `TRANSACTION_ID`,
/// `SLIP_ID`).
#[derive(Debug, Deserialize, serde::Serialize)]
struct Flow {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    properties: Vec<FlowProperty>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct FlowProperty {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

impl Flow {
    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.key.as_deref() == Some(key))
            .and_then(|p| p.value.as_deref())
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Verification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
}

/// Checks the `Signature` header over the raw body. `Some` is the refusal to answer.
fn refusal(
    state: &AppState,
    inbound: &Inbound,
    meter: &Meter,
    headers: &HeaderMap,
    raw: &[u8],
) -> Option<Response> {
    let signature = headers.get("signature").map_or(&b""[..], |v| v.as_bytes());
    inbound.verifier.verify(raw, signature).err().map(|e| {
        meter.unauthorized(state, common::auth_reason(&e));
        error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SIGNATURE",
            "the Signature header does not match the body",
        )
    })
}

/// `POST {prefix}/sca/events`: Paysafe started an SCA process for a wallet operation.
async fn sca_event(
    State(state): State<AppState>,
    Extension(inbound): Extension<Arc<Inbound>>,
    headers: HeaderMap,
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
    if let Some(response) = refusal(&state, &inbound, &meter, &headers, &raw) {
        return response;
    }
    let budget = super::budget::Budget::start(inbound.ack_budget);
    let (outcome, response) = match budget
        .run(PROVIDER, handle(&state, &inbound, &raw, &budget))
        .await
    {
        Some(Ok(done)) => done,
        Some(Err(e)) => (
            "error",
            error(e.status(), "INTERNAL_ERROR", "internal error"),
        ),
        None => ("over_budget", over_budget()),
    };
    meter.done(&state, outcome);
    response
}

/// The answer past the acknowledgement budget: 503, which Paysafe's at-least-once
/// delivery retries. Nothing was written, or a write still under way is kept
/// (`LateWrite::Keep`) and the redelivery is answered as its duplicate.
fn over_budget() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "the event could not be taken in time; please redeliver",
    )
}

async fn handle(
    state: &AppState,
    inbound: &Inbound,
    raw: &[u8],
    budget: &super::budget::Budget,
) -> Result<(&'static str, Response), crate::error::ApiError> {
    let event: ScaEvent = match common::parse_body(raw) {
        Ok(e) => e,
        Err(e) => return Ok(("bad_request", invalid(&e))),
    };
    let p = event.process;
    if p.mode != Mode::Outsourced {
        // Paysafe talks to the user itself; nothing for us to do.
        return Ok(("ignored", StatusCode::OK.into_response()));
    }
    let bad = |m: &str| Ok(("bad_request", invalid(&BodyError::invalid(m))));
    let Ok(reference) = ProviderRef::parse(&p.event_id) else {
        return bad("authenticationProcess.eventId: must be 1 to 256 visible ASCII characters");
    };
    // What is being approved, signed into the transaction (dynamic linking for a
    // non-card operation): the flow type and the payment id.
    let Some(flow_type) = p.flow.as_ref().and_then(|f| f.kind.as_deref()) else {
        return bad("authenticationProcess.flow.type: missing");
    };
    let Ok(operation) = Operation::parse(flow_type) else {
        return bad("authenticationProcess.flow.type: not a flow type");
    };
    let operation_ref = p
        .flow
        .as_ref()
        .and_then(|f| f.property("PAYMENT_ID"))
        .and_then(|v| ProviderRef::parse(v).ok());
    let end = match p.expiration_time.as_deref().map(common::parse_rfc3339) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            return bad("authenticationProcess.expirationTime: not an RFC 3339 date-time");
        }
    };
    let customer = event
        .customer
        .as_ref()
        .and_then(|c| c.id.as_deref())
        .unwrap_or_default();
    if state
        .store
        .challenge_find(PROVIDER, &reference)
        .await?
        .is_some()
    {
        return Ok(("duplicate", StatusCode::OK.into_response()));
    }
    let Some(cardholder) = common::resolve_cardholder(state, PROVIDER, &[customer]).await? else {
        return Ok((
            "unknown_card",
            error(
                StatusCode::NOT_FOUND,
                "CUSTOMER_NOT_FOUND",
                "unknown customer",
            ),
        ));
    };
    let window = if end.is_some() {
        inbound.max_window_secs
    } else {
        inbound.default_window_secs
    };
    let Some(deadlines) = common::deadlines(now(), window, inbound.margin_secs, end) else {
        // Already expired: acknowledged so that Paysafe stops redelivering it.
        return Ok(("ignored", StatusCode::OK.into_response()));
    };
    let mut context = serde_json::json!({
        "event_id": p.event_id,
        "wallet_operation_id": p.wallet_operation_id,
        "customer_id": customer,
        "verification": p.verification,
        "flow": p.flow,
    });
    if let (Some(otp), serde_json::Value::Object(map)) = (&p.value, &mut context) {
        map.insert(
            SECRET_CONTEXT_KEY.to_owned(),
            serde_json::json!({ "otp": otp.expose() }),
        );
    }
    let req = ChallengeRequest {
        cardholder,
        provider: PROVIDER,
        reference,
        kind: TransactionKind::WalletOperation,
        // The SCA event carries neither amount nor payee; the flow says what it is.
        details: TxnDetails {
            operation: Some(operation),
            operation_ref,
            ..TxnDetails::default()
        },
        amount: None,
        payee: None,
        deadline: deadlines.decision,
        upstream_deadline: deadlines.upstream,
        processor_input: None,
        context,
        ack_by: Some(budget.commit_by()),
        late_write: LateWrite::Keep,
        actor: format!("provider:{}", PROVIDER.as_str()),
    };
    let refused = |code: &str, msg: &str| error(StatusCode::UNPROCESSABLE_ENTITY, code, msg);
    Ok(match create(state, req).await? {
        Created::New { .. } => ("created", StatusCode::OK.into_response()),
        Created::Duplicate(_) => ("duplicate", StatusCode::OK.into_response()),
        Created::CardholderBlocked => (
            "refused",
            refused("CUSTOMER_BLOCKED", "the customer is blocked"),
        ),
        Created::NoActiveDevice => (
            "refused",
            refused("NO_ACTIVE_DEVICE", "the customer has no active device"),
        ),
        Created::TooManyPending => (
            "refused",
            refused("TOO_MANY_PENDING", "too many authentications pending"),
        ),
        Created::Abandoned => ("over_budget", over_budget()),
    })
}

/// The prepaid-card 3DS event: authenticated and acknowledged, but no challenge is
/// created, because Paysafe documents no way to answer it (see docs/providers/paysafe.md).
#[derive(Debug, Deserialize)]
struct ThreeDsEvent {
    #[serde(rename = "walletOperationId", default)]
    wallet_operation_id: Option<String>,
}

/// `POST {prefix}/prepaid/card/threedsecure/events`.
async fn threeds_event(
    State(state): State<AppState>,
    Extension(inbound): Extension<Arc<Inbound>>,
    headers: HeaderMap,
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
    if let Some(response) = refusal(&state, &inbound, &meter, &headers, &raw) {
        return response;
    }
    match common::parse_body::<ThreeDsEvent>(&raw) {
        Ok(event) => {
            tracing::info!(
                wallet_operation = event.wallet_operation_id.as_deref().unwrap_or(""),
                "Paysafe 3DS event acknowledged, not acted on"
            );
            meter.done(&state, "ignored");
            StatusCode::OK.into_response()
        }
        Err(e) => {
            meter.done(&state, "bad_request");
            invalid(&e)
        }
    }
}

pub use super::paysafe_upstream::PaysafeUpstream;
