//! Every golden vector in `tests/vectors/` (see its README) against the webhook checks in
//! `providers::auth`: valid vectors must be accepted, invalid ones refused. Then property tests
//! of the Treezor re-emitter against serde_json's own output.

#![allow(
    clippy::unwrap_used,
    reason = "test code, helpers included: a failure should stop the test"
)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use pushauth_server::providers::auth::{
    AdyenHmacVerifier, AuthError, BasicVerifier, PaysafeVerifier, TreezorVerifier, parse_basic,
    php_json_encode_raw,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sha2::Sha256;

#[derive(Deserialize)]
struct VectorFile<V> {
    algorithm: String,
    vectors: Vec<V>,
}

fn load<V: DeserializeOwned>(text: &str) -> Vec<V> {
    let file: VectorFile<V> = serde_json::from_str(text).unwrap();
    assert!(!file.algorithm.is_empty());
    assert!(!file.vectors.is_empty());
    file.vectors
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct SignedBody {
    name: String,
    #[serde(alias = "key_hex")]
    key_b64: String,
    body: String,
    signature: String,
    valid: bool,
}

#[test]
fn paysafe_vectors() {
    let vectors: Vec<SignedBody> = load(include_str!("vectors/paysafe-signature.json"));
    assert_eq!(vectors.len(), 10);
    for v in &vectors {
        let verifier = PaysafeVerifier::new(&v.key_b64).unwrap();
        let got = if v.name.contains("bodyless") {
            verifier.verify_path(&v.body, v.signature.as_bytes())
        } else {
            verifier.verify(v.body.as_bytes(), v.signature.as_bytes())
        };
        if v.valid {
            assert_eq!(got, Ok(()), "{}", v.name);
            // Our outbound signature for the same message is the same header value.
            assert_eq!(verifier.sign(v.body.as_bytes()), v.signature, "{}", v.name);
        } else {
            assert_eq!(got, Err(AuthError::BadSignature), "{}", v.name);
        }
    }
    // The refused vector is the mistake it names: keyed with the base64 text itself.
    let raw_key = vectors
        .iter()
        .find(|v| v.name == "paysafe-raw-key-is-wrong")
        .unwrap();
    assert_eq!(
        hmac_b64(raw_key.key_b64.as_bytes(), raw_key.body.as_bytes()),
        raw_key.signature
    );
}

#[test]
fn adyen_vectors() {
    let vectors: Vec<SignedBody> = load(include_str!("vectors/adyen-hmac.json"));
    assert_eq!(vectors.len(), 6);
    for v in &vectors {
        let got = AdyenHmacVerifier::new(&v.key_b64)
            .unwrap()
            .verify(v.body.as_bytes(), v.signature.as_bytes());
        let want = if v.valid {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        };
        assert_eq!(got, want, "{}", v.name);
    }
    let text_key = vectors
        .iter()
        .find(|v| v.name == "adyen-key-not-hex-decoded")
        .unwrap();
    assert_eq!(
        hmac_b64(text_key.key_b64.as_bytes(), text_key.body.as_bytes()),
        text_key.signature
    );
}

#[derive(Deserialize)]
struct TreezorVector {
    name: String,
    secret: String,
    webhook_body: String,
    canonical_object_payload: String,
    object_payload_signature: String,
    valid: bool,
}

#[derive(Deserialize)]
struct TreezorBody<'a> {
    #[serde(borrow)]
    object_payload: &'a RawValue,
    object_payload_signature: String,
}

#[test]
fn treezor_vectors() {
    let vectors: Vec<TreezorVector> = load(include_str!("vectors/treezor-payload-signature.json"));
    assert_eq!(vectors.len(), 13);
    for v in &vectors {
        let body: TreezorBody<'_> = serde_json::from_str(&v.webhook_body).unwrap();
        assert_eq!(
            body.object_payload_signature, v.object_payload_signature,
            "{}",
            v.name
        );
        // The canonical form is right for every vector, refused ones included: they differ
        // only in what was signed.
        let canonical = php_json_encode_raw(body.object_payload.get()).unwrap();
        assert_eq!(canonical, v.canonical_object_payload, "{}", v.name);

        let got = TreezorVerifier::new(&v.secret)
            .unwrap()
            .verify(v.webhook_body.as_bytes());
        if v.valid {
            let envelope = got.unwrap_or_else(|err| panic!("{}: {err}", v.name));
            assert_eq!(envelope.webhook, "card3DSv2Authentication.create");
            assert_eq!(envelope.webhook_created_at, Some(17_950_000_000_000));
            assert_eq!(
                envelope.object_payload.get(),
                body.object_payload.get(),
                "{}",
                v.name
            );
        } else {
            assert_eq!(got.unwrap_err(), AuthError::BadSignature, "{}", v.name);
        }
    }

    // The refused vectors are the mistakes they name.
    let find = |name: &str| vectors.iter().find(|v| v.name == name).unwrap();
    let slash = find("treezor-unescaped-slash-is-wrong");
    let unescaped = slash.canonical_object_payload.replace("\\/", "/");
    assert_eq!(
        hmac_b64(slash.secret.as_bytes(), unescaped.as_bytes()),
        slash.object_payload_signature
    );
    let astral = find("treezor-astral-without-surrogates-is-wrong");
    // Treezor's JS sample: "\\u" + code.toString(16).slice(-4), so U+1F968 becomes \uf968.
    let truncated = astral
        .canonical_object_payload
        .replace("\\ud83e\\udd68", "\\uf968");
    assert_eq!(
        hmac_b64(astral.secret.as_bytes(), truncated.as_bytes()),
        astral.object_payload_signature
    );
    let utf8 = find("treezor-unescaped-utf8-is-wrong");
    // Signed over raw UTF-8 with '/' unescaped as well, i.e. JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES.
    let raw = utf8
        .canonical_object_payload
        .replace("\\/", "/")
        .replace("\\u00e4", "ä")
        .replace("\\ud83e\\udd68", "🥨")
        .replace("\\u00f6", "ö");
    assert_eq!(
        hmac_b64(utf8.secret.as_bytes(), raw.as_bytes()),
        utf8.object_payload_signature
    );
}

#[derive(Deserialize)]
struct BasicVector {
    header: String,
    user: Option<String>,
    password: Option<String>,
    valid: bool,
}

#[test]
fn basic_vectors() {
    let vectors: Vec<BasicVector> = load(include_str!("vectors/basic-auth.json"));
    assert_eq!(vectors.len(), 8);
    let somebody = BasicVerifier::new("user", "pass").unwrap();
    for v in &vectors {
        let header = v.header.as_bytes();
        if v.valid {
            let (user, password) = (v.user.as_deref().unwrap(), v.password.as_deref().unwrap());
            let creds = parse_basic(header).unwrap();
            assert_eq!(
                (creds.user.as_str(), creds.password.as_str()),
                (user, password),
                "{}",
                v.header
            );
            assert_eq!(
                BasicVerifier::new(user, password).unwrap().verify(header),
                Ok(()),
                "{}",
                v.header
            );
            // The same header against other credentials is refused.
            let other = BasicVerifier::new(user, &format!("{password}x")).unwrap();
            assert_eq!(
                other.verify(header),
                Err(AuthError::BadCredentials),
                "{}",
                v.header
            );
        } else {
            assert!(parse_basic(header).is_err(), "{}", v.header);
            assert!(somebody.verify(header).is_err(), "{}", v.header);
        }
    }
    let refusals: Vec<_> = vectors
        .iter()
        .filter(|v| !v.valid)
        .map(|v| parse_basic(v.header.as_bytes()).unwrap_err())
        .collect();
    assert_eq!(
        refusals,
        [
            AuthError::NoColon,
            AuthError::MalformedBase64,
            AuthError::NotBasicScheme
        ]
    );
}

/// The Treezor re-emitter against serde_json: whatever formatting a value arrives in, its
/// canonical form is the same, equals an independent PHP-style encoder's, and parses back to
/// the same value; and no input makes it panic.
mod treezor_properties {
    use proptest::prelude::*;
    use pushauth_server::providers::auth::php_json_encode_raw;
    use serde_json::Value;

    /// PHP `json_encode` over a parsed value, written independently of the crate's
    /// re-emitter (a port of `verify_vectors.py`'s `php_json_encode`).
    fn php_reference(value: &Value) -> String {
        match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => value.to_string(),
            Value::String(s) => {
                let mut out = String::from("\"");
                for ch in s.chars() {
                    match ch {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '/' => out.push_str("\\/"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if (' '..='\u{7f}').contains(&c) => out.push(c),
                        c => {
                            for unit in c.encode_utf16(&mut [0; 2]) {
                                out.push_str(&format!("\\u{unit:04x}"));
                            }
                        }
                    }
                }
                out + "\""
            }
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(php_reference)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Value::Object(map) => format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!(
                        "{}:{}",
                        php_reference(&Value::String(k.clone())),
                        php_reference(v)
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// Strings, integers, booleans and null. Floats are left out: serde_json's default float
    /// parsing is not exact, so their round trip would test serde_json, not the re-emitter.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\"\\\\/\\x00-\\x1f\\x7fé€🥨\u{2028}a ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Pieces of JSON text, for building broken and near-valid inputs.
    const PIECES: &[&str] = &[
        "{", "}", "[", "]", "\"", ",", ":", "\\", "\\u", "d83e", "dd68", "00e9", "0", "1", "-",
        ".", "e", "+", "true", "null", " ", "\n", "a", "é", "🥨", "/", "\u{1}", "\"k\":", "\\\"",
    ];

    /// Strings made of JSON's own pieces, so they get deep into the parser.
    fn jsonish() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..48).prop_map(|p| p.concat())
    }

    /// serde_json's compact or pretty text of a value, left whole, with one piece inserted or
    /// with one character removed: many of these are valid JSON, many just barely not.
    fn near_json() -> impl Strategy<Value = String> {
        let edit = (
            0..3u8,
            any::<prop::sample::Index>(),
            prop::sample::select(PIECES),
        );
        (json_value(), any::<bool>(), edit).prop_map(|(v, pretty, (op, at, piece))| {
            let mut text = if pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            }
            .unwrap();
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                0 => {}
                1 => text.insert_str(i, piece),
                _ if i < text.len() => {
                    text.remove(i);
                }
                _ => {}
            }
            text
        })
    }

    /// serde_json accepting a text means we accept it too, and mean the same value.
    fn agrees_with_serde_json(text: &str) -> Result<(), TestCaseError> {
        let ours = php_json_encode_raw(text);
        if let Ok(theirs) = serde_json::from_str::<Value>(text) {
            let canonical = ours.map_err(|err| TestCaseError::fail(format!("refused: {err}")))?;
            prop_assert_eq!(serde_json::from_str::<Value>(&canonical).unwrap(), theirs);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn formatting_does_not_change_the_canonical_form(v in json_value()) {
            let compact = php_json_encode_raw(&serde_json::to_string(&v).unwrap()).unwrap();
            let pretty = php_json_encode_raw(&serde_json::to_string_pretty(&v).unwrap()).unwrap();
            prop_assert_eq!(&compact, &pretty);
            prop_assert_eq!(&compact, &php_reference(&v));
            prop_assert_eq!(serde_json::from_str::<Value>(&compact).unwrap(), v);
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let _ = php_json_encode_raw(&s);
        }

        #[test]
        fn jsonish_text_never_panics_and_agrees_with_serde_json(s in jsonish()) {
            agrees_with_serde_json(&s)?;
        }

        #[test]
        fn near_json_never_panics_and_agrees_with_serde_json(s in near_json()) {
            agrees_with_serde_json(&s)?;
        }
    }
}
