//! Treezor: `object_payload_signature` inside the body.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::AuthError::{self, MalformedBody};
use super::hmac::MacKey;
use super::php_json::php_json_encode_raw;

/// Treezor's `object_payload_signature`: `base64(HMAC-SHA256(secret as UTF-8,
/// json_encode(object_payload)))`, PHP's `json_encode` with default flags. Only
/// `object_payload` is signed; the rest of the envelope is not authenticated.
/// <https://docs.treezor.com/guide/webhooks/integrity-checks.html>
pub struct TreezorVerifier {
    key: MacKey,
}

impl fmt::Debug for TreezorVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreezorVerifier").finish_non_exhaustive()
    }
}

/// A Treezor webhook whose `object_payload` passed [`TreezorVerifier::verify`].
#[derive(Debug, Clone)]
pub struct TreezorEnvelope {
    /// Event name, e.g. `card3DSv2Authentication.create` (not covered by the signature).
    pub webhook: String,
    /// Treezor's id of this delivery, the dedupe key (not covered by the signature).
    pub webhook_id: String,
    /// Emission time in Unix epoch 10⁻⁴ s units (not covered by the signature).
    pub webhook_created_at: Option<u64>,
    /// Treezor object name (not covered by the signature).
    pub object: Option<String>,
    /// Treezor object id (not covered by the signature).
    pub object_id: Option<String>,
    /// `object_payload` exactly as received: the signed part.
    pub object_payload: Box<RawValue>,
}

/// The body as sent. Duplicate fields are refused by the derive, so there is no doubt about
/// which `object_payload` was checked; unknown fields are ignored.
#[derive(Deserialize)]
struct Envelope<'a> {
    webhook: String,
    webhook_id: String,
    webhook_created_at: Option<u64>,
    object: Option<String>,
    object_id: Option<String>,
    #[serde(borrow)]
    object_payload: &'a RawValue,
    object_payload_signature: Option<String>,
}

impl TreezorVerifier {
    /// `secret` is the webhook secret Treezor issued, used as its UTF-8 bytes. Empty is
    /// refused.
    pub fn new(secret: &str) -> Result<Self, AuthError> {
        Ok(Self {
            key: MacKey::new(secret.as_bytes())?,
        })
    }

    /// Parses a Treezor webhook body (it arrives as `text/plain`, so the content type is not
    /// checked), rebuilds `json_encode(object_payload)` with [`php_json_encode_raw`] and
    /// checks `object_payload_signature` against it.
    pub fn verify(&self, raw_body: &[u8]) -> Result<TreezorEnvelope, AuthError> {
        let text =
            std::str::from_utf8(raw_body).map_err(|_| MalformedBody("the body is not UTF-8"))?;
        // serde_json's messages can quote the input, so only its category is kept.
        let envelope: Envelope<'_> = crate::json::strict_str(text).map_err(|err| {
            MalformedBody(match err.classify() {
                serde_json::error::Category::Data => {
                    "a Treezor envelope field is missing, doubled or mistyped"
                }
                serde_json::error::Category::Eof => "the body ends inside the JSON",
                _ => "the body is not JSON",
            })
        })?;
        let signature = envelope
            .object_payload_signature
            .as_deref()
            .ok_or(AuthError::MissingSignature)?;
        let canonical = php_json_encode_raw(envelope.object_payload.get())?;
        self.key
            .verify_b64(canonical.as_bytes(), signature.as_bytes())?;
        Ok(TreezorEnvelope {
            webhook: envelope.webhook,
            webhook_id: envelope.webhook_id,
            webhook_created_at: envelope.webhook_created_at,
            object: envelope.object,
            object_id: envelope.object_id,
            object_payload: envelope.object_payload.to_owned(),
        })
    }
}
