//! The canonical transaction: what the cardholder is shown and signs (PSD2 RTS
//! art. 5 dynamic linking). The server computes the digest from its stored
//! transaction; the device computes it from every member it received; the approval
//! proof carries the device's digest and the server refuses any difference.
//!
//! Canonical form v2 (docs/protocol.md §3): a JSON object whose member values are
//! only strings or integers (0 ..= 2^53 − 1); canonical text = RFC 8785 (JCS) of ALL
//! members as received; digest = SHA-256 of it. Members: `v` (= 2), `provider`,
//! `ref`, `kind`, and optionally `amount` + `currency` (minor units of ISO 4217),
//! `payee`, `merchant_country`, `merchant_url`, `purchase_date`, `card_last4`,
//! `operation`, `operation_ref`.
//!
//! Two views:
//! - [`Transaction`]: the server's typed, strict value (known provider and kind, no
//!   unknown member), which it builds from processor data and stores;
//! - [`ReceivedTransaction`]: what a device parsed from a server challenge or push
//!   plaintext: every member kept (unknown ones exposed generically), unknown
//!   `provider`/`kind` values tolerated as [`Named::Other`], so an app shipped today
//!   accepts a server that adds members tomorrow.

mod members;
mod received;
mod text;

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::b64;
use crate::error::{Error, Result};
use crate::ids::{Provider, ProviderRef};
use crate::money::Money;

pub use members::{MAX_MEMBERS, Members, TxnValue};
pub use received::{DisplayField, Named, ReceivedTransaction};
pub use text::{
    CardLast4, CountryCode, MerchantUrl, Operation, Payee, PurchaseDate, is_forbidden_in_display,
    neutralize,
};

/// Version of the canonical transaction encoding (`v`). Compatible additions (new
/// optional members, new `kind` values) keep the number; an incompatible change of
/// the encoding gets a new one.
pub const CANONICAL_VERSION: i64 = 2;

/// What is being authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// A one-off card payment (3-D Secure purchase).
    Payment,
    /// A recurring payment set-up.
    Recurring,
    /// A sensitive wallet operation (e.g. Paysafe SCA event).
    WalletOperation,
}

impl TransactionKind {
    /// Every kind this version knows.
    pub const ALL: [TransactionKind; 3] = [
        TransactionKind::Payment,
        TransactionKind::Recurring,
        TransactionKind::WalletOperation,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Payment => "payment",
            TransactionKind::Recurring => "recurring",
            TransactionKind::WalletOperation => "wallet_operation",
        }
    }

    /// Parses the snake_case wire name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(Error::InvalidId {
                kind: "transaction kind",
                reason: "unknown kind",
            })
    }
}

/// The optional display members beyond amount and payee (all bound by the digest).
/// Serialised as an object of the present members (how the server stores them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnDetails {
    /// `merchant_country`: ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_country: Option<CountryCode>,
    /// `merchant_url`: the merchant's web address as sent by the processor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_url: Option<MerchantUrl>,
    /// `purchase_date`: RFC 3339 UTC to the second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_date: Option<PurchaseDate>,
    /// `card_last4`: last four digits of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<CardLast4>,
    /// `operation`: the processor's operation type (Paysafe `flow.type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// `operation_ref`: the processor's id of the operation (Paysafe payment id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_ref: Option<ProviderRef>,
}

impl TxnDetails {
    /// True when no detail is present.
    pub fn is_empty(&self) -> bool {
        self.members().is_empty()
    }

    /// The members these details add, as (name, text).
    fn members(&self) -> Vec<(&'static str, &str)> {
        [
            (
                "merchant_country",
                self.merchant_country.as_ref().map(|v| v.as_str()),
            ),
            (
                "merchant_url",
                self.merchant_url.as_ref().map(|v| v.as_str()),
            ),
            (
                "purchase_date",
                self.purchase_date.as_ref().map(|v| v.as_str()),
            ),
            ("card_last4", self.card_last4.as_ref().map(|v| v.as_str())),
            ("operation", self.operation.as_ref().map(|v| v.as_str())),
            (
                "operation_ref",
                self.operation_ref.as_ref().map(|v| v.as_str()),
            ),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }
}

/// A transaction to authenticate as the server knows it (typed and strict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Where the request came from.
    pub provider: Provider,
    /// The processor's reference.
    pub reference: ProviderRef,
    /// What is authenticated.
    pub kind: TransactionKind,
    /// Amount and currency, when the processor gives them.
    pub amount: Option<Money>,
    /// Payee, when the processor gives it.
    pub payee: Option<Payee>,
    /// Further display members.
    pub details: TxnDetails,
}

impl Transaction {
    /// The canonical members of this transaction.
    pub fn members(&self) -> Members {
        let s = |v: &str| TxnValue::Str(v.to_owned());
        let mut pairs = vec![
            ("v".to_owned(), TxnValue::Int(CANONICAL_VERSION)),
            ("provider".to_owned(), s(self.provider.as_str())),
            ("ref".to_owned(), s(self.reference.as_str())),
            ("kind".to_owned(), s(self.kind.as_str())),
        ];
        if let Some(m) = &self.amount {
            pairs.push(("amount".to_owned(), TxnValue::Int(m.minor())));
            pairs.push(("currency".to_owned(), s(m.currency().code())));
        }
        if let Some(p) = &self.payee {
            pairs.push(("payee".to_owned(), s(p.as_str())));
        }
        for (n, v) in self.details.members() {
            pairs.push((n.to_owned(), s(v)));
        }
        // Fixed, distinct, short names: cannot fail.
        Members::from_pairs(pairs).unwrap_or_default()
    }

    /// The RFC 8785 canonical JSON text of this transaction.
    pub fn canonical_json(&self) -> String {
        self.members().canonical_json()
    }

    /// SHA-256 of the canonical JSON.
    pub fn digest(&self) -> TxnDigest {
        self.members().digest()
    }

    /// The amount formatted for display (`EUR 49.90`), if any.
    pub fn display_amount(&self) -> Option<String> {
        self.amount.map(|m| m.to_string())
    }

    /// The device's view of this transaction (what a challenge carries).
    pub fn received(&self) -> ReceivedTransaction {
        ReceivedTransaction::from(self)
    }
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.members().serialize(serializer)
    }
}

/// Strict: known provider and kind, no unknown member, `v` = 2.
impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        ReceivedTransaction::deserialize(deserializer)?
            .to_transaction()
            .map_err(serde::de::Error::custom)
    }
}

/// SHA-256 digest of a canonical transaction; base64url (43 characters) on the wire
/// (`txn` claim).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnDigest([u8; 32]);

impl TxnDigest {
    /// Parses the base64url form.
    pub fn parse(s: &str) -> Result<Self> {
        let bytes = b64::decode(s).ok_or(Error::MalformedClaims("txn is not base64url"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::MalformedClaims("txn must be 32 bytes"))?;
        Ok(Self(bytes))
    }

    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality (the digest is not secret, but comparisons in
    /// verification paths are kept uniform).
    pub fn ct_eq(&self, other: &TxnDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for TxnDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64::encode(self.0))
    }
}

impl fmt::Debug for TxnDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxnDigest({self})")
    }
}

impl Serialize for TxnDigest {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TxnDigest {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        TxnDigest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
