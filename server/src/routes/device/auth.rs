//! Device request authentication (protocol §6): a request proof signed by the device
//! key, bound to method, path, body hash and a one-time `jti`.

use axum::extract::{FromRequest, OriginalUri, Request};
use bytes::Bytes;
use pushauth_core::request::{self, HttpRequest};
use pushauth_store::{Device, DeviceStatus};

use crate::error::ApiError;
use crate::metrics::AuthFailure;
use crate::services::decisions::device_key;
use crate::state::{AppState, now};

/// An authenticated device call: the device and the raw body the proof covers.
#[derive(Debug)]
pub struct DeviceCall {
    /// The calling device (active or locked; revoked devices are refused).
    pub device: Device,
    /// The request body.
    pub body: Bytes,
}

impl DeviceCall {
    /// Audit actor for this device.
    pub fn actor(&self) -> String {
        format!("device:{}", self.device.id)
    }

    /// Refuses a device that is not active with 423 `device_locked`: a locked device
    /// receives no challenges (list, read or stream). Writes check the status again
    /// in their own transaction.
    pub fn require_active(&self) -> Result<&Device, ApiError> {
        if self.device.status != DeviceStatus::Active {
            return Err(ApiError::locked("the device is locked"));
        }
        Ok(&self.device)
    }
}

fn refuse(state: &AppState, reason: &'static str, detail: impl Into<String>) -> ApiError {
    state
        .metrics
        .auth_failures
        .get_or_create(&AuthFailure {
            surface: "device",
            reason,
        })
        .inc();
    ApiError::unauthorized(reason, detail)
}

impl FromRequest<AppState> for DeviceCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let body = axum::body::to_bytes(body, state.config.server.body_limit_bytes)
            .await
            .map_err(|e| crate::json::read_error(&e))?;
        let token = super::proof_header(&parts.headers).inspect_err(|e| {
            state
                .metrics
                .auth_failures
                .get_or_create(&AuthFailure {
                    surface: "device",
                    reason: e.reason(),
                })
                .inc();
        })?;
        let id = request::peek_device(token)
            .map_err(|e| refuse(state, e.code(), format!("request proof refused: {e}")))?;
        let device = match state.store.device_get(&id).await? {
            Some(d) if d.status != DeviceStatus::Revoked => d,
            _ => return Err(refuse(state, "unknown_device", "unknown or revoked device")),
        };
        let key = device_key(&device)?;
        let t = now();
        let window = state.config.security.request_window_secs;
        let verified = request::verify(
            token,
            &device.id,
            &key,
            &request::Expectations {
                audience: &state.issuer,
                request: HttpRequest {
                    method: parts.method.as_str(),
                    path,
                    body: &body,
                },
                now: t.as_unix_time(),
                window_secs: window,
            },
        )
        .map_err(|e| refuse(state, e.code(), format!("request proof refused: {e}")))?;
        // The jti must be remembered at least as long as the proof could be accepted.
        let keep_until = pushauth_store::Millis::from_unix_time(verified.iat.plus(window + 1));
        if !state
            .store
            .request_nonce_use(&device.id, &verified.jti, keep_until)
            .await?
        {
            return Err(refuse(
                state,
                "replayed_request",
                "request proof already used",
            ));
        }
        Ok(DeviceCall { device, body })
    }
}
