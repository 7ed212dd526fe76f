//! Device request proofs (protocol §6): every device API call carries a short-lived
//! JWS signed by the device key, bound to the HTTP method, the path, a hash of the
//! body and a one-time `jti` (the idea of DPoP, RFC 9449, without its access token).
//! There is no bearer secret to steal: a captured request can be neither replayed
//! (the server remembers `jti`) nor altered (method, path and body are signed).
//!
//! Request proofs are signed by the **device key** only (protocol v2, §1); a proof
//! signed by the approval key fails the signature check. Enrollment uses the same
//! claims with the new device key embedded in the header (`typ` [`ENROLL_TYP`]); key
//! statements (enrollment binding, rotation) are in [`crate::key_statement`].

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::jws;
use crate::keys::{PublicKey, Signer};
use crate::time::UnixTime;

/// JWS `typ` of device request proofs.
pub const REQUEST_TYP: &str = "pushauth-request+jwt";
/// JWS `typ` of enrollment proofs of possession (header carries `jwk`).
pub const ENROLL_TYP: &str = "pushauth-enroll+jwt";

/// Claims of a request proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestClaims {
    /// The server's issuer name.
    pub aud: String,
    /// HTTP method, upper case.
    pub htm: String,
    /// Request path and query as sent (`/v1/device/challenges?state=pending`), without
    /// scheme and host, so proxies in front of the server do not break it.
    pub htu: String,
    /// base64url(SHA-256(body bytes)); the hash of the empty string when no body.
    pub bh: String,
    /// One-time id, 16 to 64 random bytes in base64url.
    pub jti: String,
    /// Signing time.
    pub iat: UnixTime,
}

/// base64url(SHA-256(body)).
pub fn body_hash(body: &[u8]) -> String {
    b64::encode(ring::digest::digest(&ring::digest::SHA256, body))
}

/// The HTTP request being signed or checked.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// Method (`GET`, `POST`, …).
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Body bytes (empty for none).
    pub body: &'a [u8],
}

fn claims(audience: &str, req: HttpRequest<'_>, now: UnixTime) -> Result<RequestClaims> {
    let jti: [u8; 16] = crate::keys::random_array()?;
    Ok(RequestClaims {
        aud: audience.to_owned(),
        htm: req.method.to_ascii_uppercase(),
        htu: req.path.to_owned(),
        bh: body_hash(req.body),
        jti: b64::encode(jti),
        iat: now,
    })
}

/// Signs a device API request; `kid` = device id.
pub fn sign(
    device: &DeviceId,
    signer: &dyn Signer,
    audience: &str,
    req: HttpRequest<'_>,
    now: UnixTime,
) -> Result<String> {
    jws::sign(
        REQUEST_TYP,
        Some(device.as_str()),
        None,
        &claims(audience, req, now)?,
        signer,
    )
}

/// Signs an enrollment request with the new key, embedding its public JWK.
pub fn sign_enrollment(
    signer: &dyn Signer,
    audience: &str,
    req: HttpRequest<'_>,
    now: UnixTime,
) -> Result<String> {
    let jwk = signer.public_key()?.to_jwk();
    jws::sign(
        ENROLL_TYP,
        None,
        Some(jwk),
        &claims(audience, req, now)?,
        signer,
    )
}

/// What the server checks a request proof against.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// This server's issuer name.
    pub audience: &'a str,
    /// The request as received.
    pub request: HttpRequest<'a>,
    /// Now, by the server's clock.
    pub now: UnixTime,
    /// How far `iat` may be from now, either way, in seconds.
    pub window_secs: i64,
}

/// A request proof that passed [`verify`]; the caller must still record `jti` and
/// refuse a second use within the window.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    /// The one-time id to remember.
    pub jti: String,
    /// When it was signed.
    pub iat: UnixTime,
}

/// Returns the device id a request proof claims (`kid`), to find its key.
pub fn peek_device(token: &str) -> Result<DeviceId> {
    let unverified = jws::parse(token, REQUEST_TYP)?;
    let kid = unverified
        .header()
        .kid
        .as_deref()
        .ok_or(Error::WrongKeyId)?;
    DeviceId::parse(kid).map_err(|_| Error::WrongKeyId)
}

/// |`iat` − now| ≤ `window_secs`, computed without overflow: an `iat` so far away that
/// the difference does not fit an `i64` is outside every window.
pub fn within_window(iat: UnixTime, now: UnixTime, window_secs: i64) -> bool {
    iat.seconds()
        .checked_sub(now.seconds())
        .and_then(i64::checked_abs)
        .is_some_and(|distance| distance <= window_secs)
}

fn check(claims: RequestClaims, expect: &Expectations<'_>) -> Result<VerifiedRequest> {
    // §6: `aud` is this server's issuer.
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    // §6: `htm` is the method received.
    if claims.htm != expect.request.method.to_ascii_uppercase() {
        return Err(Error::WrongMethod);
    }
    // §6: `htu` is the path and query exactly as sent.
    if claims.htu != expect.request.path {
        return Err(Error::WrongPath);
    }
    // §6: `bh` is the hash of the body bytes received.
    if claims.bh != body_hash(expect.request.body) {
        return Err(Error::BodyHashMismatch);
    }
    // §6: |now − iat| ≤ 60 s (checked arithmetic: extreme values are stale, not a panic).
    if !within_window(claims.iat, expect.now, expect.window_secs) {
        return Err(Error::StaleRequest);
    }
    // §6: `jti` is 16 to 64 random bytes in base64url.
    match b64::decode(&claims.jti) {
        Some(j) if (16..=64).contains(&j.len()) => {}
        _ => {
            return Err(Error::MalformedClaims(
                "jti must be 16 to 64 bytes in base64url",
            ));
        }
    }
    Ok(VerifiedRequest {
        jti: claims.jti,
        iat: claims.iat,
    })
}

/// Verifies a device request proof: `typ`, `kid` = device, signature with the
/// device's **device key** (`key`; never the approval key), `aud`, method, path, body
/// hash, `iat` within the window, `jti` form.
pub fn verify(
    token: &str,
    device: &DeviceId,
    key: &PublicKey,
    expect: &Expectations<'_>,
) -> Result<VerifiedRequest> {
    // §2: compact JWS, ES256, typ pushauth-request+jwt.
    let unverified = jws::parse(token, REQUEST_TYP)?;
    // §6: `kid` is the device id.
    if unverified.header().kid.as_deref() != Some(device.as_str()) {
        return Err(Error::WrongKeyId);
    }
    // §1: request proofs are signed by the device key.
    check(unverified.verify(key)?, expect)
}

/// Verifies an enrollment proof of possession: the key is taken from the header
/// `jwk`, the signature must verify under it, and the claims are checked as for a
/// request. Returns the proven public key.
pub fn verify_enrollment(
    token: &str,
    expect: &Expectations<'_>,
) -> Result<(PublicKey, VerifiedRequest)> {
    let unverified = jws::parse(token, ENROLL_TYP)?;
    let jwk = unverified
        .header()
        .jwk
        .clone()
        .ok_or(Error::MalformedJws("enrollment proof needs a jwk header"))?;
    let key = PublicKey::from_jwk(&jwk)?;
    let verified = check(unverified.verify(&key)?, expect)?;
    Ok((key, verified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareSigningKey;

    const AUD: &str = "https://pushauth.example";

    fn req<'a>(body: &'a [u8]) -> HttpRequest<'a> {
        HttpRequest {
            method: "POST",
            path: "/v1/device/challenges/x/decision",
            body,
        }
    }

    fn expect<'a>(r: HttpRequest<'a>, now: i64) -> Expectations<'a> {
        Expectations {
            audience: AUD,
            request: r,
            now: UnixTime(now),
            window_secs: 60,
        }
    }

    #[test]
    fn request_round_trip_and_refusals() {
        let key = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let t = sign(&device, &key, AUD, req(b"{}"), UnixTime(1_000)).unwrap();
        assert_eq!(peek_device(&t).unwrap(), device);
        let v = verify(&t, &device, &key.public(), &expect(req(b"{}"), 1_030)).unwrap();
        assert_eq!(b64::decode(&v.jti).unwrap().len(), 16);

        let other = SoftwareSigningKey::generate().unwrap().public();
        assert_eq!(
            verify(&t, &device, &other, &expect(req(b"{}"), 1_000)).unwrap_err(),
            Error::BadSignature
        );
        let d2 = DeviceId::generate().unwrap();
        assert_eq!(
            verify(&t, &d2, &key.public(), &expect(req(b"{}"), 1_000)).unwrap_err(),
            Error::WrongKeyId
        );
        assert_eq!(
            verify(&t, &device, &key.public(), &expect(req(b"{ }"), 1_000)).unwrap_err(),
            Error::BodyHashMismatch
        );
        let get = HttpRequest {
            method: "GET",
            ..req(b"{}")
        };
        assert_eq!(
            verify(&t, &device, &key.public(), &expect(get, 1_000)).unwrap_err(),
            Error::WrongMethod
        );
        let path = HttpRequest {
            path: "/v1/device/push-token",
            ..req(b"{}")
        };
        assert_eq!(
            verify(&t, &device, &key.public(), &expect(path, 1_000)).unwrap_err(),
            Error::WrongPath
        );
        assert_eq!(
            verify(&t, &device, &key.public(), &expect(req(b"{}"), 1_061)).unwrap_err(),
            Error::StaleRequest
        );
        assert_eq!(
            verify(&t, &device, &key.public(), &expect(req(b"{}"), 939)).unwrap_err(),
            Error::StaleRequest
        );
        let e = Expectations {
            audience: "https://other",
            ..expect(req(b"{}"), 1_000)
        };
        assert_eq!(
            verify(&t, &device, &key.public(), &e).unwrap_err(),
            Error::WrongAudience
        );
        // an enrollment proof is not a request proof
        let enroll = sign_enrollment(&key, AUD, req(b"{}"), UnixTime(1_000)).unwrap();
        assert!(matches!(
            verify(&enroll, &device, &key.public(), &expect(req(b"{}"), 1_000)),
            Err(Error::WrongType { .. })
        ));
    }

    #[test]
    fn enrollment_proves_possession() {
        let key = SoftwareSigningKey::generate().unwrap();
        let t = sign_enrollment(&key, AUD, req(b"{\"code\":1}"), UnixTime(1_000)).unwrap();
        let (proven, _) = verify_enrollment(&t, &expect(req(b"{\"code\":1}"), 1_000)).unwrap();
        assert_eq!(proven, key.public());
        assert_eq!(
            verify_enrollment(&t, &expect(req(b"{\"code\":2}"), 1_000)).unwrap_err(),
            Error::BodyHashMismatch
        );
    }

    #[test]
    fn extreme_iat_is_stale_not_an_overflow() {
        let key = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        for (iat, now) in [
            (i64::MIN, 1_000),
            (i64::MAX, -1_000),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN + 1, 0),
            (i64::MAX, 0),
        ] {
            let t = sign(&device, &key, AUD, req(b"{}"), UnixTime(iat)).unwrap();
            assert_eq!(
                verify(&t, &device, &key.public(), &expect(req(b"{}"), now)).unwrap_err(),
                Error::StaleRequest,
                "iat {iat} now {now}"
            );
        }
        assert!(within_window(
            UnixTime(i64::MAX),
            UnixTime(i64::MAX - 60),
            60
        ));
        assert!(!within_window(
            UnixTime(i64::MIN),
            UnixTime(i64::MIN + 61),
            60
        ));
        assert!(within_window(UnixTime(0), UnixTime(0), 0));
    }
}
