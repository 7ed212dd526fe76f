//! Processors whose minor units differ from ISO 4217.
//!
//! A processor that sends integer amounts "in minor units" means ITS minor units.
//! Adyen documents its own decimals per currency, and for four codes they differ
//! from ISO 4217 (see [`ADYEN`]). The canonical transaction always carries ISO 4217
//! minor units (what the device formats), so a connector converts with
//! [`Money::from_processor_minor`] and the overrides stay data, not code paths.

use super::{Currency, MAX_MINOR, Money, MoneyError};

/// A processor's minor-unit convention: ISO 4217 except the listed codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorUnits {
    /// Short name (`iso4217`, `adyen`).
    pub name: &'static str,
    /// Where the overrides come from.
    pub source: &'static str,
    /// (alphabetic code, decimals used by the processor), sorted by code.
    pub overrides: &'static [(&'static str, u8)],
}

/// Plain ISO 4217 (no overrides): Enfuce, Paysafe, Treezor and the generic API.
pub const ISO4217: MinorUnits = MinorUnits {
    name: "iso4217",
    source: "ISO 4217 List One",
    overrides: &[],
};

/// Adyen's "Currency codes and minor units" page marks these four as differing
/// from the standard: CLP 2 (ISO 0), CVE 0 (ISO 2), IDR 0 (ISO 2), ISK 2 (ISO 0).
pub const ADYEN: MinorUnits = MinorUnits {
    name: "adyen",
    source: "https://docs.adyen.com/development-resources/currency-codes/",
    overrides: &[("CLP", 2), ("CVE", 0), ("IDR", 0), ("ISK", 2)],
};

impl MinorUnits {
    /// The decimals this processor uses for `currency`, or `None` when the
    /// currency has no minor unit at all.
    pub fn exponent(&self, currency: Currency) -> Option<u8> {
        let iso = currency.exponent()?;
        Some(
            self.overrides
                .iter()
                .find(|(code, _)| *code == currency.code())
                .map_or(iso, |(_, e)| *e),
        )
    }
}

fn pow10(n: u8) -> Option<i64> {
    10i64.checked_pow(u32::from(n))
}

impl Money {
    /// An amount given in the processor's minor units (`units`), converted to ISO
    /// 4217 minor units: Adyen `{"currency":"ISK","value":279000}` is ISK 2790 →
    /// 2790; Adyen `{"currency":"IDR","value":15000}` is IDR 15000 → 1 500 000.
    /// Refuses an amount the ISO unit cannot hold exactly (Adyen ISK 2790.50) as
    /// [`MoneyError::TooManyDecimals`], and everything [`Money::from_minor`] refuses.
    pub fn from_processor_minor(
        value: i64,
        currency: Currency,
        units: &MinorUnits,
    ) -> Result<Money, MoneyError> {
        let (Some(iso), Some(theirs)) = (currency.exponent(), units.exponent(currency)) else {
            return Err(MoneyError::NoMinorUnit { currency });
        };
        if value < 0 {
            return Err(MoneyError::Negative);
        }
        let minor = if theirs <= iso {
            pow10(iso - theirs)
                .and_then(|f| value.checked_mul(f))
                .filter(|m| *m <= MAX_MINOR)
                .ok_or(MoneyError::Overflow)?
        } else {
            let f = pow10(theirs - iso).ok_or(MoneyError::Overflow)?;
            if value % f != 0 {
                return Err(MoneyError::TooManyDecimals {
                    currency,
                    exponent: iso,
                });
            }
            value / f
        };
        Money::from_minor(minor, currency)
    }

    /// This amount in the processor's minor units (the inverse of
    /// [`Money::from_processor_minor`]).
    pub fn to_processor_minor(&self, units: &MinorUnits) -> Result<i64, MoneyError> {
        let currency = self.currency();
        let (Some(iso), Some(theirs)) = (currency.exponent(), units.exponent(currency)) else {
            return Err(MoneyError::NoMinorUnit { currency });
        };
        if theirs >= iso {
            pow10(theirs - iso)
                .and_then(|f| self.minor().checked_mul(f))
                .ok_or(MoneyError::Overflow)
        } else {
            let f = pow10(iso - theirs).ok_or(MoneyError::Overflow)?;
            if self.minor() % f != 0 {
                return Err(MoneyError::TooManyDecimals {
                    currency,
                    exponent: theirs,
                });
            }
            Ok(self.minor() / f)
        }
    }
}
