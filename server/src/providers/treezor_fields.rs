//! The fields of Treezor's `card3DSv2Authentication` objects, which Treezor does not
//! publish: each name is configurable (`[providers.treezor.fields]`, a list of names
//! tried in order) and its source is written in docs/providers/treezor.md. Items are
//! read as maps of raw JSON values, so that amounts keep their exact lexeme and ids
//! may be strings or numbers.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Configurable field names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TreezorFields {
    /// The authentication request id (confirmed: the seed page; the older page spells
    /// it `authenticationRequestID`).
    pub auth_request_id: Vec<String>,
    /// The card id (Treezor's Card object `cardId`).
    pub card_id: Vec<String>,
    /// The card's public token (Treezor's Card object and the OOB enrolment answer).
    pub public_token: Vec<String>,
    /// The merchant name shown as payee (Treezor's card transaction `merchantName`).
    pub merchant_name: Vec<String>,
    /// Amount in major units (Treezor's card transaction `paymentAmount`).
    pub amount: Vec<String>,
    /// ISO 4217 numeric or alphabetic currency (`paymentCurrency`).
    pub currency: Vec<String>,
    /// Merchant country (card transaction `merchantCountry`, alpha-3, alpha-2 or numeric).
    pub merchant_country: Vec<String>,
    /// Merchant web address (`merchantUrl`, as in the shared example request).
    pub merchant_url: Vec<String>,
    /// Masked PAN whose last four digits are shown (Card object `maskedPan`).
    pub masked_pan: Vec<String>,
    /// The final result of an update (confirmed: `authenticationFinalResult`).
    pub final_result: Vec<String>,
    /// A time inside the signed payload ordering updates (Treezor objects'
    /// `modifiedDate`/`updatedDate`), since the envelope's `webhook_created_at` is not
    /// signed.
    pub modified_at: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for TreezorFields {
    fn default() -> Self {
        TreezorFields {
            auth_request_id: names(&["authenticationRequestId", "authenticationRequestID"]),
            card_id: names(&["cardId"]),
            public_token: names(&["publicToken"]),
            merchant_name: names(&["merchantName"]),
            amount: names(&["paymentAmount"]),
            currency: names(&["paymentCurrency"]),
            merchant_country: names(&["merchantCountry"]),
            merchant_url: names(&["merchantUrl"]),
            masked_pan: names(&["maskedPan"]),
            final_result: names(&["authenticationFinalResult"]),
            modified_at: names(&["modifiedDate", "updatedDate"]),
        }
    }
}

impl TreezorFields {
    /// Every list non-empty with non-empty names.
    pub fn check(&self) -> Result<(), String> {
        let all = [
            ("auth_request_id", &self.auth_request_id),
            ("card_id", &self.card_id),
            ("public_token", &self.public_token),
            ("merchant_name", &self.merchant_name),
            ("amount", &self.amount),
            ("currency", &self.currency),
            ("merchant_country", &self.merchant_country),
            ("merchant_url", &self.merchant_url),
            ("masked_pan", &self.masked_pan),
            ("final_result", &self.final_result),
            ("modified_at", &self.modified_at),
        ];
        for (key, list) in all {
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(format!(
                    "providers.treezor.fields.{key} must list at least one non-empty name"
                ));
            }
        }
        Ok(())
    }
}

/// How an untyped card link (a bare `provider_key`, as linked before links carried
/// their kind) is matched: as a `cardId` (default), as a `publicToken`, or as either.
/// Typed links (`cardId:<id>`, `publicToken:<token>`) only ever match their own field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UntypedLinks {
    /// A bare key is a `cardId`.
    #[default]
    CardId,
    /// A bare key is a `publicToken`.
    PublicToken,
    /// A bare key matches either field (the behaviour before typed links).
    Either,
}

/// The card-link keys to look up for a webhook's `cardId` and `publicToken`, in order.
pub fn link_keys(
    card_id: Option<&str>,
    public_token: Option<&str>,
    untyped: UntypedLinks,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |kind: &str, value: Option<&str>, bare: bool| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            keys.push(format!("{kind}:{v}"));
            if bare {
                keys.push(v.to_owned());
            }
        }
    };
    add(
        "cardId",
        card_id,
        matches!(untyped, UntypedLinks::CardId | UntypedLinks::Either),
    );
    add(
        "publicToken",
        public_token,
        matches!(untyped, UntypedLinks::PublicToken | UntypedLinks::Either),
    );
    keys
}

/// One `card3DSv2Authentication`, as raw members.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Item(HashMap<String, Box<RawValue>>);

impl Item {
    /// The first present, non-null member among `names`.
    pub fn raw(&self, names: &[String]) -> Option<&RawValue> {
        names
            .iter()
            .filter_map(|n| self.0.get(n))
            .map(AsRef::as_ref)
            .find(|r: &&RawValue| r.get().trim() != "null")
    }

    /// A string or number member as text (`"8638629"` and `8638629` alike).
    pub fn text(&self, names: &[String]) -> Option<String> {
        text_of(self.raw(names))
    }
}

/// A string or number as text; `None` for null, objects and arrays.
pub fn text_of(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?.get().trim();
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()
    } else if raw.starts_with(['{', '[']) || raw == "null" {
        None
    } else {
        Some(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_identifier_matches_its_own_kind() {
        assert_eq!(
            link_keys(Some("42"), Some("tok"), UntypedLinks::CardId),
            ["cardId:42", "42", "publicToken:tok"]
        );
        assert_eq!(
            link_keys(Some("42"), Some("tok"), UntypedLinks::PublicToken),
            ["cardId:42", "publicToken:tok", "tok"]
        );
        assert_eq!(
            link_keys(None, Some("tok"), UntypedLinks::Either),
            ["publicToken:tok", "tok"]
        );
        assert!(link_keys(Some(""), None, UntypedLinks::Either).is_empty());
    }
}
