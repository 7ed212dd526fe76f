//! Which key signs which protocol v2 object (docs/protocol.md §1), over the core's
//! builders (`key_statement`, `proof`, `migration`). Each function builds one JWS
//! over a [`Signer`], so that [`crate::keys::sign_jws`] can have it signed by the
//! right key of the app's key store:
//!
//! | object | key |
//! |---|---|
//! | request proof, enrollment proof, decline | device key |
//! | approval, migration grant, approval key statement / endorsement | approval key |
//! | rotation statement | the new key of that use |

use pushauth_core::UnixTime;
use pushauth_core::error::Result;
use pushauth_core::ids::DeviceId;
use pushauth_core::key_statement::{self, KeyClaims};
use pushauth_core::keys::{KeyUse, PublicKey, Signer};
use pushauth_core::migration;

pub(crate) use pushauth_core::migration::MAX_GRANT_LIFETIME_SECS as MAX_GRANT_SECS;

/// The core key use of a signing purpose.
pub(crate) fn key_use(approval: bool) -> KeyUse {
    if approval {
        KeyUse::Approval
    } else {
        KeyUse::Device
    }
}

/// The approval key's statement at enrollment, bound to the device key.
pub(crate) fn sign_key_statement(
    approval: &dyn Signer,
    audience: &str,
    device_key: &PublicKey,
    now: UnixTime,
) -> Result<String> {
    key_statement::sign_enrollment_binding(approval, device_key, audience, now)
}

/// The claims of a rotation statement and its endorsement.
pub(crate) fn rotation_claims(
    device: &DeviceId,
    approval: bool,
    current: &PublicKey,
    audience: &str,
    now: UnixTime,
) -> KeyClaims {
    key_statement::rotation_claims(device, key_use(approval), current, audience, now)
}

/// A rotation statement, signed by the new key (header `jwk`).
pub(crate) fn sign_rotation(new_key: &dyn Signer, claims: &KeyClaims) -> Result<String> {
    key_statement::sign_statement(claims, new_key)
}

/// The endorsement of an approval-key rotation, signed by the old approval key.
pub(crate) fn sign_endorsement(old_key: &dyn Signer, claims: &KeyClaims) -> Result<String> {
    key_statement::sign_endorsement(claims, old_key)
}

/// A migration grant, signed by the approval key.
pub(crate) fn sign_migration_grant(
    approval: &dyn Signer,
    device: &DeviceId,
    audience: &str,
    now: UnixTime,
    lifetime_secs: i64,
) -> Result<String> {
    let claims = migration::grant_claims(device, audience, now, lifetime_secs)?;
    migration::sign_grant(&claims, approval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_core::jws;
    use pushauth_core::keys::SoftwareSigningKey;

    #[test]
    fn statements_carry_their_key_and_binding() {
        let approval = SoftwareSigningKey::generate().unwrap();
        let device = SoftwareSigningKey::generate().unwrap().public();
        let token = sign_key_statement(&approval, "iss", &device, UnixTime(10)).unwrap();
        let parsed = jws::parse(&token, key_statement::KEY_TYP).unwrap();
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
        let claims: serde_json::Value = jws::parse(&a, migration::MIGRATE_TYP)
            .unwrap()
            .verify(&approval.public())
            .unwrap();
        assert_eq!(claims["exp"], 400);
        assert_eq!(claims["iss"], device.as_str());
        assert_ne!(a, b);
    }
}
