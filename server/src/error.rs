//! API errors as RFC 9457 problem details. Every refusal has a stable `reason` code
//! (documented in docs/api.md) that clients and metrics can rely on; internal errors
//! are logged with their cause and answered with a generic 500 that leaks nothing.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushauth_store::StoreError;
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: &'static str,
    detail: String,
    extra: Option<serde_json::Value>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Builds an error with a status, a stable reason code and a human detail.
    pub fn new(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            detail: detail.into(),
            extra: None,
        }
    }
    /// 400: malformed input; `detail` names the field.
    pub fn bad_request(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, detail)
    }
    /// 401: missing or invalid credentials.
    pub fn unauthorized(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason, detail)
    }
    /// 403 `cardholder_blocked`: the cardholder is blocked (decisions, enrollment,
    /// migration grants, activation codes).
    pub fn cardholder_blocked() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "cardholder_blocked",
            "the cardholder is blocked",
        )
    }
    /// 404: unknown (or not yours: the same answer, on purpose).
    pub fn not_found(what: &'static str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    /// 409: conflicts with the current state.
    pub fn conflict(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, reason, detail)
    }
    /// 410: the deadline passed.
    pub fn gone(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, reason, detail)
    }
    /// 422: well-formed but refused (a proof that does not verify).
    pub fn unprocessable(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, reason, detail)
    }
    /// 423: the device is locked.
    pub fn locked(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::LOCKED, "device_locked", detail)
    }
    /// 429: too many pending requests.
    pub fn too_many(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, reason, detail)
    }
    /// 500: logged here with its cause; the client sees nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
    /// 503: a dependency is unavailable.
    pub fn unavailable(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, reason, detail)
    }
    /// Adds members to the problem object (e.g. the challenge's current `status`).
    pub fn with(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The reason code.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    reason: &'a str,
}

/// Renders a problem+json response.
pub fn problem_response(
    status: StatusCode,
    reason: &str,
    detail: &str,
    extra: Option<&serde_json::Value>,
) -> Response {
    let problem = Problem {
        kind: format!("urn:pushauth:problem:{reason}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        reason,
    };
    let mut value = serde_json::to_value(&problem).unwrap_or_default();
    if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(map)) =
        (extra, &mut value)
    {
        for (k, v) in extra {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut response = (status, Json(value)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.status, self.reason, &self.detail, self.extra.as_ref())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::conflict("conflict", what),
            StoreError::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, "not_found", what),
            other => ApiError::internal(other),
        }
    }
}

pub use crate::json::AppJson;

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Parses a JSON body already read as bytes (for handlers that also need the raw
/// bytes, e.g. to check a signature over them), with the same errors as [`AppJson`].
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    crate::json::strict(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = if inner.is_syntax() || inner.is_eof() {
            "malformed_json"
        } else {
            "invalid_field"
        };
        if path.is_empty() || path == "." {
            ApiError::bad_request(reason, inner.to_string())
        } else {
            ApiError::bad_request(reason, format!("{path}: {inner}"))
        }
    })
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.reason,
            self.detail
        )
    }
}

/// Middleware for our own APIs (device, admin, ops): any error answer that is not
/// problem+json already (axum's own rejections of a bad query string, a path that
/// is not valid percent-encoding, a body over the limit, a timeout) is replaced by a
/// problem+json of the same status. The original text is dropped, since it can echo
/// the input.
pub async fn problem_only(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return response;
    }
    let (reason, detail) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request could not be read"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this endpoint")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "try again later"),
        s if s.is_client_error() => ("bad_request", "the request was refused"),
        _ => ("internal", "internal error"),
    };
    let mut answer = problem_response(status, reason, detail, None);
    // keep headers such as Allow and Retry-After
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    answer
}
