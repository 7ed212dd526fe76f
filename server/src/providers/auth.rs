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

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use AuthError::{MalformedBody, MalformedSignature};

type HmacSha256 = Hmac<Sha256>;

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

// ---------------------------------------------------------------------------------------------
// HTTP Basic (RFC 7617): Enfuce's only inbound proof, Adyen's ACS webhooks.
// ---------------------------------------------------------------------------------------------

/// Credentials taken from a Basic `Authorization` header. `Debug` never shows the password.
pub struct BasicCredentials {
    /// The user-id: the decoded text before the first colon.
    pub user: String,
    /// The password: everything after the first colon, colons included.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses the value of an `Authorization` header as Basic credentials (RFC 7617).
///
/// Accepted grammar, RFC 9110 §11.4 narrowed to Basic: `credentials = auth-scheme 1*SP
/// token68`. The scheme is matched case-insensitively (RFC 9110 §11.1). One or more spaces
/// may follow it, as RFC 9110's `1*SP` allows; tabs and anything after the token are
/// refused, which is fine because an HTTP parser has already stripped the field's outer
/// whitespace. The token must be standard base64 with canonical padding. Its decoding must be
/// UTF-8 (the RFC 7617 §2.1 `charset="UTF-8"` choice; ISO-8859-1 is not guessed at), and it
/// is split at the first colon, since a user-id cannot contain one but a password can.
pub fn parse_basic(header_value: &[u8]) -> Result<BasicCredentials, AuthError> {
    let decoded = decode_basic(header_value)?;
    let (user, password) = split_user_password(&decoded)?;
    Ok(BasicCredentials {
        user: user.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    })
}

/// The base64-decoded `user-id ":" password` of a Basic header; see [`parse_basic`].
fn decode_basic(header_value: &[u8]) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    const SCHEME: &[u8] = b"Basic";
    if header_value.is_empty() {
        return Err(AuthError::MissingHeader);
    }
    let Some((scheme, rest)) = header_value.split_at_checked(SCHEME.len()) else {
        return Err(AuthError::NotBasicScheme);
    };
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(AuthError::NotBasicScheme);
    }
    match rest.first() {
        // "Basic" with no credentials at all.
        None => return Err(AuthError::MalformedBase64),
        Some(b' ') => {}
        // A longer scheme name such as "Basically".
        Some(_) => return Err(AuthError::NotBasicScheme),
    }
    let token68 = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    if token68.is_empty() {
        return Err(AuthError::MalformedBase64);
    }
    STANDARD
        .decode(token68)
        .map(Zeroizing::new)
        .map_err(|_| AuthError::MalformedBase64)
}

fn split_user_password(decoded: &[u8]) -> Result<(&str, &str), AuthError> {
    let text = std::str::from_utf8(decoded).map_err(|_| AuthError::NotUtf8)?;
    text.split_once(':').ok_or(AuthError::NoColon)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks Basic credentials against one configured user-id and password.
///
/// Only SHA-256 digests of the configured values are kept. Both the user-id and the password
/// are compared as digests, so neither comparison's time depends on where the first
/// difference is or on either length, and both are evaluated before the single branch.
pub struct BasicVerifier {
    user_digest: [u8; 32],
    password_digest: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for BasicVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicVerifier").finish_non_exhaustive()
    }
}

impl BasicVerifier {
    /// Refuses a user-id with a colon (RFC 7617 §2: it could never be presented) and an
    /// empty password.
    pub fn new(user: &str, password: &str) -> Result<Self, AuthError> {
        if user.contains(':') {
            return Err(AuthError::BadKey("a Basic user-id cannot contain a colon"));
        }
        if password.is_empty() {
            return Err(AuthError::BadKey("the Basic password is empty"));
        }
        Ok(Self {
            user_digest: sha256(user.as_bytes()),
            password_digest: Zeroizing::new(sha256(password.as_bytes())),
        })
    }

    /// Accepts the `Authorization` header value only if it is well-formed Basic (see
    /// [`parse_basic`]) and carries exactly the configured user-id and password.
    pub fn verify(&self, header_value: &[u8]) -> Result<(), AuthError> {
        let decoded = decode_basic(header_value)?;
        let (user, password) = split_user_password(&decoded)?;
        let user_ok = sha256(user.as_bytes()).ct_eq(&self.user_digest);
        let password_ok = Zeroizing::new(sha256(password.as_bytes())).ct_eq(&*self.password_digest);
        if bool::from(user_ok & password_ok) {
            Ok(())
        } else {
            Err(AuthError::BadCredentials)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 keys shared by Paysafe, Adyen and Treezor.
// ---------------------------------------------------------------------------------------------

/// An HMAC-SHA256 key whose padded inner and outer states are computed once, at
/// configuration time; each message then costs a clone of that state and the hashing.
#[derive(Clone)]
struct MacKey(HmacSha256);

impl MacKey {
    fn new(key: &[u8]) -> Result<Self, AuthError> {
        if key.is_empty() {
            return Err(AuthError::BadKey("the key is empty"));
        }
        // HMAC takes keys of any length, so this cannot fail; map it all the same.
        HmacSha256::new_from_slice(key)
            .map(Self)
            .map_err(|_| AuthError::BadKey("HMAC refused the key"))
    }

    fn sign_b64(&self, msg: &[u8]) -> String {
        STANDARD.encode(self.0.clone().chain_update(msg).finalize().into_bytes())
    }

    /// Constant-time check (`verify_slice` compares with `subtle`) of a base64 tag.
    fn verify_b64(&self, msg: &[u8], signature_b64: &[u8]) -> Result<(), AuthError> {
        let tag = decode_tag(signature_b64)?;
        self.0
            .clone()
            .chain_update(msg)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// Decodes padded standard base64 of exactly [`MAC_LEN`] bytes, without allocating.
fn decode_tag(signature_b64: &[u8]) -> Result<[u8; MAC_LEN], AuthError> {
    if signature_b64.len() != MAC_B64_LEN {
        return Err(MalformedSignature);
    }
    // 44 characters decode to at most 33 bytes; canonical padding makes it exactly 32.
    let mut buf = [0u8; MAC_LEN + 1];
    match STANDARD.decode_slice(signature_b64, &mut buf) {
        Ok(MAC_LEN) => {
            let mut tag = [0u8; MAC_LEN];
            tag.copy_from_slice(&buf[..MAC_LEN]);
            Ok(tag)
        }
        _ => Err(MalformedSignature),
    }
}

// ---------------------------------------------------------------------------------------------
// Paysafe: `Signature` header.
// ---------------------------------------------------------------------------------------------

/// Paysafe's `Signature` header: `base64(HMAC-SHA256(K, message))` where `K` is the shared
/// secret base64-DECODED (Paysafe issues 256 random bytes "base64 encoded as text"; keying
/// with the text does not reproduce Paysafe's published example) and the message is the
/// body's exact bytes, or the URL path for a request without a body.
/// <https://developer.paysafe.com/en/api-docs/embedded-wallets/request-signing/>
pub struct PaysafeVerifier {
    key: MacKey,
}

impl fmt::Debug for PaysafeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaysafeVerifier").finish_non_exhaustive()
    }
}

impl PaysafeVerifier {
    /// `key_b64` is the secret exactly as Paysafe issues it: padded standard base64, with no
    /// surrounding whitespace. Anything else, or an empty key, is refused.
    pub fn new(key_b64: &str) -> Result<Self, AuthError> {
        let key = STANDARD
            .decode(key_b64)
            .map(Zeroizing::new)
            .map_err(|_| AuthError::BadKey("the Paysafe key is not base64"))?;
        Ok(Self {
            key: MacKey::new(&key)?,
        })
    }

    /// Checks the `Signature` header of a request against its raw body, byte for byte as
    /// received: never a re-serialisation.
    pub fn verify(&self, raw_body: &[u8], signature_header: &[u8]) -> Result<(), AuthError> {
        if signature_header.is_empty() {
            return Err(AuthError::MissingHeader);
        }
        self.key.verify_b64(raw_body, signature_header)
    }

    /// Checks the `Signature` header of a request without a body, where Paysafe signs the
    /// URL path as sent (e.g. `/sca/events/{eventId}/attempts`: no scheme, host or query).
    pub fn verify_path(&self, path: &str, signature_header: &[u8]) -> Result<(), AuthError> {
        self.verify(path.as_bytes(), signature_header)
    }

    /// The `Signature` header value for one of our calls to Paysafe: `msg` is the exact body
    /// bytes we send on POST/PUT/PATCH, or the URL path when there is no body.
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> String {
        self.key.sign_b64(msg)
    }
}

// ---------------------------------------------------------------------------------------------
// Adyen: `HmacSignature` header.
// ---------------------------------------------------------------------------------------------

/// Adyen's `HmacSignature` header: `base64(HMAC-SHA256(hex_decode(key), raw body))`, as in
/// Adyen's own `HMACValidator` and the test vector of its Python library.
/// <https://docs.adyen.com/development-resources/webhooks/secure-webhooks/verify-hmac-signatures>
pub struct AdyenHmacVerifier {
    key: MacKey,
}

impl fmt::Debug for AdyenHmacVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdyenHmacVerifier").finish_non_exhaustive()
    }
}

impl AdyenHmacVerifier {
    /// `key_hex` is the key as the Customer Area shows it: hex, either case. Anything else,
    /// or an empty key, is refused.
    pub fn new(key_hex: &str) -> Result<Self, AuthError> {
        let key = hex::decode(key_hex)
            .map(Zeroizing::new)
            .map_err(|_| AuthError::BadKey("the Adyen HMAC key is not hex"))?;
        Ok(Self {
            key: MacKey::new(&key)?,
        })
    }

    /// Checks the `HmacSignature` header against the raw body, byte for byte as received.
    pub fn verify(&self, raw_body: &[u8], signature_header: &[u8]) -> Result<(), AuthError> {
        if signature_header.is_empty() {
            return Err(AuthError::MissingHeader);
        }
        self.key.verify_b64(raw_body, signature_header)
    }
}

// ---------------------------------------------------------------------------------------------
// Treezor: `object_payload_signature` inside the body.
// ---------------------------------------------------------------------------------------------

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
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|err| {
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

/// Rewrites one JSON value, given as its raw text, into what PHP's `json_encode` with default
/// flags prints for the value `json_decode` would make of it:
///
/// - insignificant whitespace dropped; key order and number lexemes kept as received;
/// - each string decoded (escapes, surrogate pairs) and written again with `\"`, `\\`, `\/`,
///   `\b \f \n \r \t`, other control characters as `\u00XX`, every non-ASCII character as
///   lowercase `\uXXXX`, and characters above U+FFFF as a UTF-16 surrogate pair; DEL and the
///   rest of ASCII as themselves.
///
/// The input must be one RFC 8259 JSON value, optionally surrounded by whitespace. Invalid
/// escapes, unpaired surrogates, raw control characters in strings, malformed numbers or
/// literals and trailing text are refused, as is nesting beyond [`MAX_JSON_DEPTH`].
/// Duplicate keys are kept as sent (PHP would keep the last value at the first position), so
/// a payload with them simply fails its signature check.
pub fn php_json_encode_raw(raw_json_value: &str) -> Result<String, AuthError> {
    let mut emitter = PhpJson {
        text: raw_json_value,
        pos: 0,
        out: String::with_capacity(raw_json_value.len() + 64),
    };
    emitter.skip_ws();
    emitter.value(0)?;
    emitter.skip_ws();
    if emitter.pos != raw_json_value.len() {
        return Err(MalformedBody("text follows the JSON value"));
    }
    Ok(emitter.out)
}

/// Recursive-descent re-emitter behind [`php_json_encode_raw`]. `pos` is always on a char
/// boundary of `text`.
struct PhpJson<'a> {
    text: &'a str,
    pos: usize,
    out: String,
}

impl PhpJson<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// One value; `depth` is the number of arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<(), AuthError> {
        match self.peek() {
            Some(b'{') => self.container(depth + 1, b'}'),
            Some(b'[') => self.container(depth + 1, b']'),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(_) => Err(MalformedBody(
                "unexpected character where a JSON value should start",
            )),
            None => Err(MalformedBody("the JSON ends where a value should start")),
        }
    }

    /// An object (`close == b'}'`) or an array (`close == b']'`), at `self.pos` on its opener.
    fn container(&mut self, depth: usize, close: u8) -> Result<(), AuthError> {
        if depth > MAX_JSON_DEPTH {
            return Err(AuthError::TooDeep);
        }
        let is_object = close == b'}';
        self.out.push(if is_object { '{' } else { '[' });
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.out.push(char::from(close));
            return Ok(());
        }
        loop {
            self.skip_ws();
            if is_object {
                if self.peek() != Some(b'"') {
                    return Err(MalformedBody("an object key is not a string"));
                }
                self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(MalformedBody("an object key is not followed by ':'"));
                }
                self.pos += 1;
                self.out.push(':');
                self.skip_ws();
            }
            self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.out.push(','),
                Some(b) if b == close => {
                    self.pos += 1;
                    self.out.push(char::from(close));
                    return Ok(());
                }
                _ => {
                    return Err(MalformedBody(
                        "expected ',' or the end of an array or object",
                    ));
                }
            }
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), AuthError> {
        if !self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            return Err(MalformedBody("misspelt true, false or null"));
        }
        self.pos += word.len();
        self.out.push_str(word);
        Ok(())
    }

    /// RFC 8259 §6 `number`, copied as its lexeme.
    fn number(&mut self) -> Result<(), AuthError> {
        const BAD: AuthError = MalformedBody("malformed number");
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(BAD),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.digits() {
                return Err(BAD);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.digits() {
                return Err(BAD);
            }
        }
        self.out.push_str(&self.text[start..self.pos]);
        Ok(())
    }

    /// Skips `[0-9]*`; true if there was at least one digit.
    fn digits(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos > start
    }

    /// A string, at `self.pos` on its opening quote.
    fn string(&mut self) -> Result<(), AuthError> {
        let text = self.text;
        let bytes = text.as_bytes();
        self.pos += 1;
        self.out.push('"');
        loop {
            // Copy the run of bytes that PHP writes as they are in one go.
            let run = self.pos;
            while let Some(&b) = bytes.get(self.pos) {
                if !(0x20..0x80).contains(&b) || matches!(b, b'"' | b'\\' | b'/') {
                    break;
                }
                self.pos += 1;
            }
            self.out.push_str(&text[run..self.pos]);
            match bytes.get(self.pos) {
                None => return Err(MalformedBody("a string is not terminated")),
                Some(b'"') => {
                    self.pos += 1;
                    self.out.push('"');
                    return Ok(());
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    self.push_php_char(c);
                }
                Some(0x00..=0x1f) => {
                    return Err(MalformedBody("a string holds a raw control character"));
                }
                Some(_) => {
                    // '/' or the first byte of a non-ASCII character.
                    let Some(c) = text[self.pos..].chars().next() else {
                        return Err(MalformedBody("a string is not terminated"));
                    };
                    self.pos += c.len_utf8();
                    self.push_php_char(c);
                }
            }
        }
    }

    /// Decodes the escape at `self.pos` (on its backslash), pairing UTF-16 surrogates.
    fn escape(&mut self) -> Result<char, AuthError> {
        let bytes = self.text.as_bytes();
        let Some(&kind) = bytes.get(self.pos + 1) else {
            return Err(MalformedBody("a string is not terminated"));
        };
        self.pos += 2;
        Ok(match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(MalformedBody("an unpaired UTF-16 surrogate"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(MalformedBody("an unpaired UTF-16 surrogate"));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(MalformedBody("an unpaired UTF-16 surrogate")),
                    _ => unit,
                };
                char::from_u32(code).ok_or(MalformedBody("an unpaired UTF-16 surrogate"))?
            }
            _ => return Err(MalformedBody("an invalid escape in a string")),
        })
    }

    /// The four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, AuthError> {
        let Some(digits) = self.text.as_bytes().get(self.pos..self.pos + 4) else {
            return Err(MalformedBody("a \\u escape needs four hex digits"));
        };
        let mut unit = 0;
        for &digit in digits {
            let nibble = char::from(digit)
                .to_digit(16)
                .ok_or(MalformedBody("a \\u escape needs four hex digits"))?;
            unit = unit << 4 | nibble;
        }
        self.pos += 4;
        Ok(unit)
    }

    /// Writes one decoded character of a string as PHP's `json_encode` does.
    fn push_php_char(&mut self, c: char) {
        match c {
            '"' => self.out.push_str("\\\""),
            '\\' => self.out.push_str("\\\\"),
            '/' => self.out.push_str("\\/"),
            '\u{8}' => self.out.push_str("\\b"),
            '\u{c}' => self.out.push_str("\\f"),
            '\n' => self.out.push_str("\\n"),
            '\r' => self.out.push_str("\\r"),
            '\t' => self.out.push_str("\\t"),
            '\u{20}'..='\u{7f}' => self.out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    self.push_u_escape(unit);
                }
            }
        }
    }

    fn push_u_escape(&mut self, unit: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            self.out
                .push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn basic(user_colon_password: &[u8]) -> Vec<u8> {
        format!("Basic {}", b64(user_colon_password)).into_bytes()
    }

    // ----- Basic -----

    #[test]
    fn basic_parses_and_splits_at_the_first_colon() {
        let creds = parse_basic(&basic(b"user:pa:ss")).unwrap();
        assert_eq!(creds.user, "user");
        assert_eq!(creds.password.as_str(), "pa:ss");
        let creds = parse_basic(&basic(b":")).unwrap();
        assert_eq!((creds.user.as_str(), creds.password.as_str()), ("", ""));
    }

    #[test]
    fn basic_scheme_is_case_insensitive_and_takes_several_spaces() {
        let token = b64(b"user:pass");
        for header in [
            format!("basic {token}"),
            format!("BASIC {token}"),
            format!("bAsIc   {token}"),
        ] {
            assert_eq!(
                parse_basic(header.as_bytes()).unwrap().password.as_str(),
                "pass",
                "{header}"
            );
        }
    }

    #[test]
    fn basic_refusals() {
        let token = b64(b"user:pass");
        let cases: &[(&[u8], AuthError)] = &[
            (b"", AuthError::MissingHeader),
            (b"Bearer dXNlcjpwYXNz", AuthError::NotBasicScheme),
            (b"Basi", AuthError::NotBasicScheme),
            (b"Basically dXNlcjpwYXNz", AuthError::NotBasicScheme),
            (b"Basic\tdXNlcjpwYXNz", AuthError::NotBasicScheme),
            (b"Basic", AuthError::MalformedBase64),
            (b"Basic ", AuthError::MalformedBase64),
            (b"Basic    ", AuthError::MalformedBase64),
            (b"Basic %%%notbase64", AuthError::MalformedBase64),
            // Unpadded, URL-safe alphabet, trailing whitespace, non-canonical trailing bits.
            (b"Basic dXNlcjpwYXM", AuthError::MalformedBase64),
            (b"Basic dXNlcjpwYXM_", AuthError::MalformedBase64),
            (b"Basic dXNlcjpwYXNz ", AuthError::MalformedBase64),
            (b"Basic dXNlcjpwYXN=", AuthError::MalformedBase64),
            (b"Basic bm8tY29sb24taGVyZQ==", AuthError::NoColon),
        ];
        for (header, want) in cases {
            assert_eq!(
                parse_basic(header).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(header)
            );
        }
        let latin1 = basic(b"z\xebe:pass");
        assert_eq!(parse_basic(&latin1).unwrap_err(), AuthError::NotUtf8);
        assert!(parse_basic(format!("Basic {token}").as_bytes()).is_ok());
    }

    #[test]
    fn basic_debug_hides_the_password() {
        let creds = parse_basic(&basic(b"user:hunter2")).unwrap();
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
        let verifier = BasicVerifier::new("user", "hunter2").unwrap();
        assert!(!format!("{verifier:?}").contains("hunter2"));
    }

    #[test]
    fn basic_verifier_accepts_only_the_configured_pair() {
        let verifier = BasicVerifier::new("enfuce", "s3cret:with:colons").unwrap();
        assert_eq!(
            verifier.verify(&basic(b"enfuce:s3cret:with:colons")),
            Ok(())
        );
        assert_eq!(
            verifier.verify(b"basic ZW5mdWNlOnMzY3JldDp3aXRoOmNvbG9ucw=="),
            Ok(())
        );
        for wrong in [
            &b"enfuce:s3cret:with:colon"[..],
            b"enfuce:s3cret:with:colons ",
            b"enfuce:",
            b"Enfuce:s3cret:with:colons",
            b"other:s3cret:with:colons",
            b"other:wrong",
            b"enfuce:s3cret",
        ] {
            assert_eq!(
                verifier.verify(&basic(wrong)),
                Err(AuthError::BadCredentials)
            );
        }
        // Parse failures surface as such, before any comparison.
        assert_eq!(verifier.verify(b""), Err(AuthError::MissingHeader));
        assert_eq!(verifier.verify(b"Bearer x"), Err(AuthError::NotBasicScheme));
        assert_eq!(
            verifier.verify(&basic(b"no colon")),
            Err(AuthError::NoColon)
        );
    }

    #[test]
    fn basic_verifier_refuses_unusable_configuration() {
        assert!(matches!(
            BasicVerifier::new("a:b", "pw"),
            Err(AuthError::BadKey(_))
        ));
        assert!(matches!(
            BasicVerifier::new("user", ""),
            Err(AuthError::BadKey(_))
        ));
    }

    // ----- HMAC headers -----

    const PAYSAFE_KEY: &str = "c2VjcmV0LWtleS1ieXRlcw==";

    #[test]
    fn paysafe_signs_and_verifies_body_and_path() {
        let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
        let signature = paysafe.sign(b"{\"a\":1}");
        assert_eq!(signature.len(), MAC_B64_LEN);
        assert_eq!(paysafe.verify(b"{\"a\":1}", signature.as_bytes()), Ok(()));
        assert_eq!(
            paysafe.verify(b"{\"a\": 1}", signature.as_bytes()),
            Err(AuthError::BadSignature)
        );
        let path = "/sca/events/1/attempts";
        assert_eq!(
            paysafe.verify_path(path, paysafe.sign(path.as_bytes()).as_bytes()),
            Ok(())
        );
        assert_eq!(
            paysafe.verify_path(
                "/sca/events/2/attempts",
                paysafe.sign(path.as_bytes()).as_bytes()
            ),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn hmac_header_refusals() {
        let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
        let adyen = AdyenHmacVerifier::new("00ff").unwrap();
        let good = paysafe.sign(b"body");
        let cases: &[(&[u8], AuthError)] = &[
            (b"", AuthError::MissingHeader),
            (b"short", AuthError::MalformedSignature),
            // Right length, not base64.
            (
                b"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%=",
                AuthError::MalformedSignature,
            ),
            // Right length, decodes to 31 or 33 bytes instead of 32.
            (
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
                AuthError::MalformedSignature,
            ),
            (
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                AuthError::MalformedSignature,
            ),
            // Non-canonical trailing bits.
            (
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
                AuthError::MalformedSignature,
            ),
            (
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                AuthError::BadSignature,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                paysafe.verify(b"body", header).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(header)
            );
            assert_eq!(adyen.verify(b"body", header).unwrap_err(), *want);
        }
        let padded = format!(" {good}");
        assert_eq!(
            paysafe.verify(b"body", padded.as_bytes()),
            Err(AuthError::MalformedSignature)
        );
        assert_eq!(paysafe.verify(b"body", good.as_bytes()), Ok(()));
    }

    #[test]
    fn hmac_keys_must_decode() {
        for key in [
            "",
            "not base64!",
            "c2VjcmV0",
            "c2VjcmV0LWtleS1ieXRlcw",
            "c2VjcmV0LWtleS1ieXRlcw==\n",
        ] {
            let refused = matches!(PaysafeVerifier::new(key), Err(AuthError::BadKey(_)));
            assert_eq!(refused, key != "c2VjcmV0", "{key:?}");
        }
        for key in ["", "0", "zz", "00 ff", "0x00ff"] {
            assert!(
                matches!(AdyenHmacVerifier::new(key), Err(AuthError::BadKey(_))),
                "{key:?}"
            );
        }
        assert!(AdyenHmacVerifier::new("00FFaa").is_ok());
        assert!(matches!(
            TreezorVerifier::new(""),
            Err(AuthError::BadKey(_))
        ));
    }

    // ----- Treezor -----

    const TREEZOR_SECRET: &str = "test-secret";

    fn treezor_body(payload: &str, signature: Option<&str>) -> String {
        let signature = signature
            .map(|s| format!(",\"object_payload_signature\":\"{s}\""))
            .unwrap_or_default();
        format!(
            "{{\"webhook\":\"card3DSv2Authentication.create\",\"webhook_id\":\"w-1\",\"webhook_created_at\":17950000000000,\
             \"object\":\"card3DSv2Authentication\",\"object_id\":\"o-1\",\"object_payload\":{payload}{signature}}}"
        )
    }

    fn treezor_sign(payload: &str) -> String {
        let canonical = php_json_encode_raw(payload).unwrap();
        MacKey::new(TREEZOR_SECRET.as_bytes())
            .unwrap()
            .sign_b64(canonical.as_bytes())
    }

    #[test]
    fn treezor_accepts_and_returns_the_envelope() {
        let payload = "{ \"a\" : [1, \"\\u00e9/\"] }";
        let body = treezor_body(payload, Some(&treezor_sign(payload)));
        let envelope = TreezorVerifier::new(TREEZOR_SECRET)
            .unwrap()
            .verify(body.as_bytes())
            .unwrap();
        assert_eq!(envelope.webhook, "card3DSv2Authentication.create");
        assert_eq!(envelope.webhook_id, "w-1");
        assert_eq!(envelope.webhook_created_at, Some(17_950_000_000_000));
        assert_eq!(envelope.object.as_deref(), Some("card3DSv2Authentication"));
        assert_eq!(envelope.object_id.as_deref(), Some("o-1"));
        assert_eq!(envelope.object_payload.get(), payload);
    }

    #[test]
    fn treezor_refusals() {
        let verifier = TreezorVerifier::new(TREEZOR_SECRET).unwrap();
        let payload = "{\"amount\":\"12.34\"}";
        let good = treezor_sign(payload);
        let other = TreezorVerifier::new("other-secret").unwrap();
        assert_eq!(
            other
                .verify(treezor_body(payload, Some(&good)).as_bytes())
                .unwrap_err(),
            AuthError::BadSignature
        );
        let tampered = treezor_body("{\"amount\":\"99.99\"}", Some(&good));
        assert_eq!(
            verifier.verify(tampered.as_bytes()).unwrap_err(),
            AuthError::BadSignature
        );
        let missing = treezor_body(payload, None);
        assert_eq!(
            verifier.verify(missing.as_bytes()).unwrap_err(),
            AuthError::MissingSignature
        );
        let malformed = treezor_body(payload, Some("not-a-signature"));
        assert_eq!(
            verifier.verify(malformed.as_bytes()).unwrap_err(),
            AuthError::MalformedSignature
        );
        let doubled = treezor_body(payload, Some(&good)).replacen(
            "\"object_payload\":",
            "\"object_payload\":{},\"object_payload\":",
            1,
        );
        let bodies: [&[u8]; 6] = [
            b"\xff{}",
            b"not json",
            b"{\"webhook\":",
            b"{\"webhook\":\"x\",\"webhook_id\":\"y\"}",
            b"{\"webhook\":1,\"webhook_id\":\"y\",\"object_payload\":{}}",
            doubled.as_bytes(),
        ];
        for body in bodies {
            assert!(
                matches!(verifier.verify(body), Err(AuthError::MalformedBody(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    // ----- PHP json_encode -----

    #[test]
    fn php_encoding_of_strings() {
        let cases = [
            (
                r#""plain ASCII ~ DEL:""#.replace("DEL:", "\u{7f}"),
                "\"plain ASCII ~ \u{7f}\"",
            ),
            (
                r#""quote \" backslash \\ slash / \/""#.to_owned(),
                r#""quote \" backslash \\ slash \/ \/""#,
            ),
            (
                r#""\b\f\n\r\t \u0001\u001F \u0000""#.to_owned(),
                r#""\b\f\n\r\t \u0001\u001f \u0000""#,
            ),
            (
                r#""\u0008\u000C\u000a\u000D\u0009""#.to_owned(),
                r#""\b\f\n\r\t""#,
            ),
            (
                r#""\u0041\u00E9 é ü – €""#.to_owned(),
                r#""A\u00e9 \u00e9 \u00fc \u2013 \u20ac""#,
            ),
            (
                r#""🥨 \uD83E\uDD68 \ud83d\udcb3""#.to_owned(),
                r#""\ud83e\udd68 \ud83e\udd68 \ud83d\udcb3""#,
            ),
            (
                "\"\u{2028}\u{ffff}\u{10ffff}\"".to_owned(),
                r#""\u2028\uffff\udbff\udfff""#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(php_json_encode_raw(&input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn php_encoding_keeps_order_and_lexemes_and_drops_whitespace() {
        let input = " {\n \"z\" : 1 ,\t\"a\":[ -0.50 , 1E+2, 0, 12.5e-3 , true,false , null ],\r\n\"e\":{ }, \"l\":[ ] } ";
        assert_eq!(
            php_json_encode_raw(input).unwrap(),
            r#"{"z":1,"a":[-0.50,1E+2,0,12.5e-3,true,false,null],"e":{},"l":[]}"#
        );
        for scalar in ["0", "-1", "\"\"", "true", "null"] {
            assert_eq!(php_json_encode_raw(scalar).unwrap(), scalar);
        }
    }

    #[test]
    fn php_encoding_refuses_bad_json() {
        for input in [
            "",
            " ",
            "{",
            "[",
            "]",
            "}",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{1:1}",
            "[1 2]",
            "\"open",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"\\",
            "\"\\u",
            "\"raw\ttab\"",
            "\"raw\nnewline\"",
            "\"raw \u{1f} unit separator\"",
            "\"\\ud83e\"",
            "\"\\ud83e x\"",
            "\"\\ud83e\\n\"",
            "\"\\ud83e\\u0041\"",
            "\"\\udd68\"",
            "\"\\udd68\\ud83e\"",
            "01",
            "-",
            "+1",
            ".5",
            "1.",
            "1e",
            "1e+",
            "-a",
            "0x10",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "falsy",
            "True",
            "1 2",
            "{} {}",
            "[]]",
        ] {
            assert!(
                matches!(php_json_encode_raw(input), Err(AuthError::MalformedBody(_))),
                "{input:?}"
            );
        }
    }

    #[test]
    fn php_encoding_bounds_nesting() {
        let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            php_json_encode_raw(&nest(MAX_JSON_DEPTH)).unwrap(),
            nest(MAX_JSON_DEPTH)
        );
        assert_eq!(
            php_json_encode_raw(&nest(MAX_JSON_DEPTH + 1)),
            Err(AuthError::TooDeep)
        );
        let objects = format!(
            "{}1{}",
            "{\"k\":".repeat(MAX_JSON_DEPTH + 1),
            "}".repeat(MAX_JSON_DEPTH + 1)
        );
        assert_eq!(php_json_encode_raw(&objects), Err(AuthError::TooDeep));
        // Far deeper than the stack could take if it were not bounded.
        assert_eq!(
            php_json_encode_raw(&"[".repeat(1_000_000)),
            Err(AuthError::TooDeep)
        );
    }

    #[test]
    fn errors_never_echo_input() {
        let secret_looking = "hunter2-SECRET";
        let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
        let errors = [
            parse_basic(&basic(secret_looking.as_bytes())).unwrap_err(),
            paysafe
                .verify(secret_looking.as_bytes(), secret_looking.as_bytes())
                .unwrap_err(),
            php_json_encode_raw(&format!("\"{secret_looking}\\q\"")).unwrap_err(),
            TreezorVerifier::new(TREEZOR_SECRET)
                .unwrap()
                .verify(format!("{{\"webhook\":{secret_looking}}}").as_bytes())
                .unwrap_err(),
            TreezorVerifier::new(TREEZOR_SECRET)
                .unwrap()
                .verify(format!("{{\"webhook\":1,\"x\":\"{secret_looking}\"}}").as_bytes())
                .unwrap_err(),
        ];
        for err in errors {
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
