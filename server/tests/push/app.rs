//! The real server on a random port with `[push]` pointed at the mocks, and virtual
//! phones (software keys) that enroll with a platform and a push token and approve.

use pushauth_core::UnixTime;
use pushauth_core::challenge;
use pushauth_core::ids::DeviceId;
use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::proof::{self, Decision, DecisionInput, UserVerification};
use pushauth_core::request::{self, HttpRequest};
use pushauth_server::push::config::PushConfig;
use pushauth_server::{Config, Server};
use serde_json::{Value, json};

use crate::mock::eventually;

pub use crate::support::Backend;
use crate::support::{ADMIN_KEY, Signer, now, open_store, signed_call};

pub struct App {
    pub server: Server,
    pub base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    /// Dropped after the server: drops its PostgreSQL schema.
    _schema: crate::support::SchemaGuard,
}

pub async fn spawn(backend: Backend, push: PushConfig) -> App {
    spawn_with(backend, push, |_| {}).await
}

pub async fn spawn_with(
    backend: Backend,
    push: PushConfig,
    tweak: impl FnOnce(&mut Config),
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.path().to_owned();
    config.security.admin_key = Some(ADMIN_KEY.into());
    config.workers.idle_poll_ms = 100;
    config.push = push;
    tweak(&mut config);
    let (store, schema) = open_store(backend, dir.path()).await;
    let server = Server::start_with_store(config, store).await.unwrap();
    let base = format!("http://{}", server.addr);
    App {
        server,
        base,
        http: reqwest::Client::new(),
        _dir: dir,
        _schema: schema,
    }
}

impl App {
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn cardholder(&self) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/cardholders",
                Some(json!({"label": "push test"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Enrolls a phone of `platform` with `token` (and for iOS an environment).
    pub async fn phone(
        &self,
        cardholder: &str,
        platform: &str,
        token: &str,
        environment: Option<&str>,
    ) -> Phone {
        let (status, v, keys) = self
            .enroll(cardholder, platform, Some(token), environment)
            .await;
        assert_eq!(status, 201, "{v}");
        let (key, approval, agreement) = keys;
        let jwk: Jwk = serde_json::from_value(v["server_key"].clone()).unwrap();
        Phone {
            key,
            approval,
            agreement,
            token: token.to_owned(),
            id: DeviceId::parse(v["device_id"].as_str().unwrap()).unwrap(),
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            server_key: PublicKey::from_jwk(&jwk).unwrap(),
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// Posts an enrollment; returns the status, the answer (a problem when refused,
    /// with its content type under `content_type`) and the new keys.
    pub async fn enroll(
        &self,
        cardholder: &str,
        platform: &str,
        token: Option<&str>,
        environment: Option<&str>,
    ) -> (
        u16,
        Value,
        (SoftwareSigningKey, SoftwareSigningKey, SoftwareAgreementKey),
    ) {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{cardholder}/activation-codes"),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let key = SoftwareSigningKey::generate().unwrap();
        let approval = SoftwareSigningKey::generate().unwrap();
        let agreement = SoftwareAgreementKey::generate().unwrap();
        let mut body = crate::support::with_enrollment_keys(
            json!({
                "activation_code": v["code"],
                "platform": platform,
                "label": format!("{platform} phone"),
                "agreement_key": agreement.public_key().unwrap().to_jwk(),
                "push_token": token,
            }),
            &key,
            &approval,
            &self.base,
        );
        if let Some(env) = environment {
            body["push_environment"] = json!(env);
        }
        let body = serde_json::to_vec(&body).unwrap();
        let path = "/v1/device/enroll";
        let proof = request::sign_enrollment(
            &key,
            &self.base,
            HttpRequest {
                method: "POST",
                path,
                body: &body,
            },
            UnixTime(now()),
        )
        .unwrap();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("PushAuth {proof}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut v: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            v["content_type"] = json!(content_type);
        }
        (status, v, (key, approval, agreement))
    }

    /// A generic API challenge for EUR 49.90 at Example Shop; returns (id, deadline ms).
    pub async fn challenge(&self, cardholder: &str, reference: &str) -> (String, i64) {
        let body = json!({
            "cardholder_id": cardholder,
            "reference": reference,
            "amount": {"minor": 4990, "currency": "EUR"},
            "payee": "Example Shop",
            "ttl_secs": 120,
        });
        let (s, v) = self
            .admin(reqwest::Method::POST, "/v1/admin/challenges", Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
        (
            v["challenge"]["id"].as_str().unwrap().to_owned(),
            v["challenge"]["deadline"].as_i64().unwrap(),
        )
    }

    /// The admin challenge detail (outbox rows and attempts).
    pub async fn detail(&self, id: &str) -> Value {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/challenges/{id}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Waits until every outbox row of the challenge is settled (not pending).
    pub async fn settled(&self, id: &str, rows: usize) -> Value {
        for _ in 0..200 {
            let v = self.detail(id).await;
            let outbox = v["outbox"].as_array().cloned().unwrap_or_default();
            if outbox.len() >= rows && outbox.iter().all(|r| r["status"] != "pending") {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("outbox of {id} not settled: {}", self.detail(id).await);
    }

    /// The attempts of the challenge for one device and kind.
    pub fn attempts(detail: &Value, device: &DeviceId, kind: &str) -> Vec<Value> {
        detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["device"] == device.as_str() && a["kind"] == kind)
            .cloned()
            .collect()
    }

    /// The admin device detail's `push` (null once the token was declared dead).
    pub async fn device_push(&self, device: &DeviceId) -> Value {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/devices/{device}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["push"].clone()
    }

    /// Waits until the device's push target is gone.
    pub async fn token_cleared(&self, device: &DeviceId) {
        for _ in 0..200 {
            if self.device_push(device).await.is_null() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("push token of {device} still set");
    }
}

/// A virtual phone (protocol v2: device key for requests, approval key for approvals).
pub struct Phone {
    pub key: SoftwareSigningKey,
    pub approval: SoftwareSigningKey,
    pub agreement: SoftwareAgreementKey,
    pub token: String,
    pub id: DeviceId,
    issuer: String,
    server_key: PublicKey,
    base: String,
    http: reqwest::Client,
}

impl Phone {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let signer = Signer {
            id: &self.id,
            key: &self.key,
            issuer: &self.issuer,
        };
        signed_call(&self.http, &self.base, signer, method, path, body).await
    }

    /// `PUT /v1/device/push-token`.
    pub async fn put_push_token(&self, token: &str) -> (u16, Value) {
        self.call(
            "PUT",
            "/v1/device/push-token",
            Some(json!({ "push_token": token })),
        )
        .await
    }

    /// Fetches, verifies and approves the challenge.
    pub async fn approve(&self, id: &str) {
        let (s, v) = self
            .call("GET", &format!("/v1/device/challenges/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        let c = challenge::verify(
            v["token"].as_str().unwrap(),
            &self.server_key,
            &self.issuer,
            &self.id,
            UnixTime(now()),
            30,
        )
        .unwrap();
        let claims = proof::claims_for(
            &c,
            &DecisionInput {
                device: &self.id,
                decision: Decision::Approve,
                reason: None,
                uv: UserVerification::Biometric,
                processor_output: None,
                now: UnixTime(now()),
                lifetime_secs: 120,
            },
        )
        .unwrap();
        let p = proof::sign(&claims, &self.approval).unwrap();
        let (s, v) = self
            .call(
                "POST",
                &format!("/v1/device/challenges/{id}/decision"),
                Some(json!({ "proof": p })),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
}

/// Polls until `n` requests satisfy the predicate.
pub async fn wait_count(what: &str, n: usize, mut count: impl FnMut() -> usize) {
    eventually(what, || count() >= n).await;
}
