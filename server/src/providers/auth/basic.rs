//! HTTP Basic (RFC 7617): Enfuce's only inbound proof, Adyen's ACS webhooks.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::AuthError;

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
