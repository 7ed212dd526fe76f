//! Migration grants (protocol §6.4): an enrolled device authorises the enrollment of a
//! new phone. The grant is a short-lived, single-use `pushauth-migrate+jwt` signed by
//! the **approval key** (one biometric prompt), header `kid` = device id. The old
//! device posts it with a request proof (device key); the server answers with an
//! activation code for the same cardholder, and the new phone enrolls as usual.
//! Single use of `jti` is enforced by the server's store, not here.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::jws;
use crate::keys::{PublicKey, Signer, random_array};
use crate::time::UnixTime;

/// JWS `typ` of migration grants.
pub const MIGRATE_TYP: &str = "pushauth-migrate+jwt";

/// Longest lifetime (`exp − iat`) of a grant, in seconds.
pub const MAX_GRANT_LIFETIME_SECS: i64 = 600;

/// Claims of a migration grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantClaims {
    /// The granting device.
    pub iss: DeviceId,
    /// The server's issuer name.
    pub aud: String,
    /// One-time id: 16 random bytes, base64url.
    pub jti: String,
    /// Signing time.
    pub iat: UnixTime,
    /// Expiry, at most [`MAX_GRANT_LIFETIME_SECS`] after `iat`.
    pub exp: UnixTime,
}

/// Claims for a new grant by `device`, living `lifetime_secs` (clamped to
/// 1..=[`MAX_GRANT_LIFETIME_SECS`]), with a fresh random `jti`.
pub fn grant_claims(
    device: &DeviceId,
    audience: &str,
    now: UnixTime,
    lifetime_secs: i64,
) -> Result<GrantClaims> {
    let jti: [u8; 16] = random_array()?;
    Ok(GrantClaims {
        iss: device.clone(),
        aud: audience.to_owned(),
        jti: b64::encode(jti),
        iat: now,
        exp: now.plus(lifetime_secs.clamp(1, MAX_GRANT_LIFETIME_SECS)),
    })
}

/// Signs a grant with the device's approval key; `kid` = device id.
pub fn sign_grant(claims: &GrantClaims, approval_key: &dyn Signer) -> Result<String> {
    jws::sign(
        MIGRATE_TYP,
        Some(claims.iss.as_str()),
        None,
        claims,
        approval_key,
    )
}

/// What the server checks a grant against.
#[derive(Debug, Clone, Copy)]
pub struct GrantExpectations<'a> {
    /// The device posting the grant (authenticated by its request proof).
    pub device: &'a DeviceId,
    /// That device's approval key.
    pub approval_key: &'a PublicKey,
    /// This server's issuer name.
    pub audience: &'a str,
    /// Now, by the server's clock.
    pub now: UnixTime,
    /// Accepted clock skew for `iat`, in seconds.
    pub skew_secs: i64,
}

/// A grant that passed [`verify_grant`]; the caller must still consume `jti` once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGrant {
    /// The one-time id to consume.
    pub jti: String,
    /// Expiry of the grant.
    pub exp: UnixTime,
}

/// Verifies a migration grant, rule by rule (protocol §6.4).
pub fn verify_grant(token: &str, expect: &GrantExpectations<'_>) -> Result<VerifiedGrant> {
    // §2: compact JWS, ES256, typ pushauth-migrate+jwt, kid or jwk (never both).
    let unverified = jws::parse(token, MIGRATE_TYP)?;
    // §6.4: kid = the device posting it (a grant of another device is refused).
    if unverified.header().kid.as_deref() != Some(expect.device.as_str()) {
        return Err(Error::WrongKeyId);
    }
    // §6.4: signed by that device's approval key.
    let claims: GrantClaims = unverified.verify(expect.approval_key)?;
    // §6.4: iss = that device.
    if claims.iss != *expect.device {
        return Err(Error::WrongIssuer);
    }
    // §6.4: aud = this server's issuer.
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    // §6.4: jti = 16 bytes in base64url.
    if b64::decode(&claims.jti).map(|j| j.len()) != Some(16) {
        return Err(Error::MalformedClaims("jti must be 16 bytes in base64url"));
    }
    // §6.4: iat ≤ now + skew.
    if claims.iat > expect.now.plus(expect.skew_secs) {
        return Err(Error::IssuedInFuture);
    }
    // §6.4: now < exp (no skew: the code issued from it lives until exp at most).
    if expect.now >= claims.exp {
        return Err(Error::Expired);
    }
    // §6.4: 0 < exp − iat ≤ 600 s (checked arithmetic).
    match claims.exp.seconds().checked_sub(claims.iat.seconds()) {
        Some(lifetime) if (1..=MAX_GRANT_LIFETIME_SECS).contains(&lifetime) => {}
        _ => return Err(Error::LifetimeTooLong),
    }
    Ok(VerifiedGrant {
        jti: claims.jti,
        exp: claims.exp,
    })
}

/// The device id a grant claims (`kid`), without verifying anything else.
pub fn peek_device(token: &str) -> Result<DeviceId> {
    let unverified = jws::parse(token, MIGRATE_TYP)?;
    let kid = unverified
        .header()
        .kid
        .as_deref()
        .ok_or(Error::WrongKeyId)?;
    DeviceId::parse(kid).map_err(|_| Error::WrongKeyId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareSigningKey;

    const AUD: &str = "https://pushauth.example";

    #[test]
    fn grant_round_trip_and_refusals() {
        let approval = SoftwareSigningKey::generate().unwrap();
        let device_key = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let claims = grant_claims(&device, AUD, UnixTime(1_000), 10_000).unwrap();
        assert_eq!(claims.exp, UnixTime(1_600), "lifetime capped at 600 s");
        let t = sign_grant(&claims, &approval).unwrap();
        assert_eq!(peek_device(&t).unwrap(), device);
        let key = approval.public();
        let e = GrantExpectations {
            device: &device,
            approval_key: &key,
            audience: AUD,
            now: UnixTime(1_100),
            skew_secs: 30,
        };
        let v = verify_grant(&t, &e).unwrap();
        assert_eq!(v.jti, claims.jti);
        assert_eq!(v.exp, UnixTime(1_600));

        let other = DeviceId::generate().unwrap();
        let dk = device_key.public();
        let cases = [
            (
                GrantExpectations {
                    device: &other,
                    ..e
                },
                Error::WrongKeyId,
            ),
            (
                GrantExpectations {
                    approval_key: &dk,
                    ..e
                },
                Error::BadSignature,
            ),
            (
                GrantExpectations {
                    audience: "https://x",
                    ..e
                },
                Error::WrongAudience,
            ),
            (
                GrantExpectations {
                    now: UnixTime(1_600),
                    ..e
                },
                Error::Expired,
            ),
            (
                GrantExpectations {
                    now: UnixTime(900),
                    skew_secs: 30,
                    ..e
                },
                Error::IssuedInFuture,
            ),
        ];
        for (x, err) in cases {
            assert_eq!(verify_grant(&t, &x).unwrap_err(), err);
        }
        // signed by the device key: refused
        let by_device_key = sign_grant(&claims, &device_key).unwrap();
        assert_eq!(
            verify_grant(&by_device_key, &e).unwrap_err(),
            Error::BadSignature
        );
        // lifetime over 600 s, zero, or overflowing
        for (iat, exp) in [
            (1_000, 1_601),
            (1_050, 1_050),
            (i64::MIN, 1_601),
            (1_000, i64::MAX),
        ] {
            let c = GrantClaims {
                iat: UnixTime(iat),
                exp: UnixTime(exp),
                ..claims.clone()
            };
            let t = sign_grant(&c, &approval).unwrap();
            let x = GrantExpectations {
                now: UnixTime(1_040),
                ..e
            };
            assert_eq!(
                verify_grant(&t, &x).unwrap_err(),
                Error::LifetimeTooLong,
                "{iat} {exp}"
            );
        }
        // iss differs from kid
        let c = GrantClaims {
            iss: other.clone(),
            ..claims.clone()
        };
        let t2 = jws::sign(MIGRATE_TYP, Some(device.as_str()), None, &c, &approval).unwrap();
        assert_eq!(verify_grant(&t2, &e).unwrap_err(), Error::WrongIssuer);
        // short jti
        let c = GrantClaims {
            jti: b64::encode([1u8; 8]),
            ..claims.clone()
        };
        let t3 = sign_grant(&c, &approval).unwrap();
        assert!(matches!(
            verify_grant(&t3, &e),
            Err(Error::MalformedClaims(_))
        ));
    }
}
