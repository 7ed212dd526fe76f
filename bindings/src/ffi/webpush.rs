//! Web Push (RFC 8030): for apps on Android without Google services (UnifiedPush) and
//! other Web Push receivers. The device registers with `Platform::WebPush` and a
//! subscription as its push token ([`web_push_token`]); the server encrypts the push
//! data to the subscription (RFC 8291). A distributor that hands the app the raw
//! message gives it to [`parse_web_push`] with the subscription's [`WebPushKeys`];
//! one that decrypts itself (UnifiedPush connector 3) gives the plaintext without keys.
//! Either way the inner push data then goes through [`super::push::parse_push`] and
//! its `enc` through `decrypt_push` (agreement key), as for APNs and FCM.

use std::collections::HashMap;
use std::sync::Arc;

use pushauth_core::b64;
use pushauth_core::keys::{KeyAgreement as _, SoftwareAgreementKey};
use pushauth_core::webpush::{self, Subscription};
use zeroize::Zeroizing;

use super::enrollment::EnrollmentState;
use super::error::PushAuthError;
use super::key_store::KeyStore;
use super::push::{PushMessage, parse_push};
use crate::error::Error;

/// A Web Push subscription's keys, made by [`generate_web_push_keys`] when the app
/// (not its push library) holds them. Store them with the enrollment state, in the
/// app's private storage: `auth` and `private_key` are secrets (they only open the
/// outer layer; the payment details stay encrypted to the agreement key inside).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct WebPushKeys {
    /// `p256dh`: the 65-byte uncompressed P-256 public key, base64url.
    pub p256dh: String,
    /// `auth`: the 16-byte authentication secret, base64url.
    pub auth: String,
    /// The private key: the 32-byte P-256 scalar, base64url.
    pub private_key: String,
}

impl std::fmt::Debug for WebPushKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebPushKeys({}…)",
            &self.p256dh.get(..12).unwrap_or_default()
        )
    }
}

/// New subscription keys: a P-256 key pair and a 16-byte `auth` secret.
#[uniffi::export]
pub fn generate_web_push_keys() -> Result<WebPushKeys, PushAuthError> {
    let key = SoftwareAgreementKey::generate().map_err(internal)?;
    let auth = Zeroizing::new(pushauth_core::keys::random_array::<16>().map_err(internal)?);
    Ok(WebPushKeys {
        p256dh: b64::encode(key.public_key().map_err(internal)?.to_sec1()),
        auth: b64::encode(&auth[..]),
        private_key: b64::encode(&key.to_bytes()[..]),
    })
}

fn internal(e: pushauth_core::Error) -> PushAuthError {
    Error::Internal(e.code().to_owned()).into()
}

/// The push token of a Web Push device: the W3C PushSubscription JSON
/// `{"endpoint","keys":{"p256dh","auth"}}`. `endpoint` is the URL the push service or
/// UnifiedPush distributor gave; `p256dh` and `auth` (base64url) are the
/// subscription's keys ([`WebPushKeys`], or those the push library made). Pass it as
/// `push_token` with `Platform::WebPush` at enrollment or to `update_push_token`.
#[uniffi::export]
pub fn web_push_token(
    endpoint: String,
    p256dh: String,
    auth: String,
) -> Result<String, PushAuthError> {
    let subscription = Subscription::from_parts(&endpoint, &p256dh, &auth)
        .map_err(|e| Error::input("web push subscription", &e))?;
    Ok(subscription.to_token())
}

/// Decrypts a Web Push message (RFC 8291 `aes128gcm`, the raw bytes the push
/// service delivered) with the subscription's keys; returns the push data inside.
#[uniffi::export]
pub fn decrypt_web_push(keys: WebPushKeys, message: Vec<u8>) -> Result<Vec<u8>, PushAuthError> {
    let bad =
        |what: &str| -> PushAuthError { Error::Input(format!("web push keys: {what}")).into() };
    let scalar = Zeroizing::new(
        b64::decode(&keys.private_key).ok_or_else(|| bad("private_key is not base64url"))?,
    );
    let key = SoftwareAgreementKey::from_bytes(&scalar)
        .map_err(|_| bad("private_key is not a P-256 key"))?;
    let auth: [u8; 16] = b64::decode(keys.auth.trim_end_matches('='))
        .and_then(|a| a.try_into().ok())
        .ok_or_else(|| bad("auth is not 16 bytes of base64url"))?;
    let plain = webpush::decrypt(&key, &auth, &message).map_err(Error::Push)?;
    Ok(plain.to_vec())
}

/// Parses a Web Push message into a [`PushMessage`]. With `keys`, `message` is the
/// encrypted body and is decrypted first ([`decrypt_web_push`]); without, it is the
/// plaintext a distributor already decrypted. The push data is the JSON object
/// `{"cid","kind","enc"?}`; as in [`parse_push`], with the state and key store a
/// challenge's preview is decrypted. Anything unreadable is `Unknown`.
#[uniffi::export(async_runtime = "tokio")]
pub async fn parse_web_push(
    message: Vec<u8>,
    keys: Option<WebPushKeys>,
    state: Option<EnrollmentState>,
    key_store: Option<Arc<dyn KeyStore>>,
) -> PushMessage {
    let plain = match keys {
        Some(keys) => match decrypt_web_push(keys, message) {
            Ok(p) => p,
            Err(_) => return PushMessage::Unknown,
        },
        None => message,
    };
    let Ok(object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&plain)
    else {
        return PushMessage::Unknown;
    };
    // Members of other types are not ours (a newer server's additions): left out.
    let data: HashMap<String, String> = object
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
        .collect();
    parse_push(data, state, key_store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_token_and_round_trip() {
        let keys = generate_web_push_keys().unwrap();
        assert!(!format!("{keys:?}").contains(&keys.auth));
        let token = web_push_token(
            "https://ntfy.example.org/upAbC?up=1".into(),
            keys.p256dh.clone(),
            keys.auth.clone(),
        )
        .unwrap();
        let sub = Subscription::parse(&token).unwrap();
        assert_eq!(sub.endpoint(), "https://ntfy.example.org/upAbC?up=1");
        let body = webpush::encrypt(&sub, br#"{"cid":"x","kind":"dismiss","n":1}"#).unwrap();
        assert_eq!(
            decrypt_web_push(keys.clone(), body.clone()).unwrap(),
            br#"{"cid":"x","kind":"dismiss","n":1}"#
        );
        let other = generate_web_push_keys().unwrap();
        assert!(matches!(
            decrypt_web_push(other, body),
            Err(PushAuthError::InvalidPush { .. })
        ));
        assert!(matches!(
            web_push_token("ntfy".into(), keys.p256dh, keys.auth),
            Err(PushAuthError::InvalidInput { .. })
        ));
    }
}
