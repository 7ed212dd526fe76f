//! Compact JWS (RFC 7515 §7.1) restricted to what pushauth needs: `alg` ES256 only,
//! one `typ` per kind of signed object, a protected header with exactly the members
//! below, and nothing unprotected. Being this narrow is the point: there is no
//! algorithm negotiation to confuse, no key URL to fetch, no critical extension.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Error, Result};
use crate::keys::{Jwk, PublicKey, Signer, normalize_signature};

/// The only algorithm we sign with or accept (RFC 7518 §3.4, ECDSA P-256 SHA-256).
pub const ALG_ES256: &str = "ES256";

/// Longest compact JWS we will look at; anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The protected header. Unknown members are refused so that a header cannot carry
/// anything the verifier would silently ignore.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Algorithm; must be `ES256`.
    pub alg: String,
    /// Object type, e.g. `pushauth-approval+jwt`.
    pub typ: String,
    /// Key id: the device id for device-signed objects, the server key thumbprint for
    /// server-signed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Embedded public key, only for enrollment proofs of possession.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
    /// Present only so that its presence can be refused with a precise error.
    #[serde(default, skip_serializing)]
    crit: Option<IgnoredAny>,
}

/// Signs `claims` as a compact JWS with the given `typ` and either a `kid` or an
/// embedded `jwk` in the protected header.
pub fn sign<C: Serialize>(
    typ: &str,
    kid: Option<&str>,
    jwk: Option<Jwk>,
    claims: &C,
    signer: &dyn Signer,
) -> Result<String> {
    let header = Header {
        alg: ALG_ES256.to_owned(),
        typ: typ.to_owned(),
        kid: kid.map(str::to_owned),
        jwk,
        crit: None,
    };
    let header_json = serde_json::to_vec(&header)
        .map_err(|_| Error::MalformedClaims("header not serialisable"))?;
    let claims_json = serde_json::to_vec(claims)
        .map_err(|_| Error::MalformedClaims("claims not serialisable"))?;
    let mut token =
        String::with_capacity(64 + (header_json.len() + claims_json.len() + 64) * 4 / 3);
    token.push_str(&b64::encode(&header_json));
    token.push('.');
    token.push_str(&b64::encode(&claims_json));
    let signature = normalize_signature(&signer.sign(token.as_bytes())?)?;
    token.push('.');
    token.push_str(&b64::encode(signature));
    Ok(token)
}

/// A compact JWS whose structure, header and `typ` have been checked but whose
/// signature has **not** been verified yet. Only [`Unverified::verify`] yields the
/// claims.
#[derive(Debug)]
pub struct Unverified<'a> {
    header: Header,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: [u8; 64],
}

/// Parses a compact JWS and checks, before any cryptography:
/// length ≤ [`MAX_TOKEN_LEN`]; three base64url parts; header a JSON object with only
/// known members; `alg` = ES256; no `crit`; `typ` = `expected_typ`; exactly one of
/// `kid` and `jwk`; a 64-byte signature.
pub fn parse<'a>(token: &'a str, expected_typ: &'static str) -> Result<Unverified<'a>> {
    parse_one_of(token, &[expected_typ])
}

/// As [`parse`], for a place that accepts several kinds of object (approval and
/// decline proofs): `typ` must be one of `expected_typs`; on a mismatch the error
/// names the first. The caller reads which one from [`Unverified::header`].
pub fn parse_one_of<'a>(token: &'a str, expected_typs: &[&'static str]) -> Result<Unverified<'a>> {
    // §2: tokens longer than 16 KiB are refused before any decoding.
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::MalformedJws("token too long"));
    }
    // RFC 7515 §7.1: compact serialisation is exactly three base64url parts.
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedJws("expected three dot-separated parts"));
    };
    let header_bytes = b64::decode(h).ok_or(Error::MalformedJws("header is not base64url"))?;
    // RFC 7515 §4: the header is a JSON object; an array (or any other value) is
    // refused before serde could read it as a sequence of members.
    match is_json_object(&header_bytes) {
        None => return Err(Error::MalformedJws("header is not one JSON value")),
        Some(false) => return Err(Error::HeaderNotObject),
        Some(true) => {}
    }
    // §2: exactly the members alg, typ, kid or jwk; unknown or duplicate members refused.
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| Error::MalformedJws("header is not the expected JSON object"))?;
    // RFC 7515 §4.1.1: the verifier must refuse algorithms it does not implement;
    // we implement exactly one.
    if header.alg != ALG_ES256 {
        return Err(Error::UnsupportedAlgorithm);
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension must
    // refuse the JWS; we understand none.
    if header.crit.is_some() {
        return Err(Error::CriticalExtension);
    }
    // §2: one typ per kind of object, compared exactly.
    if !expected_typs.contains(&header.typ.as_str()) {
        return Err(Error::WrongType {
            expected: expected_typs.first().copied().unwrap_or(""),
        });
    }
    // §2: the key is named once, by kid or by jwk, never both.
    match (&header.kid, &header.jwk) {
        (Some(_), Some(_)) => return Err(Error::KidAndJwk),
        (None, None) => return Err(Error::MalformedJws("header needs kid or jwk")),
        _ => {}
    }
    let signature = b64::decode(s).ok_or(Error::MalformedJws("signature is not base64url"))?;
    // RFC 7518 §3.4: the ES256 JWS signature is the 64-byte R‖S; DER is refused here
    // (it is normalised away before signing).
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| Error::MalformedJws("ES256 signature must be 64 bytes"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Unverified {
        header,
        signing_input,
        payload_b64: p,
        signature,
    })
}

/// `None` when `bytes` are not exactly one JSON value (trailing bytes included);
/// otherwise whether that value is an object.
fn is_json_object(bytes: &[u8]) -> Option<bool> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .map(|v| v.is_object())
}

impl<'a> Unverified<'a> {
    /// The protected header (not yet authenticated: use it only to find the key).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Verifies the signature with `key` and decodes the claims.
    pub fn verify<C: DeserializeOwned>(self, key: &PublicKey) -> Result<C> {
        // RFC 7515 §5.2 step 8: the signature over the signing input, with the key the
        // caller chose (never one the token names for itself, except §6.2 jwk proofs).
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        let payload =
            b64::decode(self.payload_b64).ok_or(Error::MalformedJws("payload is not base64url"))?;
        // RFC 7519 §7.2 step 10: the claims set is a JSON object; an array is refused
        // before serde could read it as a sequence of members.
        match is_json_object(&payload) {
            None => return Err(Error::MalformedClaims("claims are not one JSON value")),
            Some(false) => return Err(Error::ClaimsNotObject),
            Some(true) => {}
        }
        serde_json::from_slice(&payload)
            .map_err(|_| Error::MalformedClaims("claims do not have the expected shape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareSigningKey;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        a: u32,
    }

    fn token(key: &SoftwareSigningKey) -> String {
        sign("test+jwt", Some("k1"), None, &Claims { a: 7 }, key).unwrap()
    }

    #[test]
    fn sign_parse_verify() {
        let key = SoftwareSigningKey::generate().unwrap();
        let t = token(&key);
        let u = parse(&t, "test+jwt").unwrap();
        assert_eq!(u.header().kid.as_deref(), Some("k1"));
        let c: Claims = u.verify(&key.public()).unwrap();
        assert_eq!(c, Claims { a: 7 });
    }

    fn with_header(t: &str, header: &str) -> String {
        let rest = t.split_once('.').unwrap().1;
        format!("{}.{}", b64::encode(header), rest)
    }

    #[test]
    fn refusals() {
        let key = SoftwareSigningKey::generate().unwrap();
        let other = SoftwareSigningKey::generate().unwrap();
        let t = token(&key);
        assert_eq!(
            parse(&t, "other+jwt").unwrap_err(),
            Error::WrongType {
                expected: "other+jwt"
            }
        );
        assert_eq!(
            parse(&t, "test+jwt")
                .unwrap()
                .verify::<Claims>(&other.public())
                .unwrap_err(),
            Error::BadSignature
        );
        for alg in ["none", "HS256", "RS256", "ES384", "es256"] {
            let bad = with_header(&t, &format!(r#"{{"alg":"{alg}","typ":"test+jwt"}}"#));
            assert_eq!(
                parse(&bad, "test+jwt").unwrap_err(),
                Error::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        let crit = with_header(&t, r#"{"alg":"ES256","typ":"test+jwt","crit":["b64"]}"#);
        assert_eq!(
            parse(&crit, "test+jwt").unwrap_err(),
            Error::CriticalExtension
        );
        let unknown = with_header(
            &t,
            r#"{"alg":"ES256","typ":"test+jwt","jku":"https://evil"}"#,
        );
        assert!(matches!(
            parse(&unknown, "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        let dup = with_header(&t, r#"{"alg":"ES256","alg":"none","typ":"test+jwt"}"#);
        assert!(matches!(
            parse(&dup, "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        // header swapped for an equivalent one: signature no longer covers it
        let reordered = with_header(&t, r#"{"typ":"test+jwt","alg":"ES256","kid":"k1"}"#);
        assert_eq!(
            parse(&reordered, "test+jwt")
                .unwrap()
                .verify::<Claims>(&key.public())
                .unwrap_err(),
            Error::BadSignature
        );
        assert!(matches!(
            parse("a.b", "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        assert!(matches!(
            parse(&format!("{t}.x"), "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        assert!(matches!(
            parse(&"a".repeat(MAX_TOKEN_LEN + 1), "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        let (head, sig) = t.rsplit_once('.').unwrap();
        let short = format!("{head}.{}", b64::encode([0u8; 63]));
        assert!(matches!(
            parse(&short, "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
        let padded = format!("{head}.{sig}=");
        assert!(matches!(
            parse(&padded, "test+jwt"),
            Err(Error::MalformedJws(_))
        ));
    }

    /// A correctly signed token whose header is `header` and claims are `claims`.
    fn signed_raw(key: &SoftwareSigningKey, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64::encode(header), b64::encode(claims));
        let sig = key.sign_raw(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(sig))
    }

    #[test]
    fn profile_holes_are_refused_with_their_own_errors() {
        let key = SoftwareSigningKey::generate().unwrap();
        let jwk = serde_json::to_string(&key.public().to_jwk()).unwrap();
        let good = signed_raw(
            &key,
            r#"{"alg":"ES256","typ":"test+jwt","kid":"k1"}"#,
            r#"{"a":7}"#,
        );
        let c: Claims = parse(&good, "test+jwt")
            .unwrap()
            .verify(&key.public())
            .unwrap();
        assert_eq!(c, Claims { a: 7 });

        let both = signed_raw(
            &key,
            &format!(r#"{{"alg":"ES256","typ":"test+jwt","kid":"k1","jwk":{jwk}}}"#),
            r#"{"a":7}"#,
        );
        assert_eq!(parse(&both, "test+jwt").unwrap_err(), Error::KidAndJwk);

        let neither = signed_raw(&key, r#"{"alg":"ES256","typ":"test+jwt"}"#, r#"{"a":7}"#);
        assert!(matches!(
            parse(&neither, "test+jwt"),
            Err(Error::MalformedJws(_))
        ));

        // serde reads a derived struct from a sequence too: ["ES256","test+jwt","k1"]
        // would otherwise be a valid header
        let header_array = signed_raw(&key, r#"["ES256","test+jwt","k1"]"#, r#"{"a":7}"#);
        assert_eq!(
            parse(&header_array, "test+jwt").unwrap_err(),
            Error::HeaderNotObject
        );
        for not_object in ["\"ES256\"", "7", "null", "true"] {
            let t = signed_raw(&key, not_object, r#"{"a":7}"#);
            assert_eq!(
                parse(&t, "test+jwt").unwrap_err(),
                Error::HeaderNotObject,
                "{not_object}"
            );
        }

        let claims_array = signed_raw(
            &key,
            r#"{"alg":"ES256","typ":"test+jwt","kid":"k1"}"#,
            "[7]",
        );
        assert_eq!(
            parse(&claims_array, "test+jwt")
                .unwrap()
                .verify::<Claims>(&key.public())
                .unwrap_err(),
            Error::ClaimsNotObject
        );
        let claims_number = signed_raw(&key, r#"{"alg":"ES256","typ":"test+jwt","kid":"k1"}"#, "7");
        assert_eq!(
            parse(&claims_number, "test+jwt")
                .unwrap()
                .verify::<Claims>(&key.public())
                .unwrap_err(),
            Error::ClaimsNotObject
        );
        // trailing bytes after the object: not one JSON value
        let trailing = signed_raw(
            &key,
            r#"{"alg":"ES256","typ":"test+jwt","kid":"k1"}"#,
            r#"{"a":7}{"a":8}"#,
        );
        assert!(matches!(
            parse(&trailing, "test+jwt")
                .unwrap()
                .verify::<Claims>(&key.public()),
            Err(Error::MalformedClaims(_))
        ));
    }

    #[test]
    fn one_of_several_types() {
        let key = SoftwareSigningKey::generate().unwrap();
        let t = token(&key);
        let u = parse_one_of(&t, &["x+jwt", "test+jwt"]).unwrap();
        assert_eq!(u.header().typ, "test+jwt");
        assert_eq!(
            parse_one_of(&t, &["x+jwt", "y+jwt"]).unwrap_err(),
            Error::WrongType { expected: "x+jwt" }
        );
    }
}
