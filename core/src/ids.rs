//! Identifier newtypes. Each has exactly one parsing constructor, so a value of the
//! type is proof that the string has the documented form (parse, don't validate).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Returns true when `s` is a lower-case hyphenated UUID (8-4-4-4-12 hex digits).
fn is_lower_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a lower-case hyphenated UUID.
            pub fn parse(s: &str) -> Result<Self> {
                if is_lower_uuid(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Error::InvalidId { kind: $kind, reason: "expected a lower-case hyphenated UUID" })
                }
            }

            /// Builds the id from 16 random bytes as a UUID v4.
            pub fn from_random_bytes(mut b: [u8; 16]) -> Self {
                b[6] = (b[6] & 0x0f) | 0x40;
                b[8] = (b[8] & 0x3f) | 0x80;
                Self(format_uuid(&b))
            }

            /// Generates a fresh random (v4) id from the OS random source.
            pub fn generate() -> Result<Self> {
                Ok(Self::from_random_bytes(crate::keys::random_array()?))
            }

            /// Builds the id as a UUID v7 (RFC 9562 §5.7): `unix_ms` in the first 48
            /// bits, then 74 bits of `b`. Ids made this way sort by creation time.
            pub fn from_time_and_random_bytes(unix_ms: u64, mut b: [u8; 16]) -> Self {
                b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
                b[6] = (b[6] & 0x0f) | 0x70;
                b[8] = (b[8] & 0x3f) | 0x80;
                Self(format_uuid(&b))
            }

            /// Generates a fresh time-ordered (v7) id for a row created at `unix_ms`:
            /// a database index on such ids grows at its end, instead of taking a write
            /// on a random page of the index for every new row. 74 random bits keep it
            /// unguessable; the time it shows is the row's creation time, which the
            /// row's readers are shown anyway.
            pub fn generate_time_ordered(unix_ms: u64) -> Result<Self> {
                Ok(Self::from_time_and_random_bytes(
                    unix_ms,
                    crate::keys::random_array()?,
                ))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

fn format_uuid(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(byte >> 4)] as char);
        s.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    s
}

uuid_id!(
    /// A device enrolled with the server (`kid` of its proofs, `iss` of its approvals).
    DeviceId,
    "device id"
);
uuid_id!(
    /// A challenge: one request to authenticate a cardholder (`jti` of its proof).
    ChallengeId,
    "challenge id"
);
uuid_id!(
    /// A cardholder known to the issuer.
    CardholderId,
    "cardholder id"
);

/// The processor (or generic API) a challenge came from. Part of the canonical
/// transaction, so a proof for one processor cannot be replayed for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Enfuce third-party authentication (`/v1/authenticate/...`).
    Enfuce,
    /// Adyen Balance Platform `authentication.relayed`.
    Adyen,
    /// Paysafe SCA events (OUTSOURCED).
    Paysafe,
    /// Treezor `card3DSv2Authentication`.
    Treezor,
    /// The issuer's own systems through the generic challenge API.
    Api,
}

impl Provider {
    /// All providers, in a stable order.
    pub const ALL: [Provider; 5] = [
        Provider::Enfuce,
        Provider::Adyen,
        Provider::Paysafe,
        Provider::Treezor,
        Provider::Api,
    ];

    /// The lower-case wire name (`enfuce`, `adyen`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Enfuce => "enfuce",
            Provider::Adyen => "adyen",
            Provider::Paysafe => "paysafe",
            Provider::Treezor => "treezor",
            Provider::Api => "api",
        }
    }

    /// Parses the lower-case wire name.
    pub fn parse(s: &str) -> Result<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(Error::InvalidId {
                kind: "provider",
                reason: "unknown provider",
            })
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The processor's own reference for an authentication (Enfuce `sessionId`, Adyen
/// `id`, Paysafe `eventId`, Treezor `authenticationRequestId`, or the issuer's id for
/// the generic API): 1 to 256 visible ASCII characters (0x21–0x7E).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderRef(String);

impl ProviderRef {
    /// Longest accepted reference.
    pub const MAX_LEN: usize = 256;

    /// Parses a provider reference.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(Error::InvalidId {
                kind: "provider reference",
                reason: "must be 1 to 256 characters",
            });
        }
        if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Error::InvalidId {
                kind: "provider reference",
                reason: "must be visible ASCII",
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderRef {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<ProviderRef> for String {
    fn from(r: ProviderRef) -> String {
        r.0
    }
}

impl fmt::Display for ProviderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderRef({})", self.0)
    }
}

/// A server-chosen challenge nonce: 16 to 64 random bytes, base64url without padding.
/// The approval proof must echo it, so a proof cannot be made before the challenge.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(String);

impl Nonce {
    /// Parses a nonce (22 to 86 base64url characters, i.e. 16 to 64 bytes).
    pub fn parse(s: &str) -> Result<Self> {
        match crate::b64::decode(s) {
            Some(b) if (16..=64).contains(&b.len()) => Ok(Self(s.to_owned())),
            _ => Err(Error::InvalidId {
                kind: "nonce",
                reason: "expected 16 to 64 bytes in base64url",
            }),
        }
    }

    /// A fresh 32-byte random nonce.
    pub fn generate() -> Result<Self> {
        let bytes: [u8; 32] = crate::keys::random_array()?;
        Ok(Self(crate::b64::encode(bytes)))
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nonce {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Nonce> for String {
    fn from(n: Nonce) -> String {
        n.0
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_parse_strictly() {
        let ok = "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88";
        assert_eq!(DeviceId::parse(ok).unwrap().as_str(), ok);
        for bad in [
            "",
            "0B8F6A3E-5A4C-4D1E-9F2A-7C3B1E0D9A88",
            "0b8f6a3e5a4c4d1e9f2a7c3b1e0d9a88",
            "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a8",
            "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9a88 ",
            "0b8f6a3e-5a4c-4d1e-9f2a_7c3b1e0d9a88",
            "0b8f6a3e-5a4c-4d1e-9f2a-7c3b1e0d9ag8",
        ] {
            assert!(ChallengeId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_v4_and_parse() {
        let id = ChallengeId::generate().unwrap();
        assert_eq!(id.as_str().as_bytes()[14], b'4');
        assert!(ChallengeId::parse(id.as_str()).is_ok());
        assert_ne!(id, ChallengeId::generate().unwrap());
    }

    #[test]
    fn time_ordered_ids_are_v7_sort_by_time_and_parse() {
        let t = 0x0194_1f29_7c00_u64; // 2025-01-01T00:00:00Z
        let id = ChallengeId::from_time_and_random_bytes(t, [0xff; 16]);
        assert_eq!(id.as_str(), "01941f29-7c00-7fff-bfff-ffffffffffff");
        let id = ChallengeId::from_time_and_random_bytes(t, [0; 16]);
        assert_eq!(id.as_str(), "01941f29-7c00-7000-8000-000000000000");
        // Only the low 48 bits of the time are kept.
        let id = ChallengeId::from_time_and_random_bytes(u64::MAX, [0; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-7000-8000-000000000000");
        let earlier = ChallengeId::generate_time_ordered(t).unwrap();
        let later = ChallengeId::generate_time_ordered(t + 1).unwrap();
        assert!(earlier < later, "{earlier:?} {later:?}");
        assert_ne!(earlier, ChallengeId::generate_time_ordered(t).unwrap());
        assert!(ChallengeId::parse(later.as_str()).is_ok());
    }

    #[test]
    fn provider_ref_bounds() {
        assert!(ProviderRef::parse("6b1c3d0e-aaaa").is_ok());
        assert!(ProviderRef::parse(&"x".repeat(256)).is_ok());
        assert!(ProviderRef::parse(&"x".repeat(257)).is_err());
        assert!(ProviderRef::parse("").is_err());
        assert!(ProviderRef::parse("a b").is_err());
        assert!(ProviderRef::parse("é").is_err());
    }

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()).unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert!(Provider::parse("Enfuce").is_err());
    }

    #[test]
    fn nonce_bounds() {
        assert!(Nonce::parse(&crate::b64::encode([0u8; 16])).is_ok());
        assert!(Nonce::parse(&crate::b64::encode([0u8; 15])).is_err());
        assert!(Nonce::parse(&crate::b64::encode([0u8; 65])).is_err());
        assert!(Nonce::parse("not base64!").is_err());
        assert!(Nonce::parse(Nonce::generate().unwrap().as_str()).is_ok());
    }
}
