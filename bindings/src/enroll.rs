//! Enrollment (protocol v2 §6.2): the device creates its device, approval and
//! agreement keys, proves possession of the device key (request proof with the key
//! in the header) and of the approval key (a key statement bound to the device key,
//! one biometric prompt), and pins the server key from the answer. On any failure
//! the new keys are deleted again.

use std::sync::Arc;

use pushauth_core::ids::DeviceId;
use pushauth_core::request::{self, HttpRequest as SignedRequest};

use crate::api::{self, Api, EndpointKind};
use crate::device::{Settings, now};
use crate::enrollment::{Enrollment, Link, server_url_text};
use crate::error::{Error, Result};
use crate::ffi::key_store::{KeyPurpose, KeyStore, SigningPrompt};
use crate::ffi::transport::HttpTransport;
use crate::keys::{self, KeyRef};
use crate::protocol;

/// What the app gives to enroll.
#[derive(Debug, Clone)]
pub(crate) struct EnrollParams {
    /// Server and normalised activation code.
    pub link: Link,
    /// `ios`, `android` or `other`.
    pub platform: &'static str,
    /// A label the cardholder recognises (`Pixel 8`).
    pub label: String,
    /// The push token, if already known.
    pub push_token: Option<String>,
    /// `sandbox` or `production` (APNs), if known.
    pub push_environment: Option<&'static str>,
}

/// The prompt of the approval key's first signature.
fn enroll_prompt() -> SigningPrompt {
    SigningPrompt {
        title: "Set up payment approvals".to_owned(),
        summary: "Confirm it is you to approve payments on this device".to_owned(),
    }
}

/// Enrolls this device. Exactly one approval-key signature (the key statement).
pub(crate) async fn enroll(
    store: Arc<dyn KeyStore>,
    transport: Arc<dyn HttpTransport>,
    params: EnrollParams,
    _settings: &Settings,
) -> Result<Enrollment> {
    let mut created: Vec<KeyRef> = Vec::with_capacity(3);
    let result = enroll_with(&store, transport, &params, &mut created).await;
    if result.is_err() {
        let aliases: Vec<&str> = created.iter().map(|k| k.alias.as_str()).collect();
        keys::delete_quietly(store.as_ref(), &aliases).await;
    }
    result
}

async fn enroll_with(
    store: &Arc<dyn KeyStore>,
    transport: Arc<dyn HttpTransport>,
    params: &EnrollParams,
    created: &mut Vec<KeyRef>,
) -> Result<Enrollment> {
    let api = Api::new(&params.link.server, transport);
    let target = api.target("v1/device/enroll")?;
    for purpose in [
        KeyPurpose::DeviceSigning,
        KeyPurpose::ApprovalSigning,
        KeyPurpose::Agreement,
    ] {
        created.push(keys::create_key(store.as_ref(), purpose).await?);
    }
    let (device_key, approval_key, agreement) =
        (created[0].clone(), created[1].clone(), created[2].clone());
    // Before enrollment the device does not know the issuer name: the proofs' `aud`
    // is the server URL from the link, which is the server's default issuer.
    let audience = server_url_text(&params.link.server);
    let statement = keys::sign_jws(
        store.as_ref(),
        &approval_key,
        KeyPurpose::ApprovalSigning,
        Some(enroll_prompt()),
        |s| protocol::sign_key_statement(s, &audience, &device_key.public, now()),
    )
    .await?;
    let body = api::to_json(&api::EnrollBody {
        activation_code: &params.link.code,
        platform: params.platform,
        label: Some(params.label.as_str()).filter(|l| !l.is_empty()),
        device_key: device_key.public.to_jwk(),
        approval_key: approval_key.public.to_jwk(),
        approval_key_proof: &statement,
        agreement_key: agreement.public.to_jwk(),
        push_token: params.push_token.as_deref(),
        push_environment: params.push_environment,
    })?;
    let proof = keys::sign_jws(
        store.as_ref(),
        &device_key,
        KeyPurpose::DeviceSigning,
        None,
        |s| {
            let req = SignedRequest {
                method: "POST",
                path: &target.htu,
                body: &body,
            };
            request::sign_enrollment(s, &audience, req, now())
        },
    )
    .await?;
    let answer = api
        .send("POST", target, &proof, Some(body), EndpointKind::Enroll)
        .await?;
    let answer: api::EnrollAnswer = api::from_json(&answer, "enrollment")?;

    let device = DeviceId::parse(&answer.device_id)
        .map_err(|_| Error::Internal("server sent an invalid device id".to_owned()))?;
    let server_key = pushauth_core::keys::PublicKey::from_jwk(&answer.server_key)
        .map_err(|_| Error::Internal("server sent an invalid server key".to_owned()))?;
    if server_key.thumbprint() != answer.server_kid {
        return Err(Error::Internal(
            "server key id is not the key's thumbprint".to_owned(),
        ));
    }
    if answer.issuer.is_empty() {
        return Err(Error::Internal("server sent an empty issuer".to_owned()));
    }
    Ok(Enrollment {
        server: params.link.server.clone(),
        issuer: answer.issuer,
        device,
        server_key,
        device_key,
        approval_key,
        agreement,
        pending: None,
    })
}
