//! Typed members of the canonical transaction and the rules for displayed text.
//!
//! Everything the cardholder reads must be what the digest binds, and must read the
//! same everywhere: no control characters (Cc), no format characters (Cf: bidi
//! embeddings, overrides and isolates U+202A–U+202E / U+2066–U+2069, the marks
//! U+200E/U+200F/U+061C, zero-width space and joiners U+200B–U+200D, word joiner,
//! BOM, soft hyphen, …) and no line or paragraph separators (Zl U+2028, Zp U+2029).
//! General categories come from the Unicode Character Database through the
//! `unicode-properties` crate. Parsing refuses such text; the `sanitize`
//! constructors used by connectors neutralise it (format characters removed,
//! controls and separators turned into spaces).

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, Result};

/// True for characters displayed text must not contain: Cc, Cf, Zl, Zp.
pub fn is_forbidden_in_display(c: char) -> bool {
    // ASCII without the table look-up (every text of every webhook passes here): its
    // only such characters are the controls, U+0000–U+001F and U+007F.
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// True for format characters (Cf); no ASCII character is one.
fn is_format(c: char) -> bool {
    !c.is_ascii() && c.general_category() == GeneralCategory::Format
}

/// Neutralises untrusted text for display: format characters (Cf) are removed,
/// controls and line/paragraph separators become spaces, and the result is cut at
/// `max_chars` characters.
pub fn neutralize(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !is_format(*c))
        .map(|c| if is_forbidden_in_display(c) { ' ' } else { c })
        .take(max_chars)
        .collect()
}

/// Why displayed text was refused, or `None` when it is fine.
fn display_problem(s: &str, max_chars: usize) -> Option<&'static str> {
    if s.trim().is_empty() {
        return Some("empty");
    }
    if s.chars().count() > max_chars {
        return Some("too long");
    }
    if s.chars().any(char::is_control) {
        return Some("contains control characters");
    }
    if s.chars().any(is_forbidden_in_display) {
        return Some("contains bidi, zero-width or separator characters");
    }
    None
}

macro_rules! text_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// The payee (merchant) shown to the cardholder: 1 to 256 Unicode scalar values,
    /// no Cc/Cf/Zl/Zp characters, not only white space. Kept exactly as given
    /// otherwise (no trimming, no normalisation), because the digest must bind what
    /// is displayed.
    Payee
);

impl Payee {
    /// Longest accepted payee, in characters.
    pub const MAX_CHARS: usize = 256;

    /// Parses a payee name.
    pub fn parse(s: &str) -> Result<Self> {
        match display_problem(s, Self::MAX_CHARS) {
            Some("too long") => Err(Error::InvalidPayee("longer than 256 characters")),
            Some(reason) => Err(Error::InvalidPayee(reason)),
            None => Ok(Self(s.to_owned())),
        }
    }

    /// Builds a payee from untrusted processor text with [`neutralize`]. Returns
    /// `None` when nothing printable remains. Used by connectors so that an odd
    /// merchant name does not make an otherwise valid webhook fail.
    pub fn sanitize(s: &str) -> Option<Self> {
        Self::parse(&neutralize(s, Self::MAX_CHARS)).ok()
    }
}

text_newtype!(
    /// The merchant's web address as the processor gave it (`merchant_url`): 1 to
    /// 512 characters under the display rules. Shown, not opened.
    MerchantUrl
);

impl MerchantUrl {
    /// Longest accepted address, in characters.
    pub const MAX_CHARS: usize = 512;

    /// Parses a merchant address (no white space at all).
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(reason) = display_problem(s, Self::MAX_CHARS) {
            return Err(Error::InvalidTransaction(match reason {
                "empty" => "merchant_url is empty",
                "too long" => "merchant_url is longer than 512 characters",
                _ => "merchant_url contains control, bidi, zero-width or separator characters",
            }));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(Error::InvalidTransaction(
                "merchant_url contains white space",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// From untrusted processor text: neutralised, white space removed; `None` when
    /// nothing remains or it is too long.
    pub fn sanitize(s: &str) -> Option<Self> {
        let cleaned: String = neutralize(s, usize::MAX)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        Self::parse(&cleaned).ok()
    }
}

text_newtype!(
    /// ISO 3166-1 alpha-2 country code of the merchant (`merchant_country`), e.g. `FI`.
    CountryCode
);

impl CountryCode {
    /// Parses two upper-case ASCII letters.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidTransaction(
                "merchant_country must be two upper-case letters (ISO 3166-1 alpha-2)",
            ))
        }
    }
}

text_newtype!(
    /// The last four digits of the card (`card_last4`).
    CardLast4
);

impl CardLast4 {
    /// Parses exactly four ASCII digits.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidTransaction("card_last4 must be four digits"))
        }
    }
}

text_newtype!(
    /// The processor's operation type (`operation`), e.g. Paysafe `flow.type`
    /// `TRANSFER`: 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
    Operation
);

impl Operation {
    /// Parses an operation type.
    pub fn parse(s: &str) -> Result<Self> {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidTransaction(
                "operation must be 1 to 64 ASCII letters, digits, '_', '-' or '.'",
            ))
        }
    }
}

text_newtype!(
    /// When the purchase was made (`purchase_date`): RFC 3339 in UTC to the second,
    /// exactly `YYYY-MM-DDTHH:MM:SSZ` (one spelling per instant, so the digest is
    /// stable).
    PurchaseDate
);

impl PurchaseDate {
    /// Parses `YYYY-MM-DDTHH:MM:SSZ` with a valid calendar date and time.
    pub fn parse(s: &str) -> Result<Self> {
        const BAD: Error = Error::InvalidTransaction(
            "purchase_date must be an RFC 3339 UTC time to the second (YYYY-MM-DDTHH:MM:SSZ)",
        );
        let b = s.as_bytes();
        if b.len() != 20 {
            return Err(BAD);
        }
        let shape = b"dddd-dd-ddTdd:dd:ddZ";
        let shape_ok = b.iter().zip(shape).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        });
        if !shape_ok {
            return Err(BAD);
        }
        let num = |r: std::ops::Range<usize>| -> u32 {
            b.get(r)
                .unwrap_or_default()
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let (year, month, day) = (num(0..4), num(5..7), num(8..10));
        let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(BAD),
        };
        if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
            return Err(BAD);
        }
        Ok(Self(s.to_owned()))
    }

    /// From seconds since the Unix epoch (UTC), for connectors that hold a time.
    pub fn from_unix(secs: i64) -> Option<Self> {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's days-from-civil inverse.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        );
        Self::parse(&text).ok()
    }
}
