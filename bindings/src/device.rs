//! The enrolled device talking to its server (protocol §5, §6), in core types. The
//! FFI layer (`ffi::client`) only converts to and from these. Decisions are in
//! [`crate::decision`], key rotation in [`crate::rotation`], enrollment in
//! [`crate::enroll`].
//!
//! Only the **device key** is used here (no user presence): listing and fetching
//! challenges, the push token, revocation. Push payloads use the agreement key.

use std::sync::{Arc, Mutex, MutexGuard};

use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, VerifiedChallenge};
use pushauth_core::ids::ChallengeId;
use pushauth_core::proof::UserVerification;
use pushauth_core::push::PushDetails;
use pushauth_core::request::{self, HttpRequest as SignedRequest};

use crate::api::{self, Api, EndpointKind};
use crate::enrollment::Enrollment;
use crate::error::{Error, Result};
use crate::ffi::key_store::{KeyPurpose, KeyStore};
use crate::ffi::transport::HttpTransport;
use crate::http::Transport;
use crate::keys::{self, KeyRef};

/// Now, by the device clock.
pub(crate) fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    UnixTime(secs)
}

/// Tunables of the client.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Settings of the built-in HTTP client.
    pub transport: Transport,
    /// Accepted clock difference with the server when checking challenges.
    pub skew_secs: i64,
    /// Lifetime of approval proofs (capped by the deadline and 600 s).
    pub proof_lifetime_secs: i64,
    /// What the `uv` claim says about how the key store verified the user.
    pub user_verification: UserVerification,
    /// Declines are signed by the approval key (server config
    /// `decline_requires_approval_key = true`); by default the device key.
    pub decline_with_approval_key: bool,
    /// The enrollment link scheme of this app.
    pub link_scheme: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            transport: Transport::default(),
            skew_secs: 30,
            proof_lifetime_secs: 120,
            user_verification: UserVerification::Biometric,
            decline_with_approval_key: false,
            link_scheme: crate::enrollment::DEFAULT_LINK_SCHEME.to_owned(),
        }
    }
}

/// The app's transport, or the built-in one with `settings`.
pub(crate) fn transport_or_builtin(
    transport: Option<Arc<dyn HttpTransport>>,
    settings: &Settings,
) -> Result<Arc<dyn HttpTransport>> {
    Ok(match transport {
        Some(t) => t,
        None => Arc::new(crate::http::ReqwestTransport::new(&settings.transport)?),
    })
}

/// Decrypts a push envelope with the agreement key (protocol §7). No network.
pub(crate) async fn open_push(
    store: &dyn KeyStore,
    agreement: &KeyRef,
    challenge: &str,
    envelope: &str,
) -> Result<PushDetails> {
    let challenge = ChallengeId::parse(challenge).map_err(|e| Error::input("challenge id", &e))?;
    keys::with_agreement(store, agreement, |k| {
        PushDetails::open(k, &challenge, envelope)
    })
    .await
}

/// An enrolled device talking to its server.
pub(crate) struct Device {
    pub(crate) api: Api,
    pub(crate) store: Arc<dyn KeyStore>,
    state: Mutex<Enrollment>,
    pub(crate) settings: Settings,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.state.lock() {
            Ok(s) => write!(f, "Device({}, {})", s.device, s.server),
            Err(_) => f.write_str("Device(..)"),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::Internal("state lock poisoned".to_owned()))
}

impl Device {
    /// A client for an enrolled device.
    pub(crate) fn new(
        state: Enrollment,
        store: Arc<dyn KeyStore>,
        transport: Arc<dyn HttpTransport>,
        settings: Settings,
    ) -> Self {
        Self {
            api: Api::new(&state.server, transport),
            store,
            state: Mutex::new(state),
            settings,
        }
    }

    /// The current enrollment (changes with key rotation).
    pub(crate) fn state(&self) -> Result<Enrollment> {
        Ok(locked(&self.state)?.clone())
    }

    /// Replaces the enrollment (rotation steps).
    pub(crate) fn set_state(&self, state: Enrollment) -> Result<()> {
        *locked(&self.state)? = state;
        Ok(())
    }

    /// Signs (with the device key) and sends one device API request (protocol §6).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        kind: EndpointKind,
    ) -> Result<Vec<u8>> {
        let key = self.state()?.device_key;
        self.call_signed_by(&key, method, path, body, kind).await
    }

    /// [`Device::call`] with a given device key (a rotation retry signs with the
    /// pending key).
    pub(crate) async fn call_signed_by(
        &self,
        key: &KeyRef,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        kind: EndpointKind,
    ) -> Result<Vec<u8>> {
        let target = self.api.target(path)?;
        let state = self.state()?;
        let bytes = body.clone().unwrap_or_default();
        let authorization = keys::sign_jws(
            self.store.as_ref(),
            key,
            KeyPurpose::DeviceSigning,
            None,
            |s| {
                let req = SignedRequest {
                    method,
                    path: &target.htu,
                    body: &bytes,
                };
                request::sign(&state.device, s, &state.issuer, req, now())
            },
        )
        .await?;
        self.api
            .send(method, target, &authorization, body, kind)
            .await
    }

    /// Verifies a server challenge token with the pinned key (protocol §5).
    pub(crate) fn verify(&self, token: &str, now: UnixTime) -> Result<VerifiedChallenge> {
        let s = self.state()?;
        challenge::verify(
            token,
            &s.server_key,
            &s.issuer,
            &s.device,
            now,
            self.settings.skew_secs,
        )
        .map_err(Error::Challenge)
    }

    /// `PUT /v1/device/push-token` (device key: works from `onNewToken` and
    /// background tasks).
    pub(crate) async fn update_push_token(
        &self,
        token: &str,
        environment: Option<&str>,
    ) -> Result<()> {
        let body = api::to_json(&api::PushTokenBody {
            push_token: token,
            push_environment: environment,
        })?;
        self.call(
            "PUT",
            "v1/device/push-token",
            Some(body),
            EndpointKind::Device,
        )
        .await?;
        Ok(())
    }

    /// `GET /v1/device/challenges`: the pending challenges, each verified. A
    /// challenge whose deadline passed in the meantime is left out; any other
    /// verification failure fails the call (it means a server bug or an attack).
    pub(crate) async fn pending(&self) -> Result<Vec<(VerifiedChallenge, String)>> {
        let body = self
            .call("GET", "v1/device/challenges", None, EndpointKind::Device)
            .await?;
        let list: api::ChallengeList = api::from_json(&body, "challenge list")?;
        let now = now();
        let mut out = Vec::with_capacity(list.challenges.len());
        for item in list.challenges {
            let verified = match self.verify(&item.token, now) {
                Err(Error::Challenge(pushauth_core::Error::PastDeadline)) => continue,
                other => other?,
            };
            if verified.claims().jti.as_str() != item.id {
                return Err(Error::Challenge(pushauth_core::Error::WrongChallenge));
            }
            out.push((verified, item.token));
        }
        Ok(out)
    }

    /// `GET /v1/device/challenges/{id}`, verified.
    pub(crate) async fn challenge(&self, id: &str) -> Result<(VerifiedChallenge, String)> {
        let id = ChallengeId::parse(id).map_err(|e| Error::input("challenge id", &e))?;
        let path = format!("v1/device/challenges/{id}");
        let body = self
            .call("GET", &path, None, EndpointKind::Challenge)
            .await?;
        let fetched: api::ChallengeRef = api::from_json(&body, "challenge")?;
        let verified = self.verify(&fetched.token, now())?;
        if verified.claims().jti != id || fetched.id != id.as_str() {
            return Err(Error::Challenge(pushauth_core::Error::WrongChallenge));
        }
        Ok((verified, fetched.token))
    }

    /// `DELETE /v1/device`, then deletes the keys. A server that no longer knows
    /// the device counts as success.
    pub(crate) async fn unenroll(&self) -> Result<()> {
        match self
            .call("DELETE", "v1/device", None, EndpointKind::Device)
            .await
        {
            Ok(_)
            | Err(Error::Problem(api::Problem {
                status: 401 | 404, ..
            })) => {}
            Err(e) => return Err(e),
        }
        let state = self.state()?;
        let mut aliases = vec![
            state.device_key.alias.as_str(),
            state.approval_key.alias.as_str(),
            state.agreement.alias.as_str(),
        ];
        if let Some(p) = &state.pending {
            aliases.push(p.key.alias.as_str());
        }
        aliases.dedup();
        keys::delete_quietly(self.store.as_ref(), &aliases).await;
        Ok(())
    }

    /// Decrypts a push for this device.
    pub(crate) async fn open_push(&self, challenge: &str, envelope: &str) -> Result<PushDetails> {
        let agreement = self.state()?.agreement;
        open_push(self.store.as_ref(), &agreement, challenge, envelope).await
    }
}
