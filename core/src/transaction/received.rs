//! The device's view of a canonical transaction: every member as received (the
//! digest covers them all), the known ones typed, unknown ones exposed generically.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Provider, ProviderRef};
use crate::money::{Currency, Money};

use super::text::neutralize;
use super::{
    CANONICAL_VERSION, CardLast4, CountryCode, Members, MerchantUrl, Operation, Payee,
    PurchaseDate, Transaction, TransactionKind, TxnDetails, TxnDigest, TxnValue,
};

/// Names this version of the protocol knows.
const KNOWN: [&str; 13] = [
    "v",
    "provider",
    "ref",
    "kind",
    "amount",
    "currency",
    "payee",
    "merchant_country",
    "merchant_url",
    "purchase_date",
    "card_last4",
    "operation",
    "operation_ref",
];

/// A value of an open set: one this version knows, or another one sent by a newer
/// server (kept as text, never an error).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Named<T> {
    /// A known value.
    Known(T),
    /// A value this version does not know.
    Other(String),
}

impl<T: Copy> Named<T> {
    /// The known value, if it is one.
    pub fn known(&self) -> Option<T> {
        match self {
            Named::Known(t) => Some(*t),
            Named::Other(_) => None,
        }
    }
}

/// One line of the approval screen: a stable `key` (the member name, or
/// `amount` for amount + currency) and the `value` as it is to be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayField {
    /// Member name (`amount`, `payee`, `merchant_country`, …, or an unknown name).
    pub key: String,
    /// Text to show (unknown members' text neutralised).
    pub value: String,
    /// False for members this version does not know.
    pub known: bool,
}

/// A transaction as a device received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTransaction {
    members: Members,
    provider: Named<Provider>,
    reference: ProviderRef,
    kind: Named<TransactionKind>,
    amount: Option<Money>,
    payee: Option<Payee>,
    details: TxnDetails,
}

fn string<'a>(m: &'a Members, name: &'static str) -> Result<Option<&'a str>> {
    match m.get(name) {
        None => Ok(None),
        Some(TxnValue::Str(s)) => Ok(Some(s)),
        Some(TxnValue::Int(_)) => Err(Error::InvalidTransaction(
            "a known member has the wrong type (string expected)",
        )),
    }
}

fn required<'a>(m: &'a Members, name: &'static str) -> Result<&'a str> {
    string(m, name)?.ok_or(Error::InvalidTransaction(
        "missing required member (v, provider, ref or kind)",
    ))
}

/// An open-set name (`provider`, `kind`): 1 to 64 ASCII letters, digits or `_`.
fn other_name(s: &str) -> Result<String> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_owned())
    } else {
        Err(Error::InvalidTransaction(
            "provider and kind must be 1 to 64 ASCII letters, digits or '_'",
        ))
    }
}

impl ReceivedTransaction {
    /// Interprets a member set: `v` must be 2, `provider`, `ref` and `kind` present,
    /// known members well formed (displayed text under the display rules); unknown
    /// members and unknown provider/kind values are kept.
    pub fn from_members(members: Members) -> Result<Self> {
        match members.get("v") {
            Some(TxnValue::Int(CANONICAL_VERSION)) => {}
            Some(_) => {
                return Err(Error::InvalidTransaction(
                    "unsupported canonical transaction version",
                ));
            }
            None => return Err(Error::InvalidTransaction("missing member v")),
        }
        let p = required(&members, "provider")?;
        let provider = match Provider::parse(p) {
            Ok(p) => Named::Known(p),
            Err(_) => Named::Other(other_name(p)?),
        };
        let reference = ProviderRef::parse(required(&members, "ref")?)?;
        let k = required(&members, "kind")?;
        let kind = match TransactionKind::parse(k) {
            Ok(k) => Named::Known(k),
            Err(_) => Named::Other(other_name(k)?),
        };
        let amount = match (members.get("amount"), string(&members, "currency")?) {
            (Some(TxnValue::Int(minor)), Some(code)) => {
                Some(Money::from_minor(*minor, Currency::parse(code)?)?)
            }
            (None, None) => None,
            (Some(TxnValue::Str(_)), _) => {
                return Err(Error::InvalidTransaction("amount must be an integer"));
            }
            _ => {
                return Err(Error::InvalidTransaction("amount and currency go together"));
            }
        };
        let payee = string(&members, "payee")?.map(Payee::parse).transpose()?;
        let details = TxnDetails {
            merchant_country: string(&members, "merchant_country")?
                .map(CountryCode::parse)
                .transpose()?,
            merchant_url: string(&members, "merchant_url")?
                .map(MerchantUrl::parse)
                .transpose()?,
            purchase_date: string(&members, "purchase_date")?
                .map(PurchaseDate::parse)
                .transpose()?,
            card_last4: string(&members, "card_last4")?
                .map(CardLast4::parse)
                .transpose()?,
            operation: string(&members, "operation")?
                .map(Operation::parse)
                .transpose()?,
            operation_ref: string(&members, "operation_ref")?
                .map(ProviderRef::parse)
                .transpose()?,
        };
        Ok(Self {
            members,
            provider,
            reference,
            kind,
            amount,
            payee,
            details,
        })
    }

    /// The server's strict view: refuses unknown members and unknown provider or
    /// kind values.
    pub fn to_transaction(&self) -> Result<Transaction> {
        if self.unknown_members().next().is_some() {
            return Err(Error::InvalidTransaction("unknown member"));
        }
        let (Named::Known(provider), Named::Known(kind)) = (&self.provider, &self.kind) else {
            return Err(Error::InvalidTransaction("unknown provider or kind"));
        };
        Ok(Transaction {
            provider: *provider,
            reference: self.reference.clone(),
            kind: *kind,
            amount: self.amount,
            payee: self.payee.clone(),
            details: self.details.clone(),
        })
    }

    /// Every member as received, in JCS order.
    pub fn members(&self) -> &Members {
        &self.members
    }
    /// The processor (or another name from a newer server).
    pub fn provider(&self) -> &Named<Provider> {
        &self.provider
    }
    /// The processor's reference.
    pub fn reference(&self) -> &ProviderRef {
        &self.reference
    }
    /// What is authenticated (or another kind from a newer server).
    pub fn kind(&self) -> &Named<TransactionKind> {
        &self.kind
    }
    /// Amount and currency.
    pub fn amount(&self) -> Option<Money> {
        self.amount
    }
    /// Payee.
    pub fn payee(&self) -> Option<&Payee> {
        self.payee.as_ref()
    }
    /// Further display members.
    pub fn details(&self) -> &TxnDetails {
        &self.details
    }

    /// Members this version does not know, in JCS order.
    pub fn unknown_members(&self) -> impl Iterator<Item = (&str, &TxnValue)> {
        self.members.iter().filter(|(n, _)| !KNOWN.contains(n))
    }

    /// Canonical JSON of everything received.
    pub fn canonical_json(&self) -> String {
        self.members.canonical_json()
    }

    /// Digest over everything received: what the approval proof signs.
    pub fn digest(&self) -> TxnDigest {
        self.members.digest()
    }

    /// The amount formatted for display (`EUR 49.90`), if any.
    pub fn display_amount(&self) -> Option<String> {
        self.amount.map(|m| m.to_string())
    }

    /// One line for a notification or a key-store prompt:
    /// `EUR 49.90 at Example Shop`, `TRANSFER EUR 10.00`, `Approve login`, … with
    /// ` (card ending 1234)` when the card is known.
    pub fn summary(&self) -> String {
        let op = self.details.operation.as_ref();
        let mut line = match (&self.amount, &self.payee, op) {
            (Some(m), Some(p), _) => format!("{m} at {p}"),
            (Some(m), None, Some(o)) => format!("{o} {m}"),
            (Some(m), None, None) => m.to_string(),
            (None, Some(p), _) => format!("Request from {p}"),
            (None, None, Some(o)) => format!("Approve {o}"),
            (None, None, None) => "Authentication request".to_owned(),
        };
        if let Some(c) = &self.details.card_last4 {
            line.push_str(&format!(" (card ending {c})"));
        }
        line
    }

    /// Everything to show on the approval screen, known members first in a fixed
    /// order, then unknown members (text neutralised, at most 128 characters each).
    pub fn display_fields(&self) -> Vec<DisplayField> {
        let known = |key: &str, value: Option<String>| {
            value.map(|value| DisplayField {
                key: key.to_owned(),
                value,
                known: true,
            })
        };
        let d = &self.details;
        let text = |v: Option<&dyn fmt::Display>| v.map(|v| v.to_string());
        let kind = match &self.kind {
            Named::Known(k) => k.as_str().to_owned(),
            Named::Other(o) => o.clone(),
        };
        let provider = match &self.provider {
            Named::Known(p) => p.as_str().to_owned(),
            Named::Other(o) => o.clone(),
        };
        let mut out: Vec<DisplayField> = [
            known("amount", self.display_amount()),
            known("payee", text(self.payee.as_ref().map(|v| v as _))),
            known("operation", text(d.operation.as_ref().map(|v| v as _))),
            known(
                "operation_ref",
                text(d.operation_ref.as_ref().map(|v| v as _)),
            ),
            known(
                "merchant_country",
                text(d.merchant_country.as_ref().map(|v| v as _)),
            ),
            known(
                "merchant_url",
                text(d.merchant_url.as_ref().map(|v| v as _)),
            ),
            known(
                "purchase_date",
                text(d.purchase_date.as_ref().map(|v| v as _)),
            ),
            known("card_last4", text(d.card_last4.as_ref().map(|v| v as _))),
            known("kind", Some(kind)),
            known("provider", Some(provider)),
            known("ref", Some(self.reference.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.extend(self.unknown_members().map(|(n, v)| DisplayField {
            key: neutralize(n, 64),
            value: neutralize(&v.to_string(), 128),
            known: false,
        }));
        out
    }
}

impl From<&Transaction> for ReceivedTransaction {
    fn from(t: &Transaction) -> Self {
        Self {
            members: t.members(),
            provider: Named::Known(t.provider),
            reference: t.reference.clone(),
            kind: Named::Known(t.kind),
            amount: t.amount,
            payee: t.payee.clone(),
            details: t.details.clone(),
        }
    }
}

impl From<Transaction> for ReceivedTransaction {
    fn from(t: Transaction) -> Self {
        Self::from(&t)
    }
}

impl Serialize for ReceivedTransaction {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.members.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReceivedTransaction {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let members = Members::deserialize(deserializer)?;
        Self::from_members(members).map_err(serde::de::Error::custom)
    }
}
