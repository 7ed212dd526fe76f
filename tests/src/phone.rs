//! A virtual phone: the mobile SDK's Rust API (`pushauth-bindings`, the code the apps
//! run) with a software key store, and a push inbox fed by the mock APNs / FCM.

use std::sync::Arc;
use std::time::Duration;

use pushauth::{
    ChallengeView, DecisionOutcome, DenyReason, EnrollRequest, Platform, PushAuthClient,
    PushAuthError, PushEnvironment, PushPreview, SoftwareKeyStore,
};

use crate::push::{PushMessage, PushMocks};

/// An enrolled phone.
pub struct VirtualPhone {
    /// The SDK client, bound to the server the phone enrolled with.
    pub client: Arc<PushAuthClient>,
    /// The APNs / FCM token.
    pub token: String,
    /// The device id.
    pub device_id: String,
    keys: Arc<SoftwareKeyStore>,
    push: Arc<PushMocks>,
    /// The views the phone showed, by challenge id: decisions sign exactly these
    /// (as the app does), never a fetch at answer time.
    shown: std::sync::Mutex<std::collections::HashMap<String, ChallengeView>>,
}

impl VirtualPhone {
    /// Enrolls through the SDK with an activation deeplink, as an iPhone (APNs) or an
    /// Android phone (FCM) with a fresh push token.
    pub async fn enroll(
        deeplink: &str,
        server_url: &str,
        platform: Platform,
        push: Arc<PushMocks>,
    ) -> VirtualPhone {
        let token = match platform {
            Platform::Ios => hex::encode(uuid::Uuid::new_v4().as_bytes()).repeat(2),
            _ => format!("fcm:{}", uuid::Uuid::new_v4().simple()),
        };
        let keys = SoftwareKeyStore::new();
        let request = EnrollRequest {
            activation: deeplink.to_owned(),
            server_url: Some(server_url.to_owned()),
            platform,
            label: "e2e phone".into(),
            push_token: Some(token.clone()),
            push_environment: (platform == Platform::Ios).then_some(PushEnvironment::Production),
            options: None,
        };
        let state = pushauth::enroll(request, keys.clone())
            .await
            .expect("SDK enrollment");
        let device_id = state.device_id.clone();
        let client = PushAuthClient::new(state, keys.clone()).unwrap();
        VirtualPhone {
            client,
            token,
            device_id,
            keys,
            push,
            shown: Default::default(),
        }
    }

    /// The same phone talking to another server instance (same database, same issuer).
    pub fn via(&self, server_url: &str) -> Arc<PushAuthClient> {
        let mut state = self.client.state().unwrap();
        state.server_url = server_url.to_owned();
        PushAuthClient::new(state, self.keys.clone()).unwrap()
    }

    /// Pushes this phone received.
    pub fn inbox(&self) -> Vec<PushMessage> {
        self.push.delivered_to(&self.token)
    }

    /// Waits for a push of `kind` (`challenge`, `dismiss`), optionally for one
    /// challenge; returns it.
    pub async fn wait_push(&self, kind: &str, cid: Option<&str>, within: Duration) -> PushMessage {
        let find = || {
            self.inbox()
                .into_iter()
                .find(|m| m.kind == kind && cid.is_none_or(|c| m.cid == c))
        };
        let ok = crate::wait_for(within, || async { find().is_some() }).await;
        assert!(
            ok,
            "no {kind} push for {cid:?} reached {}; all pushes: {:#?}",
            self.token,
            self.push.all()
        );
        find().unwrap()
    }

    /// Decrypts a challenge push with the SDK (what the notification extension does).
    pub async fn open(&self, m: &PushMessage) -> PushPreview {
        self.client
            .decrypt_push(
                m.cid.clone(),
                m.enc.clone().expect("challenge push without enc"),
            )
            .await
            .expect("decrypting the push")
    }

    /// Fetches and verifies the challenge (what the app shows before approve / deny).
    pub async fn show(&self, id: &str) -> ChallengeView {
        let view = self
            .client
            .challenge(id.to_owned())
            .await
            .expect("fetching the challenge");
        self.remember(&view);
        view
    }

    fn remember(&self, view: &ChallengeView) {
        if let Ok(mut shown) = self.shown.lock() {
            shown.insert(view.id.clone(), view.clone());
        }
    }

    /// The view last shown for `id`, or the challenge fetched and shown now.
    async fn view(&self, id: &str) -> Result<ChallengeView, PushAuthError> {
        let known = self.shown.lock().ok().and_then(|s| s.get(id).cloned());
        match known {
            Some(v) => Ok(v),
            None => {
                let view = self.client.challenge(id.to_owned()).await?;
                self.remember(&view);
                Ok(view)
            }
        }
    }

    /// Approves, with the processor SDK's output if any.
    pub async fn approve(
        &self,
        id: &str,
        processor_output: Option<String>,
    ) -> Result<DecisionOutcome, PushAuthError> {
        let view = self.view(id).await?;
        self.client.approve(view, processor_output).await
    }

    /// Denies.
    pub async fn deny(
        &self,
        id: &str,
        reason: DenyReason,
    ) -> Result<DecisionOutcome, PushAuthError> {
        let view = self.view(id).await?;
        self.client.deny(view, reason).await
    }

    /// Polls the server for pending challenges (the app opened without a push).
    pub async fn poll(&self) -> Vec<ChallengeView> {
        let views = self
            .client
            .pending_challenges()
            .await
            .expect("polling pending challenges");
        for v in &views {
            self.remember(v);
        }
        views
    }
}
