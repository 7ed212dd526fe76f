//! Device key policy (`[devices]`) and enrollment settings (`[enrollment]`): which key
//! may sign a decline, the lowest user verification an approval may claim, and the
//! URL scheme of enrollment links (docs/configuration.md, docs/protocol.md §1, §4, §6.2).

use pushauth_core::proof::{ProofKind, UserVerification};
use serde::Deserialize;

/// `[devices]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// When true, a decline (deny / not me) must be signed by the approval key (a
    /// biometric prompt) instead of the device key. Default false.
    pub decline_requires_approval_key: bool,
    /// Lowest `uv` an approval proof may claim: `none` < `passcode` < `biometric`.
    /// Default `passcode` (biometric or device passcode; `none` refused).
    pub min_user_verification: UserVerification,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            decline_requires_approval_key: false,
            min_user_verification: UserVerification::Passcode,
        }
    }
}

/// Which stored key verifies a proof of this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKey {
    /// The device's approval key.
    Approval,
    /// The device's device key.
    Device,
}

impl DevicesConfig {
    /// Checks the values (the `uv` minimum must be one this server knows).
    pub fn validate(&self) -> Result<(), String> {
        if self.min_user_verification == UserVerification::Unknown {
            return Err("devices.min_user_verification must be none, passcode or biometric".into());
        }
        Ok(())
    }

    /// The key a proof of `kind` must be signed with: approvals always by the approval
    /// key; declines by the device key unless `decline_requires_approval_key`.
    pub fn key_for(&self, kind: ProofKind) -> ProofKey {
        match kind {
            ProofKind::Approval => ProofKey::Approval,
            ProofKind::Decline if self.decline_requires_approval_key => ProofKey::Approval,
            ProofKind::Decline => ProofKey::Device,
        }
    }
}

/// `[enrollment]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// URL scheme of enrollment deeplinks (`<scheme>://enroll?v=1&server=…&code=…`).
    /// Default `pushauth`; each issuer app registers its own (e.g. `mybank-pushauth`)
    /// so that no other app can claim the links.
    pub deeplink_scheme: String,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            deeplink_scheme: "pushauth".into(),
        }
    }
}

impl EnrollmentConfig {
    /// Checks the scheme: RFC 3986 §3.1 `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`,
    /// lower case (schemes compare case-insensitively; apps register them in lower
    /// case), at most 64 characters, and not a web scheme.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.deeplink_scheme;
        let valid = s.len() <= 64
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
            })
            && !matches!(s.as_str(), "http" | "https");
        if valid {
            Ok(())
        } else {
            Err(format!(
                "enrollment.deeplink_scheme {s:?}: expected a lower-case RFC 3986 scheme \
                 (letter, then letters, digits, + - .), at most 64 characters, not http(s)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        for ok in ["pushauth", "mybank-pushauth", "com.example.bank", "a1+b"] {
            let c = EnrollmentConfig {
                deeplink_scheme: ok.into(),
            };
            assert!(c.validate().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1bank",
            "My-Bank",
            "bank://",
            "https",
            "bank_app",
            &"a".repeat(65),
        ] {
            let c = EnrollmentConfig {
                deeplink_scheme: bad.into(),
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn key_choice_and_minimum() {
        let d = DevicesConfig::default();
        assert_eq!(d.key_for(ProofKind::Approval), ProofKey::Approval);
        assert_eq!(d.key_for(ProofKind::Decline), ProofKey::Device);
        let strict = DevicesConfig {
            decline_requires_approval_key: true,
            ..d.clone()
        };
        assert_eq!(strict.key_for(ProofKind::Decline), ProofKey::Approval);
        assert!(d.validate().is_ok());
        let unknown = DevicesConfig {
            min_user_verification: UserVerification::Unknown,
            ..d
        };
        assert!(unknown.validate().is_err());
    }
}
