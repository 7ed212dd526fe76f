use super::*;
use crate::money::Currency;

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
        details: TxnDetails::default(),
    }
}

fn rich() -> Transaction {
    Transaction {
        details: TxnDetails {
            merchant_country: Some(CountryCode::parse("FI").unwrap()),
            merchant_url: Some(MerchantUrl::parse("https://shop.example").unwrap()),
            purchase_date: Some(PurchaseDate::parse("2026-01-01T12:00:00Z").unwrap()),
            card_last4: Some(CardLast4::parse("1234").unwrap()),
            operation: Some(Operation::parse("TRANSFER").unwrap()),
            operation_ref: Some(ProviderRef::parse("pay-1").unwrap()),
        },
        ..sample()
    }
}

#[test]
fn canonical_json_is_jcs_ordered() {
    assert_eq!(
        sample().canonical_json(),
        r#"{"amount":4990,"currency":"EUR","kind":"payment","payee":"Example Shop","provider":"enfuce","ref":"6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11","v":2}"#
    );
    let bare = Transaction {
        amount: None,
        payee: None,
        ..sample()
    };
    assert_eq!(
        bare.canonical_json(),
        r#"{"kind":"payment","provider":"enfuce","ref":"6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11","v":2}"#
    );
    assert_eq!(
        rich().canonical_json(),
        r#"{"amount":4990,"card_last4":"1234","currency":"EUR","kind":"payment","merchant_country":"FI","merchant_url":"https://shop.example","operation":"TRANSFER","operation_ref":"pay-1","payee":"Example Shop","provider":"enfuce","purchase_date":"2026-01-01T12:00:00Z","ref":"6f1d9c2e-8b7a-4e1f-9d3c-2a5b7c9e0f11","v":2}"#
    );
}

#[test]
fn canonical_json_matches_serde_of_sorted_value() {
    let t = Transaction {
        payee: Some(Payee::parse("Café \"Zoë\" \\ 東京 😀").unwrap()),
        ..rich()
    };
    let value: serde_json::Value = serde_json::from_str(&t.canonical_json()).unwrap();
    let sorted: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_value(value).unwrap();
    assert_eq!(serde_json::to_string(&sorted).unwrap(), t.canonical_json());
}

#[test]
fn jcs_orders_names_by_utf16_code_units() {
    // U+FF61 sorts after U+1F600 in UTF-8 but before it in UTF-16 (surrogates D83D…).
    let m = Members::from_pairs(vec![
        ("\u{1F600}".into(), TxnValue::Int(1)),
        ("\u{FF61}".into(), TxnValue::Int(2)),
        ("a".into(), TxnValue::Str("x\u{1}".into())),
    ])
    .unwrap();
    assert_eq!(
        m.canonical_json(),
        "{\"a\":\"x\\u0001\",\"\u{1F600}\":1,\"\u{FF61}\":2}"
    );
}

#[test]
fn every_bound_field_changes_the_digest() {
    let base = rich().digest();
    let mut changed = vec![
        Transaction {
            amount: Some(eur(4991)),
            ..rich()
        },
        Transaction {
            amount: Some(Money::from_minor(4990, Currency::parse("USD").unwrap()).unwrap()),
            ..rich()
        },
        Transaction {
            amount: None,
            ..rich()
        },
        Transaction {
            payee: Some(Payee::parse("Example Shop ").unwrap()),
            ..rich()
        },
        Transaction {
            payee: None,
            ..rich()
        },
        Transaction {
            provider: Provider::Adyen,
            ..rich()
        },
        Transaction {
            reference: ProviderRef::parse("other").unwrap(),
            ..rich()
        },
        Transaction {
            kind: TransactionKind::Recurring,
            ..rich()
        },
    ];
    let d = rich().details;
    for f in 0..6 {
        let mut t = rich();
        match f {
            0 => t.details.merchant_country = Some(CountryCode::parse("SE").unwrap()),
            1 => t.details.merchant_url = None,
            2 => {
                t.details.purchase_date = Some(PurchaseDate::parse("2026-01-01T12:00:01Z").unwrap())
            }
            3 => t.details.card_last4 = Some(CardLast4::parse("1235").unwrap()),
            4 => t.details.operation = Some(Operation::parse("WITHDRAWAL").unwrap()),
            _ => t.details.operation_ref = None,
        }
        assert_ne!(t.details, d);
        changed.push(t);
    }
    for t in changed {
        assert_ne!(t.digest(), base, "{t:?}");
    }
}

#[test]
fn server_side_parsing_is_strict() {
    let t = rich();
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), t);
    for bad in [
        json.replace(r#""v":2"#, r#""v":1"#),
        json.replace(r#""v":2"#, r#""v":"2""#),
        json.replace(r#","currency":"EUR""#, ""),
        json.replace(r#""amount":4990"#, r#""amount":-1"#),
        json.replace(r#""amount":4990"#, r#""amount":49.9"#),
        json.replace(r#""amount":4990"#, r#""amount":"4990""#),
        json.replace(r#""amount":4990"#, r#""amount":9007199254740992"#),
        json.replace(r#""kind":"payment""#, r#""kind":"refund""#),
        json.replace(r#""provider":"enfuce""#, r#""provider":"newpay""#),
        json.replace('}', r#","extra":1}"#),
        json.replace('}', r#","extra":{"a":1}}"#),
        json.replace('}', r#","extra":true}"#),
        json.replace('}', r#","extra":null}"#),
        json.replace('}', r#","v":2}"#),
        json.replace(r#""payee":"Example Shop""#, r#""payee":"a\u0007b""#),
        json.replace(
            r#""payee":"Example Shop""#,
            r#""payee":"Shop\u202Egnp.exe""#,
        ),
        json.replace(r#""card_last4":"1234""#, r#""card_last4":"12345""#),
        json.replace(r#""merchant_country":"FI""#, r#""merchant_country":"fi""#),
        json.replace(
            r#""purchase_date":"2026-01-01T12:00:00Z""#,
            r#""purchase_date":"2026-02-30T12:00:00Z""#,
        ),
        json.replace(r#""operation":"TRANSFER""#, r#""operation":"TRANS FER""#),
        "[]".to_owned(),
    ] {
        assert!(serde_json::from_str::<Transaction>(&bad).is_err(), "{bad}");
    }
}

#[test]
fn device_side_tolerates_unknown_members_and_values() {
    let t = rich();
    let json = serde_json::to_string(&t).unwrap();
    let newer = json
        .replace(
            '}',
            r#","loyalty_points":120,"merchant_city":"Espoo\u2028x"}"#,
        )
        .replace(r#""kind":"payment""#, r#""kind":"refund_reversal""#)
        .replace(r#""provider":"enfuce""#, r#""provider":"newpay""#);
    let r: ReceivedTransaction = serde_json::from_str(&newer).unwrap();
    assert_eq!(r.provider(), &Named::Other("newpay".into()));
    assert_eq!(r.kind(), &Named::Other("refund_reversal".into()));
    assert_eq!(r.amount(), Some(eur(4990)));
    let unknown: Vec<_> = r.unknown_members().map(|(n, _)| n).collect();
    assert_eq!(unknown, ["loyalty_points", "merchant_city"]);
    // digest over everything received, in JCS order
    let value: serde_json::Value = serde_json::from_str(&newer).unwrap();
    let sorted: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_value(value).unwrap();
    assert_eq!(r.canonical_json(), serde_json::to_string(&sorted).unwrap());
    assert_ne!(r.digest(), t.digest());
    // the strict server view refuses it
    assert!(r.to_transaction().is_err());
    // unknown text is neutralised for display
    let fields = r.display_fields();
    let city = fields.iter().find(|f| f.key == "merchant_city").unwrap();
    assert_eq!(city.value, "Espoo x");
    assert!(!city.known);
    // a known member still follows its rules, even from a newer server
    for bad in [
        newer.replace(r#""card_last4":"1234""#, r#""card_last4":1234"#),
        newer.replace('}', r#","v2":1.5}"#),
        newer.replace('}', r#","x":[1]}"#),
        newer.replace(r#""provider":"newpay""#, r#""provider":"new pay""#),
        newer.replace(r#""v":2"#, r#""v":3"#),
    ] {
        assert!(
            serde_json::from_str::<ReceivedTransaction>(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn received_from_server_transaction_has_the_same_digest() {
    for t in [sample(), rich()] {
        let r = t.received();
        assert_eq!(r.digest(), t.digest());
        let parsed: ReceivedTransaction =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(parsed, r);
        assert_eq!(parsed.to_transaction().unwrap(), t);
    }
}

#[test]
fn summary_and_display_fields_render_new_members() {
    assert_eq!(sample().received().summary(), "EUR 49.90 at Example Shop");
    assert_eq!(
        rich().received().summary(),
        "EUR 49.90 at Example Shop (card ending 1234)"
    );
    let transfer = Transaction {
        payee: None,
        details: TxnDetails {
            operation: Some(Operation::parse("TRANSFER").unwrap()),
            ..TxnDetails::default()
        },
        ..sample()
    };
    assert_eq!(transfer.received().summary(), "TRANSFER EUR 49.90");
    let login = Transaction {
        amount: None,
        ..transfer
    };
    assert_eq!(login.received().summary(), "Approve TRANSFER");
    let keys: Vec<String> = rich()
        .received()
        .display_fields()
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(
        keys,
        [
            "amount",
            "payee",
            "operation",
            "operation_ref",
            "merchant_country",
            "merchant_url",
            "purchase_date",
            "card_last4",
            "kind",
            "provider",
            "ref"
        ]
    );
}

#[test]
fn display_text_rules() {
    assert!(Payee::parse("").is_err());
    assert!(Payee::parse("   ").is_err());
    assert!(Payee::parse("a\nb").is_err());
    assert!(Payee::parse(&"é".repeat(256)).is_ok());
    assert!(Payee::parse(&"é".repeat(257)).is_err());
    for bad in [
        "Shop\u{202E}exe.gnp",   // RIGHT-TO-LEFT OVERRIDE
        "Shop\u{2066}x\u{2069}", // isolates
        "Sh\u{200B}op",          // ZERO WIDTH SPACE
        "Sh\u{200D}op",          // ZERO WIDTH JOINER
        "Shop\u{FEFF}",          // BOM
        "Sh\u{AD}op",            // SOFT HYPHEN (Cf)
        "Shop\u{2028}Ltd",       // LINE SEPARATOR (Zl)
        "Shop\u{2029}Ltd",       // PARAGRAPH SEPARATOR (Zp)
        "Shop\u{200F}",          // RIGHT-TO-LEFT MARK
    ] {
        assert!(Payee::parse(bad).is_err(), "{bad:?}");
        assert!(MerchantUrl::parse(bad).is_err(), "{bad:?}");
    }
    assert!(Payee::parse("Café 東京 😀 متجر").is_ok());
    assert_eq!(
        Payee::sanitize("Shop\r\nLtd").unwrap().as_str(),
        "Shop  Ltd"
    );
    assert_eq!(
        Payee::sanitize("Sh\u{200B}op\u{202E}\u{2028}Ltd")
            .unwrap()
            .as_str(),
        "Shop Ltd"
    );
    assert!(Payee::sanitize("\n\t\u{200B}").is_none());
    assert_eq!(
        Payee::sanitize(&"x".repeat(300)).unwrap().as_str().len(),
        256
    );
    assert_eq!(
        MerchantUrl::sanitize(" https://shop.example/\u{200B}a ")
            .unwrap()
            .as_str(),
        "https://shop.example/a"
    );
    assert!(MerchantUrl::parse("https://a b").is_err());
}

#[test]
fn typed_members() {
    assert!(CountryCode::parse("FI").is_ok());
    for bad in ["F", "FIN", "fi", "F1", ""] {
        assert!(CountryCode::parse(bad).is_err(), "{bad}");
    }
    assert!(CardLast4::parse("0042").is_ok());
    for bad in ["042", "00420", "12a4", "١٢٣٤"] {
        assert!(CardLast4::parse(bad).is_err(), "{bad}");
    }
    for good in ["2026-01-01T00:00:00Z", "2024-02-29T23:59:59Z"] {
        assert!(PurchaseDate::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01 00:00:00Z",
    ] {
        assert!(PurchaseDate::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        PurchaseDate::from_unix(1_767_225_600).unwrap().as_str(),
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        PurchaseDate::from_unix(951_782_400 + 86_399)
            .unwrap()
            .as_str(),
        "2000-02-29T23:59:59Z"
    );
    assert!(Operation::parse("PREPAID_CARD").is_ok());
    assert!(Operation::parse("login").is_ok());
    assert!(Operation::parse("").is_err());
    assert!(Operation::parse(&"A".repeat(65)).is_err());
}

#[test]
fn members_refuse_duplicates_and_excess() {
    assert!(serde_json::from_str::<Members>(r#"{"a":1,"a":2}"#).is_err());
    let many: String = (0..65)
        .map(|i| format!("\"m{i}\":1"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(serde_json::from_str::<Members>(&format!("{{{many}}}")).is_err());
    assert!(serde_json::from_str::<Members>(r#"{"":1}"#).is_err());
    assert!(
        serde_json::from_str::<Members>(&format!(r#"{{"a":"{}"}}"#, "x".repeat(1025))).is_err()
    );
}

#[test]
fn digest_text_form() {
    let d = sample().digest();
    assert_eq!(TxnDigest::parse(&d.to_string()).unwrap(), d);
    assert!(TxnDigest::parse("abc").is_err());
    assert!(d.ct_eq(&d));
}

#[test]
fn ascii_fast_path_agrees_with_the_unicode_tables() {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    for c in (0u8..=0x7f).map(char::from) {
        let by_table = matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        );
        assert_eq!(is_forbidden_in_display(c), by_table, "{c:?}");
        assert_ne!(c.general_category(), GeneralCategory::Format, "{c:?}");
    }
    // and beyond ASCII the tables still decide
    for c in [
        '\u{80}', '\u{ad}', '\u{200b}', '\u{202e}', '\u{2028}', '\u{2029}',
    ] {
        assert!(is_forbidden_in_display(c), "{c:?}");
    }
    assert_eq!(neutralize("a\u{ad}b\u{2028}c\u{7f}d", 10), "ab c d");
    assert!(!is_forbidden_in_display('é'));
}
