//! Web Push message encryption against the worked example of RFC 8291, Appendix A
//! ("Intermediate Values for Encryption"). Every value below is copied from that
//! appendix (base64url, no padding); with its fixed sender key and salt the encryption
//! is deterministic and must produce the appendix's message byte for byte.

#![allow(clippy::unwrap_used)]

use pushauth_core::b64;
use pushauth_core::keys::{KeyAgreement, PublicKey, SoftwareAgreementKey};
use pushauth_core::webpush::{self, Subscription};

// Source: RFC 8291, Appendix A.
const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
const AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
const AUTH_SECRET: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const HEADER: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const CIPHERTEXT: &str =
    "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ";
const MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

fn bytes(text: &str) -> Vec<u8> {
    b64::decode(text).unwrap()
}

fn auth() -> [u8; 16] {
    bytes(AUTH_SECRET).try_into().unwrap()
}

#[test]
fn keys_and_shared_secret() {
    let sender = SoftwareAgreementKey::from_bytes(&bytes(AS_PRIVATE)).unwrap();
    let ua = SoftwareAgreementKey::from_bytes(&bytes(UA_PRIVATE)).unwrap();
    assert_eq!(
        b64::encode(sender.public_key().unwrap().to_sec1()),
        AS_PUBLIC
    );
    assert_eq!(b64::encode(ua.public_key().unwrap().to_sec1()), UA_PUBLIC);
    let ua_public = PublicKey::from_sec1(&bytes(UA_PUBLIC)).unwrap();
    assert_eq!(
        b64::encode(&sender.agree(&ua_public).unwrap()[..]),
        ECDH_SECRET
    );
}

#[test]
fn encryption_is_the_appendix_message() {
    let sender = SoftwareAgreementKey::from_bytes(&bytes(AS_PRIVATE)).unwrap();
    let ua_public = PublicKey::from_sec1(&bytes(UA_PUBLIC)).unwrap();
    let salt: [u8; 16] = bytes(SALT).try_into().unwrap();
    let body =
        webpush::encrypt_with(&ua_public, &auth(), &sender, &salt, PLAINTEXT.as_bytes()).unwrap();
    assert_eq!(b64::encode(&body), MESSAGE);
    assert_eq!(b64::encode(&body[..webpush::HEADER_LEN]), HEADER);
    assert_eq!(b64::encode(&body[webpush::HEADER_LEN..]), CIPHERTEXT);
}

#[test]
fn decryption_of_the_appendix_message() {
    let ua = SoftwareAgreementKey::from_bytes(&bytes(UA_PRIVATE)).unwrap();
    let plain = webpush::decrypt(&ua, &auth(), &bytes(MESSAGE)).unwrap();
    assert_eq!(&plain[..], PLAINTEXT.as_bytes());
    // The same through a subscription built from the appendix's public values.
    let sub = Subscription::from_parts("https://push.example/x", UA_PUBLIC, AUTH_SECRET).unwrap();
    assert_eq!(b64::encode(sub.p256dh().to_sec1()), UA_PUBLIC);
    let fresh = webpush::encrypt(&sub, PLAINTEXT.as_bytes()).unwrap();
    assert_ne!(b64::encode(&fresh), MESSAGE, "fresh salt and sender key");
    assert_eq!(
        &webpush::decrypt(&ua, &auth(), &fresh).unwrap()[..],
        PLAINTEXT.as_bytes()
    );
}
