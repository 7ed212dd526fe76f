//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, spec v1):
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, one
//! space-separated entry per active secret, so receivers can rotate secrets without a
//! gap. Secrets are `whsec_` + base64 of the key bytes (24 to 64 bytes, as the
//! specification recommends).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key (the decoded secret). Its bytes are zeroed on drop and never printed.
#[derive(Clone)]
pub struct SigningKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; the decoded key must be 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<SigningKey, String> {
        let b64 = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a secret starts with {SECRET_PREFIX}"))?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| "the secret after whsec_ is not base64".to_owned())?,
        );
        if !(24..=64).contains(&bytes.len()) {
            return Err(format!(
                "the secret decodes to {} bytes; use 24 to 64 (32 recommended)",
                bytes.len()
            ));
        }
        Ok(SigningKey(bytes))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` header value: one signature per key, space-separated.
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference example of the Standard Webhooks specification and its libraries
    /// (github.com/standard-webhooks/standard-webhooks, "sign function works").
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn reproduces_the_specification_vector() {
        let key = SigningKey::parse(SPEC_SECRET).unwrap();
        assert_eq!(key.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
        // any change of id, timestamp or body changes it
        assert_ne!(key.sign("msg_x", SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
        assert_ne!(
            key.sign(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY),
            SPEC_SIGNATURE
        );
        assert_ne!(
            key.sign(SPEC_ID, SPEC_TIMESTAMP, br#"{"test":2432232314}"#),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn several_keys_give_several_signatures() {
        let a = SigningKey::parse(SPEC_SECRET).unwrap();
        let b =
            SigningKey::parse(&format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 32]))).unwrap();
        let h = signature_header(&[a, b], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SPEC_SIGNATURE);
        assert!(parts[1].starts_with("v1,") && parts[1] != SPEC_SIGNATURE);
    }

    #[test]
    fn bad_secrets_are_refused_with_a_reason() {
        assert!(
            SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_err()
                .contains("whsec_")
        );
        assert!(
            SigningKey::parse("whsec_!!!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            SigningKey::parse("whsec_AAAA")
                .unwrap_err()
                .contains("3 bytes")
        );
        assert_eq!(
            format!("{:?}", SigningKey::parse(SPEC_SECRET).unwrap()),
            "SigningKey(…)"
        );
    }
}
