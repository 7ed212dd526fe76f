//! The canonical transaction: what the cardholder is shown and signs (PSD2 RTS
//! art. 5 dynamic linking). The device computes the digest from the fields it
//! displays; the server computes it from what the processor sent; the approval proof
//! carries the device's digest and the server refuses any difference.
//!
//! Canonical form (see docs/protocol.md §3): the RFC 8785 (JCS) serialisation of
//! `{"amount","currency","kind","payee","provider","ref","v"}` with absent members
//! omitted; `amount` is an integer in minor units (≤ 2^53−1, so JCS number
//! serialisation is the plain decimal integer on every platform).

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::b64;
use crate::error::{Error, Result};
use crate::ids::{Provider, ProviderRef};
use crate::money::{Currency, Money};

/// Version of the canonical transaction encoding (`v`). A new encoding gets a new
/// number, and a new proof `typ`.
pub const CANONICAL_VERSION: u32 = 1;

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
        [
            TransactionKind::Payment,
            TransactionKind::Recurring,
            TransactionKind::WalletOperation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or(Error::InvalidId {
            kind: "transaction kind",
            reason: "unknown kind",
        })
    }
}

/// The payee (merchant) shown to the cardholder: 1 to 256 Unicode scalar values, no
/// control characters, not only white space. Kept exactly as given otherwise (no
/// trimming, no normalisation), because the digest must bind what is displayed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Payee(String);

impl Payee {
    /// Longest accepted payee, in characters.
    pub const MAX_CHARS: usize = 256;

    /// Parses a payee name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            return Err(Error::InvalidPayee("empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(Error::InvalidPayee("longer than 256 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::InvalidPayee("contains control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// Builds a payee from untrusted processor text: control characters become
    /// spaces and the text is cut at 256 characters. Returns `None` when nothing
    /// printable remains. Used by connectors so that an odd merchant name does not
    /// make an otherwise valid webhook fail.
    pub fn sanitize(s: &str) -> Option<Self> {
        let cleaned: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(Self::MAX_CHARS)
            .collect();
        Self::parse(&cleaned).ok()
    }

    /// The payee as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Payee {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Payee> for String {
    fn from(p: Payee) -> String {
        p.0
    }
}

impl fmt::Debug for Payee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payee({:?})", self.0)
    }
}

impl fmt::Display for Payee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transaction to authenticate, as bound by the approval proof.
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
}

impl Transaction {
    /// The RFC 8785 canonical JSON text of this transaction.
    pub fn canonical_json(&self) -> String {
        // Members in JCS order: sorted by UTF-16 code units of the (ASCII) names.
        let mut out = String::with_capacity(160);
        out.push('{');
        if let Some(m) = &self.amount {
            out.push_str("\"amount\":");
            out.push_str(&m.minor().to_string());
            out.push_str(",\"currency\":");
            jcs_string(&mut out, m.currency().code());
            out.push(',');
        }
        out.push_str("\"kind\":");
        jcs_string(&mut out, self.kind.as_str());
        if let Some(p) = &self.payee {
            out.push_str(",\"payee\":");
            jcs_string(&mut out, p.as_str());
        }
        out.push_str(",\"provider\":");
        jcs_string(&mut out, self.provider.as_str());
        out.push_str(",\"ref\":");
        jcs_string(&mut out, self.reference.as_str());
        out.push_str(",\"v\":");
        out.push_str(&CANONICAL_VERSION.to_string());
        out.push('}');
        out
    }

    /// SHA-256 of the canonical JSON.
    pub fn digest(&self) -> TxnDigest {
        let d = ring::digest::digest(&ring::digest::SHA256, self.canonical_json().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TxnDigest(out)
    }

    /// The amount formatted for display (`EUR 49.90`), if any.
    pub fn display_amount(&self) -> Option<String> {
        self.amount.map(|m| m.to_string())
    }
}

/// Writes `s` as a JSON string the way RFC 8785 §3.2.2.2 prescribes (the ECMAScript
/// `JSON.stringify` rules): only `"`, `\` and C0 controls are escaped; `\b \t \n \f \r`
/// use their short forms, other controls `\u00xx` with lower-case hex.
fn jcs_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Wire shape of a transaction inside a server challenge: the canonical members.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTransaction {
    v: u32,
    provider: Provider,
    #[serde(rename = "ref")]
    reference: ProviderRef,
    kind: TransactionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payee: Option<Payee>,
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        WireTransaction {
            v: CANONICAL_VERSION,
            provider: self.provider,
            reference: self.reference.clone(),
            kind: self.kind,
            amount: self.amount.map(|m| m.minor()),
            currency: self.amount.map(|m| m.currency()),
            payee: self.payee.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireTransaction::deserialize(deserializer)?;
        if w.v != CANONICAL_VERSION {
            return Err(D::Error::custom(
                "unsupported canonical transaction version",
            ));
        }
        let amount = match (w.amount, w.currency) {
            (Some(minor), Some(currency)) => {
                Some(Money::from_minor(minor, currency).map_err(D::Error::custom)?)
            }
            (None, None) => None,
            _ => return Err(D::Error::custom("amount and currency go together")),
        };
        Ok(Transaction {
            provider: w.provider,
            reference: w.reference,
            kind: w.kind,
            amount,
            payee: w.payee,
        })
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
mod tests {
    use super::*;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn sample() -> Transaction {
        Transaction {
            provider: Provider::Enfuce,
            reference: ProviderRef::parse("6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11").unwrap(),
            kind: TransactionKind::Payment,
            amount: Some(eur(4990)),
            payee: Some(Payee::parse("Example Shop").unwrap()),
        }
    }

    #[test]
    fn canonical_json_is_jcs_ordered() {
        assert_eq!(
            sample().canonical_json(),
            r#"{"amount":4990,"currency":"EUR","kind":"payment","payee":"Example Shop","provider":"enfuce","ref":"6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11","v":1}"#
        );
        let bare = Transaction {
            amount: None,
            payee: None,
            ..sample()
        };
        assert_eq!(
            bare.canonical_json(),
            r#"{"kind":"payment","provider":"enfuce","ref":"6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11","v":1}"#
        );
    }

    #[test]
    fn canonical_json_matches_serde_of_sorted_value() {
        // JCS for our value space (ASCII keys, strings, small integers) equals
        // serde_json's compact output of a key-sorted map.
        let t = Transaction {
            payee: Some(Payee::parse("Café \"Zoë\" \\ 東京 😀").unwrap()),
            ..sample()
        };
        let value: serde_json::Value = serde_json::from_str(&t.canonical_json()).unwrap();
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(value).unwrap();
        assert_eq!(serde_json::to_string(&sorted).unwrap(), t.canonical_json());
    }

    #[test]
    fn every_bound_field_changes_the_digest() {
        let base = sample().digest();
        let changed = [
            Transaction {
                amount: Some(eur(4991)),
                ..sample()
            },
            Transaction {
                amount: Some(Money::from_minor(4990, Currency::parse("USD").unwrap()).unwrap()),
                ..sample()
            },
            Transaction {
                amount: None,
                ..sample()
            },
            Transaction {
                payee: Some(Payee::parse("Example Shop ").unwrap()),
                ..sample()
            },
            Transaction {
                payee: None,
                ..sample()
            },
            Transaction {
                provider: Provider::Adyen,
                ..sample()
            },
            Transaction {
                reference: ProviderRef::parse("other").unwrap(),
                ..sample()
            },
            Transaction {
                kind: TransactionKind::Recurring,
                ..sample()
            },
        ];
        for t in changed {
            assert_ne!(t.digest(), base, "{t:?}");
        }
    }

    #[test]
    fn wire_round_trip_and_refusals() {
        let t = sample();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), t);
        for bad in [
            json.replace(r#""v":1"#, r#""v":2"#),
            json.replace(r#","currency":"EUR""#, ""),
            json.replace(r#""amount":4990"#, r#""amount":-1"#),
            json.replace(r#""amount":4990"#, r#""amount":49.9"#),
            json.replace(r#""kind":"payment""#, r#""kind":"refund""#),
            json.replace('}', r#","extra":1}"#),
            json.replace(r#""payee":"Example Shop""#, r#""payee":"a\u0007b""#),
        ] {
            assert!(serde_json::from_str::<Transaction>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payee_rules() {
        assert!(Payee::parse("").is_err());
        assert!(Payee::parse("   ").is_err());
        assert!(Payee::parse("a\nb").is_err());
        assert!(Payee::parse(&"é".repeat(256)).is_ok());
        assert!(Payee::parse(&"é".repeat(257)).is_err());
        assert_eq!(
            Payee::sanitize("Shop\r\nLtd").unwrap().as_str(),
            "Shop  Ltd"
        );
        assert!(Payee::sanitize("\n\t").is_none());
        assert_eq!(
            Payee::sanitize(&"x".repeat(300)).unwrap().as_str().len(),
            256
        );
    }

    #[test]
    fn digest_text_form() {
        let d = sample().digest();
        assert_eq!(TxnDigest::parse(&d.to_string()).unwrap(), d);
        assert!(TxnDigest::parse("abc").is_err());
        assert!(d.ct_eq(&d));
    }
}
