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

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use pushauth_core::ids::{Provider, ProviderRef};
use pushauth_core::transaction::{Operation, TransactionKind, TxnDetails};
use pushauth_store::Challenge;
use serde::Deserialize;

use super::auth::PaysafeVerifier;
use super::common::{self, BodyError, Meter, SECRET_CONTEXT_KEY, lenient_enum};
use super::config::{
    PaysafeConfig, Secret, check_base_url, check_path, require_secret, resolve_secret,
};
use super::paysafe_attempt::AttemptShape;
use crate::services::challenges::{ChallengeRequest, Created, create};
use crate::state::{AppState, now};
use crate::upstream::{Delivery, Job, Outcome, Resend, Upstream};

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

lenient_enum! {
    /// Status of a submitted attempt.
    enum AttemptStatus {
        /// The attempt verified the user.
        Verified = ["VERIFIED"],
        /// The user rejected.
        Rejected = ["REJECTED"],
        /// Failed (see `statusReason`).
        Failed = ["FAILED"],
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
/// delivery retries; nothing was written.
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

/// The result leg: one attempt per approval.
#[derive(Debug)]
pub struct PaysafeUpstream {
    http: reqwest::Client,
    base: url::Url,
    path: String,
    attempt: AttemptShape,
    authorization: reqwest::header::HeaderValue,
    signer: PaysafeVerifier,
    allowable_attempts: i32,
}

impl PaysafeUpstream {
    /// Builds the connector from configuration.
    pub fn new(cfg: &PaysafeConfig, http: reqwest::Client) -> Result<Self, String> {
        let base = check_base_url("providers.paysafe.base_url", &cfg.base_url, cfg.allow_http)?;
        if !cfg.attempts_path.starts_with('/') || !cfg.attempts_path.contains("{eventId}") {
            return Err(
                "providers.paysafe.attempts_path must start with / and contain {eventId}".into(),
            );
        }
        let token = require_secret(
            &cfg.api_token,
            &cfg.api_token_file,
            "providers.paysafe.api_token",
        )?;
        let signing = match resolve_secret(
            &cfg.api_signing_key,
            &cfg.api_signing_key_file,
            "providers.paysafe.api_signing_key",
        )? {
            Some(k) => k,
            None => require_secret(
                &cfg.webhook_key,
                &cfg.webhook_key_file,
                "providers.paysafe.webhook_key",
            )?,
        };
        let signer = PaysafeVerifier::new(signing.expose())
            .map_err(|e| format!("providers.paysafe.api_signing_key: {e}"))?;
        Ok(PaysafeUpstream {
            http,
            base,
            path: cfg.attempts_path.clone(),
            attempt: AttemptShape::new(cfg)?,
            authorization: common::sensitive(&format!("Bearer {}", token.expose()))?,
            signer,
            allowable_attempts: match i32::try_from(cfg.allowable_attempts) {
                Ok(n) if n >= 1 => n,
                _ => return Err("providers.paysafe.allowable_attempts must be 1 or more".into()),
            },
        })
    }
}

#[derive(Debug, Deserialize)]
struct AttemptAnswer {
    #[serde(default)]
    status: Option<AttemptStatus>,
    #[serde(rename = "statusReason", default)]
    status_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[async_trait]
impl Upstream for PaysafeUpstream {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    /// Only an approval is submitted. A deny is not: Paysafe documents no way to
    /// say "the user refused" in OUTSOURCED mode, and the wallet operation stays
    /// blocked until the SCA process expires, which is what a deny means.
    fn wants(&self, _challenge: &Challenge, outcome: Outcome) -> bool {
        outcome == Outcome::Approved
    }

    fn resend(&self) -> Resend {
        Resend::Budgeted
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let c = job.challenge;
        let Some(body) = self.attempt.body(c) else {
            return Delivery::Fatal {
                http_status: None,
                error: "challenge has no walletOperationId or verification method".into(),
            };
        };
        let url =
            match common::join_url(&self.base, &self.path, "{eventId}", c.provider_ref.as_str()) {
                Ok(u) => u,
                Err(e) => {
                    return Delivery::Fatal {
                        http_status: None,
                        error: e,
                    };
                }
            };
        let Ok(bytes) = serde_json::to_vec(&body) else {
            return Delivery::Fatal {
                http_status: None,
                error: "cannot serialise the attempt".into(),
            };
        };
        // Every attempt that may have reached Paysafe used one of its attempts.
        let budget = self.allowable_attempts;
        if job.sent_before >= budget {
            return Delivery::Unknown {
                http_status: None,
                error: format!(
                    "Paysafe attempt budget used up ({} of {budget}) by calls whose answers were lost or errors; Paysafe offers no lookup of an event's attempts",
                    job.sent_before
                ),
            };
        }
        let signature = self.signer.sign(&bytes);
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Signature", signature)
            .body(bytes)
            .send()
            .await;
        classify_attempt(sent, job.sent_before + 1, budget).await
    }
}

/// What Paysafe's answer to an attempt means. `used`: attempts that may have counted,
/// this one included.
async fn classify_attempt(
    sent: Result<reqwest::Response, reqwest::Error>,
    used: i32,
    budget: i32,
) -> Delivery {
    let repeat = |http_status: Option<u16>, what: String, after| {
        if used < budget {
            Delivery::Retry {
                http_status,
                error: format!(
                    "{what}; resent within the attempt budget ({used} of {budget} used)"
                ),
                after,
            }
        } else {
            Delivery::Unknown {
                http_status,
                error: format!("{what}; attempt budget used up ({used} of {budget})"),
            }
        }
    };
    let resp = match sent {
        Ok(r) => r,
        // Nothing reached Paysafe: safe to try again, costs no attempt.
        Err(e) if e.is_connect() => {
            return Delivery::Retry {
                http_status: None,
                error: super::transport::failure(&e),
                after: None,
            };
        }
        // Timeout or reset after sending: the attempt may have counted (and verified).
        Err(e) => return repeat(None, crate::workers::transport_error(&e), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let text = super::transport::answer_body(resp).await;
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<ErrorAnswer>(&text)
            .ok()
            .and_then(|e| e.error.code)
            .map(|c| match c {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        let summary = common::answer_summary(status, code.as_deref());
        // 5xx and 429: transient. Any other answer is Paysafe's decision.
        if status >= 500 || status == 429 {
            return repeat(Some(status), summary, retry_after);
        }
        return Delivery::Fatal {
            http_status: Some(status),
            error: format!("{summary}; not resent"),
        };
    }
    match serde_json::from_slice::<AttemptAnswer>(&text) {
        Ok(AttemptAnswer {
            status: Some(s @ (AttemptStatus::Failed | AttemptStatus::Rejected)),
            status_reason,
        }) => {
            let reason = status_reason.unwrap_or_default();
            Delivery::Fatal {
                http_status: Some(status),
                error: common::answer_summary(
                    status,
                    Some(&format!("attempt {} {reason}", s.as_str())),
                ),
            }
        }
        _ => Delivery::Delivered {
            http_status: status,
        },
    }
}
