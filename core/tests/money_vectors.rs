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
