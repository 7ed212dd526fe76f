//! Request bodies: every JSON body the server accepts, on our APIs and on the
//! processors' webhooks, is parsed by [`strict`] (see `pushauth_core::json`): an
//! object where a struct is expected at every depth, nothing after the value, UTF-8
//! without lone surrogates even in ignored fields.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_path_to_error::{Error as PathError, Track};

use crate::error::{ApiError, parse_json};

/// Parses `bytes` strictly, naming the path of the failing field.
pub fn strict<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, PathError<serde_json::Error>> {
    let whole = |e| PathError::new(Track::new().path(), e);
    let text = pushauth_core::json::check_text(bytes).map_err(whole)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = Track::new();
    let value = T::deserialize(serde_path_to_error::Deserializer::new(
        pushauth_core::json::Strict(&mut de),
        &mut track,
    ))
    .map_err(|e| PathError::new(track.path(), e))?;
    de.end().map_err(whole)?;
    Ok(value)
}

/// [`strict`] for text, without the path (for parse sites that keep only the category).
pub fn strict_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, serde_json::Error> {
    strict(text.as_bytes()).map_err(PathError::into_inner)
}

/// A JSON request body, parsed with [`strict`]; its rejections are problem+json
/// (415 without a JSON content type, 413 over the body limit, 400 for a body that
/// cannot be read or parsed, naming the field).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e.status()))?;
        parse_json(&body).map(AppJson)
    }
}

/// An optional JSON request body: no body gives `T::default()`; a body must be JSON
/// (415 otherwise) and is parsed like [`AppJson`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e.status()))?;
        if body.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json (or no body)",
            ));
        }
        parse_json(&body).map(OptionalJson)
    }
}

/// `application/json`, or `application/<anything>+json`, with any parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The answer to a body that could not be read: 413 over the limit, 400 otherwise
/// (a malformed chunked encoding, a connection dropped mid-body).
pub fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body too large",
        )
    } else {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    }
}

/// [`body_error`] for an error of `axum::body::to_bytes`: 413 only when it is the
/// length limit.
pub fn read_error(e: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return body_error(StatusCode::PAYLOAD_TOO_LARGE);
        }
        source = err.source();
    }
    body_error(StatusCode::BAD_REQUEST)
}
