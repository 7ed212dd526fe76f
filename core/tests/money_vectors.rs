//! Golden vectors for money parsing: `vectors/money.json` (see `vectors/README.md`),
//! a JSON number lexeme in major units plus an ISO 4217 code, and the exact
//! minor-unit amount it must give, or `valid: false` when it must be refused.

use pushauth_core::money::{Currency, Money};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    algorithm: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    lexeme: String,
    currency: String,
    minor: Option<i64>,
    valid: bool,
}

#[test]
fn money_golden_vectors() {
    let doc: Vectors = serde_json::from_str(include_str!("vectors/money.json")).unwrap();
    assert!(!doc.algorithm.is_empty());
    assert!(doc.vectors.iter().any(|v| v.valid) && doc.vectors.iter().any(|v| !v.valid));
    for v in &doc.vectors {
        let parsed = Currency::parse(&v.currency)
            .and_then(|currency| Money::from_major_lexeme(&v.lexeme, currency));
        let case = format!("{:?} {:?}", v.lexeme, v.currency);
        if v.valid {
            let money = parsed.unwrap_or_else(|e| panic!("{case} refused: {e}"));
            assert_eq!(Some(money.minor()), v.minor, "{case}");
            assert_eq!(money.currency().code(), v.currency, "{case}");
            // The canonical major string reads back to the same amount.
            assert_eq!(
                Money::from_major_lexeme(&money.to_major_string(), money.currency()),
                Ok(money)
            );
        } else {
            assert!(parsed.is_err(), "{case} accepted as {parsed:?}");
            assert_eq!(v.minor, None, "{case}: an invalid vector carries no amount");
        }
    }
}

/// `vectors/processor_minor_units.json`: processors' own minor units (Adyen) to ISO.
#[test]
fn processor_minor_unit_vectors() {
    use pushauth_core::money::{ADYEN, ISO4217, MinorUnits};
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("vectors/processor_minor_units.json")).unwrap();
    let table = |name: &str| -> MinorUnits {
        match name {
            "adyen" => ADYEN,
            "iso4217" => ISO4217,
            other => panic!("unknown processor {other}"),
        }
    };
    // The documented overrides are exactly the code's data.
    for (name, p) in doc["processors"].as_object().unwrap() {
        let listed: Vec<(String, u8)> = p["overrides"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(c, e)| (c.clone(), u8::try_from(e.as_u64().unwrap()).unwrap()))
            .collect();
        let code: Vec<(String, u8)> = table(name)
            .overrides
            .iter()
            .map(|(c, e)| ((*c).to_owned(), *e))
            .collect();
        assert_eq!(listed, code, "{name}");
        for (c, e) in &code {
            let cur = Currency::parse(c).unwrap();
            assert_ne!(cur.exponent(), Some(*e), "{c} is not a difference from ISO");
        }
    }
    for v in doc["vectors"].as_array().unwrap() {
        let units = table(v["processor"].as_str().unwrap());
        let currency = Currency::parse(v["currency"].as_str().unwrap()).unwrap();
        let got = Money::from_processor_minor(v["value"].as_i64().unwrap(), currency, &units);
        if v["valid"].as_bool().unwrap() {
            let m = got.unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(Some(m.minor()), v["iso_minor"].as_i64(), "{v}");
            assert_eq!(m.to_string(), v["display"].as_str().unwrap(), "{v}");
            assert_eq!(
                m.to_processor_minor(&units).unwrap(),
                v["value"].as_i64().unwrap()
            );
        } else {
            assert!(got.is_err(), "{v}");
        }
    }
}
