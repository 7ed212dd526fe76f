//! Unit and property tests of `money`: every refusal path, exact parsing, serde
//! forms, and round trips over every currency that has a minor unit.

use super::*;
use proptest::prelude::*;

fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn lex(lexeme: &str, code: &str) -> Result<i64, MoneyError> {
    Money::from_major_lexeme(lexeme, cur(code)).map(|m| m.minor())
}

fn invalid(reason: &'static str) -> Result<i64, MoneyError> {
    Err(MoneyError::InvalidLexeme { reason })
}

#[test]
fn table_is_sorted_unique_and_well_formed() {
    assert_eq!(TABLE.len(), 178);
    assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
    let mut numerics: Vec<u16> = TABLE.iter().map(|i| i.numeric).collect();
    numerics.sort_unstable();
    numerics.dedup();
    assert_eq!(numerics.len(), TABLE.len());
    for info in &TABLE {
        assert!(info.code.len() == 3 && info.code.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(info.numeric > 0 && info.numeric < 1000 && !info.name.is_empty());
        assert_eq!(
            Currency::parse(info.code).map(Currency::code),
            Ok(info.code)
        );
    }
    assert_eq!(Currency::all().len(), 178);
}

#[test]
fn exponents_and_edition_changes() {
    let expect: &[(&[&str], Option<u8>)] = &[
        (
            &[
                "EUR", "USD", "GBP", "DKK", "ZWG", "SLE", "VED", "VES", "XCG", "XAD",
            ],
            Some(2),
        ),
        (&["BOV", "CHE", "CHW", "COU", "MXV", "USN"], Some(2)),
        (
            &[
                "JPY", "KRW", "ISK", "CLP", "VND", "UGX", "PYG", "XAF", "XOF", "XPF", "UYI",
            ],
            Some(0),
        ),
        (&["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], Some(3)),
        (&["CLF", "UYW"], Some(4)),
        (
            &[
                "XAU", "XAG", "XPT", "XPD", "XBA", "XDR", "XSU", "XUA", "XTS", "XXX",
            ],
            None,
        ),
    ];
    for (codes, exponent) in expect {
        for code in *codes {
            assert_eq!(cur(code).exponent(), *exponent, "{code}");
        }
    }
    for gone in ["HRK", "SLL", "CUC", "ZWL", "ANG", "BGN", "VEF", "STD"] {
        assert_eq!(
            Currency::parse(gone),
            Err(MoneyError::UnknownCurrency { code: gone.into() })
        );
    }
}

#[test]
fn currency_accessors_and_traits() {
    let eur = cur("EUR");
    assert_eq!(
        (eur.code(), eur.numeric(), eur.name()),
        ("EUR", 978, "Euro")
    );
    assert_eq!(cur("ALL").numeric(), 8);
    assert_eq!(Currency::from_numeric(392), Some(cur("JPY")));
    assert_eq!(Currency::from_numeric(532), Some(cur("XCG")));
    assert_eq!(Currency::from_numeric(0), None);
    assert_eq!(eur.to_string(), "EUR");
    assert_eq!(format!("{eur:?}"), "Currency(EUR)");
    assert_eq!("JPY".parse::<Currency>(), Ok(cur("JPY")));
    assert!(cur("CHF") < eur && eur < cur("USD"));
    let set: std::collections::HashSet<Currency> = [eur, cur("EUR"), cur("USD")].into();
    assert_eq!(set.len(), 2);
}

#[test]
fn currency_parse_refusals() {
    for text in [
        "eur", "Eur", "EU", "EURO", "", " EUR", "E1R", "ÉU", "E\u{0}R",
    ] {
        assert_eq!(
            Currency::parse(text),
            Err(MoneyError::NotACurrencyCode),
            "{text:?}"
        );
    }
    assert_eq!(
        Currency::parse("XYZ"),
        Err(MoneyError::UnknownCurrency { code: "XYZ".into() })
    );
    let huge = "E".repeat(100_000);
    assert!(Currency::parse(&huge).unwrap_err().to_string().len() < 120);
}

#[test]
fn currency_serde() {
    assert_eq!(serde_json::to_string(&cur("EUR")).unwrap(), r#""EUR""#);
    assert_eq!(
        serde_json::from_str::<Currency>(r#""EUR""#).unwrap(),
        cur("EUR")
    );
    // An escaped string is not borrowed: the owned path must work too.
    assert_eq!(
        serde_json::from_str::<Currency>(r#""\u0045UR""#).unwrap(),
        cur("EUR")
    );
    for bad in [r#""eur""#, r#""XYZ""#, "978", "null", r#"["EUR"]"#] {
        assert!(serde_json::from_str::<Currency>(bad).is_err(), "{bad}");
    }
}

#[test]
fn from_minor_refusals() {
    let eur = cur("EUR");
    assert_eq!(Money::from_minor(0, eur).map(|m| m.minor()), Ok(0));
    assert_eq!(
        Money::from_minor(MAX_MINOR, eur).map(|m| m.minor()),
        Ok(MAX_MINOR)
    );
    assert_eq!(Money::from_minor(-1, eur), Err(MoneyError::Negative));
    assert_eq!(Money::from_minor(i64::MIN, eur), Err(MoneyError::Negative));
    assert_eq!(
        Money::from_minor(MAX_MINOR + 1, eur),
        Err(MoneyError::Overflow)
    );
    assert_eq!(Money::from_minor(i64::MAX, eur), Err(MoneyError::Overflow));
    for code in ["XAU", "XDR", "XXX", "XTS"] {
        let c = cur(code);
        assert_eq!(
            Money::from_minor(1, c),
            Err(MoneyError::NoMinorUnit { currency: c })
        );
        assert_eq!(
            Money::from_major_lexeme("1", c),
            Err(MoneyError::NoMinorUnit { currency: c })
        );
    }
}

#[test]
fn lexemes_accepted() {
    let cases = [
        ("49.90", "EUR", 4990),
        ("49.9", "EUR", 4990),
        ("49.900", "EUR", 4990),
        ("0.01", "EUR", 1),
        ("0", "EUR", 0),
        ("0.000", "EUR", 0),
        ("1.0E7", "EUR", 1_000_000_000),
        ("4990e-2", "EUR", 4990),
        ("4.99e1", "EUR", 4990),
        ("1E+2", "EUR", 10_000),
        ("1e0002", "EUR", 10_000),
        ("0.0000000000000000000000000001e28", "EUR", 100),
        ("5000", "JPY", 5000),
        ("5000.000", "JPY", 5000),
        ("1.234", "BHD", 1234),
        ("1.2345", "CLF", 12_345),
        ("9007199254740991", "JPY", MAX_MINOR),
        ("90071992547409.91", "EUR", MAX_MINOR),
        ("0e999999999", "EUR", 0),
        ("0.0e-999999999999999999999999999999999", "EUR", 0),
    ];
    for (lexeme, code, minor) in cases {
        assert_eq!(lex(lexeme, code), Ok(minor), "{lexeme} {code}");
    }
    let long = format!("1.{}", "0".repeat(1_000_000));
    assert_eq!(lex(&long, "EUR"), Ok(100));
}

#[test]
fn lexemes_refused() {
    let eur = cur("EUR");
    let too_many =
        |currency: Currency, exponent| Err(MoneyError::TooManyDecimals { currency, exponent });
    assert_eq!(lex("49.999", "EUR"), too_many(eur, 2));
    assert_eq!(lex("0.001", "EUR"), too_many(eur, 2));
    assert_eq!(lex("1e-3", "EUR"), too_many(eur, 2));
    assert_eq!(lex("1e-999999", "EUR"), too_many(eur, 2));
    assert_eq!(lex("5000.5", "JPY"), too_many(cur("JPY"), 0));
    assert_eq!(lex("1.2345", "BHD"), too_many(cur("BHD"), 3));
    for negative in ["-1", "-1.00", "-0", "-0.00", "-0e5"] {
        assert_eq!(
            lex(negative, "EUR"),
            Err(MoneyError::Negative),
            "{negative}"
        );
    }
    for overflow in [
        "9007199254740992",
        "1e16",
        "1e400",
        "1e999999999",
        "99999999999999999999999",
    ] {
        assert_eq!(
            lex(overflow, "JPY"),
            Err(MoneyError::Overflow),
            "{overflow}"
        );
    }
    assert_eq!(lex("90071992547409.92", "EUR"), Err(MoneyError::Overflow));
    assert_eq!(
        lex("1e999999999999999999999999999999999999999", "EUR"),
        Err(MoneyError::Overflow)
    );
    let grammar = [
        ("", "empty"),
        ("+1", "expected a digit"),
        (".5", "expected a digit"),
        ("NaN", "expected a digit"),
        ("Infinity", "expected a digit"),
        ("-", "expected a digit"),
        (" 1", "expected a digit"),
        ("01", "leading zero"),
        ("-01.5", "leading zero"),
        ("1.", "expected a digit after the decimal point"),
        ("1.e5", "expected a digit after the decimal point"),
        ("1e", "expected a digit in the exponent"),
        ("1e+", "expected a digit in the exponent"),
        ("1E-", "expected a digit in the exponent"),
        ("1 ", "unexpected character"),
        ("1,5", "unexpected character"),
        ("1_000", "unexpected character"),
        ("1.5.0", "unexpected character"),
        ("0x10", "unexpected character"),
        ("1e5.0", "unexpected character"),
        ("1\n", "unexpected character"),
        ("١", "expected a digit"),
    ];
    for (lexeme, reason) in grammar {
        assert_eq!(lex(lexeme, "EUR"), invalid(reason), "{lexeme:?}");
    }
}

#[test]
fn messages_do_not_echo_input() {
    let huge = format!("{}x", "9".repeat(100_000));
    let err = Money::from_major_lexeme(&huge, cur("EUR")).unwrap_err();
    assert!(err.to_string().len() < 120, "{err}");
    assert_eq!(
        MoneyError::TooManyDecimals {
            currency: cur("EUR"),
            exponent: 2
        }
        .to_string(),
        "EUR has 2 decimal(s); the amount has a non-zero digit beyond them"
    );
}

#[test]
fn major_string_and_display() {
    let cases = [
        (4990, "EUR", "49.90", "EUR 49.90"),
        (5, "EUR", "0.05", "EUR 0.05"),
        (0, "EUR", "0.00", "EUR 0.00"),
        (5000, "JPY", "5000", "JPY 5000"),
        (0, "JPY", "0", "JPY 0"),
        (1234, "BHD", "1.234", "BHD 1.234"),
        (1, "CLF", "0.0001", "CLF 0.0001"),
        (
            MAX_MINOR,
            "EUR",
            "90071992547409.91",
            "EUR 90071992547409.91",
        ),
    ];
    for (minor, code, major, display) in cases {
        let m = Money::from_minor(minor, cur(code)).unwrap();
        assert_eq!(
            (m.to_major_string().as_str(), m.to_string().as_str()),
            (major, display)
        );
    }
}

#[test]
fn money_serde() {
    let m = Money::from_minor(4990, cur("EUR")).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, r#"{"minor":4990,"currency":"EUR"}"#);
    assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
    assert_eq!(
        serde_json::from_str::<Money>(r#"{"currency":"EUR","minor":4990}"#).unwrap(),
        m
    );
    let refused = [
        r#"{"minor":-1,"currency":"EUR"}"#,
        r#"{"minor":9007199254740992,"currency":"EUR"}"#,
        r#"{"minor":1,"currency":"XAU"}"#,
        r#"{"minor":1,"currency":"eur"}"#,
        r#"{"minor":49.9,"currency":"EUR"}"#,
        r#"{"minor":"4990","currency":"EUR"}"#,
        r#"{"minor":4990}"#,
        r#"{"minor":4990,"currency":"EUR","major":"49.90"}"#,
    ];
    for json in refused {
        assert!(serde_json::from_str::<Money>(json).is_err(), "{json}");
    }
}

fn with_exponent() -> impl Strategy<Value = Currency> {
    proptest::sample::select(
        Currency::all()
            .filter(|c| c.exponent().is_some())
            .collect::<Vec<_>>(),
    )
}

fn any_minor() -> impl Strategy<Value = i64> {
    prop_oneof![0..=MAX_MINOR, 0..10_000i64, MAX_MINOR - 10_000..=MAX_MINOR]
}

proptest! {
    #[test]
    fn major_string_round_trips(currency in with_exponent(), minor in any_minor()) {
        let m = Money::from_minor(minor, currency).unwrap();
        prop_assert_eq!(Money::from_major_lexeme(&m.to_major_string(), currency), Ok(m));
        let exponent = currency.exponent().unwrap();
        let scientific = format!("{minor}e-{exponent}");
        prop_assert_eq!(Money::from_major_lexeme(&scientific, currency), Ok(m));
    }

    #[test]
    fn appended_zeros_round_trip(currency in with_exponent(), minor in any_minor(), zeros in 1..6usize) {
        let m = Money::from_minor(minor, currency).unwrap();
        let point = if currency.exponent() == Some(0) { "." } else { "" };
        let lexeme = format!("{}{point}{}", m.to_major_string(), "0".repeat(zeros));
        prop_assert_eq!(Money::from_major_lexeme(&lexeme, currency), Ok(m));
    }

    #[test]
    fn extra_nonzero_digit_refused(
        currency in with_exponent(), minor in any_minor(), zeros in 0..6usize, digit in 1..=9u8,
    ) {
        let m = Money::from_minor(minor, currency).unwrap();
        let point = if currency.exponent() == Some(0) { "." } else { "" };
        let lexeme = format!("{}{point}{}{digit}", m.to_major_string(), "0".repeat(zeros));
        let exponent = currency.exponent().unwrap();
        prop_assert_eq!(
            Money::from_major_lexeme(&lexeme, currency),
            Err(MoneyError::TooManyDecimals { currency, exponent })
        );
    }

    #[test]
    fn above_max_refused(currency in with_exponent(), minor in MAX_MINOR + 1..=i64::MAX) {
        prop_assert_eq!(Money::from_minor(minor, currency), Err(MoneyError::Overflow));
        let exponent = currency.exponent().unwrap();
        let lexeme = format!("{minor}e-{exponent}");
        prop_assert_eq!(Money::from_major_lexeme(&lexeme, currency), Err(MoneyError::Overflow));
    }
}
