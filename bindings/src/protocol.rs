//! The protocol v2 objects the device signs (docs/protocol.md §1, §4, §6): each
//! function builds one JWS with the core's `jws::sign` over a [`Signer`], so that
//! [`crate::keys::sign_jws`] can have it signed by the right key of the app's key
//! store. Which key signs which `typ` is fixed here:
//!
//! | object | key |
//! |---|---|
//! | request proof, enrollment proof, decline | device key |
//! | approval, migration grant, approval key statement / endorsement | approval key |

use pushauth_core::UnixTime;
use pushauth_core::b64;
use pushauth_core::error::Result;
use pushauth_core::ids::DeviceId;
use pushauth_core::jws;
use pushauth_core::keys::{PublicKey, Signer};
use pushauth_core::proof::ApprovalClaims;
use serde::Serialize;

/// `typ` of the approval key's statement at enrollment.
pub(crate) const KEY_TYP: &str = "pushauth-key+jwt";
/// `typ` of a decline (deny / not me) proof.
pub(crate) const DECLINE_TYP: &str = "pushauth-decline+jwt";
/// `typ` of a migration grant.
pub(crate) const MIGRATE_TYP: &str = "pushauth-migrate+jwt";
/// Longest migration grant lifetime the server accepts.
pub(crate) const MAX_GRANT_SECS: i64 = 600;

/// Wire name of a key use.
pub(crate) fn use_name(approval: bool) -> &'static str {
    if approval { "approval" } else { "device" }
}

#[derive(Serialize)]
struct KeyStatement<'a> {
    aud: &'a str,
    #[serde(rename = "use")]
    key_use: &'a str,
    bnd: String,
    iat: UnixTime,
}

/// The approval key's statement at enrollment: signed by the approval key, header
/// `jwk` = approval key, bound to the device key by its thumbprint.
pub(crate) fn sign_key_statement(
    approval: &dyn Signer,
    audience: &str,
    device_key: &PublicKey,
    now: UnixTime,
) -> Result<String> {
    let claims = KeyStatement {
        aud: audience,
        key_use: "approval",
        bnd: device_key.thumbprint(),
        iat: now,
    };
    jws::sign(
        KEY_TYP,
        None,
        Some(approval.public_key()?.to_jwk()),
        &claims,
        approval,
    )
}

/// Claims of a rotation statement and of its endorsement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RotationClaims {
    pub aud: String,
    pub sub: DeviceId,
    #[serde(rename = "use")]
    pub key_use: &'static str,
    pub old: String,
    pub iat: UnixTime,
}

/// A rotation statement (signed by the new key) or endorsement (the same claims
/// signed by the old approval key); both carry the signer's key in `jwk`.
pub(crate) fn sign_rotation(signer: &dyn Signer, claims: &RotationClaims) -> Result<String> {
    jws::sign(
        pushauth_core::request::ROTATE_TYP,
        None,
        Some(signer.public_key()?.to_jwk()),
        claims,
        signer,
    )
}

/// A decline proof: the claims of an approval proof with `decision` = deny, signed
/// by the device key.
pub(crate) fn sign_decline(claims: &ApprovalClaims, device: &dyn Signer) -> Result<String> {
    jws::sign(DECLINE_TYP, Some(claims.iss.as_str()), None, claims, device)
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    jti: String,
    iat: UnixTime,
    exp: UnixTime,
}

/// A migration grant: signed by the approval key, `kid` = device id.
pub(crate) fn sign_migration_grant(
    approval: &dyn Signer,
    device: &DeviceId,
    audience: &str,
    now: UnixTime,
    lifetime_secs: i64,
) -> Result<String> {
    let jti: [u8; 16] = pushauth_core::keys::random_array()?;
    let claims = GrantClaims {
        iss: device.as_str(),
        aud: audience,
        jti: b64::encode(jti),
        iat: now,
        exp: now.plus(lifetime_secs),
    };
    jws::sign(MIGRATE_TYP, Some(device.as_str()), None, &claims, approval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::keys::SoftwareSigningKey;

    #[test]
    fn statements_carry_their_key_and_binding() {
        let approval = SoftwareSigningKey::generate().unwrap();
        let device = SoftwareSigningKey::generate().unwrap().public();
        let token = sign_key_statement(&approval, "iss", &device, UnixTime(10)).unwrap();
        let parsed = jws::parse(&token, KEY_TYP).unwrap();
        assert_eq!(
            parsed.header().jwk.as_ref().unwrap(),
            &approval.public().to_jwk()
        );
        let claims: serde_json::Value = parsed.verify(&approval.public()).unwrap();
        assert_eq!(claims["use"], "approval");
        assert_eq!(claims["bnd"], device.thumbprint());
    }

    #[test]
    fn grants_are_short_lived_and_unique() {
        let approval = SoftwareSigningKey::generate().unwrap();
        let device = DeviceId::generate().unwrap();
        let a = sign_migration_grant(&approval, &device, "iss", UnixTime(100), 300).unwrap();
        let b = sign_migration_grant(&approval, &device, "iss", UnixTime(100), 300).unwrap();
        let claims: serde_json::Value = jws::parse(&a, MIGRATE_TYP)
            .unwrap()
            .verify(&approval.public())
            .unwrap();
        assert_eq!(claims["exp"], 400);
        assert_eq!(claims["iss"], device.as_str());
        assert_ne!(a, b);
    }
}
