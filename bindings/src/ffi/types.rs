//! Mirror enums and records of core types, converted with `From`/`TryFrom`, and the
//! transaction helpers tests in every language use to check the golden vectors.

use pushauth_core::ids::Provider as CoreProvider;
use pushauth_core::money::{Currency, Money};
use pushauth_core::proof::{DenyReason as CoreDenyReason, UserVerification as CoreUv};
use pushauth_core::transaction::{Named, TransactionKind as CoreKind};

use super::error::PushAuthError;
use crate::error::Error;

/// Where a challenge came from (part of the canonical transaction). Servers may add
/// processors: an unknown one arrives as `Other` (show its name generically).
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Provider {
    /// Enfuce.
    Enfuce,
    /// Adyen.
    Adyen,
    /// Paysafe.
    Paysafe,
    /// Treezor.
    Treezor,
    /// The issuer's own systems (generic API).
    Api,
    /// A processor this SDK version does not know.
    Other {
        /// Its wire name.
        name: String,
    },
}

impl From<CoreProvider> for Provider {
    fn from(p: CoreProvider) -> Self {
        match p {
            CoreProvider::Enfuce => Provider::Enfuce,
            CoreProvider::Adyen => Provider::Adyen,
            CoreProvider::Paysafe => Provider::Paysafe,
            CoreProvider::Treezor => Provider::Treezor,
            CoreProvider::Api => Provider::Api,
        }
    }
}

impl From<&Named<CoreProvider>> for Provider {
    fn from(p: &Named<CoreProvider>) -> Self {
        match p {
            Named::Known(p) => (*p).into(),
            Named::Other(name) => Provider::Other { name: name.clone() },
        }
    }
}

impl Provider {
    /// The wire name (`enfuce`, …, or the unknown name as received).
    pub(crate) fn wire(&self) -> String {
        match self {
            Provider::Enfuce => CoreProvider::Enfuce.as_str().to_owned(),
            Provider::Adyen => CoreProvider::Adyen.as_str().to_owned(),
            Provider::Paysafe => CoreProvider::Paysafe.as_str().to_owned(),
            Provider::Treezor => CoreProvider::Treezor.as_str().to_owned(),
            Provider::Api => CoreProvider::Api.as_str().to_owned(),
            Provider::Other { name } => name.clone(),
        }
    }
}

/// What is being authenticated. Servers may add kinds: an unknown one arrives as
/// `Other` (show a generic "Confirm this request").
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TransactionKind {
    /// A card payment.
    Payment,
    /// A recurring payment set-up.
    Recurring,
    /// A sensitive wallet operation.
    WalletOperation,
    /// A kind this SDK version does not know.
    Other {
        /// Its wire name.
        name: String,
    },
}

impl From<CoreKind> for TransactionKind {
    fn from(k: CoreKind) -> Self {
        match k {
            CoreKind::Payment => TransactionKind::Payment,
            CoreKind::Recurring => TransactionKind::Recurring,
            CoreKind::WalletOperation => TransactionKind::WalletOperation,
        }
    }
}

impl From<&Named<CoreKind>> for TransactionKind {
    fn from(k: &Named<CoreKind>) -> Self {
        match k {
            Named::Known(k) => (*k).into(),
            Named::Other(name) => TransactionKind::Other { name: name.clone() },
        }
    }
}

impl TransactionKind {
    /// The wire name (`payment`, …, or the unknown name as received).
    pub(crate) fn wire(&self) -> String {
        match self {
            TransactionKind::Payment => CoreKind::Payment.as_str().to_owned(),
            TransactionKind::Recurring => CoreKind::Recurring.as_str().to_owned(),
            TransactionKind::WalletOperation => CoreKind::WalletOperation.as_str().to_owned(),
            TransactionKind::Other { name } => name.clone(),
        }
    }
}

/// Why the cardholder denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum DenyReason {
    /// "This was not me": reported as possible fraud.
    NotMe,
    /// Declined without suspecting fraud.
    Declined,
}

impl From<DenyReason> for CoreDenyReason {
    fn from(r: DenyReason) -> Self {
        match r {
            DenyReason::NotMe => CoreDenyReason::NotMe,
            DenyReason::Declined => CoreDenyReason::Declined,
        }
    }
}

/// How the key store verified the user before signing (the proof's `uv` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum UserVerification {
    /// Face or fingerprint.
    Biometric,
    /// Device passcode.
    Passcode,
    /// None (software key stores, tests).
    None,
}

impl From<UserVerification> for CoreUv {
    fn from(u: UserVerification) -> Self {
        match u {
            UserVerification::Biometric => CoreUv::Biometric,
            UserVerification::Passcode => CoreUv::Passcode,
            UserVerification::None => CoreUv::None,
        }
    }
}

/// The device's platform, told to the server at enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Platform {
    /// iOS / iPadOS.
    Ios,
    /// Android (FCM).
    Android,
    /// A Web Push receiver: UnifiedPush on Android without Google services, or a
    /// browser. The push token is the subscription (`web_push_token`).
    WebPush,
    /// Anything else (desktop demo, tests).
    Other,
}

impl Platform {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::WebPush => "webpush",
            Platform::Other => "other",
        }
    }
}

/// APNs environment of a push token (FCM tokens have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PushEnvironment {
    /// APNs development (sandbox).
    Sandbox,
    /// APNs production.
    Production,
}

impl PushEnvironment {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            PushEnvironment::Sandbox => "sandbox",
            PushEnvironment::Production => "production",
        }
    }
}

/// The amount as the app shows it: `EUR 49.90`, `JPY 5000`, `BHD 1.234`.
#[uniffi::export]
pub fn format_amount(amount_minor: i64, currency: String) -> Result<String, PushAuthError> {
    let currency =
        Currency::parse(&currency).map_err(|e| Error::Input(format!("currency: {e}")))?;
    Ok(Money::from_minor(amount_minor, currency)
        .map_err(|e| Error::Input(format!("amount: {e}")))?
        .to_string())
}
