//! Base64url without padding (RFC 7515 §2), the only encoding used in JWS and in
//! our envelopes. Decoding is strict: padding, whitespace and non-canonical trailing
//! bits are refused, so one value has exactly one encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url strictly; `None` on any deviation.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(decode("-_8="), None, "padding refused");
        assert_eq!(decode("+/8"), None, "standard alphabet refused");
        assert_eq!(decode("-_9"), None, "non-canonical trailing bits refused");
        assert_eq!(decode("a b"), None);
    }
}
