//! The one error type of the core. Each failed check has its own variant (so the
//! server can count and answer precisely), and no variant carries secret material,
//! signatures, keys or user data: messages are safe to log and to show.

use crate::money::MoneyError;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An amount or currency was refused.
    #[error(transparent)]
    Money(#[from] MoneyError),

    /// An identifier did not have its documented form.
    #[error("invalid {kind}: {reason}")]
    InvalidId {
        /// Which identifier (`device id`, `challenge id`, …).
        kind: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A payee (merchant) name was empty, too long or held control characters.
    #[error("invalid payee: {0}")]
    InvalidPayee(&'static str),
    /// A canonical transaction (protocol §3) did not have its documented form: a
    /// member of the wrong type, a missing required member, a displayed string with
    /// bidi overrides or invisible characters, an unsupported `v`.
    #[error("invalid transaction: {0}")]
    InvalidTransaction(&'static str),

    /// A public key was not a valid P-256 point or JWK.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// A private key could not be parsed (PKCS#8 for signing keys, 32-byte scalar for
    /// agreement keys).
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// The signer (a software key or the app's hardware key store) failed.
    #[error("signer failed: {0}")]
    SignerFailed(String),
    /// A signature was neither 64 raw bytes nor a strict DER ECDSA-Sig-Value.
    #[error("malformed ECDSA signature: {0}")]
    MalformedSignature(&'static str),

    /// A compact JWS was not well formed.
    #[error("malformed JWS: {0}")]
    MalformedJws(&'static str),
    /// The JWS `alg` was not ES256 (RFC 7518 §3.4). `none`, HS*, RS* are all refused.
    #[error("unsupported JWS algorithm (only ES256 is accepted)")]
    UnsupportedAlgorithm,
    /// The JWS `typ` was not the one expected for this kind of object.
    #[error("wrong JWS type: expected {expected}")]
    WrongType {
        /// The expected `typ`.
        expected: &'static str,
    },
    /// The JWS named a critical extension (`crit`), which we never accept.
    #[error("JWS critical extensions are not supported")]
    CriticalExtension,
    /// The JWS `kid` did not name the expected key.
    #[error("JWS key id does not match the expected key")]
    WrongKeyId,
    /// The signature did not verify under the expected public key.
    #[error("signature verification failed")]
    BadSignature,
    /// The signed claims were not valid JSON of the expected shape.
    #[error("malformed claims: {0}")]
    MalformedClaims(&'static str),
    /// The protected header named its key twice: both `kid` and `jwk` (protocol §2).
    #[error("JWS header carries both kid and jwk")]
    KidAndJwk,
    /// The protected header was valid JSON but not a JSON object (e.g. an array).
    #[error("JWS header is not a JSON object")]
    HeaderNotObject,
    /// The signed claims were valid JSON but not a JSON object (e.g. an array).
    #[error("JWS claims are not a JSON object")]
    ClaimsNotObject,

    /// `iss` was not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` was not the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// `jti` did not name the expected challenge.
    #[error("proof is for another challenge")]
    WrongChallenge,
    /// `nonce` did not match the challenge's nonce.
    #[error("nonce does not match the challenge")]
    WrongNonce,
    /// The signed transaction digest differs from the digest of the stored transaction
    /// (amount, currency, payee or reference changed: PSD2 RTS art. 5(1)(d)).
    #[error("signed transaction does not match the challenge's transaction")]
    TransactionMismatch,
    /// The digest of the processor SDK output does not match the signed one.
    #[error("processor output does not match the signed digest")]
    ProcessorOutputMismatch,
    /// The token's `exp` has passed (beyond the allowed clock skew).
    #[error("token expired")]
    Expired,
    /// The token's `iat` lies in the future (beyond the allowed clock skew).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `exp` lies beyond the challenge deadline or the token lives longer than allowed.
    #[error("token lifetime exceeds what is allowed")]
    LifetimeTooLong,
    /// The challenge deadline has passed.
    #[error("challenge deadline has passed")]
    PastDeadline,

    /// The proof's `decision` does not belong to its `typ` (an approval proof must
    /// approve, a decline proof must deny).
    #[error("decision does not match the proof type")]
    WrongDecision,
    /// The proof's `uv` is below the minimum the server requires.
    #[error("user verification below the required minimum")]
    InsufficientUserVerification,

    /// A key statement is for another key use (`device` / `approval`).
    #[error("key statement is for another key use")]
    WrongKeyUse,
    /// A key statement names another device in `sub`.
    #[error("key statement is for another device")]
    WrongSubject,
    /// The approval key's enrollment statement is bound (`bnd`) to another device key.
    #[error("approval key is bound to another device key")]
    KeyBindingMismatch,
    /// A rotation statement's `old` is not the thumbprint of the current key of that use.
    #[error("rotation statement names another current key")]
    OldKeyMismatch,
    /// One key would serve both uses (device key = approval key), or a rotation would
    /// not change the key.
    #[error("key reused where a distinct key is required")]
    KeyReuse,
    /// An approval-key rotation came without the old approval key's endorsement.
    #[error("approval key rotation needs the old approval key's endorsement")]
    EndorsementRequired,
    /// An endorsement was sent where none is defined (device-key rotation).
    #[error("endorsement not allowed for this key use")]
    EndorsementNotAllowed,
    /// The endorsement's signature does not verify with the current approval key.
    #[error("endorsement is not signed by the current approval key")]
    BadEndorsement,
    /// The endorsement does not carry the same claims as the statement.
    #[error("endorsement claims differ from the statement")]
    EndorsementMismatch,

    /// A request JWS was made for another HTTP method.
    #[error("request proof is for another HTTP method")]
    WrongMethod,
    /// A request JWS was made for another path.
    #[error("request proof is for another path")]
    WrongPath,
    /// The body hash in a request JWS does not match the body received.
    #[error("request body does not match the signed body hash")]
    BodyHashMismatch,
    /// A request JWS is older or newer than the accepted window.
    #[error("request proof is outside the accepted time window")]
    StaleRequest,

    /// An encrypted push envelope was not well formed.
    #[error("malformed push envelope: {0}")]
    MalformedEnvelope(&'static str),
    /// Decryption failed: wrong key, wrong challenge id, or tampered ciphertext. One
    /// variant for all three on purpose (no oracle).
    #[error("push payload could not be decrypted")]
    DecryptFailed,
    /// The key-agreement provider (software key or hardware key store) failed.
    #[error("key agreement failed: {0}")]
    AgreementFailed(String),
    /// A Web Push subscription (push token of a `webpush` device) was not well formed.
    #[error("invalid web push subscription: {0}")]
    InvalidSubscription(&'static str),
}

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable snake_case code for this error, used as the `reason` of API problems,
    /// as a metrics label and in the golden vectors. Never changes for a variant.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Money(_) => "invalid_money",
            Error::InvalidId { .. } => "invalid_id",
            Error::InvalidPayee(_) => "invalid_payee",
            Error::InvalidTransaction(_) => "invalid_transaction",
            Error::InvalidPublicKey(_) => "invalid_public_key",
            Error::InvalidPrivateKey => "invalid_private_key",
            Error::Rng => "rng_failure",
            Error::SignerFailed(_) => "signer_failed",
            Error::MalformedSignature(_) => "malformed_signature",
            Error::MalformedJws(_) => "malformed_jws",
            Error::UnsupportedAlgorithm => "unsupported_algorithm",
            Error::WrongType { .. } => "wrong_type",
            Error::CriticalExtension => "critical_extension",
            Error::WrongKeyId => "wrong_key_id",
            Error::BadSignature => "bad_signature",
            Error::MalformedClaims(_) => "malformed_claims",
            Error::KidAndJwk => "kid_and_jwk",
            Error::HeaderNotObject => "header_not_object",
            Error::ClaimsNotObject => "claims_not_object",
            Error::WrongIssuer => "wrong_issuer",
            Error::WrongAudience => "wrong_audience",
            Error::WrongChallenge => "wrong_challenge",
            Error::WrongNonce => "wrong_nonce",
            Error::TransactionMismatch => "transaction_mismatch",
            Error::ProcessorOutputMismatch => "processor_output_mismatch",
            Error::Expired => "expired",
            Error::IssuedInFuture => "issued_in_future",
            Error::LifetimeTooLong => "lifetime_too_long",
            Error::PastDeadline => "past_deadline",
            Error::WrongDecision => "wrong_decision",
            Error::InsufficientUserVerification => "insufficient_user_verification",
            Error::WrongKeyUse => "wrong_key_use",
            Error::WrongSubject => "wrong_subject",
            Error::KeyBindingMismatch => "key_binding_mismatch",
            Error::OldKeyMismatch => "old_key_mismatch",
            Error::KeyReuse => "key_reuse",
            Error::EndorsementRequired => "endorsement_required",
            Error::EndorsementNotAllowed => "endorsement_not_allowed",
            Error::BadEndorsement => "bad_endorsement",
            Error::EndorsementMismatch => "endorsement_mismatch",
            Error::WrongMethod => "wrong_method",
            Error::WrongPath => "wrong_path",
            Error::BodyHashMismatch => "body_hash_mismatch",
            Error::StaleRequest => "stale_request",
            Error::MalformedEnvelope(_) => "malformed_envelope",
            Error::DecryptFailed => "decrypt_failed",
            Error::AgreementFailed(_) => "agreement_failed",
            Error::InvalidSubscription(_) => "invalid_subscription",
        }
    }
}
