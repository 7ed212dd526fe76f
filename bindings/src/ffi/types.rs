//! Mirror enums and records of core types, converted with `From`/`TryFrom`, and the
//! transaction helpers tests in every language use to check the golden vectors.

use pushauth_core::ids::{Provider as CoreProvider, ProviderRef};
use pushauth_core::money::{Currency, Money};
use pushauth_core::proof::{DenyReason as CoreDenyReason, UserVerification as CoreUv};
use pushauth_core::transaction::{
    Payee, Transaction as CoreTransaction, TransactionKind as CoreKind,
};

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

impl Provider {
    /// The core provider (an `Other` name must be one this core knows).
    pub(crate) fn into_core(self) -> Result<CoreProvider, Error> {
        let p = self;
        Ok(match p {
            Provider::Enfuce => CoreProvider::Enfuce,
            Provider::Adyen => CoreProvider::Adyen,
            Provider::Paysafe => CoreProvider::Paysafe,
            Provider::Treezor => CoreProvider::Treezor,
            Provider::Api => CoreProvider::Api,
            Provider::Other { name } => {
                CoreProvider::parse(&name).map_err(|e| Error::input("provider", &e))?
            }
        })
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

impl TransactionKind {
    /// The core kind (`Other` is refused: this core does not know it).
    pub(crate) fn into_core(self) -> Result<CoreKind, Error> {
        let k = self;
        Ok(match k {
            TransactionKind::Payment => CoreKind::Payment,
            TransactionKind::Recurring => CoreKind::Recurring,
            TransactionKind::WalletOperation => CoreKind::WalletOperation,
            TransactionKind::Other { .. } => {
                return Err(Error::Input("kind: unknown to this core".to_owned()));
            }
        })
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
    /// Android.
    Android,
    /// Anything else (desktop demo, tests).
    Other,
}

impl Platform {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
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

/// A transaction as bound by the approval proof (protocol §3).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Transaction {
    /// Where it came from.
    pub provider: Provider,
    /// The processor's reference (1–256 visible ASCII characters).
    pub reference: String,
    /// What is authenticated.
    pub kind: TransactionKind,
    /// Amount in minor units; present together with `currency`.
    #[uniffi(default)]
    pub amount_minor: Option<i64>,
    /// ISO 4217 alphabetic code; present together with `amount_minor`.
    #[uniffi(default)]
    pub currency: Option<String>,
    /// The merchant name shown.
    #[uniffi(default)]
    pub payee: Option<String>,
}

impl From<&CoreTransaction> for Transaction {
    fn from(t: &CoreTransaction) -> Self {
        Transaction {
            provider: t.provider.into(),
            reference: t.reference.as_str().to_owned(),
            kind: t.kind.into(),
            amount_minor: t.amount.map(|m| m.minor()),
            currency: t.amount.map(|m| m.currency().code().to_owned()),
            payee: t.payee.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

impl Transaction {
    /// Checks the fields and builds the core transaction.
    pub(crate) fn into_core(self) -> Result<CoreTransaction, Error> {
        let t = self;
        let amount = match (t.amount_minor, t.currency) {
            (Some(minor), Some(code)) => {
                let currency =
                    Currency::parse(&code).map_err(|e| Error::Input(format!("currency: {e}")))?;
                Some(
                    Money::from_minor(minor, currency)
                        .map_err(|e| Error::Input(format!("amount: {e}")))?,
                )
            }
            (None, None) => None,
            _ => {
                return Err(Error::Input(
                    "amount_minor and currency go together".to_owned(),
                ));
            }
        };
        Ok(CoreTransaction {
            provider: t.provider.into_core()?,
            reference: ProviderRef::parse(&t.reference)
                .map_err(|e| Error::input("reference", &e))?,
            kind: t.kind.into_core()?,
            amount,
            payee: t
                .payee
                .map(|p| Payee::parse(&p))
                .transpose()
                .map_err(|e| Error::input("payee", &e))?,
        })
    }
}

/// The RFC 8785 canonical JSON of a transaction (protocol §3).
#[uniffi::export]
pub fn canonical_transaction_json(transaction: Transaction) -> Result<String, PushAuthError> {
    Ok(transaction.into_core()?.canonical_json())
}

/// base64url(SHA-256(canonical JSON)): the `txn` the approval proof signs.
#[uniffi::export]
pub fn transaction_digest(transaction: Transaction) -> Result<String, PushAuthError> {
    Ok(transaction.into_core()?.digest().to_string())
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
