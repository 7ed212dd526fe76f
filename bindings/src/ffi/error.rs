//! The two error enums that cross the FFI.
//!
//! [`PushAuthError`] is what every SDK call throws: one variant per thing an app does
//! differently (retry, tell the user the payment expired, enroll again, …). The
//! mapping from the internal [`crate::error::Error`] lives here, in one place.
//! [`KeyStoreError`] is what the app's own [`super::key_store::KeyStore`] throws back
//! into Rust.
//!
//! No variant carries secrets, keys, signatures, OTPs or user data: only stable
//! reason codes (`docs/protocol.md`, `pushauth_core::Error::code`) and short texts.

use super::key_store::KeyPurpose;
use crate::api::{EndpointKind, Problem};
use crate::error::Error;

/// Errors of the pushauth SDK. Each variant is something the app can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PushAuthError {
    /// The server could not be reached, timed out, or answered with a server error
    /// (5xx). Retry later.
    #[error("network error: {detail}")]
    Network {
        /// What went wrong, for logs.
        detail: String,
    },
    /// The server refused the request. `reason` is the stable code of the server's
    /// problem response (e.g. `invalid_activation_code`, `transaction_mismatch`,
    /// `stale_request` when the device clock is off).
    #[error("refused by the server ({status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The stable reason code.
        reason: String,
    },
    /// The challenge's deadline has passed: tell the user the payment timed out.
    #[error("the challenge has expired")]
    ChallengeExpired,
    /// The challenge was already answered or closed (by this or another device, or
    /// cancelled by the processor). `status` is the challenge's current status.
    #[error("the challenge is already closed ({status})")]
    AlreadyAnswered {
        /// `approved`, `denied`, `cancelled`, … as reported by the server.
        status: String,
    },
    /// The server does not know this challenge (or it belongs to another cardholder).
    #[error("unknown challenge")]
    ChallengeNotFound,
    /// Too many refused proofs: the server locked this device (PSD2 RTS art. 4(3)(b)).
    /// The issuer's support must unlock it.
    #[error("this device is locked")]
    DeviceLocked,
    /// The server no longer knows this device (revoked, or its key was replaced):
    /// delete the stored state and enroll again.
    #[error("this device is not enrolled")]
    NotEnrolled,
    /// A device key is gone or unusable. `ApprovalSigning` (biometrics changed):
    /// the device can still list, show and decline, but not approve; offer a
    /// migration from another enrolled device or a new activation code.
    /// `DeviceSigning` or `Agreement` (app data restored on another phone): delete
    /// the stored state and enroll again.
    #[error("the {purpose:?} key was invalidated")]
    KeyInvalidated {
        /// Which key.
        purpose: KeyPurpose,
    },
    /// The user cancelled the biometric prompt. Nothing was sent.
    #[error("cancelled by the user")]
    UserCancelled,
    /// The user was not recognised by the biometric prompt. Nothing was sent; the
    /// user may try again.
    #[error("user authentication failed")]
    AuthenticationFailed,
    /// The key store cannot be used right now. Retry later.
    #[error("key store unavailable: {detail}")]
    KeyStoreUnavailable {
        /// The key store's message.
        detail: String,
    },
    /// The server challenge did not verify against the pinned server key, issuer and
    /// device (`reason` = the core code, e.g. `bad_signature`, `wrong_key_id`). Never
    /// show or sign it.
    #[error("server challenge refused: {reason}")]
    InvalidChallenge {
        /// The stable code of the failed check.
        reason: String,
    },
    /// A push envelope could not be decrypted or parsed (`reason` e.g.
    /// `decrypt_failed`). Show a generic notification text instead.
    #[error("push payload refused: {reason}")]
    InvalidPush {
        /// The stable code of the failed check.
        reason: String,
    },
    /// An argument was not valid (deeplink, activation code, stored state, id…).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What was wrong.
        reason: String,
    },
    /// The app's key store failed in another way.
    #[error("key store error: {detail}")]
    KeyStore {
        /// The key store's message.
        detail: String,
    },
    /// A bug or an unexpected answer: report it.
    #[error("internal error: {detail}")]
    Internal {
        /// What went wrong, for logs.
        detail: String,
    },
}

/// Errors the app's key store returns to the SDK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeyStoreError {
    /// The user cancelled the biometric or passcode prompt. Nothing is sent.
    #[error("user cancelled")]
    UserCancelled,
    /// The user was not recognised (a failed fingerprint or face match, iOS
    /// `errSecAuthFailed` / `LAError.authenticationFailed`). The key is fine: retry.
    #[error("user authentication failed")]
    AuthenticationFailed,
    /// The key is permanently unusable (iOS `kSecAccessControlBiometryCurrentSet`
    /// after a biometric change, Android `KeyPermanentlyInvalidatedException`).
    #[error("key permanently invalidated")]
    KeyInvalidated,
    /// No key under this alias.
    #[error("no key under this alias")]
    NotFound,
    /// The key store cannot be used right now (device locked, keystore busy,
    /// StrongBox unavailable). Retry later.
    #[error("key store unavailable: {detail}")]
    Unavailable {
        /// The platform's message (must not contain key material).
        detail: String,
    },
    /// Anything else.
    #[error("{detail}")]
    Other {
        /// The platform's message (must not contain key material).
        detail: String,
    },
}

/// A foreign implementation that threw something uniffi could not map (a bug in the
/// app's key store) lands here.
impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeyStoreError::Other {
            detail: format!("unexpected key store failure: {}", e.reason),
        }
    }
}

/// What the app is told about a key store failure with the key of `purpose`.
fn from_key_store(e: KeyStoreError, purpose: KeyPurpose) -> PushAuthError {
    match e {
        // A missing key is as final as an invalidated one.
        KeyStoreError::KeyInvalidated | KeyStoreError::NotFound => {
            PushAuthError::KeyInvalidated { purpose }
        }
        KeyStoreError::UserCancelled => PushAuthError::UserCancelled,
        KeyStoreError::AuthenticationFailed => PushAuthError::AuthenticationFailed,
        KeyStoreError::Unavailable { detail } => PushAuthError::KeyStoreUnavailable { detail },
        KeyStoreError::Other { detail } => PushAuthError::KeyStore { detail },
    }
}

/// 401 reasons that do not mean the device must enroll again.
const NOT_ABOUT_ENROLLMENT: [&str; 6] = [
    "stale_request",
    "replayed_request",
    "wrong_path",
    "wrong_method",
    "body_hash_mismatch",
    "missing_proof",
];

/// Maps a problem response (RFC 9457) to what the app acts on, following the status
/// codes of `docs/protocol.md` §6.1.
fn from_problem(p: Problem) -> PushAuthError {
    use EndpointKind::{Challenge, Device, Enroll};
    let refused = |p: Problem| PushAuthError::Refused {
        status: p.status,
        reason: p.reason,
    };
    match (p.status, p.kind) {
        (500..=599, _) => PushAuthError::Network {
            detail: format!("server error {}", p.status),
        },
        // Enrollment is not yet authenticated as a device: every refusal is about the
        // activation code or the request, and carries its reason.
        (_, Enroll) => refused(p),
        // Request proofs refused for what enrolling again would not fix: the device
        // clock (`stale_request`), or a proxy altering the request. Keep the reason.
        (401, _) if NOT_ABOUT_ENROLLMENT.contains(&p.reason.as_str()) => refused(p),
        // `unknown_device` (revoked or unknown), `bad_signature` (the key was replaced)…
        (401, _) => PushAuthError::NotEnrolled,
        (404, Challenge) => PushAuthError::ChallengeNotFound,
        (404, Device) => PushAuthError::NotEnrolled,
        (409, Challenge) => match p.challenge_status.as_deref() {
            Some("expired") => PushAuthError::ChallengeExpired,
            Some(status) => PushAuthError::AlreadyAnswered {
                status: status.to_owned(),
            },
            None => PushAuthError::AlreadyAnswered {
                status: "closed".to_owned(),
            },
        },
        (410, Challenge) => PushAuthError::ChallengeExpired,
        (423, _) => PushAuthError::DeviceLocked,
        _ => refused(p),
    }
}

impl From<Error> for PushAuthError {
    fn from(e: Error) -> Self {
        use pushauth_core::Error as Core;
        match e {
            Error::Input(reason) => PushAuthError::InvalidInput { reason },
            Error::Challenge(Core::PastDeadline | Core::Expired) => PushAuthError::ChallengeExpired,
            Error::Challenge(c) => PushAuthError::InvalidChallenge {
                reason: c.code().to_owned(),
            },
            Error::Push(c) => PushAuthError::InvalidPush {
                reason: c.code().to_owned(),
            },
            Error::KeyStore { error, purpose } => from_key_store(error, purpose),
            Error::Transport(detail) => PushAuthError::Network { detail },
            Error::Problem(p) => from_problem(p),
            Error::Internal(detail) => PushAuthError::Internal { detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(
        status: u16,
        reason: &str,
        kind: EndpointKind,
        challenge_status: Option<&str>,
    ) -> PushAuthError {
        Error::Problem(Problem {
            status,
            reason: reason.to_owned(),
            challenge_status: challenge_status.map(str::to_owned),
            kind,
        })
        .into()
    }

    #[test]
    fn problem_statuses_map_to_actionable_variants() {
        use EndpointKind::*;
        assert_eq!(
            problem(409, "conflict", Challenge, Some("approved")),
            PushAuthError::AlreadyAnswered {
                status: "approved".into()
            }
        );
        assert_eq!(
            problem(409, "conflict", Challenge, Some("expired")),
            PushAuthError::ChallengeExpired
        );
        assert_eq!(
            problem(410, "past_deadline", Challenge, None),
            PushAuthError::ChallengeExpired
        );
        assert_eq!(
            problem(422, "transaction_mismatch", Challenge, None),
            PushAuthError::Refused {
                status: 422,
                reason: "transaction_mismatch".into()
            }
        );
        assert_eq!(
            problem(423, "device_locked", Challenge, None),
            PushAuthError::DeviceLocked
        );
        assert_eq!(
            problem(401, "bad_signature", Device, None),
            PushAuthError::NotEnrolled
        );
        assert_eq!(
            problem(401, "unknown_device", Challenge, None),
            PushAuthError::NotEnrolled
        );
        assert_eq!(
            problem(401, "wrong_path", Device, None),
            PushAuthError::Refused {
                status: 401,
                reason: "wrong_path".into()
            }
        );
        assert_eq!(
            problem(404, "not_found", Device, None),
            PushAuthError::NotEnrolled
        );
        assert_eq!(
            problem(404, "not_found", Challenge, None),
            PushAuthError::ChallengeNotFound
        );
        assert_eq!(
            problem(401, "stale_request", Device, None),
            PushAuthError::Refused {
                status: 401,
                reason: "stale_request".into()
            }
        );
        assert_eq!(
            problem(400, "invalid_activation_code", Enroll, None),
            PushAuthError::Refused {
                status: 400,
                reason: "invalid_activation_code".into()
            }
        );
        assert_eq!(
            problem(410, "activation_code_expired", Enroll, None),
            PushAuthError::Refused {
                status: 410,
                reason: "activation_code_expired".into()
            }
        );
        assert!(matches!(
            problem(503, "unavailable", Device, None),
            PushAuthError::Network { .. }
        ));
    }

    #[test]
    fn key_store_errors_map() {
        let ks = |e, p| PushAuthError::from(Error::key_store(e, p));
        assert_eq!(
            ks(KeyStoreError::KeyInvalidated, KeyPurpose::ApprovalSigning),
            PushAuthError::KeyInvalidated {
                purpose: KeyPurpose::ApprovalSigning
            }
        );
        assert_eq!(
            ks(KeyStoreError::NotFound, KeyPurpose::DeviceSigning),
            PushAuthError::KeyInvalidated {
                purpose: KeyPurpose::DeviceSigning
            }
        );
        assert_eq!(
            ks(KeyStoreError::UserCancelled, KeyPurpose::ApprovalSigning),
            PushAuthError::UserCancelled
        );
        // A failed match is not an invalidated key.
        assert_eq!(
            ks(
                KeyStoreError::AuthenticationFailed,
                KeyPurpose::ApprovalSigning
            ),
            PushAuthError::AuthenticationFailed
        );
        let past: PushAuthError = Error::Challenge(pushauth_core::Error::PastDeadline).into();
        assert_eq!(past, PushAuthError::ChallengeExpired);
        let bad: PushAuthError = Error::Challenge(pushauth_core::Error::BadSignature).into();
        assert_eq!(
            bad,
            PushAuthError::InvalidChallenge {
                reason: "bad_signature".into()
            }
        );
    }
}
