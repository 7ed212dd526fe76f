//! `spawn` starts the real server; `TestDevice` is a virtual phone speaking protocol v2
//! with the core (software keys in place of the Secure Enclave): a device key for
//! requests and declines, an approval key for approvals and migration grants.

use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, VerifiedChallenge};
use pushauth_core::ids::DeviceId;
use pushauth_core::key_statement;
use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::proof::{self, Decision, DecisionInput, DenyReason, UserVerification};
use pushauth_core::request::{self, HttpRequest};
use pushauth_server::{Config, Server};
use serde_json::{Value, json};

use crate::support::open_store;
pub use crate::support::{ADMIN_KEY, Backend, now};

pub struct TestApp {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub _dir: tempfile::TempDir,
    /// Dropped after the server: drops its PostgreSQL schema.
    pub _schema: crate::support::SchemaGuard,
}

pub async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (store, schema) = open_store(backend, dir.path()).await;
    spawn_on(dir, store, schema, tweak).await
}

/// [`spawn`] on a store the caller opened (with `open_store` on `dir`), so that it can
/// write to it before the server starts.
pub async fn spawn_on(
    dir: tempfile::TempDir,
    store: std::sync::Arc<dyn pushauth_store::Store>,
    schema: crate::support::SchemaGuard,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.path().to_owned();
    config.security.admin_key = Some(ADMIN_KEY.into());
    config.api.callback_hosts = vec!["127.0.0.1".into()];
    config.api.callback_secret = Some(pushauth_server::providers::config::Secret::new(
        "callback-secret",
    ));
    config.api.allow_http_callbacks = true;
    config.workers.idle_poll_ms = 100;
    tweak(&mut config);
    let server = Server::start_with_store(config, store).await.unwrap();
    let base = format!("http://{}", server.addr);
    TestApp {
        server,
        base,
        http: reqwest::Client::new(),
        _dir: dir,
        _schema: schema,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// An admin call; returns (status, JSON body or Null).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /v1/admin/devices/{device}/{action}` (`lock`, `unlock`, `revoke`…): the status.
    pub async fn device_action(&self, device: &str, action: &str) -> u16 {
        let path = format!("/v1/admin/devices/{device}/{action}");
        self.admin(reqwest::Method::POST, &path, None).await.0
    }

    pub async fn create_cardholder(&self) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/cardholders",
                Some(json!({"label": "test"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn activation_code(&self, cardholder: &str) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{cardholder}/activation-codes"),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["code"].as_str().unwrap().to_owned()
    }

    /// A cardholder with one enrolled device.
    pub async fn cardholder_with_device(&self) -> (String, TestDevice) {
        let ch = self.create_cardholder().await;
        let code = self.activation_code(&ch).await;
        let device = TestDevice::enroll(self, &code).await;
        (ch, device)
    }

    /// Creates a generic API challenge; returns the JSON answer.
    pub async fn challenge(&self, cardholder: &str, reference: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "cardholder_id": cardholder,
            "reference": reference,
            "amount": {"minor": 4990, "currency": "EUR"},
            "payee": "Example Shop",
            "ttl_secs": 120,
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.admin(reqwest::Method::POST, "/v1/admin/challenges", Some(body))
            .await
    }

    pub async fn new_challenge(&self, cardholder: &str, reference: &str) -> String {
        let (s, v) = self.challenge(cardholder, reference, json!({})).await;
        assert_eq!(s, 201, "{v}");
        v["challenge"]["id"].as_str().unwrap().to_owned()
    }
}

/// A virtual phone.
pub struct TestDevice {
    /// The device key: request proofs, declines.
    pub key: SoftwareSigningKey,
    /// The approval key: approvals, migration grants.
    pub approval: SoftwareSigningKey,
    pub agreement: SoftwareAgreementKey,
    pub id: DeviceId,
    pub issuer: String,
    pub server_key: PublicKey,
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn clone_answer(&self) -> Answer {
        Answer {
            status: self.status,
            body: self.body.clone(),
        }
    }
}

impl TestDevice {
    /// A protocol v2 enrollment body: both keys, and the approval key's binding to
    /// the device key with audience `aud`.
    pub fn enroll_body(
        code: &str,
        key: &SoftwareSigningKey,
        approval: &SoftwareSigningKey,
        agreement: &SoftwareAgreementKey,
        aud: &str,
    ) -> Vec<u8> {
        let binding =
            key_statement::sign_enrollment_binding(approval, &key.public(), aud, UnixTime(now()))
                .unwrap();
        serde_json::to_vec(&json!({
            "activation_code": code,
            "platform": "other",
            "label": "test phone",
            "device_key": key.public().to_jwk(),
            "approval_key": approval.public().to_jwk(),
            "approval_key_proof": binding,
            "agreement_key": agreement.public_key().unwrap().to_jwk(),
        }))
        .unwrap()
    }

    /// Posts an enrollment `body` with a proof of possession by `key`.
    pub async fn post_enrollment(app: &TestApp, key: &SoftwareSigningKey, body: Vec<u8>) -> Answer {
        let path = "/v1/device/enroll";
        let proof = request::sign_enrollment(
            key,
            &app.base,
            HttpRequest {
                method: "POST",
                path,
                body: &body,
            },
            UnixTime(now()),
        )
        .unwrap();
        let resp = app
            .http
            .post(app.url(path))
            .header("Authorization", format!("PushAuth {proof}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    pub async fn try_enroll(
        app: &TestApp,
        code: &str,
        key: SoftwareSigningKey,
    ) -> Result<TestDevice, Answer> {
        let agreement = SoftwareAgreementKey::generate().unwrap();
        let approval = SoftwareSigningKey::generate().unwrap();
        let body = Self::enroll_body(code, &key, &approval, &agreement, &app.base);
        let a = Self::post_enrollment(app, &key, body).await;
        if a.status != 201 {
            return Err(a);
        }
        let v = a.body;
        let jwk: Jwk = serde_json::from_value(v["server_key"].clone()).unwrap();
        Ok(TestDevice {
            key,
            approval,
            agreement,
            id: DeviceId::parse(v["device_id"].as_str().unwrap()).unwrap(),
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            server_key: PublicKey::from_jwk(&jwk).unwrap(),
            base: app.base.clone(),
            http: app.http.clone(),
        })
    }

    pub async fn enroll(app: &TestApp, code: &str) -> TestDevice {
        match Self::try_enroll(app, code, SoftwareSigningKey::generate().unwrap()).await {
            Ok(d) => d,
            Err(a) => panic!("enroll failed: {} {}", a.status, a.body),
        }
    }

    /// Signs the request proof for a call (exposed so tests can replay it).
    pub fn proof(&self, method: &str, path: &str, body: &[u8]) -> String {
        request::sign(
            &self.id,
            &self.key,
            &self.issuer,
            HttpRequest { method, path, body },
            UnixTime(now()),
        )
        .unwrap()
    }

    pub async fn send_with(&self, method: &str, path: &str, body: Vec<u8>, proof: &str) -> Answer {
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("Authorization", format!("PushAuth {proof}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let proof = self.proof(method, path, &bytes);
        self.send_with(method, path, bytes, &proof).await
    }

    /// Fetches and verifies a challenge.
    pub async fn challenge(&self, id: &str) -> VerifiedChallenge {
        let a = self
            .call("GET", &format!("/v1/device/challenges/{id}"), None)
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        challenge::verify(
            a.body["token"].as_str().unwrap(),
            &self.server_key,
            &self.issuer,
            &self.id,
            UnixTime(now()),
            30,
        )
        .unwrap()
    }

    /// Claims for a decision on `c` with user verification `uv`.
    pub fn decision_claims(
        &self,
        c: &VerifiedChallenge,
        decision: Decision,
        reason: Option<DenyReason>,
        uv: UserVerification,
    ) -> proof::ApprovalClaims {
        proof::claims_for(
            c,
            &DecisionInput {
                device: &self.id,
                decision,
                reason,
                uv,
                processor_output: None,
                now: UnixTime(now()),
                lifetime_secs: 120,
            },
        )
        .unwrap()
    }

    /// A decision proof as the SDK makes it: an approval signed by the approval key
    /// (biometric), a decline by the device key (no prompt).
    pub fn sign_decision(
        &self,
        c: &VerifiedChallenge,
        decision: Decision,
        reason: Option<DenyReason>,
    ) -> String {
        let (uv, signer) = match decision {
            Decision::Approve => (UserVerification::Biometric, &self.approval),
            Decision::Deny => (UserVerification::None, &self.key),
        };
        let claims = self.decision_claims(c, decision, reason, uv);
        proof::sign(&claims, signer).unwrap()
    }

    pub async fn post_proof(&self, id: &str, proof: &str) -> Answer {
        self.call(
            "POST",
            &format!("/v1/device/challenges/{id}/decision"),
            Some(json!({ "proof": proof })),
        )
        .await
    }

    pub async fn approve(&self, id: &str) -> Answer {
        let c = self.challenge(id).await;
        let p = self.sign_decision(&c, Decision::Approve, None);
        self.post_proof(id, &p).await
    }
}
