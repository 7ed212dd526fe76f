//! The device client: enrollment, challenges, decisions, key rotation and
//! revocation (protocol §4–§6), in core types. The FFI layer (`ffi::client`) only
//! converts to and from these.
//!
//! Every call that uses the signing key runs on a blocking thread: the app's key
//! store may show a biometric prompt and wait for the user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, VerifiedChallenge};
use pushauth_core::ids::{ChallengeId, DeviceId};
use pushauth_core::proof::{self, Decision, DecisionInput, DenyReason, UserVerification};
use pushauth_core::push::PushDetails;
use pushauth_core::request::{self, HttpRequest};
use reqwest::Method;

use crate::api::{self, Api, EndpointKind, Transport};
use crate::enrollment::{Enrollment, Link, server_url_text};
use crate::error::{Error, Result};
use crate::ffi::key_store::KeyStore;
use crate::keys::{self, KeyRef, KeyStoreAgreement, KeyStoreSigner};

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
    /// HTTP settings.
    pub transport: Transport,
    /// Accepted clock difference with the server when checking challenges.
    pub skew_secs: i64,
    /// Lifetime of approval proofs (capped by the deadline and 600 s).
    pub proof_lifetime_secs: i64,
    /// What the `uv` claim says about how the key store verified the user.
    pub user_verification: UserVerification,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            transport: Transport::default(),
            skew_secs: 30,
            proof_lifetime_secs: 120,
            user_verification: UserVerification::Biometric,
        }
    }
}

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

/// Runs `f` on a blocking thread (it may wait for a biometric prompt).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal("key store task failed".to_owned()))?
}

/// Deletes keys, ignoring failures (clean-up after an error).
fn delete_quietly(store: &dyn KeyStore, aliases: &[&str]) {
    for alias in aliases {
        let _ = store.delete_key((*alias).to_owned());
    }
}

/// Enrolls this device (protocol §6.2): creates both keys in the key store, proves
/// possession of the signing key, and pins the server key from the answer. On any
/// failure the new keys are deleted again.
pub(crate) async fn enroll(
    store: Arc<dyn KeyStore>,
    params: EnrollParams,
    settings: &Settings,
) -> Result<Enrollment> {
    let api = Api::new(&params.link.server, &settings.transport)?;
    let target = api.target("v1/device/enroll")?;
    let signing_alias = keys::new_alias("signing")?;
    let agreement_alias = keys::new_alias("agreement")?;

    let created = {
        let (store, signing_alias, agreement_alias) = (
            store.clone(),
            signing_alias.clone(),
            agreement_alias.clone(),
        );
        blocking(move || {
            let signing = keys::create_signing_key(store.as_ref(), &signing_alias)?;
            match keys::create_agreement_key(store.as_ref(), &agreement_alias) {
                Ok(agreement) => Ok((signing, agreement)),
                Err(e) => {
                    delete_quietly(store.as_ref(), &[&signing_alias]);
                    Err(e)
                }
            }
        })
        .await
    };
    let (signing, agreement) = match created {
        Ok(keys) => keys,
        Err(e) => {
            delete_quietly(store.as_ref(), &[&signing_alias]);
            return Err(e);
        }
    };

    let result = enroll_with_keys(&api, target, store.clone(), &params, signing, agreement).await;
    if result.is_err() {
        delete_quietly(store.as_ref(), &[&signing_alias, &agreement_alias]);
    }
    result
}

async fn enroll_with_keys(
    api: &Api,
    target: api::Target,
    store: Arc<dyn KeyStore>,
    params: &EnrollParams,
    signing: KeyRef,
    agreement: KeyRef,
) -> Result<Enrollment> {
    let body = api::to_json(&api::EnrollBody {
        activation_code: &params.link.code,
        platform: params.platform,
        label: Some(params.label.as_str()).filter(|l| !l.is_empty()),
        signing_key: signing.public.to_jwk(),
        agreement_key: agreement.public.to_jwk(),
        push_token: params.push_token.as_deref(),
        push_environment: params.push_environment,
    })?;
    // Before enrollment the device does not know the issuer name: the proof's `aud`
    // is the server URL from the link, which is the server's default issuer.
    let audience = server_url_text(&params.link.server);
    let proof = {
        let (signer, htu, body) = (
            KeyStoreSigner::new(store, signing.clone()),
            target.htu.clone(),
            body.clone(),
        );
        blocking(move || {
            keys::run(&signer, Error::signing, |s| {
                request::sign_enrollment(
                    s,
                    &audience,
                    HttpRequest {
                        method: "POST",
                        path: &htu,
                        body: &body,
                    },
                    now(),
                )
            })
        })
        .await?
    };
    let answer = api
        .send(
            Method::POST,
            target,
            &proof,
            Some(body),
            EndpointKind::Enroll,
        )
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
        signing,
        agreement,
    })
}

/// Decrypts a push envelope with the agreement key (protocol §7). No network.
pub(crate) fn open_push(
    store: Arc<dyn KeyStore>,
    agreement: KeyRef,
    challenge: &str,
    envelope: &str,
) -> Result<PushDetails> {
    let challenge = ChallengeId::parse(challenge).map_err(|e| Error::input("challenge id", &e))?;
    let bridge = KeyStoreAgreement::new(store, agreement);
    keys::run(&bridge, Error::Push, |k| {
        PushDetails::open(k, &challenge, envelope)
    })
}

/// An enrolled device talking to its server.
pub(crate) struct Device {
    api: Api,
    store: Arc<dyn KeyStore>,
    state: Mutex<Enrollment>,
    /// Challenges verified by [`Device::challenge`], so that a decision signs exactly
    /// what was shown.
    verified: Mutex<HashMap<ChallengeId, VerifiedChallenge>>,
    settings: Settings,
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
        settings: Settings,
    ) -> Result<Self> {
        let api = Api::new(&state.server, &settings.transport)?;
        Ok(Self {
            api,
            store,
            state: Mutex::new(state),
            verified: Mutex::new(HashMap::new()),
            settings,
        })
    }

    /// The current enrollment (changes with [`Device::rotate_key`]).
    pub(crate) fn state(&self) -> Result<Enrollment> {
        Ok(locked(&self.state)?.clone())
    }

    /// Signs and sends one device API request (protocol §6).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        kind: EndpointKind,
    ) -> Result<Vec<u8>> {
        let target = self.api.target(path)?;
        let state = self.state()?;
        let signer = KeyStoreSigner::new(self.store.clone(), state.signing.clone());
        let (htu, bytes, m) = (
            target.htu.clone(),
            body.clone().unwrap_or_default(),
            method.as_str().to_owned(),
        );
        let authorization = blocking(move || {
            keys::run(&signer, Error::signing, |s| {
                let req = HttpRequest {
                    method: &m,
                    path: &htu,
                    body: &bytes,
                };
                request::sign(&state.device, s, &state.issuer, req, now())
            })
        })
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

    /// `PUT /v1/device/push-token`.
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
            Method::PUT,
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
    pub(crate) async fn pending(&self) -> Result<Vec<VerifiedChallenge>> {
        let body = self
            .call(
                Method::GET,
                "v1/device/challenges",
                None,
                EndpointKind::Device,
            )
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
            self.remember(&verified)?;
            out.push(verified);
        }
        Ok(out)
    }

    /// `GET /v1/device/challenges/{id}`, verified, and remembered for the decision.
    pub(crate) async fn challenge(&self, id: &str) -> Result<VerifiedChallenge> {
        let id = ChallengeId::parse(id).map_err(|e| Error::input("challenge id", &e))?;
        let path = format!("v1/device/challenges/{id}");
        let body = self
            .call(Method::GET, &path, None, EndpointKind::Challenge)
            .await?;
        let fetched: api::ChallengeRef = api::from_json(&body, "challenge")?;
        let verified = self.verify(&fetched.token, now())?;
        if verified.claims().jti != id || fetched.id != id.as_str() {
            return Err(Error::Challenge(pushauth_core::Error::WrongChallenge));
        }
        self.remember(&verified)?;
        Ok(verified)
    }

    fn remember(&self, verified: &VerifiedChallenge) -> Result<()> {
        let now = now();
        let mut cache = locked(&self.verified)?;
        cache.retain(|_, c| c.claims().exp.plus(self.settings.skew_secs) >= now);
        cache.insert(verified.claims().jti.clone(), verified.clone());
        Ok(())
    }

    /// The verified challenge shown to the user, or a freshly fetched one.
    async fn shown(&self, id: &str) -> Result<VerifiedChallenge> {
        let parsed = ChallengeId::parse(id).map_err(|e| Error::input("challenge id", &e))?;
        let cached = locked(&self.verified)?.get(&parsed).cloned();
        match cached {
            Some(c) if now() <= c.claims().exp.plus(self.settings.skew_secs) => Ok(c),
            Some(_) => Err(Error::Challenge(pushauth_core::Error::PastDeadline)),
            None => self.challenge(id).await,
        }
    }

    /// Builds and signs the approval proof for a verified challenge (protocol §4).
    pub(crate) async fn sign_proof(
        &self,
        verified: VerifiedChallenge,
        decision: Decision,
        reason: Option<DenyReason>,
        processor_output: Option<String>,
        now: UnixTime,
    ) -> Result<String> {
        let state = self.state()?;
        let signer = KeyStoreSigner::new(self.store.clone(), state.signing.clone());
        let (uv, lifetime) = (
            self.settings.user_verification,
            self.settings.proof_lifetime_secs,
        );
        blocking(move || {
            let input = DecisionInput {
                device: &state.device,
                decision,
                reason,
                uv,
                processor_output: processor_output.as_deref(),
                now,
                lifetime_secs: lifetime,
            };
            let claims =
                proof::claims_for(&verified, &input).map_err(|e| Error::Input(e.to_string()))?;
            keys::run(&signer, Error::signing, |s| proof::sign(&claims, s))
        })
        .await
    }

    /// Approves or denies: signs the proof over the challenge as shown and posts it.
    /// Returns the server's `status` (`approved` or `denied`).
    pub(crate) async fn decide(
        &self,
        id: &str,
        decision: Decision,
        reason: Option<DenyReason>,
        processor_output: Option<String>,
    ) -> Result<String> {
        let verified = self.shown(id).await?;
        let jti = verified.claims().jti.clone();
        let token = self
            .sign_proof(verified, decision, reason, processor_output.clone(), now())
            .await?;
        let body = api::to_json(&api::DecisionBody {
            proof: &token,
            processor_output: processor_output.as_deref(),
        })?;
        let path = format!("v1/device/challenges/{jti}/decision");
        let result = self
            .call(Method::POST, &path, Some(body), EndpointKind::Challenge)
            .await;
        // Answered, closed or gone: the cached challenge is of no further use. A
        // refused proof (422) or a network error leaves it for a retry.
        if matches!(
            &result,
            Ok(_)
                | Err(Error::Problem(api::Problem {
                    status: 404 | 409 | 410,
                    ..
                }))
        ) {
            locked(&self.verified)?.remove(&jti);
        }
        let answer: api::DecisionAnswer = api::from_json(&result?, "decision")?;
        Ok(answer.status)
    }

    /// Rotates the signing key (protocol §6.3): a new key in the key store, a
    /// statement signed by it, sent in a request signed by the old key. Returns the
    /// new enrollment, which the app must store.
    pub(crate) async fn rotate_key(&self) -> Result<Enrollment> {
        let old = self.state()?;
        let alias = keys::new_alias("signing")?;
        let new_key = {
            let (store, alias) = (self.store.clone(), alias.clone());
            blocking(move || keys::create_signing_key(store.as_ref(), &alias)).await?
        };
        let outcome = self.send_rotation(&old, &new_key).await;
        match outcome {
            Ok(()) => {
                let mut state = locked(&self.state)?;
                state.signing = new_key;
                let updated = state.clone();
                drop(state);
                delete_quietly(self.store.as_ref(), &[&old.signing.alias]);
                Ok(updated)
            }
            // Without an answer the server may or may not have swapped the key: keep
            // the new key so that nothing is lost, but do not switch to it.
            Err(e @ Error::Transport(_)) => Err(e),
            Err(e) => {
                delete_quietly(self.store.as_ref(), &[&new_key.alias]);
                Err(e)
            }
        }
    }

    async fn send_rotation(&self, old: &Enrollment, new_key: &KeyRef) -> Result<()> {
        let statement = {
            let signer = KeyStoreSigner::new(self.store.clone(), new_key.clone());
            let (device, old_public, issuer) =
                (old.device.clone(), old.signing.public, old.issuer.clone());
            blocking(move || {
                keys::run(&signer, Error::signing, |s| {
                    request::sign_rotation(s, &device, &old_public, &issuer, now())
                })
            })
            .await?
        };
        let body = api::to_json(&api::RotationBody {
            rotation: &statement,
        })?;
        let answer = self
            .call(
                Method::POST,
                "v1/device/key",
                Some(body),
                EndpointKind::Device,
            )
            .await?;
        let answer: api::RotationAnswer = api::from_json(&answer, "key rotation")?;
        if answer.kid != new_key.public.thumbprint() {
            return Err(Error::Internal("server confirmed another key".to_owned()));
        }
        Ok(())
    }

    /// `DELETE /v1/device`, then deletes both keys. A server that no longer knows
    /// the device counts as success.
    pub(crate) async fn unenroll(&self) -> Result<()> {
        match self
            .call(Method::DELETE, "v1/device", None, EndpointKind::Device)
            .await
        {
            Ok(_)
            | Err(Error::Problem(api::Problem {
                status: 401 | 404, ..
            })) => {}
            Err(e) => return Err(e),
        }
        let state = self.state()?;
        locked(&self.verified)?.clear();
        delete_quietly(
            self.store.as_ref(),
            &[&state.signing.alias, &state.agreement.alias],
        );
        Ok(())
    }

    /// Decrypts a push for this device.
    pub(crate) fn open_push(&self, challenge: &str, envelope: &str) -> Result<PushDetails> {
        open_push(
            self.store.clone(),
            self.state()?.agreement,
            challenge,
            envelope,
        )
    }
}
