//! Proof that an inbound webhook comes from its processor, checked before anything in it is
//! trusted or stored; plus the `Signature` Paysafe wants on our own calls to it.
//!
//! | processor | proof | checker |
//! |---|---|---|
//! | Enfuce | HTTP Basic (RFC 7617) | [`BasicVerifier`] |
//! | Adyen | HTTP Basic; `HmacSignature` header where Adyen enables it | [`BasicVerifier`], [`AdyenHmacVerifier`] |
//! | Paysafe | `Signature` header: HMAC-SHA256 of the raw body | [`PaysafeVerifier`] |
//! | Treezor | `object_payload_signature` body field: HMAC-SHA256 of PHP `json_encode(object_payload)` | [`TreezorVerifier`] |
//!
//! Everything here is pure (bytes in, verdict out, no I/O) and runs on every webhook. A
//! verifier is built once from configuration, where an unusable key is refused, and is then
//! shared by reference. Secrets and MACs are compared in constant time, and no [`AuthError`]
//! carries a secret, a credential, a signature or a piece of the body.
//!
//! Split by check: `basic` (RFC 7617), `hmac` (Paysafe and Adyen headers, and the
//! key type Treezor shares), `treezor` (the body-field signature) and `php_json`
//! (PHP `json_encode` re-emission, which Treezor signs).

mod basic;
mod hmac;
mod php_json;
mod treezor;

pub use basic::{BasicCredentials, BasicVerifier, parse_basic};
pub use hmac::{AdyenHmacVerifier, PaysafeVerifier};
pub use php_json::php_json_encode_raw;
pub use treezor::{TreezorEnvelope, TreezorVerifier};

/// Bytes in an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;
/// Characters in a [`MAC_LEN`]-byte tag written as padded standard base64.
const MAC_B64_LEN: usize = 44;

/// The deepest nesting of arrays and objects [`php_json_encode_raw`] accepts (serde_json's
/// own limit is 128 too), so that hostile input cannot exhaust the stack.
pub const MAX_JSON_DEPTH: usize = 128;

/// Why a webhook's proof of origin was refused. One variant per failed check; no variant
/// carries caller input, so every message is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header carrying the proof is absent or empty. Callers map an absent header to
    /// this by passing `b""`.
    #[error("the authentication header is missing")]
    MissingHeader,
    /// The `Authorization` header names another scheme than `Basic`.
    #[error("the authorization scheme is not Basic")]
    NotBasicScheme,
    /// The Basic credentials are absent or not strict, padded, standard base64.
    #[error("the Basic credentials are not valid base64")]
    MalformedBase64,
    /// The decoded Basic credentials are not UTF-8.
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    /// The decoded Basic credentials have no `:` between user-id and password.
    #[error("the Basic credentials have no colon")]
    NoColon,
    /// The user-id or the password is wrong (deliberately not saying which).
    #[error("the user-id or password is wrong")]
    BadCredentials,
    /// The signature is not padded standard base64 of a 32-byte HMAC-SHA256 tag.
    #[error("the signature is not base64 of a 32-byte HMAC-SHA256 tag")]
    MalformedSignature,
    /// The signature is well formed but does not match the message.
    #[error("the signature does not match")]
    BadSignature,
    /// Treezor: the body has no `object_payload_signature`.
    #[error("the body carries no object_payload_signature")]
    MissingSignature,
    /// A configured secret is unusable; the reason is fixed text.
    #[error("the configured secret is unusable: {0}")]
    BadKey(&'static str),
    /// The body (or the JSON handed to [`php_json_encode_raw`]) is malformed; the reason is
    /// fixed text.
    #[error("the body is malformed: {0}")]
    MalformedBody(&'static str),
    /// The JSON nests arrays and objects deeper than [`MAX_JSON_DEPTH`].
    #[error("the JSON nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
}

#[cfg(test)]
mod tests;
