//! Key statements (protocol §6.2, §6.3): `pushauth-key+jwt`, signed by a device
//! signing key about itself, with its public key in the header `jwk`.
//!
//! - **Enrollment binding**: the approval key proves possession and binds itself to the
//!   device key being enrolled (`use` = `approval`, `bnd` = thumbprint of the device key),
//!   so an approval key cannot be paired with someone else's device key.
//! - **Rotation**: the new key of one use names the current key of that use (`sub` =
//!   device id, `old` = its thumbprint). The request carrying it is signed by the current
//!   device key. An approval-key rotation also needs an **endorsement**: the same claims
//!   signed by the current approval key (header `kid` = device id), because the device
//!   key alone must never be enough to replace the key behind biometrics.
//!
//! Rotation is idempotent: a statement whose new key already is the current key of its
//! use verifies as [`Rotation::AlreadyCurrent`] (a retry after a lost response).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::jws;
use crate::keys::{KeyUse, PublicKey, Signer};
use crate::request::within_window;
use crate::time::UnixTime;

/// JWS `typ` of key statements and endorsements.
pub const KEY_TYP: &str = "pushauth-key+jwt";

/// Claims of a key statement. Enrollment bindings carry `bnd` and neither `sub` nor
/// `old`; rotations carry `sub` and `old` and no `bnd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyClaims {
    /// The server's issuer name (or, at enrollment, the server URL from the link).
    pub aud: String,
    /// The device whose key rotates (rotation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<DeviceId>,
    /// Which key this is.
    #[serde(rename = "use")]
    pub key_use: KeyUse,
    /// RFC 7638 thumbprint of the device key this approval key is bound to (enrollment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bnd: Option<String>,
    /// RFC 7638 thumbprint of the current key of this use, being replaced (rotation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Signing time.
    pub iat: UnixTime,
}

/// Signs a statement with the key it is about (`jwk` = that key's public JWK).
pub fn sign_statement(claims: &KeyClaims, key: &dyn Signer) -> Result<String> {
    jws::sign(KEY_TYP, None, Some(key.public_key()?.to_jwk()), claims, key)
}

/// The enrollment binding of the approval key to the device key, signed by the
/// approval key.
pub fn sign_enrollment_binding(
    approval_key: &dyn Signer,
    device_key: &PublicKey,
    audience: &str,
    now: UnixTime,
) -> Result<String> {
    let claims = KeyClaims {
        aud: audience.to_owned(),
        sub: None,
        key_use: KeyUse::Approval,
        bnd: Some(device_key.thumbprint()),
        old: None,
        iat: now,
    };
    sign_statement(&claims, approval_key)
}

/// What the server checks an enrollment binding against.
#[derive(Debug, Clone, Copy)]
pub struct EnrollmentExpectations<'a> {
    /// Accepted audiences: the issuer, and the server URL (the device learns the issuer
    /// only from the enrollment answer).
    pub audiences: &'a [&'a str],
    /// The device key proven by the enrollment request.
    pub device_key: &'a PublicKey,
    /// The approval key sent in the enrollment body.
    pub approval_key: &'a PublicKey,
    /// Now, by the server's clock.
    pub now: UnixTime,
    /// How far `iat` may be from now, either way, in seconds.
    pub window_secs: i64,
}

/// Verifies the approval key's enrollment binding, rule by rule (protocol §6.2).
pub fn verify_enrollment_binding(token: &str, expect: &EnrollmentExpectations<'_>) -> Result<()> {
    // §2: compact JWS, ES256, typ pushauth-key+jwt, kid or jwk (never both).
    let unverified = jws::parse(token, KEY_TYP)?;
    // §6.2: the header jwk is the key the statement is about.
    let jwk = unverified
        .header()
        .jwk
        .clone()
        .ok_or(Error::MalformedJws("key statement needs a jwk header"))?;
    let key = PublicKey::from_jwk(&jwk)?;
    // §6.2: that key is the approval key sent in the body.
    if key != *expect.approval_key {
        return Err(Error::WrongKeyId);
    }
    // §6.2: signed by the approval key (proof of possession).
    let claims: KeyClaims = unverified.verify(&key)?;
    // §6.2: aud = issuer or server URL.
    if !expect.audiences.contains(&claims.aud.as_str()) {
        return Err(Error::WrongAudience);
    }
    // §6.2: use = approval.
    if claims.key_use != KeyUse::Approval {
        return Err(Error::WrongKeyUse);
    }
    // §6.2: an enrollment binding has bnd and neither sub nor old.
    if claims.sub.is_some() || claims.old.is_some() {
        return Err(Error::MalformedClaims(
            "an enrollment binding has neither sub nor old",
        ));
    }
    // §6.2: bnd = RFC 7638 thumbprint of the device key being enrolled.
    if claims.bnd.as_deref() != Some(expect.device_key.thumbprint().as_str()) {
        return Err(Error::KeyBindingMismatch);
    }
    // §6.2: |now − iat| within the request window.
    if !within_window(claims.iat, expect.now, expect.window_secs) {
        return Err(Error::StaleRequest);
    }
    // §1: the approval key is a key of its own, never the device key.
    if key == *expect.device_key {
        return Err(Error::KeyReuse);
    }
    Ok(())
}

/// The claims of a rotation statement for the key of `key_use` of `device`, replacing
/// `current`.
pub fn rotation_claims(
    device: &DeviceId,
    key_use: KeyUse,
    current: &PublicKey,
    audience: &str,
    now: UnixTime,
) -> KeyClaims {
    KeyClaims {
        aud: audience.to_owned(),
        sub: Some(device.clone()),
        key_use,
        bnd: None,
        old: Some(current.thumbprint()),
        iat: now,
    }
}

/// Signs the old approval key's endorsement of a rotation: the same claims, header
/// `kid` = device id.
pub fn sign_endorsement(claims: &KeyClaims, old_approval_key: &dyn Signer) -> Result<String> {
    let device = claims
        .sub
        .as_ref()
        .ok_or(Error::MalformedClaims("an endorsement needs sub"))?;
    jws::sign(
        KEY_TYP,
        Some(device.as_str()),
        None,
        claims,
        old_approval_key,
    )
}

/// What the server checks a rotation against.
#[derive(Debug, Clone, Copy)]
pub struct RotationExpectations<'a> {
    /// This server's issuer name.
    pub audience: &'a str,
    /// The device (authenticated by the request proof, signed by its device key).
    pub device: &'a DeviceId,
    /// The use being rotated, from the request body.
    pub key_use: KeyUse,
    /// The device's current key of that use.
    pub current: &'a PublicKey,
    /// The device's current key of the other use (the new key must differ from it).
    pub other: &'a PublicKey,
    /// Now, by the server's clock.
    pub now: UnixTime,
    /// How far `iat` may be from now, either way, in seconds.
    pub window_secs: i64,
}

/// The result of a verified rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Replace the current key with this one (compare-and-swap on the current key).
    Replace(PublicKey),
    /// The new key already is the current key: a retry after a lost response; answer
    /// as for the first success and change nothing.
    AlreadyCurrent(PublicKey),
}

impl Rotation {
    /// The key that is (or becomes) current.
    pub fn key(&self) -> &PublicKey {
        match self {
            Rotation::Replace(k) | Rotation::AlreadyCurrent(k) => k,
        }
    }
}

/// Verifies a rotation statement (and, for the approval key, its endorsement), rule by
/// rule (protocol §6.3).
pub fn verify_rotation(
    statement: &str,
    endorsement: Option<&str>,
    expect: &RotationExpectations<'_>,
) -> Result<Rotation> {
    // §2: compact JWS, ES256, typ pushauth-key+jwt, kid or jwk (never both).
    let unverified = jws::parse(statement, KEY_TYP)?;
    // §6.3: the header jwk is the new key.
    let jwk = unverified
        .header()
        .jwk
        .clone()
        .ok_or(Error::MalformedJws("key statement needs a jwk header"))?;
    let new_key = PublicKey::from_jwk(&jwk)?;
    // §6.3: signed by the new key (proof of possession).
    let claims: KeyClaims = unverified.verify(&new_key)?;
    // §6.3: aud = issuer.
    if claims.aud != expect.audience {
        return Err(Error::WrongAudience);
    }
    // §6.3: sub = the device making the request.
    match &claims.sub {
        None => return Err(Error::MalformedClaims("a rotation statement needs sub")),
        Some(sub) if sub != expect.device => return Err(Error::WrongSubject),
        Some(_) => {}
    }
    // §6.3: use = the use named in the request body.
    if claims.key_use != expect.key_use {
        return Err(Error::WrongKeyUse);
    }
    // §6.3: a rotation statement has old and no bnd.
    let (Some(old), None) = (&claims.old, &claims.bnd) else {
        return Err(Error::MalformedClaims(
            "a rotation statement has old and no bnd",
        ));
    };
    // §6.3: |now − iat| within the request window.
    if !within_window(claims.iat, expect.now, expect.window_secs) {
        return Err(Error::StaleRequest);
    }
    // §6.3: an approval-key rotation carries an endorsement; a device-key rotation none.
    let endorsement = match (expect.key_use, endorsement) {
        (KeyUse::Approval, None) => return Err(Error::EndorsementRequired),
        (KeyUse::Approval, Some(e)) => Some(e),
        (KeyUse::Device, Some(_)) => return Err(Error::EndorsementNotAllowed),
        (KeyUse::Device, None) => None,
    };
    // §6.3: new key = current key: a retry of a rotation that already happened.
    if new_key == *expect.current {
        return Ok(Rotation::AlreadyCurrent(new_key));
    }
    // §6.3: old = thumbprint of the current key of that use.
    if *old != expect.current.thumbprint() {
        return Err(Error::OldKeyMismatch);
    }
    // §1: the new key is not the device's key of the other use.
    if new_key == *expect.other {
        return Err(Error::KeyReuse);
    }
    if let Some(endorsement) = endorsement {
        verify_endorsement(endorsement, &claims, expect)?;
    }
    Ok(Rotation::Replace(new_key))
}

fn verify_endorsement(
    endorsement: &str,
    statement: &KeyClaims,
    expect: &RotationExpectations<'_>,
) -> Result<()> {
    // §2: compact JWS, ES256, typ pushauth-key+jwt.
    let unverified = jws::parse(endorsement, KEY_TYP)?;
    // §6.3: the endorsement's kid is the device id.
    if unverified.header().kid.as_deref() != Some(expect.device.as_str()) {
        return Err(Error::WrongKeyId);
    }
    // §6.3: signed by the current approval key.
    let claims: KeyClaims = unverified.verify(expect.current).map_err(|e| match e {
        Error::BadSignature => Error::BadEndorsement,
        other => other,
    })?;
    // §6.3: the same claims as the statement.
    if claims != *statement {
        return Err(Error::EndorsementMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareSigningKey;

    const AUD: &str = "https://pushauth.example";

    fn key() -> SoftwareSigningKey {
        SoftwareSigningKey::generate().unwrap()
    }

    #[test]
    fn enrollment_binding() {
        let device = key();
        let approval = key();
        let t = sign_enrollment_binding(&approval, &device.public(), AUD, UnixTime(1_000)).unwrap();
        let (d, a) = (device.public(), approval.public());
        let e = EnrollmentExpectations {
            audiences: &[AUD, "https://server.example"],
            device_key: &d,
            approval_key: &a,
            now: UnixTime(1_030),
            window_secs: 60,
        };
        verify_enrollment_binding(&t, &e).unwrap();

        let other = key().public();
        let cases = [
            (
                EnrollmentExpectations {
                    device_key: &other,
                    ..e
                },
                Error::KeyBindingMismatch,
            ),
            (
                EnrollmentExpectations {
                    approval_key: &other,
                    ..e
                },
                Error::WrongKeyId,
            ),
            (
                EnrollmentExpectations {
                    audiences: &["https://x"],
                    ..e
                },
                Error::WrongAudience,
            ),
            (
                EnrollmentExpectations {
                    now: UnixTime(1_061),
                    ..e
                },
                Error::StaleRequest,
            ),
        ];
        for (x, err) in cases {
            assert_eq!(verify_enrollment_binding(&t, &x).unwrap_err(), err);
        }
        // one key for both uses
        let same =
            sign_enrollment_binding(&device, &device.public(), AUD, UnixTime(1_000)).unwrap();
        let x = EnrollmentExpectations {
            approval_key: &d,
            ..e
        };
        assert_eq!(
            verify_enrollment_binding(&same, &x).unwrap_err(),
            Error::KeyReuse
        );
        // use = device
        let claims = KeyClaims {
            aud: AUD.into(),
            sub: None,
            key_use: KeyUse::Device,
            bnd: Some(d.thumbprint()),
            old: None,
            iat: UnixTime(1_000),
        };
        let t = sign_statement(&claims, &approval).unwrap();
        assert_eq!(
            verify_enrollment_binding(&t, &e).unwrap_err(),
            Error::WrongKeyUse
        );
        // a rotation statement is not a binding
        let device_id = DeviceId::generate().unwrap();
        let rot = sign_statement(
            &rotation_claims(&device_id, KeyUse::Approval, &d, AUD, UnixTime(1_000)),
            &approval,
        )
        .unwrap();
        assert!(matches!(
            verify_enrollment_binding(&rot, &e),
            Err(Error::MalformedClaims(_))
        ));
        // kid instead of jwk
        let kid = jws::sign(KEY_TYP, Some("x"), None, &claims, &approval).unwrap();
        assert!(matches!(
            verify_enrollment_binding(&kid, &e),
            Err(Error::MalformedJws(_))
        ));
    }

    struct Rot {
        id: DeviceId,
        device: SoftwareSigningKey,
        approval: SoftwareSigningKey,
        new: SoftwareSigningKey,
    }

    fn rot() -> Rot {
        Rot {
            id: DeviceId::generate().unwrap(),
            device: key(),
            approval: key(),
            new: key(),
        }
    }

    fn expect<'a>(
        r: &'a Rot,
        key_use: KeyUse,
        current: &'a PublicKey,
        other: &'a PublicKey,
    ) -> RotationExpectations<'a> {
        RotationExpectations {
            audience: AUD,
            device: &r.id,
            key_use,
            current,
            other,
            now: UnixTime(1_010),
            window_secs: 60,
        }
    }

    #[test]
    fn device_key_rotation() {
        let r = rot();
        let (d, a, n) = (r.device.public(), r.approval.public(), r.new.public());
        let claims = rotation_claims(&r.id, KeyUse::Device, &d, AUD, UnixTime(1_000));
        let st = sign_statement(&claims, &r.new).unwrap();
        let e = expect(&r, KeyUse::Device, &d, &a);
        assert_eq!(
            verify_rotation(&st, None, &e).unwrap(),
            Rotation::Replace(n)
        );
        // retry after the swap: the new key is current
        let after = RotationExpectations { current: &n, ..e };
        assert_eq!(
            verify_rotation(&st, None, &after).unwrap(),
            Rotation::AlreadyCurrent(n)
        );
        // refusals
        let third = key().public();
        assert_eq!(
            verify_rotation(
                &st,
                None,
                &RotationExpectations {
                    current: &third,
                    ..e
                }
            )
            .unwrap_err(),
            Error::OldKeyMismatch
        );
        let other_id = DeviceId::generate().unwrap();
        assert_eq!(
            verify_rotation(
                &st,
                None,
                &RotationExpectations {
                    device: &other_id,
                    ..e
                }
            )
            .unwrap_err(),
            Error::WrongSubject
        );
        assert_eq!(
            verify_rotation(
                &st,
                None,
                &RotationExpectations {
                    key_use: KeyUse::Approval,
                    current: &a,
                    other: &d,
                    ..e
                }
            )
            .unwrap_err(),
            Error::WrongKeyUse
        );
        assert_eq!(
            verify_rotation(
                &st,
                None,
                &RotationExpectations {
                    now: UnixTime(2_000),
                    ..e
                }
            )
            .unwrap_err(),
            Error::StaleRequest
        );
        assert_eq!(
            verify_rotation(&st, Some(&st), &e).unwrap_err(),
            Error::EndorsementNotAllowed
        );
        // the new device key may not be the approval key
        let to_approval = sign_statement(&claims, &r.approval).unwrap();
        assert_eq!(
            verify_rotation(&to_approval, None, &e).unwrap_err(),
            Error::KeyReuse
        );
        assert_eq!(
            verify_rotation(
                &st,
                None,
                &RotationExpectations {
                    audience: "https://x",
                    ..e
                }
            )
            .unwrap_err(),
            Error::WrongAudience
        );
    }

    #[test]
    fn approval_key_rotation_needs_the_old_approval_key() {
        let r = rot();
        let (d, a, n) = (r.device.public(), r.approval.public(), r.new.public());
        let claims = rotation_claims(&r.id, KeyUse::Approval, &a, AUD, UnixTime(1_000));
        let st = sign_statement(&claims, &r.new).unwrap();
        let endorsement = sign_endorsement(&claims, &r.approval).unwrap();
        let e = expect(&r, KeyUse::Approval, &a, &d);
        assert_eq!(
            verify_rotation(&st, Some(&endorsement), &e).unwrap(),
            Rotation::Replace(n)
        );
        // the device key alone is not enough
        assert_eq!(
            verify_rotation(&st, None, &e).unwrap_err(),
            Error::EndorsementRequired
        );
        let by_device_key = sign_endorsement(&claims, &r.device).unwrap();
        assert_eq!(
            verify_rotation(&st, Some(&by_device_key), &e).unwrap_err(),
            Error::BadEndorsement
        );
        let by_new_key = sign_endorsement(&claims, &r.new).unwrap();
        assert_eq!(
            verify_rotation(&st, Some(&by_new_key), &e).unwrap_err(),
            Error::BadEndorsement
        );
        let other_claims = KeyClaims {
            iat: UnixTime(1_001),
            ..claims.clone()
        };
        let mismatched = sign_endorsement(&other_claims, &r.approval).unwrap();
        assert_eq!(
            verify_rotation(&st, Some(&mismatched), &e).unwrap_err(),
            Error::EndorsementMismatch
        );
        let other_id = DeviceId::generate().unwrap();
        let wrong_kid =
            jws::sign(KEY_TYP, Some(other_id.as_str()), None, &claims, &r.approval).unwrap();
        assert_eq!(
            verify_rotation(&st, Some(&wrong_kid), &e).unwrap_err(),
            Error::WrongKeyId
        );
        // the new approval key may not be the device key
        let to_device = sign_statement(&claims, &r.device).unwrap();
        assert_eq!(
            verify_rotation(&to_device, Some(&endorsement), &e).unwrap_err(),
            Error::KeyReuse
        );
        // retry after the swap: the old key is gone, the statement alone is enough
        let after = RotationExpectations { current: &n, ..e };
        assert_eq!(
            verify_rotation(&st, Some(&endorsement), &after).unwrap(),
            Rotation::AlreadyCurrent(n)
        );
        // a binding is not a rotation
        let binding = sign_enrollment_binding(&r.new, &d, AUD, UnixTime(1_000)).unwrap();
        assert!(matches!(
            verify_rotation(&binding, Some(&endorsement), &e),
            Err(Error::MalformedClaims(_))
        ));
    }
}
