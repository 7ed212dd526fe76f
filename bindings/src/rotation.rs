//! Crash-safe two-phase key rotation (protocol v2 §6.3).
//!
//! 1. [`Device::prepare_rotation`] creates the new key and records it as `pending`
//!    in the enrollment state, which the app persists **before** anything is sent.
//! 2. [`Device::complete_rotation`] sends the request and switches to the new key
//!    once the server confirms it. It can be called again at any time (after a crash,
//!    a lost answer, a restart from the persisted state): the server answers a
//!    request whose new key is already current with the same `kid`, and after a
//!    device-key rotation whose answer was lost the old key gets 401, so the retry is
//!    signed with the pending key.
//!
//! What to do with each outcome is decided by [`next_step`], a pure function.

use crate::api::{self, EndpointKind, Problem};
use crate::device::{Device, now};
use crate::enrollment::{Enrollment, PendingKey};
use crate::error::{Error, Result};
use crate::ffi::key_store::{KeyPurpose, SigningPrompt};
use crate::keys;
use crate::protocol;

/// What the server said to one rotation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 with this `kid`.
    Confirmed(String),
    /// A problem response.
    Refused(Problem),
    /// No answer (the request may or may not have been applied).
    Lost,
}

/// What the client does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The server uses the new key: switch to it, delete the old one.
    Switch,
    /// Sign the request with the pending device key and send it again (the server
    /// may have switched already and lost its answer).
    RetryWithPendingKey,
    /// Outcome unknown: keep the pending key, report the error, retry later.
    KeepPending,
    /// The server refused the change: delete the new key, forget it.
    Abandon,
}

/// The next step after `answer` to a rotation of `purpose` to the key whose
/// thumbprint is `new_kid`; `retried` when this answer came to the retry signed
/// with the pending key.
pub(crate) fn next_step(
    purpose: KeyPurpose,
    answer: &Answer,
    new_kid: &str,
    retried: bool,
) -> Step {
    match answer {
        Answer::Confirmed(kid) if kid == new_kid => Step::Switch,
        Answer::Confirmed(_) => Step::Abandon,
        Answer::Lost => Step::KeepPending,
        Answer::Refused(p) if p.status == 401 => {
            if purpose == KeyPurpose::DeviceSigning && !retried {
                Step::RetryWithPendingKey
            } else {
                // Neither key is accepted (revoked device): nothing to switch to, but
                // forgetting the key would not help either.
                Step::KeepPending
            }
        }
        Answer::Refused(p) if p.status >= 500 || p.status == 429 => Step::KeepPending,
        Answer::Refused(_) => Step::Abandon,
    }
}

fn rotation_prompt(what: &str) -> SigningPrompt {
    SigningPrompt {
        title: "Renew approval key".to_owned(),
        summary: what.to_owned(),
    }
}

impl Device {
    /// Phase 1: creates the new key for `purpose` and returns the state with it
    /// pending. The app persists that state before calling
    /// [`Device::complete_rotation`]. A rotation already pending is returned as is.
    pub(crate) async fn prepare_rotation(&self, purpose: KeyPurpose) -> Result<Enrollment> {
        let state = self.state()?;
        state.key(purpose)?;
        if let Some(p) = &state.pending {
            if p.purpose == purpose {
                return Ok(state);
            }
            return Err(Error::Input(
                "another key rotation is pending: complete it first".to_owned(),
            ));
        }
        let key = keys::create_key(self.store.as_ref(), purpose).await?;
        let mut next = state;
        next.pending = Some(PendingKey { purpose, key });
        self.set_state(next.clone())?;
        Ok(next)
    }

    /// Phase 2: sends the pending rotation and switches keys when confirmed. Returns
    /// the new state (persist it). Without an answer the state keeps the pending
    /// key and the error is returned: call again later.
    pub(crate) async fn complete_rotation(&self) -> Result<Enrollment> {
        let state = self.state()?;
        let Some(pending) = state.pending.clone() else {
            return Ok(state);
        };
        let new_kid = pending.key.public.thumbprint();
        let body = self.rotation_body(&state, &pending).await?;
        let mut retried = false;
        let mut signer = state.device_key.clone();
        loop {
            let result = self
                .call_signed_by(
                    &signer,
                    "POST",
                    "v1/device/key",
                    Some(body.clone()),
                    EndpointKind::Device,
                )
                .await;
            let (answer, error) = match result {
                Ok(bytes) => {
                    let a: api::RotationAnswer = api::from_json(&bytes, "key rotation")?;
                    (Answer::Confirmed(a.kid), None)
                }
                Err(Error::Problem(p)) => (Answer::Refused(p.clone()), Some(Error::Problem(p))),
                Err(e @ Error::Transport(_)) => (Answer::Lost, Some(e)),
                Err(e) => return Err(e),
            };
            match next_step(pending.purpose, &answer, &new_kid, retried) {
                Step::Switch => {
                    let (next, old_alias) = self.state()?.with_switched(&pending)?;
                    self.set_state(next.clone())?;
                    keys::delete_quietly(self.store.as_ref(), &[&old_alias]).await;
                    return Ok(next);
                }
                Step::RetryWithPendingKey => {
                    retried = true;
                    signer = pending.key.clone();
                }
                Step::KeepPending => {
                    return Err(error.unwrap_or_else(|| {
                        Error::Internal("rotation outcome unknown".to_owned())
                    }));
                }
                Step::Abandon => {
                    let mut next = self.state()?;
                    next.pending = None;
                    self.set_state(next)?;
                    keys::delete_quietly(self.store.as_ref(), &[&pending.key.alias]).await;
                    return Err(error.unwrap_or_else(|| {
                        Error::Internal("server confirmed another key".to_owned())
                    }));
                }
            }
        }
    }

    /// The request body: the statement signed by the new key, and for the approval
    /// key the endorsement by the old one (the device key alone must never be enough
    /// to replace the approval key).
    async fn rotation_body(&self, state: &Enrollment, pending: &PendingKey) -> Result<Vec<u8>> {
        let old = state.key(pending.purpose)?.clone();
        let approval = pending.purpose == KeyPurpose::ApprovalSigning;
        let claims =
            protocol::rotation_claims(&state.device, approval, &old.public, &state.issuer, now());
        let store = self.store.as_ref();
        let prompt = |text: &str| approval.then(|| rotation_prompt(text));
        let statement = keys::sign_jws(
            store,
            &pending.key,
            pending.purpose,
            prompt("Confirm your new approval key"),
            |s| protocol::sign_rotation(s, &claims),
        )
        .await?;
        let endorsement = if approval {
            Some(
                keys::sign_jws(
                    store,
                    &old,
                    pending.purpose,
                    prompt("Confirm with your current approval key"),
                    |s| protocol::sign_endorsement(s, &claims),
                )
                .await?,
            )
        } else {
            None
        };
        api::to_json(&api::RotationBody {
            key_use: protocol::key_use(approval).as_str(),
            statement: &statement,
            endorsement: endorsement.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> Answer {
        Answer::Refused(Problem {
            status,
            reason: "x".into(),
            challenge_status: None,
            kind: EndpointKind::Device,
        })
    }

    #[test]
    fn every_outcome_has_one_safe_step() {
        use KeyPurpose::{ApprovalSigning as A, DeviceSigning as D};
        let ok = Answer::Confirmed("new".into());
        assert_eq!(next_step(D, &ok, "new", false), Step::Switch);
        assert_eq!(next_step(A, &ok, "new", true), Step::Switch);
        assert_eq!(
            next_step(D, &Answer::Confirmed("other".into()), "new", false),
            Step::Abandon
        );
        // Lost answers never lose the key.
        assert_eq!(next_step(D, &Answer::Lost, "new", false), Step::KeepPending);
        assert_eq!(next_step(A, &Answer::Lost, "new", false), Step::KeepPending);
        // The old device key refused: the server may have switched: retry once with
        // the new key, then keep it pending.
        assert_eq!(
            next_step(D, &refused(401), "new", false),
            Step::RetryWithPendingKey
        );
        assert_eq!(next_step(D, &refused(401), "new", true), Step::KeepPending);
        // The device key is unchanged by an approval-key rotation: no retry.
        assert_eq!(next_step(A, &refused(401), "new", false), Step::KeepPending);
        assert_eq!(next_step(D, &refused(503), "new", false), Step::KeepPending);
        assert_eq!(next_step(D, &refused(429), "new", false), Step::KeepPending);
        assert_eq!(next_step(A, &refused(422), "new", false), Step::Abandon);
        assert_eq!(next_step(D, &refused(423), "new", false), Step::Abandon);
    }
}
