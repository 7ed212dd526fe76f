//! The generic member set of a canonical transaction: names mapped to strings or
//! integers (0 ..= 2^53 − 1), serialised with RFC 8785 (JCS). The device keeps
//! every member it received, known or not, so the digest covers all of them.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::MAX_MINOR;

use super::TxnDigest;

/// Most members a transaction may have (known ones are 13).
pub const MAX_MEMBERS: usize = 64;
/// Longest member name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest string member, in characters.
pub const MAX_STRING_CHARS: usize = 1_024;

/// A member value: a string or a non-negative integer up to 2^53 − 1 (so it is an
/// exact IEEE double and JCS writes it as the plain decimal integer everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxnValue {
    /// A JSON string.
    Str(String),
    /// A JSON integer, 0 ..= 2^53 − 1.
    Int(i64),
}

impl TxnValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TxnValue::Str(s) => Some(s),
            TxnValue::Int(_) => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            TxnValue::Int(i) => Some(*i),
            TxnValue::Str(_) => None,
        }
    }
}

impl fmt::Display for TxnValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnValue::Str(s) => f.write_str(s),
            TxnValue::Int(i) => write!(f, "{i}"),
        }
    }
}

impl Serialize for TxnValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            TxnValue::Str(s) => serializer.serialize_str(s),
            TxnValue::Int(i) => serializer.serialize_i64(*i),
        }
    }
}

impl<'de> Deserialize<'de> for TxnValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TxnValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer from 0 to 2^53-1")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<TxnValue, E> {
                if v.chars().count() > MAX_STRING_CHARS {
                    return Err(E::custom("transaction member longer than 1024 characters"));
                }
                Ok(TxnValue::Str(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<TxnValue, E> {
                i64::try_from(v)
                    .ok()
                    .filter(|i| *i <= MAX_MINOR)
                    .map(TxnValue::Int)
                    .ok_or_else(|| E::custom("transaction integer above 2^53-1"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<TxnValue, E> {
                if (0..=MAX_MINOR).contains(&v) {
                    Ok(TxnValue::Int(v))
                } else {
                    Err(E::custom("transaction integer outside 0..2^53-1"))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Orders member names the way RFC 8785 §3.2.3 does: by UTF-16 code units.
fn jcs_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The members of a transaction, sorted in JCS order, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Members(Vec<(String, TxnValue)>);

impl Members {
    /// Builds a member set; refuses duplicate, empty or over-long names and more
    /// than [`MAX_MEMBERS`] members.
    pub fn from_pairs(mut pairs: Vec<(String, TxnValue)>) -> Result<Self> {
        if pairs.len() > MAX_MEMBERS {
            return Err(Error::InvalidTransaction("more than 64 members"));
        }
        if pairs
            .iter()
            .any(|(n, _)| n.is_empty() || n.len() > MAX_NAME_LEN)
        {
            return Err(Error::InvalidTransaction(
                "member names must be 1 to 64 bytes",
            ));
        }
        pairs.sort_by(|a, b| jcs_cmp(&a.0, &b.0));
        if pairs.windows(2).any(|w| match w {
            [a, b] => a.0 == b.0,
            _ => false,
        }) {
            return Err(Error::InvalidTransaction("duplicate member"));
        }
        Ok(Self(pairs))
    }

    /// The value of member `name`.
    pub fn get(&self, name: &str) -> Option<&TxnValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All members in JCS order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TxnValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The RFC 8785 canonical JSON text of all members.
    pub fn canonical_json(&self) -> String {
        let mut out = String::with_capacity(200);
        out.push('{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            jcs_string(&mut out, name);
            out.push(':');
            match value {
                TxnValue::Str(s) => jcs_string(&mut out, s),
                TxnValue::Int(n) => out.push_str(&n.to_string()),
            }
        }
        out.push('}');
        out
    }

    /// SHA-256 of [`Members::canonical_json`].
    pub fn digest(&self) -> TxnDigest {
        let d = ring::digest::digest(&ring::digest::SHA256, self.canonical_json().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TxnDigest::from_bytes(out)
    }
}

impl Serialize for Members {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transaction object of string or integer members")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut pairs = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, TxnValue>()? {
                    if pairs.len() >= MAX_MEMBERS {
                        return Err(de::Error::custom("more than 64 transaction members"));
                    }
                    pairs.push((name, value));
                }
                Members::from_pairs(pairs).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Writes `s` as a JSON string the way RFC 8785 §3.2.2.2 prescribes (the ECMAScript
/// `JSON.stringify` rules): only `"`, `\` and C0 controls are escaped; `\b \t \n \f \r`
/// use their short forms, other controls `\u00xx` with lower-case hex.
pub(crate) fn jcs_string(out: &mut String, s: &str) {
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
