//! Adyen `balancePlatform.authentication.created`: the final status of an
//! authentication ("completed successfully, fails, or expires"), stored against its
//! challenge.
//!
//! Matching: the relayed webhook's `id` is described as "the unique identifier of the
//! challenge", the created webhook's `data.id` as "the unique identifier of the
//! authentication" (seed `adyen-authentication-webhooks-v1-latest.yaml`), so they may
//! differ. The final status is matched on `data.id` = relayed `id` first; failing
//! that, on what both payloads share: `paymentInstrumentId` and `purchase` (`date`,
//! `merchantName`, `originalAmount.value`/`currency`, compared as Adyen sent them),
//! among the Adyen challenges of the cardholder linked to that payment instrument
//! (newest first). The stored status records which rule matched (`matched_by`). Its enums have changed before (`challenge.flow`: the spec lists
//! `OOB_TRIGGER_FL`, its examples use `OOB`), so they are read leniently.
//! <https://docs.adyen.com/api-explorer/acs-webhook/1/post/balancePlatform.authentication.created>

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pushauth_core::ids::ProviderRef;
use pushauth_store::{AuditDraft, Challenge, ChallengeFilter};
use serde::Deserialize;

use super::adyen::{Inbound, PROVIDER, Purchase, invalid, refusal, service_error};
use super::common::{self, Meter, lenient_enum};
use crate::state::{AppState, now};

/// The notification's `type`.
pub const CREATED_TYPE: &str = "balancePlatform.authentication.created";

lenient_enum! {
    /// `data.status` of the final status.
    pub enum AuthStatus {
        /// Completed successfully.
        Authenticated = ["authenticated"],
        /// Failed or refused.
        Rejected = ["rejected"],
        /// Error.
        Error = ["error"],
    }
}

lenient_enum! {
    /// `…challenge.flow`: the spec's enum and the values its own examples use.
    pub enum ChallengeFlow {
        /// Out of band (our push).
        Oob = ["OOB_TRIGGER_FL", "OOB"],
        /// SMS one-time password.
        OtpPhone = ["PWD_OTP_PHONE_FL", "OTP_SMS"],
        /// E-mail one-time password.
        OtpEmail = ["PWD_OTP_EMAIL_FL", "OTP_EMAIL"],
    }
}

lenient_enum! {
    /// `…deviceChannel`.
    pub enum DeviceChannel {
        /// In-app.
        App = ["app", "01"],
        /// Browser.
        Browser = ["browser", "02"],
        /// 3DS Requestor Initiated.
        RequestorInitiated = ["ThreeDSRequestorInitiated", "3DSRequestorInitiated", "3RI", "03"],
    }
}

#[derive(Debug, Deserialize)]
struct CreatedBody {
    data: CreatedData,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreatedData {
    id: String,
    #[serde(rename = "paymentInstrumentId", default)]
    payment_instrument_id: Option<String>,
    #[serde(default)]
    purchase: Option<Purchase>,
    #[serde(default)]
    status: Option<AuthStatus>,
    #[serde(default)]
    authentication: Option<AuthInfo>,
}

#[derive(Debug, Deserialize)]
struct AuthInfo {
    #[serde(rename = "transStatus", default)]
    trans_status: Option<String>,
    #[serde(rename = "transStatusReason", default)]
    trans_status_reason: Option<String>,
    #[serde(rename = "deviceChannel", default)]
    device_channel: Option<DeviceChannel>,
    #[serde(default)]
    challenge: Option<ChallengeInfo>,
}

#[derive(Debug, Deserialize)]
struct ChallengeInfo {
    #[serde(default)]
    flow: Option<ChallengeFlow>,
}

/// `POST {created_path}`: the final status of an authentication, stored against its
/// challenge. Acknowledged with 200 whether or not the challenge is ours (a refusal
/// would only make Adyen retry for 30 days).
pub(super) async fn created(
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
    let parsed = common::parse_body::<serde_json::Value>(&raw)
        .and_then(|v| common::parse_body::<CreatedBody>(&raw).map(|typed| (v, typed)));
    let (value, body) = match parsed {
        Ok(p) => p,
        Err(e) => {
            meter.done(&state, "bad_request");
            return invalid(&e);
        }
    };
    let outcome = match store_final(&state, value, body).await {
        Ok(o) => o,
        Err(e) => {
            meter.done(&state, "error");
            return service_error(e.status(), "00_500", "internal", "internal error");
        }
    };
    meter.done(&state, outcome);
    StatusCode::OK.into_response()
}

async fn store_final(
    state: &AppState,
    value: serde_json::Value,
    body: CreatedBody,
) -> Result<&'static str, crate::error::ApiError> {
    let by_id = match ProviderRef::parse(&body.data.id) {
        Ok(reference) => state.store.challenge_find(PROVIDER, &reference).await?,
        Err(_) => None,
    };
    let (challenge, matched_by) = match by_id {
        Some(c) => (c, "id"),
        None => match by_purchase(state, &body.data).await? {
            Some(c) => (c, "purchase"),
            None => {
                tracing::info!("Adyen final status for an authentication we did not run");
                return Ok("ignored");
            }
        },
    };
    let reference = challenge.provider_ref.clone();
    let auth = body.data.authentication.as_ref();
    let status = serde_json::json!({
        "type": CREATED_TYPE,
        "matched_by": matched_by,
        "status": body.data.status,
        "trans_status": auth.and_then(|a| a.trans_status.as_deref()),
        "trans_status_reason": auth.and_then(|a| a.trans_status_reason.as_deref()),
        "flow": auth.and_then(|a| a.challenge.as_ref()).and_then(|c| c.flow.as_ref()),
        "device_channel": auth.and_then(|a| a.device_channel.as_ref()),
        "environment": body.environment,
        "timestamp": body.timestamp,
        "received_at": now(),
        "notification": value.get("data"),
    });
    let audit = AuditDraft::new(
        now(),
        format!("provider:{}", PROVIDER.as_str()),
        "challenge.final_status",
    )
    .challenge(&challenge.id)
    .cardholder(&challenge.cardholder)
    .details(serde_json::json!({ "status": body.data.status }));
    state
        .store
        .challenge_final_status(PROVIDER, &reference, status, audit)
        .await?;
    Ok("final_status")
}

/// The purchase as the relayed webhook gave it, kept in the challenge's context to
/// match a final status whose `data.id` is not the relayed `id`. `null` without one.
pub(super) fn purchase_key(purchase: Option<&Purchase>) -> serde_json::Value {
    purchase.map_or(serde_json::Value::Null, |p| {
        serde_json::json!({
            "date": p.date,
            "merchant_name": p.merchant_name,
            "value": p.original_amount.as_ref().map(|a| a.value),
            "currency": p.original_amount.as_ref().map(|a| a.currency.as_str()),
        })
    })
}

/// The newest Adyen challenge of the payment instrument's cardholder with the same
/// payment instrument and purchase.
async fn by_purchase(
    state: &AppState,
    data: &CreatedData,
) -> Result<Option<Challenge>, crate::error::ApiError> {
    let (Some(pi), key) = (
        data.payment_instrument_id.as_deref(),
        purchase_key(data.purchase.as_ref()),
    ) else {
        return Ok(None);
    };
    if key.is_null() {
        return Ok(None);
    }
    let Some(link) = state.store.card_link_resolve(PROVIDER, pi).await? else {
        return Ok(None);
    };
    let filter = ChallengeFilter {
        status: None,
        cardholder: Some(link.cardholder),
        provider: Some(PROVIDER),
        since: None,
        before: None,
        limit: 200,
    };
    let mut found: Vec<Challenge> = state
        .store
        .challenge_list(filter)
        .await?
        .into_iter()
        .filter(|c| {
            c.context
                .get("payment_instrument_id")
                .and_then(|v| v.as_str())
                == Some(pi)
                && c.context.get("purchase") == Some(&key)
        })
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(found.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_status_enums_are_lenient() {
        let b: CreatedBody = serde_json::from_str(
            r#"{"data":{"id":"x","status":"authenticated","authentication":{"deviceChannel":"3DSRequestorInitiated","challenge":{"flow":"OOB"}}}}"#,
        )
        .unwrap();
        let a = b.data.authentication.unwrap();
        assert_eq!(a.device_channel, Some(DeviceChannel::RequestorInitiated));
        assert_eq!(a.challenge.unwrap().flow, Some(ChallengeFlow::Oob));
        assert_eq!(ChallengeFlow::parse("OOB_TRIGGER_FL"), ChallengeFlow::Oob);
        assert_eq!(
            AuthStatus::parse("expired"),
            AuthStatus::Other("expired".into())
        );
    }
}
