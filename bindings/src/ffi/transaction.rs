//! The canonical transaction as the app sees it (protocol §3, v2): the known members
//! as fields, every other member kept as it was received (a newer server may add
//! some), and the display lines the core renders. The digest helpers work on all
//! members, so the golden vectors, including those of newer servers, check the same
//! bytes in every language.

use pushauth_core::transaction::{
    DisplayField as CoreDisplayField, Members, ReceivedTransaction, TxnValue,
};

use super::error::PushAuthError;
use super::types::{Provider, TransactionKind};
use crate::error::Error;

/// One member of a transaction this SDK version does not know: a text or an integer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TxnMemberValue {
    /// A JSON string.
    Text {
        /// The text as received (not shown without neutralising it; see
        /// `ChallengeView::details`).
        value: String,
    },
    /// A JSON integer.
    Integer {
        /// The integer.
        value: i64,
    },
}

/// A member of the transaction outside the fields this SDK version knows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxnMember {
    /// Member name.
    pub name: String,
    /// Member value.
    pub value: TxnMemberValue,
}

/// One line of the approval screen, in the order to show them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DisplayField {
    /// Stable key: `amount`, `payee`, `merchant_country`, …, or a name this version
    /// does not know.
    pub key: String,
    /// Text to show.
    pub value: String,
    /// False for members this SDK version does not know (show them generically).
    pub known: bool,
}

impl From<&CoreDisplayField> for DisplayField {
    fn from(f: &CoreDisplayField) -> Self {
        DisplayField {
            key: f.key.clone(),
            value: f.value.clone(),
            known: f.known,
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
    /// Merchant country, ISO 3166-1 alpha-2.
    #[uniffi(default)]
    pub merchant_country: Option<String>,
    /// Merchant web address.
    #[uniffi(default)]
    pub merchant_url: Option<String>,
    /// Purchase date, RFC 3339 UTC.
    #[uniffi(default)]
    pub purchase_date: Option<String>,
    /// Last four digits of the card.
    #[uniffi(default)]
    pub card_last4: Option<String>,
    /// The processor's operation type (e.g. Paysafe `TRANSFER`).
    #[uniffi(default)]
    pub operation: Option<String>,
    /// The processor's id of the operation.
    #[uniffi(default)]
    pub operation_ref: Option<String>,
    /// Members this SDK version does not know, as received.
    #[uniffi(default)]
    pub other_members: Vec<TxnMember>,
}

/// The optional text members, by name.
fn text_fields(t: &Transaction) -> [(&'static str, &Option<String>); 7] {
    [
        ("payee", &t.payee),
        ("merchant_country", &t.merchant_country),
        ("merchant_url", &t.merchant_url),
        ("purchase_date", &t.purchase_date),
        ("card_last4", &t.card_last4),
        ("operation", &t.operation),
        ("operation_ref", &t.operation_ref),
    ]
}

impl From<&ReceivedTransaction> for Transaction {
    fn from(r: &ReceivedTransaction) -> Self {
        let text = |name: &str| {
            r.members()
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Transaction {
            provider: r.provider().into(),
            reference: r.reference().as_str().to_owned(),
            kind: r.kind().into(),
            amount_minor: r.amount().map(|m| m.minor()),
            currency: r.amount().map(|m| m.currency().code().to_owned()),
            payee: text("payee"),
            merchant_country: text("merchant_country"),
            merchant_url: text("merchant_url"),
            purchase_date: text("purchase_date"),
            card_last4: text("card_last4"),
            operation: text("operation"),
            operation_ref: text("operation_ref"),
            other_members: r
                .unknown_members()
                .map(|(name, v)| TxnMember {
                    name: name.to_owned(),
                    value: match v {
                        TxnValue::Str(s) => TxnMemberValue::Text { value: s.clone() },
                        TxnValue::Int(i) => TxnMemberValue::Integer { value: *i },
                    },
                })
                .collect(),
        }
    }
}

impl Transaction {
    /// The members, checked by the core exactly as a device checks a received
    /// transaction (version 2, known members well formed, unknown ones kept).
    pub(crate) fn into_received(self) -> Result<ReceivedTransaction, Error> {
        let t = self;
        let mut pairs = vec![
            (
                "v".to_owned(),
                TxnValue::Int(pushauth_core::transaction::CANONICAL_VERSION),
            ),
            ("provider".to_owned(), TxnValue::Str(t.provider.wire())),
            ("ref".to_owned(), TxnValue::Str(t.reference.clone())),
            ("kind".to_owned(), TxnValue::Str(t.kind.wire())),
        ];
        match (t.amount_minor, &t.currency) {
            (Some(minor), Some(code)) => {
                pairs.push(("amount".to_owned(), TxnValue::Int(minor)));
                pairs.push(("currency".to_owned(), TxnValue::Str(code.clone())));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Input(
                    "amount_minor and currency go together".to_owned(),
                ));
            }
        }
        for (name, value) in text_fields(&t) {
            if let Some(v) = value {
                pairs.push((name.to_owned(), TxnValue::Str(v.clone())));
            }
        }
        for m in t.other_members {
            let value = match m.value {
                TxnMemberValue::Text { value } => TxnValue::Str(value),
                TxnMemberValue::Integer { value } => TxnValue::Int(value),
            };
            pairs.push((m.name, value));
        }
        let members = Members::from_pairs(pairs).map_err(|e| Error::input("transaction", &e))?;
        ReceivedTransaction::from_members(members).map_err(|e| Error::input("transaction", &e))
    }
}

/// The RFC 8785 canonical JSON of a transaction (protocol §3): every member,
/// known or not.
#[uniffi::export]
pub fn canonical_transaction_json(transaction: Transaction) -> Result<String, PushAuthError> {
    Ok(transaction.into_received()?.canonical_json())
}

/// base64url(SHA-256(canonical JSON)): the `txn` the approval proof signs.
#[uniffi::export]
pub fn transaction_digest(transaction: Transaction) -> Result<String, PushAuthError> {
    Ok(transaction.into_received()?.digest().to_string())
}

/// The lines of the approval screen for a transaction, in order (amount, payee,
/// merchant country and address, date, card, operation, then members this SDK
/// version does not know, their text neutralised).
#[uniffi::export]
pub fn transaction_display_fields(
    transaction: Transaction,
) -> Result<Vec<DisplayField>, PushAuthError> {
    Ok(transaction
        .into_received()?
        .display_fields()
        .iter()
        .map(DisplayField::from)
        .collect())
}
