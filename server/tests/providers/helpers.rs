//! `spawn` starts the real server with a connector configured; `TestDevice` is a virtual
//! phone (the core with software keys) that enrolls, fetches and verifies challenges and
//! signs decisions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, VerifiedChallenge};
use pushauth_core::ids::{DeviceId, Provider, ProviderRef};
use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::proof::{self, Decision, DecisionInput, UserVerification};
use pushauth_core::request::{self, HttpRequest};
use pushauth_server::{Config, Server};
use pushauth_store::{Challenge, Store};
use serde_json::{Value, json};

pub use crate::support::{ADMIN_KEY, Backend, now};
use crate::support::{Signer, open_store, signed_call};

pub struct TestApp {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    /// Dropped after the server: drops its PostgreSQL schema.
    _schema: crate::support::SchemaGuard,
}

pub async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.path().to_owned();
    config.security.admin_key = Some(ADMIN_KEY.into());
    config.workers.idle_poll_ms = 100;
    tweak(&mut config);
    let (store, schema) = open_store(backend, dir.path()).await;
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
    /// A plain connection to the server's PostgreSQL schema (None on SQLite), for a
    /// test that must hold locks or rows of its own in the database.
    pub async fn raw_pg(&self) -> Option<sqlx::PgConnection> {
        match &self._schema {
            Some(schema) => Some(schema.raw().await),
            None => None,
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts a webhook: raw body bytes and headers exactly as given.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Vec<u8>>,
    ) -> Answer {
        let mut req = self.http.post(self.url(path)).body(body.into());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        Answer {
            status,
            text: resp.text().await.unwrap(),
        }
    }

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

    pub async fn link(&self, cardholder: &str, provider: &str, key: &str) {
        let path = format!("/v1/admin/cardholders/{cardholder}/links");
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &path,
                Some(json!({"provider": provider, "provider_key": key})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    /// A cardholder linked to `provider`/`key`, with one enrolled device.
    pub async fn cardholder_with_device(&self, provider: &str, key: &str) -> (String, TestDevice) {
        let ch = self.create_cardholder().await;
        self.link(&ch, provider, key).await;
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{ch}/activation-codes"),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let device = TestDevice::enroll(self, v["code"].as_str().unwrap()).await;
        (ch, device)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.server.state.store
    }

    /// The challenge a processor reference made, if any.
    pub async fn find(&self, provider: Provider, reference: &str) -> Option<Challenge> {
        self.store()
            .challenge_find(provider, &ProviderRef::parse(reference).unwrap())
            .await
            .unwrap()
    }

    /// How many challenges exist for a provider.
    pub async fn count(&self, provider: &str) -> usize {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/challenges?provider={provider}&limit=500"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["challenges"].as_array().unwrap().len()
    }

    /// The admin evidence view of a challenge.
    pub async fn view(&self, id: &str) -> Value {
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

    /// Waits until the challenge's upstream leg has this status; returns the view.
    pub async fn wait_upstream(&self, id: &str, status: &str, within: Duration) -> Value {
        let end = tokio::time::Instant::now() + within;
        let (found, last) = loop {
            let last = self.view(id).await;
            if last["challenge"]["upstream"] == status || tokio::time::Instant::now() > end {
                break (last["challenge"]["upstream"] == status, last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(found, "upstream never became {status}: {last:#}");
        last
    }

    /// Waits until the challenge has this status.
    pub async fn wait_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let end = tokio::time::Instant::now() + within;
        let (found, last) = loop {
            let last = self.view(id).await;
            if last["challenge"]["status"] == status || tokio::time::Instant::now() > end {
                break (last["challenge"]["status"] == status, last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(found, "status never became {status}: {last:#}");
        last
    }

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
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn wait_for<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A virtual phone (protocol v2: device key for requests and declines, approval key
/// for approvals).
pub struct TestDevice {
    pub key: SoftwareSigningKey,
    pub approval: SoftwareSigningKey,
    pub agreement: SoftwareAgreementKey,
    pub id: DeviceId,
    pub issuer: String,
    pub server_key: PublicKey,
    pub base: String,
    pub http: reqwest::Client,
}

impl TestDevice {
    pub async fn enroll(app: &TestApp, code: &str) -> TestDevice {
        let key = SoftwareSigningKey::generate().unwrap();
        let approval = SoftwareSigningKey::generate().unwrap();
        let agreement = SoftwareAgreementKey::generate().unwrap();
        let body = serde_json::to_vec(&crate::support::with_enrollment_keys(
            json!({
                "activation_code": code,
                "platform": "other",
                "label": "test phone",
                "agreement_key": agreement.public_key().unwrap().to_jwk(),
            }),
            &key,
            &approval,
            &app.base,
        ))
        .unwrap();
        let path = "/v1/device/enroll";
        let proof = request::sign_enrollment(
            &key,
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
        assert_eq!(resp.status().as_u16(), 201);
        let v: Value = resp.json().await.unwrap();
        let jwk: Jwk = serde_json::from_value(v["server_key"].clone()).unwrap();
        TestDevice {
            key,
            approval,
            agreement,
            id: DeviceId::parse(v["device_id"].as_str().unwrap()).unwrap(),
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            server_key: PublicKey::from_jwk(&jwk).unwrap(),
            base: app.base.clone(),
            http: app.http.clone(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let signer = Signer {
            id: &self.id,
            key: &self.key,
            issuer: &self.issuer,
        };
        signed_call(&self.http, &self.base, signer, method, path, body).await
    }

    /// Fetches and verifies a challenge.
    pub async fn challenge(&self, id: &str) -> VerifiedChallenge {
        let (s, v) = self
            .call("GET", &format!("/v1/device/challenges/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        challenge::verify(
            v["token"].as_str().unwrap(),
            &self.server_key,
            &self.issuer,
            &self.id,
            UnixTime(now()),
            30,
        )
        .unwrap()
    }

    /// Fetches, verifies and answers a challenge; returns the server's answer and the proof.
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        processor_output: Option<&str>,
    ) -> (u16, Value, String) {
        let c = self.challenge(id).await;
        let reason = (decision == Decision::Deny).then_some(proof::DenyReason::Declined);
        let claims = proof::claims_for(
            &c,
            &DecisionInput {
                device: &self.id,
                decision,
                reason,
                uv: UserVerification::Biometric,
                processor_output,
                now: UnixTime(now()),
                lifetime_secs: 60,
            },
        )
        .unwrap();
        let signer = match decision {
            Decision::Approve => &self.approval,
            Decision::Deny => &self.key,
        };
        let jws = proof::sign(&claims, signer).unwrap();
        let mut body = json!({ "proof": jws });
        if let Some(out) = processor_output {
            body["processor_output"] = json!(out);
        }
        let (s, v) = self
            .call(
                "POST",
                &format!("/v1/device/challenges/{id}/decision"),
                Some(body),
            )
            .await;
        (s, v, jws)
    }

    /// Opens an encrypted push built for this device.
    pub fn open_push(&self, challenge: &Challenge, enc: &str) -> pushauth_core::push::PushDetails {
        let key: &dyn KeyAgreement = &self.agreement;
        pushauth_core::push::PushDetails::open(key, &challenge.id, enc).unwrap()
    }
}

/// An address nothing listens on (bound, then released).
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Loads a fixture (see fixtures/README.md).
pub fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub fn credentials() -> Value {
    fixture(include_str!("fixtures/credentials.json"))
}

/// RFC 3339 UTC text of a Unix time in seconds.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A fresh processor reference.
pub fn new_ref() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Asserts nothing was stored for this reference.
pub async fn assert_nothing_stored(app: &TestApp, provider: Provider, reference: &str) {
    assert!(
        app.find(provider, reference).await.is_none(),
        "a challenge was stored for {reference}"
    );
}

/// `Authorization: Basic …`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
