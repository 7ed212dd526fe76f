//! ISO 4217 currencies and exact, non-negative amounts in integer minor units.
//!
//! Amounts never pass through a float: processors send JSON numbers in major
//! units (Enfuce sends `49.90`), and [`Money::from_major_lexeme`] turns the
//! number's exact text into minor units (`4990` cents), refusing anything that
//! a currency cannot represent.
//!
//! The currency table is ISO 4217 List One, edition 2026-01-01
//! ([`ISO4217_EDITION`]), 178 codes. Since the 2024-06-25 edition it gained XCG
//! (Caribbean Guilder, replacing ANG) and XAD (Arab Accounting Dinar) and lost
//! ANG, CUC and BGN (Bulgaria joined the euro on 2026-01-01); HRK, SLL (now SLE)
//! and ZWL (now ZWG) were withdrawn before. Codes whose minor unit is "N.A."
//! (XAU, XAG, XPT, XPD, XBA–XBD, XDR, XSU, XUA, XTS, XXX) parse as [`Currency`]
//! but [`Money`] refuses them.

mod iso4217;
mod processor;

pub use processor::{ADYEN, ISO4217, MinorUnits};

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use iso4217::{CurrencyInfo, TABLE};

/// Largest amount accepted, in minor units: 2^53 − 1 = 9 007 199 254 740 991.
///
/// Every integer up to 2^53 − 1 is exactly representable as an IEEE 754 double,
/// so an amount in the canonical transaction serialises (RFC 8785 JCS, which
/// formats numbers as ECMAScript doubles) to the same integer in every language
/// and on every device. Larger values would be rounded by JavaScript/Swift/Kotlin
/// JSON stacks and break the signed digest. (That is 90 trillion euros.)
pub const MAX_MINOR: i64 = 9_007_199_254_740_991;

/// Number of decimal digits of [`MAX_MINOR`].
const MAX_MINOR_DIGITS: i128 = 16;

/// Publication date of the ISO 4217 List One edition in the built-in table.
pub const ISO4217_EDITION: &str = iso4217::EDITION;

/// Why an amount or currency was refused.
///
/// Messages never echo the offending input (it may be huge or hostile); only
/// a validated currency code or a fixed reason is shown.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// The text is not exactly three upper-case ASCII letters (`"eur"`, `"EURO"`, `""`).
    #[error("not an ISO 4217 alphabetic code: expected exactly three upper-case ASCII letters")]
    NotACurrencyCode,
    /// Three upper-case letters, but not an active code of ISO 4217 List One.
    #[error(
        "unknown currency code {code}: not in ISO 4217 List One (edition {})",
        iso4217::EDITION
    )]
    UnknownCurrency {
        /// The code as received (always three ASCII upper-case letters).
        code: String,
    },
    /// The currency has no minor unit ("N.A." in ISO 4217: XAU, XDR, XXX, …) and
    /// cannot carry an amount.
    #[error("currency {currency} has no minor unit in ISO 4217 and cannot carry an amount")]
    NoMinorUnit {
        /// The refused currency.
        currency: Currency,
    },
    /// The amount is negative; this includes `-0` and `-0.00`.
    #[error("negative amounts are refused")]
    Negative,
    /// A non-zero digit lies beyond the currency's minor unit (`49.999` EUR, `5000.5` JPY).
    #[error("{currency} has {exponent} decimal(s); the amount has a non-zero digit beyond them")]
    TooManyDecimals {
        /// The amount's currency.
        currency: Currency,
        /// Its number of decimals (ISO 4217 minor unit).
        exponent: u8,
    },
    /// The amount exceeds [`MAX_MINOR`] minor units.
    #[error("amount exceeds the maximum of 9007199254740991 minor units")]
    Overflow,
    /// The text is not a JSON number (RFC 8259 §6 grammar).
    #[error("not a JSON number: {reason}")]
    InvalidLexeme {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
}

/// An ISO 4217 currency of List One (edition [`ISO4217_EDITION`]).
///
/// A pointer into a static table: `Copy`, compared, ordered and hashed by its
/// alphabetic code. Serialised as the three-letter code (`"EUR"`).
#[derive(Clone, Copy)]
pub struct Currency(&'static CurrencyInfo);

impl Currency {
    /// Parses an alphabetic code: exactly three upper-case ASCII letters listed in
    /// ISO 4217 List One. Lower-case (`"eur"`) and unknown codes are refused.
    /// Codes without a minor unit (`"XAU"`) parse, but [`Money`] refuses them.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::NotACurrencyCode);
        }
        TABLE
            .binary_search_by(|info| info.code.as_bytes().cmp(bytes))
            .ok()
            .and_then(|i| TABLE.get(i))
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.to_owned(),
            })
    }

    /// The currency with this ISO 4217 numeric code (`978` → EUR), if listed.
    pub fn from_numeric(numeric: u16) -> Option<Currency> {
        TABLE
            .iter()
            .find(|info| info.numeric == numeric)
            .map(Currency)
    }

    /// Every currency of the table, in alphabetic order of code.
    pub fn all() -> impl ExactSizeIterator<Item = Currency> {
        TABLE.iter().map(Currency)
    }

    /// The alphabetic code, e.g. `"EUR"`.
    pub fn code(self) -> &'static str {
        self.0.code
    }

    /// The numeric code, e.g. `978` for EUR (`8` for ALL, written "008" in the list).
    pub fn numeric(self) -> u16 {
        self.0.numeric
    }

    /// Digits of the minor unit (EUR 2, JPY 0, BHD 3, CLF 4), or `None` when
    /// ISO 4217 gives "N.A." (precious metals, XDR, XXX, …).
    pub fn exponent(self) -> Option<u8> {
        self.0.exponent
    }

    /// The English name as written in ISO 4217, e.g. `"Euro"`, `"Yen"`.
    pub fn name(self) -> &'static str {
        self.0.name
    }
}

impl PartialEq for Currency {
    fn eq(&self, other: &Self) -> bool {
        self.0.code == other.0.code
    }
}

impl Eq for Currency {}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.code.cmp(other.0.code)
    }
}

impl Hash for Currency {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.code.hash(state);
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = Currency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 4217 alphabetic currency code")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Currency, E> {
                Currency::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(CodeVisitor)
    }
}

/// A non-negative amount in integer minor units of a currency that has a minor
/// unit, at most [`MAX_MINOR`].
///
/// Serialised as `{"minor":4990,"currency":"EUR"}`; deserialisation goes through
/// [`Money::from_minor`] and refuses unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawMoney")]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// The unvalidated wire form of [`Money`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMoney {
    minor: i64,
    currency: Currency,
}

impl TryFrom<RawMoney> for Money {
    type Error = MoneyError;

    fn try_from(raw: RawMoney) -> Result<Self, Self::Error> {
        Money::from_minor(raw.minor, raw.currency)
    }
}

impl Money {
    /// An amount of `minor` minor units (cents for EUR, yen for JPY).
    ///
    /// Refuses a currency without minor unit, a negative amount and one above
    /// [`MAX_MINOR`].
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if currency.exponent().is_none() {
            return Err(MoneyError::NoMinorUnit { currency });
        }
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        if minor > MAX_MINOR {
            return Err(MoneyError::Overflow);
        }
        Ok(Money { minor, currency })
    }

    /// Parses a JSON number lexeme in MAJOR units exactly, without floats:
    /// `"49.90"` EUR → 4990, `"1.0E7"` EUR → 1 000 000 000, `"4990e-2"` EUR → 4990.
    ///
    /// Accepts the RFC 8259 number grammar only: no `+`, leading zeros, bare `.`,
    /// whitespace, `NaN` or empty text. Zeros beyond the currency's decimals are
    /// fine (`"49.900"` EUR); a non-zero digit there is [`MoneyError::TooManyDecimals`].
    /// Any minus sign is refused as [`MoneyError::Negative`], `"-0"` and `"-0.00"`
    /// included: a processor has no reason to send a signed zero, and refusing it
    /// keeps one spelling per amount. Runs in time linear in the text and never
    /// allocates, whatever the exponent (`"1e999999999"` fails at once, `"0e999999999"` is zero).
    pub fn from_major_lexeme(lexeme: &str, currency: Currency) -> Result<Money, MoneyError> {
        let exponent = currency
            .exponent()
            .ok_or(MoneyError::NoMinorUnit { currency })?;
        let number = scan(lexeme.as_bytes())?;
        if number.negative {
            return Err(MoneyError::Negative);
        }
        let digits = number.int.iter().chain(number.frac.iter()).copied();
        let total = number.int.len() + number.frac.len();
        let leading = digits.clone().take_while(|&d| d == b'0').count();
        if leading == total {
            return Ok(Money { minor: 0, currency });
        }
        let trailing = digits.clone().rev().take_while(|&d| d == b'0').count();
        let significant = total - leading - trailing;
        // value = significant digits × 10^shift, in minor units.
        let shift =
            number.exp + i128::from(exponent) - len_i128(number.frac.len()) + len_i128(trailing);
        if shift < 0 {
            return Err(MoneyError::TooManyDecimals { currency, exponent });
        }
        if len_i128(significant) + shift > MAX_MINOR_DIGITS {
            return Err(MoneyError::Overflow);
        }
        // At most 16 digits in all: fits in u64 without overflow.
        let mut value = digits
            .skip(leading)
            .take(significant)
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        for _ in 0..shift {
            value *= 10;
        }
        match i64::try_from(value) {
            Ok(minor) if minor <= MAX_MINOR => Ok(Money { minor, currency }),
            _ => Err(MoneyError::Overflow),
        }
    }

    /// The amount in minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in major units with exactly the currency's decimals:
    /// `"49.90"` (EUR), `"5000"` (JPY), `"1.234"` (BHD), `"0.05"` (EUR).
    /// [`Money::from_major_lexeme`] reads it back to the same amount.
    pub fn to_major_string(&self) -> String {
        let exponent = usize::from(self.currency.exponent().unwrap_or(0));
        if exponent == 0 {
            return self.minor.to_string();
        }
        let digits = format!("{:0width$}", self.minor, width = exponent + 1);
        let (int, frac) = digits.split_at(digits.len() - exponent);
        format!("{int}.{frac}")
    }
}

/// For display in the app: `EUR 49.90`, `JPY 5000`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_major_string())
    }
}

/// A JSON number split into its parts (digits as ASCII, exponent saturated).
struct Scanned<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    exp: i128,
}

/// Exponents are saturated at ±10^30: far beyond any text length, so the
/// verdict is unchanged, and the arithmetic stays within i128.
const EXP_CAP: i128 = 1_000_000_000_000_000_000_000_000_000_000;

fn len_i128(n: usize) -> i128 {
    i128::try_from(n).unwrap_or(i128::MAX / 4)
}

fn digits_from(s: &[u8], start: usize) -> (&[u8], usize) {
    let rest = s.get(start..).unwrap_or_default();
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (rest.get(..n).unwrap_or_default(), start + n)
}

/// Checks `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` over the whole text.
fn scan(s: &[u8]) -> Result<Scanned<'_>, MoneyError> {
    let bad = |reason| Err(MoneyError::InvalidLexeme { reason });
    if s.is_empty() {
        return bad("empty");
    }
    let negative = s.first() == Some(&b'-');
    let (int, mut i) = digits_from(s, usize::from(negative));
    match int {
        [] => return bad("expected a digit"),
        [b'0', _, ..] => return bad("leading zero"),
        _ => {}
    }
    let mut frac: &[u8] = &[];
    if s.get(i) == Some(&b'.') {
        (frac, i) = digits_from(s, i + 1);
        if frac.is_empty() {
            return bad("expected a digit after the decimal point");
        }
    }
    let mut exp = 0i128;
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let sign = s.get(i + 1).copied();
        let skip = usize::from(matches!(sign, Some(b'+' | b'-')));
        let digits;
        (digits, i) = digits_from(s, i + 1 + skip);
        if digits.is_empty() {
            return bad("expected a digit in the exponent");
        }
        let magnitude = digits.iter().fold(0i128, |acc, d| {
            (acc * 10 + i128::from(d - b'0')).min(EXP_CAP)
        });
        exp = if sign == Some(b'-') {
            -magnitude
        } else {
            magnitude
        };
    }
    if i != s.len() {
        return bad("unexpected character");
    }
    Ok(Scanned {
        negative,
        int,
        frac,
        exp,
    })
}

#[cfg(test)]
mod tests;
