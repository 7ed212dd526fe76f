//! Adyen Balance Platform issuing: out-of-band authentication through Adyen's ACS.
//!
//! Inbound `balancePlatform.authentication.relayed` (Basic auth, optional `HmacSignature`)
//! is answered within Adyen's 2 s with `{"authenticationDecision":{"status":"proceed"}}`
//! (the issuer's go-ahead, not the cardholder's decision) or `refused`. The `sdkInput`
//! header value goes to the app for Adyen's Authentication SDK; its `sdkOutput` comes
//! back with the approval and is forwarded in the finalize call (configurable, default
//! `PATCH {base}/acs/v1/challenges/{id}`, after Adyen's former Ruby client). The final
//! status arrives as `balancePlatform.authentication.created` and is stored.
//! Routing is by URL, never by `type` (older relayed payloads have none).
//! <https://docs.adyen.com/issuing/3d-secure/oob-auth-sdk/authenticate-cardholders>
//! <https://docs.adyen.com/api-explorer/acs-webhook/1/post/balancePlatform.authentication.relayed>

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use pushauth_core::challenge::MAX_PROCESSOR_INPUT;
use pushauth_core::ids::{Provider, ProviderRef};
use pushauth_core::money::{ADYEN, Currency, Money};
use pushauth_core::transaction::{Payee, PurchaseDate, TransactionKind, TxnDetails};
use pushauth_store::Challenge;
use serde::Deserialize;

pub use super::adyen_sdk::{sdk_input_from, sdk_input_of};
use super::auth::{AdyenHmacVerifier, BasicVerifier};
use super::common::{self, BodyError, Meter};
use super::config::{
    AdyenConfig, AdyenFinalizeAuth, check_base_url, check_path, check_window, require_secret,
    resolve_secret,
};
use crate::services::challenges::{ChallengeRequest, Created, LateWrite, create};
use crate::state::{AppState, now};
use crate::upstream::{Delivery, Job, Outcome, Resend, Upstream};

pub(super) const PROVIDER: Provider = Provider::Adyen;

/// The webhook side, built from configuration.
#[derive(Debug)]
pub struct Inbound {
    basic: BasicVerifier,
    hmac: Option<AdyenHmacVerifier>,
    sdk_input_headers: Vec<HeaderName>,
    require_sdk_input: bool,
    pub(super) ack_budget: std::time::Duration,
    window_secs: u64,
    margin_secs: u64,
}

impl Inbound {
    /// Checks the configuration and prepares the checks.
    pub fn new(cfg: &AdyenConfig) -> Result<Self, String> {
        check_path("providers.adyen.relayed_path", &cfg.relayed_path, false)?;
        check_path("providers.adyen.created_path", &cfg.created_path, false)?;
        check_window(
            "providers.adyen",
            cfg.window_secs,
            cfg.result_margin_secs,
            Some(600),
        )?;
        let password = require_secret(
            &cfg.webhook_password,
            &cfg.webhook_password_file,
            "providers.adyen.webhook_password",
        )?;
        let basic = BasicVerifier::new(&cfg.webhook_user, password.expose())
            .map_err(|e| format!("providers.adyen: {e}"))?;
        let hmac = resolve_secret(
            &cfg.hmac_key,
            &cfg.hmac_key_file,
            "providers.adyen.hmac_key",
        )?
        .map(|k| AdyenHmacVerifier::new(k.expose()))
        .transpose()
        .map_err(|e| format!("providers.adyen.hmac_key: {e}"))?;
        let sdk_input_headers = cfg
            .sdk_input_headers
            .iter()
            .map(|h| HeaderName::try_from(h.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "providers.adyen.sdk_input_headers: not a header name".to_owned())?;
        if sdk_input_headers.is_empty() {
            return Err("providers.adyen.sdk_input_headers must name at least one header".into());
        }
        Ok(Inbound {
            basic,
            hmac,
            sdk_input_headers,
            require_sdk_input: cfg.require_sdk_input,
            ack_budget: super::budget::ack_budget("providers.adyen", cfg.ack_budget_ms)?,
            window_secs: cfg.window_secs,
            margin_secs: cfg.result_margin_secs,
        })
    }
}

/// Routes: the relayed and the created webhooks (one route when both paths are equal).
pub fn router(cfg: &AdyenConfig, inbound: Arc<Inbound>) -> Router<AppState> {
    let r = if cfg.relayed_path == cfg.created_path {
        Router::new().route(&cfg.relayed_path, post(either))
    } else {
        Router::new()
            .route(&cfg.relayed_path, post(relayed))
            .route(&cfg.created_path, post(super::adyen_created::created))
    };
    r.layer(Extension(inbound))
}

/// `ServiceError`, Adyen's error body.
pub(super) fn service_error(
    status: StatusCode,
    error_code: &str,
    error_type: &str,
    message: &str,
) -> Response {
    let body = serde_json::json!({
        "status": status.as_u16(),
        "errorCode": error_code,
        "errorType": error_type,
        "message": message,
    });
    (status, Json(body)).into_response()
}

fn decision(status: &str) -> Response {
    (
        StatusCode::OK,
        Json(serde_json::json!({ "authenticationDecision": { "status": status } })),
    )
        .into_response()
}

pub(super) fn invalid(e: &BodyError) -> Response {
    service_error(e.status, "validation", "validation", &e.message)
}

/// Basic, then the HMAC when configured; both over what was received. `Some` is the
/// refusal to answer.
pub(super) fn refusal(
    state: &AppState,
    inbound: &Inbound,
    meter: &Meter,
    headers: &HeaderMap,
    raw: &[u8],
) -> Option<Response> {
    let get = |name: &str| headers.get(name).map_or(&b""[..], |v| v.as_bytes());
    let verdict = inbound
        .basic
        .verify(get(header::AUTHORIZATION.as_str()))
        .and_then(|()| {
            inbound
                .hmac
                .as_ref()
                .map_or(Ok(()), |h| h.verify(raw, get("hmacsignature")))
        });
    verdict.err().map(|e| {
        meter.unauthorized(state, common::auth_reason(&e));
        service_error(
            StatusCode::UNAUTHORIZED,
            "00_401",
            "security",
            "HTTP Status Response - Unauthorized",
        )
    })
}

/// One endpoint for both webhooks: the final status always wraps its fields in `data`,
/// the relayed request never does.
async fn either(
    state: State<AppState>,
    inbound: Extension<Arc<Inbound>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        data: Option<serde::de::IgnoredAny>,
    }
    let is_created = match &body {
        Ok(b) => serde_json::from_slice::<Peek>(b).is_ok_and(|p| {
            p.data.is_some() || p.kind.as_deref() == Some(super::adyen_created::CREATED_TYPE)
        }),
        Err(_) => false,
    };
    if is_created {
        super::adyen_created::created(state, inbound, headers, body).await
    } else {
        relayed(state, inbound, headers, body).await
    }
}

/// `RelayedAuthenticationRequest`; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Relayed {
    id: String,
    #[serde(rename = "paymentInstrumentId")]
    payment_instrument_id: String,
    #[serde(default)]
    purchase: Option<Purchase>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Purchase {
    #[serde(default)]
    pub(super) date: Option<String>,
    #[serde(rename = "merchantName", default)]
    pub(super) merchant_name: Option<String>,
    #[serde(rename = "originalAmount", default)]
    pub(super) original_amount: Option<AdyenAmount>,
}

/// Adyen amounts are integer minor units, Adyen's own (see `core::money::ADYEN`).
#[derive(Debug, Deserialize)]
pub(super) struct AdyenAmount {
    pub(super) currency: String,
    pub(super) value: i64,
}

/// `POST {relayed_path}`: Adyen relays an authentication; say within 2 s whether we
/// run it (`proceed`) or not (`refused`).
async fn relayed(
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
    let work = handle_relayed(&state, &inbound, &headers, &raw, &budget);
    let (outcome, response) = match budget.run(PROVIDER, work).await {
        Some(Ok(done)) => done,
        Some(Err(e)) => (
            "error",
            service_error(e.status(), "00_500", "internal", "internal error"),
        ),
        // Adyen stops waiting after 2 s; say no rather than leave it guessing.
        None => ("over_budget", decision("refused")),
    };
    meter.done(&state, outcome);
    response
}

async fn handle_relayed(
    state: &AppState,
    inbound: &Inbound,
    headers: &HeaderMap,
    raw: &[u8],
    budget: &super::budget::Budget,
) -> Result<(&'static str, Response), crate::error::ApiError> {
    let body: Relayed = match common::parse_body(raw) {
        Ok(b) => b,
        Err(e) => return Ok(("bad_request", invalid(&e))),
    };
    let unprocessable = |msg: String| {
        Ok((
            "bad_request",
            service_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "validation",
                &msg,
            ),
        ))
    };
    let Ok(reference) = ProviderRef::parse(&body.id) else {
        return unprocessable("id: must be 1 to 256 visible ASCII characters".into());
    };
    let purchase = body.purchase.as_ref();
    let amount = match purchase.and_then(|p| p.original_amount.as_ref()) {
        None => None,
        // Adyen's minor units, converted to ISO 4217 ones (CLP, CVE, IDR, ISK differ).
        Some(a) => match Currency::parse(&a.currency)
            .and_then(|c| Money::from_processor_minor(a.value, c, &ADYEN))
        {
            Ok(m) => Some(m),
            Err(e) => return unprocessable(format!("purchase.originalAmount: {e}")),
        },
    };
    let payee = purchase
        .and_then(|p| p.merchant_name.as_deref())
        .and_then(Payee::sanitize);
    let sdk_input = inbound
        .sdk_input_headers
        .iter()
        .find_map(|name| sdk_input_from(headers, name));
    if sdk_input
        .as_ref()
        .is_some_and(|s| s.len() > MAX_PROCESSOR_INPUT)
    {
        return unprocessable("sdkInput: too long".into());
    }
    if let Some(seen) = state.store.challenge_find(PROVIDER, &reference).await? {
        return Ok(("duplicate", duplicate_answer(&seen)));
    }
    if sdk_input.is_none() && inbound.require_sdk_input {
        tracing::warn!("Adyen relayed authentication without sdkInput: refused");
        return Ok(("refused", decision("refused")));
    }
    // `purchase` (merchant name, original amount) is required by Adyen's schema and by
    // dynamic linking: never show the cardholder a prompt without amount and payee.
    let (Some(amount), Some(payee)) = (amount, payee) else {
        tracing::warn!("Adyen relayed authentication without purchase amount or merchant: refused");
        return Ok(("refused", decision("refused")));
    };
    let purchase_date = purchase
        .and_then(|p| p.date.as_deref())
        .and_then(common::parse_rfc3339)
        .and_then(|t| PurchaseDate::from_unix(t.0.div_euclid(1000)));
    let Some(cardholder) =
        common::resolve_cardholder(state, PROVIDER, &[&body.payment_instrument_id]).await?
    else {
        return Ok(("unknown_card", decision("refused")));
    };
    let t = now();
    // Ten minutes from when Adyen queued the event (`timestamp`), or from now.
    let queued = body.timestamp.as_deref().and_then(common::parse_rfc3339);
    let end = queued.map(|q| q.plus(common::secs_ms(inbound.window_secs)));
    let Some(deadlines) = common::deadlines(t, inbound.window_secs, inbound.margin_secs, end)
    else {
        return Ok(("refused", decision("refused")));
    };
    let req = ChallengeRequest {
        cardholder,
        provider: PROVIDER,
        reference,
        kind: TransactionKind::Payment,
        amount: Some(amount),
        payee: Some(payee),
        details: TxnDetails {
            purchase_date,
            ..TxnDetails::default()
        },
        deadline: deadlines.decision,
        upstream_deadline: deadlines.upstream,
        processor_input: sdk_input,
        context: serde_json::json!({
            "payment_instrument_id": body.payment_instrument_id,
            "environment": body.environment,
            // What `authentication.created` is matched on when its id is not ours.
            "purchase": super::adyen_created::purchase_key(purchase),
        }),
        ack_by: Some(budget.commit_by()),
        late_write: LateWrite::Cancel,
        actor: format!("provider:{}", PROVIDER.as_str()),
    };
    Ok(match create(state, req).await? {
        Created::New { .. } => ("created", decision("proceed")),
        Created::Duplicate(seen) => ("duplicate", duplicate_answer(&seen)),
        Created::CardholderBlocked | Created::NoActiveDevice | Created::TooManyPending => {
            ("refused", decision("refused"))
        }
        Created::Abandoned => ("over_budget", decision("refused")),
    })
}

/// The answer to a repeated `relayed` (Adyen retries one whose answer it did not get):
/// `proceed` as the first time, unless the challenge was cancelled (written after the
/// budget, whose answer was `refused`, or its cardholder blocked since): nobody will
/// answer it, so Adyen should not wait for the out-of-band result. Nothing is written.
fn duplicate_answer(seen: &pushauth_store::Challenge) -> Response {
    if seen.status == pushauth_store::ChallengeStatus::Cancelled {
        decision("refused")
    } else {
        decision("proceed")
    }
}

/// The result leg: the finalize call with the device's `sdkOutput`.
#[derive(Debug)]
pub struct AdyenUpstream {
    http: reqwest::Client,
    base: url::Url,
    path: String,
    method: reqwest::Method,
    auth_header: reqwest::header::HeaderName,
    auth_value: reqwest::header::HeaderValue,
    sdk_output_header: reqwest::header::HeaderName,
    finalize_on_deny: bool,
}

impl AdyenUpstream {
    /// Builds the connector from configuration.
    pub fn new(cfg: &AdyenConfig, http: reqwest::Client) -> Result<Self, String> {
        let base = check_base_url("providers.adyen.base_url", &cfg.base_url, cfg.allow_http)?;
        if !cfg.finalize_path.starts_with('/') || !cfg.finalize_path.contains("{id}") {
            return Err("providers.adyen.finalize_path must start with / and contain {id}".into());
        }
        let method =
            reqwest::Method::from_bytes(cfg.finalize_method.to_ascii_uppercase().as_bytes())
                .map_err(|_| "providers.adyen.finalize_method is not an HTTP method".to_owned())?;
        let name = |v: &str, key: &str| {
            reqwest::header::HeaderName::try_from(v)
                .map_err(|_| format!("providers.adyen.{key} is not a header name"))
        };
        let (auth_header, auth_value) = match cfg.finalize_auth {
            AdyenFinalizeAuth::ApiKey => {
                let key =
                    require_secret(&cfg.api_key, &cfg.api_key_file, "providers.adyen.api_key")?;
                (
                    name(&cfg.api_key_header, "api_key_header")?,
                    common::sensitive(key.expose())?,
                )
            }
            AdyenFinalizeAuth::Basic => {
                let user = cfg
                    .finalize_user
                    .as_deref()
                    .filter(|u| !u.is_empty() && !u.contains(':'))
                    .ok_or("providers.adyen.finalize_user is required (no colon) for finalize_auth = \"basic\"")?;
                let password = require_secret(
                    &cfg.finalize_password,
                    &cfg.finalize_password_file,
                    "providers.adyen.finalize_password",
                )?;
                (
                    reqwest::header::AUTHORIZATION,
                    common::sensitive(&common::basic_authorization(user, password.expose()))?,
                )
            }
        };
        Ok(AdyenUpstream {
            http,
            base,
            path: cfg.finalize_path.clone(),
            method,
            auth_header,
            auth_value,
            sdk_output_header: name(&cfg.sdk_output_header, "sdk_output_header")?,
            finalize_on_deny: cfg.finalize_on_deny,
        })
    }
}

#[async_trait]
impl Upstream for AdyenUpstream {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    /// An approval is finalized; a deny only when configured (otherwise the ACS times
    /// the authentication out and reports `rejected`); expiry, cancellation and a
    /// technical failure never.
    fn wants(&self, _challenge: &Challenge, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Approved => true,
            Outcome::Denied { .. } => self.finalize_on_deny,
            Outcome::Expired | Outcome::Cancelled | Outcome::Failed => false,
        }
    }

    /// A challenge that carried an `sdkInput` is finalized with the Authentication
    /// SDK's `sdkOutput`: an approval without it is refused (it could not be finalized).
    fn approval_refusal(
        &self,
        challenge: &Challenge,
        processor_output: Option<&str>,
    ) -> Option<&'static str> {
        if challenge.processor_input.is_some() && processor_output.is_none_or(str::is_empty) {
            return Some("processor_output_required");
        }
        // The output goes into a quoted header parameter (`authparm1="…"`): nothing that
        // could end the quotes or the header.
        processor_output
            .is_some_and(|o| {
                !o.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            })
            .then_some("processor_output_invalid")
    }

    /// Every finalize call carries `Idempotency-Key: {challenge}-{approve|deny}`: a
    /// repeat returns the first call's answer instead of finalizing twice.
    fn resend(&self) -> Resend {
        Resend::Deduplicated
    }

    async fn deliver(&self, job: Job<'_>) -> Delivery {
        let c = job.challenge;
        let url = match common::join_url(&self.base, &self.path, "{id}", c.provider_ref.as_str()) {
            Ok(u) => u,
            Err(e) => {
                return Delivery::Fatal {
                    http_status: None,
                    error: e,
                };
            }
        };
        let completed = job.outcome == Outcome::Approved;
        let mut req = self
            .http
            .request(self.method.clone(), url)
            .header(self.auth_header.clone(), self.auth_value.clone())
            .header(
                "Idempotency-Key",
                format!("{}-{}", c.id, if completed { "approve" } else { "deny" }),
            )
            .json(&serde_json::json!({ "completed": completed }));
        if let Some(output) = job.decision.and_then(|d| d.processor_output.as_deref()) {
            let Ok(value) =
                common::sensitive(&format!("SCA realm=\"Challenge\" authparm1=\"{output}\""))
            else {
                return Delivery::Fatal {
                    http_status: None,
                    error: "sdkOutput is not a valid header value".into(),
                };
            };
            req = req.header(self.sdk_output_header.clone(), value);
        }
        match req.send().await {
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
