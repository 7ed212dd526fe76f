//! Device request proofs (protocol §6): every device API call carries a short-lived
//! JWS signed by the device key, bound to the HTTP method, the path, a hash of the
//! body and a one-time `jti` (the idea of DPoP, RFC 9449, without its access token).
//! There is no bearer secret to steal: a captured request can be neither replayed
//! (the server remembers `jti`) nor altered (method, path and body are signed).
//!
//! Enrollment uses the same claims with the new public key embedded in the header
//! (`typ` [`ENROLL_TYP`]); key rotation adds a proof by the new key ([`ROTATE_TYP`]).

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
/// JWS `typ` of the new key's proof during key rotation (header carries `jwk`).
pub const ROTATE_TYP: &str = "pushauth-rotate+jwt";

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

fn check(claims: RequestClaims, expect: &Expectations<'_>) -> Result<VerifiedRequest> {
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    if claims.htm != expect.request.method.to_ascii_uppercase() {
        return Err(Error::WrongMethod);
    }
    if claims.htu != expect.request.path {
        return Err(Error::WrongPath);
    }
    if claims.bh != body_hash(expect.request.body) {
        return Err(Error::BodyHashMismatch);
    }
    if (claims.iat.seconds() - expect.now.seconds()).abs() > expect.window_secs {
        return Err(Error::StaleRequest);
    }
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
/// device's key, `aud`, method, path, body hash, `iat` within the window, `jti` form.
pub fn verify(
    token: &str,
    device: &DeviceId,
    key: &PublicKey,
    expect: &Expectations<'_>,
) -> Result<VerifiedRequest> {
    let unverified = jws::parse(token, REQUEST_TYP)?;
    if unverified.header().kid.as_deref() != Some(device.as_str()) {
        return Err(Error::WrongKeyId);
    }
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

/// Claims of the new key's proof during rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationClaims {
    /// The server's issuer name.
    pub aud: String,
    /// The device whose key rotates.
    pub sub: DeviceId,
    /// Thumbprint of the key being replaced.
    pub old: String,
    /// Signing time.
    pub iat: UnixTime,
}

/// Signs the rotation statement with the NEW key (embedding its JWK). The request
/// carrying it is signed with the OLD key, so both keys vouch for the change.
pub fn sign_rotation(
    new_key: &dyn Signer,
    device: &DeviceId,
    old_key: &PublicKey,
    audience: &str,
    now: UnixTime,
) -> Result<String> {
    let claims = RotationClaims {
        aud: audience.to_owned(),
        sub: device.clone(),
        old: old_key.thumbprint(),
        iat: now,
    };
    jws::sign(
        ROTATE_TYP,
        None,
        Some(new_key.public_key()?.to_jwk()),
        &claims,
        new_key,
    )
}

/// Verifies a rotation statement and returns the new key.
pub fn verify_rotation(
    token: &str,
    device: &DeviceId,
    old_key: &PublicKey,
    audience: &str,
    now: UnixTime,
    window_secs: i64,
) -> Result<PublicKey> {
    let unverified = jws::parse(token, ROTATE_TYP)?;
    let jwk = unverified
        .header()
        .jwk
        .clone()
        .ok_or(Error::MalformedJws("rotation proof needs a jwk header"))?;
    let new_key = PublicKey::from_jwk(&jwk)?;
    let claims: RotationClaims = unverified.verify(&new_key)?;
    if claims.aud != audience {
        return Err(Error::WrongAudience);
    }
    if &claims.sub != device || claims.old != old_key.thumbprint() {
        return Err(Error::WrongKeyId);
    }
    if (claims.iat.seconds() - now.seconds()).abs() > window_secs {
        return Err(Error::StaleRequest);
    }
    if new_key == *old_key {
        return Err(Error::InvalidPublicKey("new key equals the old key"));
    }
    Ok(new_key)
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
    fn rotation_needs_both_keys() {
        let old = SoftwareSigningKey::generate().unwrap();
        let new = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let t = sign_rotation(&new, &device, &old.public(), AUD, UnixTime(1_000)).unwrap();
        assert_eq!(
            verify_rotation(&t, &device, &old.public(), AUD, UnixTime(1_010), 60).unwrap(),
            new.public()
        );
        let third = SoftwareSigningKey::generate().unwrap().public();
        assert_eq!(
            verify_rotation(&t, &device, &third, AUD, UnixTime(1_010), 60).unwrap_err(),
            Error::WrongKeyId
        );
        let d2 = DeviceId::generate().unwrap();
        assert_eq!(
            verify_rotation(&t, &d2, &old.public(), AUD, UnixTime(1_010), 60).unwrap_err(),
            Error::WrongKeyId
        );
        assert_eq!(
            verify_rotation(&t, &device, &old.public(), AUD, UnixTime(2_000), 60).unwrap_err(),
            Error::StaleRequest
        );
        let same = sign_rotation(&old, &device, &old.public(), AUD, UnixTime(1_000)).unwrap();
        assert!(verify_rotation(&same, &device, &old.public(), AUD, UnixTime(1_000), 60).is_err());
    }
}
