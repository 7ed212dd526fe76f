//! Web Push (RFC 8030) message encryption and the subscription a device registers.
//!
//! A Web Push device (a UnifiedPush app on Android without Google services, a browser)
//! registers a *subscription*: the push service's endpoint URL, the device's P-256
//! public key `p256dh` and a 16-byte secret `auth`. Its wire form is the W3C
//! `PushSubscription.toJSON()` object, sent as the push token string:
//!
//! ```text
//! {"endpoint":"https://push.example/…","keys":{"p256dh":"<b64u 65 bytes>","auth":"<b64u 16 bytes>"}}
//! ```
//!
//! The push body is encrypted to the subscription per RFC 8291 (`aes128gcm` content
//! coding of RFC 8188, one record):
//!
//! ```text
//! ecdh_secret = ECDH(as_private, ua_public)                      (fresh as_private per message)
//! IKM   = HKDF-SHA256(salt = auth, ikm = ecdh_secret, info = "WebPush: info" ‖ 0x00 ‖ ua_public ‖ as_public, L = 32)
//! PRK   = HKDF-Extract(salt, IKM)                                (random 16-byte salt)
//! CEK   = HKDF-Expand(PRK, "Content-Encoding: aes128gcm" ‖ 0x00, 16)
//! NONCE = HKDF-Expand(PRK, "Content-Encoding: nonce" ‖ 0x00, 12)
//! body  = salt ‖ rs (u32 BE, 4096) ‖ 65 ‖ as_public ‖ AES-128-GCM(CEK, NONCE, plaintext ‖ 0x02)
//! ```
//!
//! What it carries is the same push data APNs and FCM carry (`cid`, `kind`, `enc`),
//! so the details inside `enc` stay encrypted to the agreement key (§7) underneath.

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce as AeadNonce, UnboundKey};
use ring::hkdf;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result};
use crate::keys::{KeyAgreement, PublicKey, SoftwareAgreementKey, random_array};

/// Record size written into every message (RFC 8291 §4 uses 4096).
pub const RECORD_SIZE: u32 = 4096;
/// Header length for a 65-byte key id: salt (16) ‖ rs (4) ‖ idlen (1) ‖ key id (65).
pub const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The largest body a push service must accept (RFC 8030 §7.2: at least 4096 bytes).
pub const MAX_BODY: usize = 4096;
/// Longest endpoint URL accepted in a subscription.
pub const MAX_ENDPOINT: usize = 2048;
/// Padding delimiter of the last (here: only) record (RFC 8188 §2).
const LAST_RECORD: u8 = 0x02;
const TAG_LEN: usize = 16;

/// A Web Push subscription: where to post and what to encrypt to.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    endpoint: String,
    p256dh: PublicKey,
    auth: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for Subscription {
    // The endpoint's path is a capability and `auth` a secret: only the origin shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({}…)", origin_of(&self.endpoint))
    }
}

/// `scheme://host[:port]` of a URL, by plain text splitting (enough for logs).
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

#[derive(Serialize, Deserialize)]
struct WireKeys {
    p256dh: String,
    auth: String,
}

/// `PushSubscription.toJSON()`; unknown members (`expirationTime`) are ignored.
#[derive(Serialize, Deserialize)]
struct Wire {
    endpoint: String,
    keys: WireKeys,
}

/// Base64url as browsers and push libraries write it: unpadded, or padded with `=`.
fn b64_lenient(text: &str) -> Option<Vec<u8>> {
    b64::decode(text.trim_end_matches('='))
}

impl Subscription {
    /// A subscription from its parts; the endpoint must be 1 to 2048 visible ASCII
    /// characters (its scheme and host are the server's policy to check).
    pub fn new(endpoint: &str, p256dh: PublicKey, auth: [u8; 16]) -> Result<Self> {
        if endpoint.is_empty()
            || endpoint.len() > MAX_ENDPOINT
            || !endpoint.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(Error::InvalidSubscription(
                "endpoint: 1 to 2048 visible ASCII characters",
            ));
        }
        if !endpoint.contains("://") {
            return Err(Error::InvalidSubscription("endpoint: not an absolute URL"));
        }
        Ok(Subscription {
            endpoint: endpoint.to_owned(),
            p256dh,
            auth: Zeroizing::new(auth),
        })
    }

    /// From base64url keys as a push API hands them out (`p256dh`: the 65-byte
    /// uncompressed point, `auth`: 16 bytes).
    pub fn from_parts(endpoint: &str, p256dh: &str, auth: &str) -> Result<Self> {
        let point =
            b64_lenient(p256dh).ok_or(Error::InvalidSubscription("keys.p256dh: not base64url"))?;
        let p256dh = PublicKey::from_sec1(&point).map_err(|_| {
            Error::InvalidSubscription("keys.p256dh: not an uncompressed P-256 point")
        })?;
        let auth: [u8; 16] =
            b64_lenient(auth)
                .and_then(|a| a.try_into().ok())
                .ok_or(Error::InvalidSubscription(
                    "keys.auth: not 16 bytes of base64url",
                ))?;
        Self::new(endpoint, p256dh, auth)
    }

    /// Parses the push token: the W3C `PushSubscription` JSON object.
    pub fn parse(token: &str) -> Result<Self> {
        let wire: Wire = serde_json::from_str(token).map_err(|_| {
            Error::InvalidSubscription(
                "not a PushSubscription JSON object {\"endpoint\",\"keys\":{\"p256dh\",\"auth\"}}",
            )
        })?;
        Self::from_parts(&wire.endpoint, &wire.keys.p256dh, &wire.keys.auth)
    }

    /// The canonical push token: `{"endpoint","keys":{"p256dh","auth"}}`, unpadded
    /// base64url, no other member.
    pub fn to_token(&self) -> String {
        let wire = Wire {
            endpoint: self.endpoint.clone(),
            keys: WireKeys {
                p256dh: b64::encode(self.p256dh.to_sec1()),
                auth: b64::encode(&self.auth[..]),
            },
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The push service URL to post to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The device's public key.
    pub fn p256dh(&self) -> &PublicKey {
        &self.p256dh
    }

    /// The authentication secret. Never log it.
    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::DecryptFailed)
}

/// The content-encryption key and nonce (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3).
struct Keys {
    cek: Zeroizing<[u8; 16]>,
    nonce: [u8; 12],
}

fn derive(
    ecdh_secret: &[u8],
    auth: &[u8; 16],
    ua_public: &[u8; 65],
    as_public: &[u8; 65],
    salt: &[u8; 16],
) -> Result<Keys> {
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
    let mut ikm = Zeroizing::new([0u8; 32]);
    expand(
        &prk_key,
        &[b"WebPush: info\0", ua_public, as_public],
        &mut ikm[..],
    )?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm[..]);
    let mut cek = Zeroizing::new([0u8; 16]);
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek[..])?;
    let mut nonce = [0u8; 12];
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce)?;
    Ok(Keys { cek, nonce })
}

fn cipher(keys: &Keys) -> Result<(LessSafeKey, AeadNonce)> {
    let key = UnboundKey::new(&AES_128_GCM, &keys.cek[..]).map_err(|_| Error::DecryptFailed)?;
    Ok((
        LessSafeKey::new(key),
        AeadNonce::assume_unique_for_key(keys.nonce),
    ))
}

/// Encrypts `plaintext` to a subscription with a fresh sender key and salt.
pub fn encrypt(subscription: &Subscription, plaintext: &[u8]) -> Result<Vec<u8>> {
    let sender = SoftwareAgreementKey::generate()?;
    let salt = random_array::<16>()?;
    encrypt_with(
        subscription.p256dh(),
        subscription.auth(),
        &sender,
        &salt,
        plaintext,
    )
}

/// Encrypts with a given sender key and salt (deterministic: for test vectors only;
/// [`encrypt`] draws both fresh for every message, which keeps (CEK, NONCE) unique).
pub fn encrypt_with(
    ua_public: &PublicKey,
    auth: &[u8; 16],
    sender: &dyn KeyAgreement,
    salt: &[u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    if HEADER_LEN + plaintext.len() + 1 + TAG_LEN > MAX_BODY {
        return Err(Error::MalformedEnvelope(
            "web push plaintext too long for one 4096-byte message",
        ));
    }
    let as_public = sender.public_key()?.to_sec1();
    let ua = ua_public.to_sec1();
    let ecdh = sender.agree(ua_public)?;
    let keys = derive(&ecdh[..], auth, &ua, &as_public, salt)?;
    let (key, nonce) = cipher(&keys)?;
    let mut record = Vec::with_capacity(plaintext.len() + 1 + TAG_LEN);
    record.extend_from_slice(plaintext);
    record.push(LAST_RECORD);
    key.seal_in_place_append_tag(nonce, Aad::empty(), &mut record)
        .map_err(|_| Error::MalformedEnvelope("encryption failed"))?;
    let mut body = Vec::with_capacity(HEADER_LEN + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// Decrypts a Web Push message body (one `aes128gcm` record) with the subscription's
/// private key `ua` and its `auth` secret. A wrong key, a wrong secret and a tampered
/// body all give [`Error::DecryptFailed`].
pub fn decrypt(ua: &dyn KeyAgreement, auth: &[u8; 16], body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if body.len() > 64 * 1024 {
        return Err(Error::MalformedEnvelope("web push body too long"));
    }
    if body.len() < 21 {
        return Err(Error::MalformedEnvelope(
            "web push body shorter than its header",
        ));
    }
    let (salt, rest) = body.split_at(16);
    let (rs, rest) = rest.split_at(4);
    let rs = u32::from_be_bytes([rs[0], rs[1], rs[2], rs[3]]) as usize;
    let (idlen, rest) = rest.split_at(1);
    if idlen[0] != 65 || rest.len() < 65 {
        return Err(Error::MalformedEnvelope(
            "web push key id is not a 65-byte P-256 point",
        ));
    }
    let (key_id, record) = rest.split_at(65);
    if rs < 18 {
        return Err(Error::MalformedEnvelope("web push record size below 18"));
    }
    if record.len() > rs {
        return Err(Error::MalformedEnvelope(
            "web push body holds more than one record",
        ));
    }
    if record.len() < 1 + TAG_LEN {
        return Err(Error::MalformedEnvelope("web push record too short"));
    }
    let as_public = PublicKey::from_sec1(key_id)
        .map_err(|_| Error::MalformedEnvelope("web push sender key is not a P-256 point"))?;
    let ua_public = ua.public_key()?.to_sec1();
    let ecdh = ua.agree(&as_public)?;
    let mut salt_arr = [0u8; 16];
    salt_arr.copy_from_slice(salt);
    let keys = derive(&ecdh[..], auth, &ua_public, &as_public.to_sec1(), &salt_arr)?;
    let (key, nonce) = cipher(&keys)?;
    let mut plain = Zeroizing::new(record.to_vec());
    let len = key
        .open_in_place(nonce, Aad::empty(), &mut plain)
        .map_err(|_| Error::DecryptFailed)?
        .len();
    plain.truncate(len);
    // Padding: zeros after the delimiter; the last record's delimiter is 0x02.
    let end = plain
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(Error::MalformedEnvelope("web push record has no delimiter"))?;
    if plain[end] != LAST_RECORD {
        return Err(Error::MalformedEnvelope(
            "web push record is not the last record",
        ));
    }
    plain.truncate(end);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let ua = SoftwareAgreementKey::generate().unwrap();
        let auth = random_array::<16>().unwrap();
        let sub = Subscription::new(
            "https://push.example/wpush/v2/abc?x=1",
            ua.public_key().unwrap(),
            auth,
        )
        .unwrap();
        let body = encrypt(&sub, br#"{"cid":"c","kind":"dismiss"}"#).unwrap();
        assert_eq!(body.len(), HEADER_LEN + 28 + 1 + 16);
        assert_eq!(
            &decrypt(&ua, &auth, &body).unwrap()[..],
            br#"{"cid":"c","kind":"dismiss"}"#
        );
        // Two messages never share salt or sender key.
        let again = encrypt(&sub, br#"{"cid":"c","kind":"dismiss"}"#).unwrap();
        assert_ne!(body[..HEADER_LEN], again[..HEADER_LEN]);
        // Wrong secret, wrong key, tampering: one answer.
        let mut other = auth;
        other[0] ^= 1;
        assert_eq!(
            decrypt(&ua, &other, &body).unwrap_err(),
            Error::DecryptFailed
        );
        let stranger = SoftwareAgreementKey::generate().unwrap();
        assert_eq!(
            decrypt(&stranger, &auth, &body).unwrap_err(),
            Error::DecryptFailed
        );
        let mut bad = body.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decrypt(&ua, &auth, &bad).unwrap_err(), Error::DecryptFailed);
        assert!(matches!(
            decrypt(&ua, &auth, &body[..40]),
            Err(Error::MalformedEnvelope(_))
        ));
        let mut small_rs = body.clone();
        small_rs[16..20].copy_from_slice(&20u32.to_be_bytes());
        assert!(matches!(
            decrypt(&ua, &auth, &small_rs),
            Err(Error::MalformedEnvelope(_))
        ));
        // Too long for one message.
        assert!(encrypt(&sub, &[b'a'; 4000]).is_err());
        assert!(encrypt(&sub, &[b'a'; MAX_BODY - HEADER_LEN - 17]).is_ok());
    }

    #[test]
    fn subscription_wire_form() {
        let ua = SoftwareAgreementKey::generate().unwrap();
        let p256dh = b64::encode(ua.public_key().unwrap().to_sec1());
        let token = format!(
            r#"{{"endpoint":"https://fcm.googleapis.com/fcm/send/d1:APA91b","expirationTime":null,"keys":{{"p256dh":"{p256dh}","auth":"BTBZMqHH6r4Tts7J_aSIgg=="}}}}"#
        );
        let sub = Subscription::parse(&token).unwrap();
        assert_eq!(
            sub.endpoint(),
            "https://fcm.googleapis.com/fcm/send/d1:APA91b"
        );
        assert_eq!(
            sub.to_token(),
            format!(
                r#"{{"endpoint":"https://fcm.googleapis.com/fcm/send/d1:APA91b","keys":{{"p256dh":"{p256dh}","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}}}"#
            )
        );
        assert_eq!(Subscription::parse(&sub.to_token()).unwrap(), sub);
        let shown = format!("{sub:?}");
        assert_eq!(shown, "Subscription(https://fcm.googleapis.com…)");
        for bad in [
            "abc",
            r#"{"endpoint":"https://x/"}"#,
            r#"{"endpoint":"https://x/","keys":{"p256dh":"AAAA","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}"#,
            &token.replace("BTBZMqHH6r4Tts7J_aSIgg==", "BTBZ"),
            &token.replace("https://fcm.googleapis.com", "push service"),
            &token.replace("https://fcm.googleapis.com", "fcm.googleapis.com"),
        ] {
            assert!(
                matches!(Subscription::parse(bad), Err(Error::InvalidSubscription(_))),
                "{bad}"
            );
        }
        assert_eq!(
            origin_of("https://a.example:8443/p?q"),
            "https://a.example:8443"
        );
        assert_eq!(origin_of("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}
