//! Unit tests of the webhook checks (the golden vectors are in `tests/webhook_auth_vectors.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::hmac::MacKey;
use super::*;

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn basic(user_colon_password: &[u8]) -> Vec<u8> {
    format!("Basic {}", b64(user_colon_password)).into_bytes()
}

// ----- Basic -----

#[test]
fn basic_parses_and_splits_at_the_first_colon() {
    let creds = parse_basic(&basic(b"user:pa:ss")).unwrap();
    assert_eq!(creds.user, "user");
    assert_eq!(creds.password.as_str(), "pa:ss");
    let creds = parse_basic(&basic(b":")).unwrap();
    assert_eq!((creds.user.as_str(), creds.password.as_str()), ("", ""));
}

#[test]
fn basic_scheme_is_case_insensitive_and_takes_several_spaces() {
    let token = b64(b"user:pass");
    for header in [
        format!("basic {token}"),
        format!("BASIC {token}"),
        format!("bAsIc   {token}"),
    ] {
        assert_eq!(
            parse_basic(header.as_bytes()).unwrap().password.as_str(),
            "pass",
            "{header}"
        );
    }
}

#[test]
fn basic_refusals() {
    let token = b64(b"user:pass");
    let cases: &[(&[u8], AuthError)] = &[
        (b"", AuthError::MissingHeader),
        (b"Bearer dXNlcjpwYXNz", AuthError::NotBasicScheme),
        (b"Basi", AuthError::NotBasicScheme),
        (b"Basically dXNlcjpwYXNz", AuthError::NotBasicScheme),
        (b"Basic\tdXNlcjpwYXNz", AuthError::NotBasicScheme),
        (b"Basic", AuthError::MalformedBase64),
        (b"Basic ", AuthError::MalformedBase64),
        (b"Basic    ", AuthError::MalformedBase64),
        (b"Basic %%%notbase64", AuthError::MalformedBase64),
        // Unpadded, URL-safe alphabet, trailing whitespace, non-canonical trailing bits.
        (b"Basic dXNlcjpwYXM", AuthError::MalformedBase64),
        (b"Basic dXNlcjpwYXM_", AuthError::MalformedBase64),
        (b"Basic dXNlcjpwYXNz ", AuthError::MalformedBase64),
        (b"Basic dXNlcjpwYXN=", AuthError::MalformedBase64),
        (b"Basic bm8tY29sb24taGVyZQ==", AuthError::NoColon),
    ];
    for (header, want) in cases {
        assert_eq!(
            parse_basic(header).unwrap_err(),
            *want,
            "{}",
            String::from_utf8_lossy(header)
        );
    }
    let latin1 = basic(b"z\xebe:pass");
    assert_eq!(parse_basic(&latin1).unwrap_err(), AuthError::NotUtf8);
    assert!(parse_basic(format!("Basic {token}").as_bytes()).is_ok());
}

#[test]
fn basic_debug_hides_the_password() {
    let creds = parse_basic(&basic(b"user:hunter2")).unwrap();
    let shown = format!("{creds:?}");
    assert!(
        shown.contains("user") && !shown.contains("hunter2"),
        "{shown}"
    );
    let verifier = BasicVerifier::new("user", "hunter2").unwrap();
    assert!(!format!("{verifier:?}").contains("hunter2"));
}

#[test]
fn basic_verifier_accepts_only_the_configured_pair() {
    let verifier = BasicVerifier::new("enfuce", "s3cret:with:colons").unwrap();
    assert_eq!(
        verifier.verify(&basic(b"enfuce:s3cret:with:colons")),
        Ok(())
    );
    assert_eq!(
        verifier.verify(b"basic ZW5mdWNlOnMzY3JldDp3aXRoOmNvbG9ucw=="),
        Ok(())
    );
    for wrong in [
        &b"enfuce:s3cret:with:colon"[..],
        b"enfuce:s3cret:with:colons ",
        b"enfuce:",
        b"Enfuce:s3cret:with:colons",
        b"other:s3cret:with:colons",
        b"other:wrong",
        b"enfuce:s3cret",
    ] {
        assert_eq!(
            verifier.verify(&basic(wrong)),
            Err(AuthError::BadCredentials)
        );
    }
    // Parse failures surface as such, before any comparison.
    assert_eq!(verifier.verify(b""), Err(AuthError::MissingHeader));
    assert_eq!(verifier.verify(b"Bearer x"), Err(AuthError::NotBasicScheme));
    assert_eq!(
        verifier.verify(&basic(b"no colon")),
        Err(AuthError::NoColon)
    );
}

#[test]
fn basic_verifier_refuses_unusable_configuration() {
    assert!(matches!(
        BasicVerifier::new("a:b", "pw"),
        Err(AuthError::BadKey(_))
    ));
    assert!(matches!(
        BasicVerifier::new("user", ""),
        Err(AuthError::BadKey(_))
    ));
}

// ----- HMAC headers -----

const PAYSAFE_KEY: &str = "c2VjcmV0LWtleS1ieXRlcw==";

#[test]
fn paysafe_signs_and_verifies_body_and_path() {
    let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
    let signature = paysafe.sign(b"{\"a\":1}");
    assert_eq!(signature.len(), MAC_B64_LEN);
    assert_eq!(paysafe.verify(b"{\"a\":1}", signature.as_bytes()), Ok(()));
    assert_eq!(
        paysafe.verify(b"{\"a\": 1}", signature.as_bytes()),
        Err(AuthError::BadSignature)
    );
    let path = "/sca/events/1/attempts";
    assert_eq!(
        paysafe.verify_path(path, paysafe.sign(path.as_bytes()).as_bytes()),
        Ok(())
    );
    assert_eq!(
        paysafe.verify_path(
            "/sca/events/2/attempts",
            paysafe.sign(path.as_bytes()).as_bytes()
        ),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn hmac_header_refusals() {
    let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
    let adyen = AdyenHmacVerifier::new("00ff").unwrap();
    let good = paysafe.sign(b"body");
    let cases: &[(&[u8], AuthError)] = &[
        (b"", AuthError::MissingHeader),
        (b"short", AuthError::MalformedSignature),
        // Right length, not base64.
        (
            b"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%=",
            AuthError::MalformedSignature,
        ),
        // Right length, decodes to 31 or 33 bytes instead of 32.
        (
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
            AuthError::MalformedSignature,
        ),
        (
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            AuthError::MalformedSignature,
        ),
        // Non-canonical trailing bits.
        (
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
            AuthError::MalformedSignature,
        ),
        (
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            AuthError::BadSignature,
        ),
    ];
    for (header, want) in cases {
        assert_eq!(
            paysafe.verify(b"body", header).unwrap_err(),
            *want,
            "{}",
            String::from_utf8_lossy(header)
        );
        assert_eq!(adyen.verify(b"body", header).unwrap_err(), *want);
    }
    let padded = format!(" {good}");
    assert_eq!(
        paysafe.verify(b"body", padded.as_bytes()),
        Err(AuthError::MalformedSignature)
    );
    assert_eq!(paysafe.verify(b"body", good.as_bytes()), Ok(()));
}

#[test]
fn hmac_keys_must_decode() {
    for key in [
        "",
        "not base64!",
        "c2VjcmV0",
        "c2VjcmV0LWtleS1ieXRlcw",
        "c2VjcmV0LWtleS1ieXRlcw==\n",
    ] {
        let refused = matches!(PaysafeVerifier::new(key), Err(AuthError::BadKey(_)));
        assert_eq!(refused, key != "c2VjcmV0", "{key:?}");
    }
    for key in ["", "0", "zz", "00 ff", "0x00ff"] {
        assert!(
            matches!(AdyenHmacVerifier::new(key), Err(AuthError::BadKey(_))),
            "{key:?}"
        );
    }
    assert!(AdyenHmacVerifier::new("00FFaa").is_ok());
    assert!(matches!(
        TreezorVerifier::new(""),
        Err(AuthError::BadKey(_))
    ));
}

// ----- Treezor -----

const TREEZOR_SECRET: &str = "test-secret";

fn treezor_body(payload: &str, signature: Option<&str>) -> String {
    let signature = signature
        .map(|s| format!(",\"object_payload_signature\":\"{s}\""))
        .unwrap_or_default();
    format!(
        "{{\"webhook\":\"card3DSv2Authentication.create\",\"webhook_id\":\"w-1\",\"webhook_created_at\":17950000000000,\
         \"object\":\"card3DSv2Authentication\",\"object_id\":\"o-1\",\"object_payload\":{payload}{signature}}}"
    )
}

fn treezor_sign(payload: &str) -> String {
    let canonical = php_json_encode_raw(payload).unwrap();
    MacKey::new(TREEZOR_SECRET.as_bytes())
        .unwrap()
        .sign_b64(canonical.as_bytes())
}

#[test]
fn treezor_accepts_and_returns_the_envelope() {
    let payload = "{ \"a\" : [1, \"\\u00e9/\"] }";
    let body = treezor_body(payload, Some(&treezor_sign(payload)));
    let envelope = TreezorVerifier::new(TREEZOR_SECRET)
        .unwrap()
        .verify(body.as_bytes())
        .unwrap();
    assert_eq!(envelope.webhook, "card3DSv2Authentication.create");
    assert_eq!(envelope.webhook_id, "w-1");
    assert_eq!(envelope.webhook_created_at, Some(17_950_000_000_000));
    assert_eq!(envelope.object.as_deref(), Some("card3DSv2Authentication"));
    assert_eq!(envelope.object_id.as_deref(), Some("o-1"));
    assert_eq!(envelope.object_payload.get(), payload);
}

#[test]
fn treezor_refusals() {
    let verifier = TreezorVerifier::new(TREEZOR_SECRET).unwrap();
    let payload = "{\"amount\":\"12.34\"}";
    let good = treezor_sign(payload);
    let other = TreezorVerifier::new("other-secret").unwrap();
    assert_eq!(
        other
            .verify(treezor_body(payload, Some(&good)).as_bytes())
            .unwrap_err(),
        AuthError::BadSignature
    );
    let tampered = treezor_body("{\"amount\":\"99.99\"}", Some(&good));
    assert_eq!(
        verifier.verify(tampered.as_bytes()).unwrap_err(),
        AuthError::BadSignature
    );
    let missing = treezor_body(payload, None);
    assert_eq!(
        verifier.verify(missing.as_bytes()).unwrap_err(),
        AuthError::MissingSignature
    );
    let malformed = treezor_body(payload, Some("not-a-signature"));
    assert_eq!(
        verifier.verify(malformed.as_bytes()).unwrap_err(),
        AuthError::MalformedSignature
    );
    let doubled = treezor_body(payload, Some(&good)).replacen(
        "\"object_payload\":",
        "\"object_payload\":{},\"object_payload\":",
        1,
    );
    let bodies: [&[u8]; 6] = [
        b"\xff{}",
        b"not json",
        b"{\"webhook\":",
        b"{\"webhook\":\"x\",\"webhook_id\":\"y\"}",
        b"{\"webhook\":1,\"webhook_id\":\"y\",\"object_payload\":{}}",
        doubled.as_bytes(),
    ];
    for body in bodies {
        assert!(
            matches!(verifier.verify(body), Err(AuthError::MalformedBody(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// ----- PHP json_encode -----

#[test]
fn php_encoding_of_strings() {
    let cases = [
        (
            r#""plain ASCII ~ DEL:""#.replace("DEL:", "\u{7f}"),
            "\"plain ASCII ~ \u{7f}\"",
        ),
        (
            r#""quote \" backslash \\ slash / \/""#.to_owned(),
            r#""quote \" backslash \\ slash \/ \/""#,
        ),
        (
            r#""\b\f\n\r\t \u0001\u001F \u0000""#.to_owned(),
            r#""\b\f\n\r\t \u0001\u001f \u0000""#,
        ),
        (
            r#""\u0008\u000C\u000a\u000D\u0009""#.to_owned(),
            r#""\b\f\n\r\t""#,
        ),
        (
            r#""\u0041\u00E9 é ü – €""#.to_owned(),
            r#""A\u00e9 \u00e9 \u00fc \u2013 \u20ac""#,
        ),
        (
            r#""🥨 \uD83E\uDD68 \ud83d\udcb3""#.to_owned(),
            r#""\ud83e\udd68 \ud83e\udd68 \ud83d\udcb3""#,
        ),
        (
            "\"\u{2028}\u{ffff}\u{10ffff}\"".to_owned(),
            r#""\u2028\uffff\udbff\udfff""#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(php_json_encode_raw(&input).unwrap(), want, "{input}");
    }
}

#[test]
fn php_encoding_keeps_order_and_lexemes_and_drops_whitespace() {
    let input = " {\n \"z\" : 1 ,\t\"a\":[ -0.50 , 1E+2, 0, 12.5e-3 , true,false , null ],\r\n\"e\":{ }, \"l\":[ ] } ";
    assert_eq!(
        php_json_encode_raw(input).unwrap(),
        r#"{"z":1,"a":[-0.50,1E+2,0,12.5e-3,true,false,null],"e":{},"l":[]}"#
    );
    for scalar in ["0", "-1", "\"\"", "true", "null"] {
        assert_eq!(php_json_encode_raw(scalar).unwrap(), scalar);
    }
}

#[test]
fn php_encoding_refuses_bad_json() {
    for input in [
        "",
        " ",
        "{",
        "[",
        "]",
        "}",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{1:1}",
        "[1 2]",
        "\"open",
        "\"bad \\x escape\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\",
        "\"\\u",
        "\"raw\ttab\"",
        "\"raw\nnewline\"",
        "\"raw \u{1f} unit separator\"",
        "\"\\ud83e\"",
        "\"\\ud83e x\"",
        "\"\\ud83e\\n\"",
        "\"\\ud83e\\u0041\"",
        "\"\\udd68\"",
        "\"\\udd68\\ud83e\"",
        "01",
        "-",
        "+1",
        ".5",
        "1.",
        "1e",
        "1e+",
        "-a",
        "0x10",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "falsy",
        "True",
        "1 2",
        "{} {}",
        "[]]",
    ] {
        assert!(
            matches!(php_json_encode_raw(input), Err(AuthError::MalformedBody(_))),
            "{input:?}"
        );
    }
}

#[test]
fn php_encoding_bounds_nesting() {
    let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(
        php_json_encode_raw(&nest(MAX_JSON_DEPTH)).unwrap(),
        nest(MAX_JSON_DEPTH)
    );
    assert_eq!(
        php_json_encode_raw(&nest(MAX_JSON_DEPTH + 1)),
        Err(AuthError::TooDeep)
    );
    let objects = format!(
        "{}1{}",
        "{\"k\":".repeat(MAX_JSON_DEPTH + 1),
        "}".repeat(MAX_JSON_DEPTH + 1)
    );
    assert_eq!(php_json_encode_raw(&objects), Err(AuthError::TooDeep));
    // Far deeper than the stack could take if it were not bounded.
    assert_eq!(
        php_json_encode_raw(&"[".repeat(1_000_000)),
        Err(AuthError::TooDeep)
    );
}

#[test]
fn errors_never_echo_input() {
    let secret_looking = "hunter2-SECRET";
    let paysafe = PaysafeVerifier::new(PAYSAFE_KEY).unwrap();
    let errors = [
        parse_basic(&basic(secret_looking.as_bytes())).unwrap_err(),
        paysafe
            .verify(secret_looking.as_bytes(), secret_looking.as_bytes())
            .unwrap_err(),
        php_json_encode_raw(&format!("\"{secret_looking}\\q\"")).unwrap_err(),
        TreezorVerifier::new(TREEZOR_SECRET)
            .unwrap()
            .verify(format!("{{\"webhook\":{secret_looking}}}").as_bytes())
            .unwrap_err(),
        TreezorVerifier::new(TREEZOR_SECRET)
            .unwrap()
            .verify(format!("{{\"webhook\":1,\"x\":\"{secret_looking}\"}}").as_bytes())
            .unwrap_err(),
    ];
    for err in errors {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
