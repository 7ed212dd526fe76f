//! The admin calls the scenarios need and a virtual phone on `pushauth-core` (software
//! keys in place of the Secure Enclave): enroll, fetch + verify a challenge, sign the
//! approval proof, post the decision — as `server/tests/api/helpers.rs` does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use pushauth_core::UnixTime;
use pushauth_core::challenge::{self, VerifiedChallenge};
use pushauth_core::ids::DeviceId;
use pushauth_core::keys::{Jwk, KeyAgreement, PublicKey, SoftwareAgreementKey, SoftwareSigningKey};
use pushauth_core::proof::{self, Decision, DecisionInput, UserVerification};
use pushauth_core::request::{self, HttpRequest};
use serde_json::{Value, json};

use crate::instances::Target;
use crate::server::ADMIN_KEY;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub target: Target,
    pub http: reqwest::Client,
}

impl Admin {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.target.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        self.target.answered();
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Result<Value> {
        let (s, v) = self.call(method, path, body).await?;
        if s != want {
            bail!("{path}: HTTP {s} {v}");
        }
        Ok(v)
    }

    /// A cardholder (linked to `provider`/`key` when given) with one device, enrolled
    /// on (and making every later request to) `device_on`.
    pub async fn cardholder_with_device(
        &self,
        link: Option<(&str, &str)>,
        push_token: Option<&str>,
        device_on: &Target,
    ) -> Result<(String, Device)> {
        let v = self
            .expect(
                reqwest::Method::POST,
                "/v1/admin/cardholders",
                Some(json!({"label": "load"})),
                201,
            )
            .await?;
        let ch = v["id"]
            .as_str()
            .ok_or_else(|| anyhow!("no cardholder id"))?
            .to_owned();
        if let Some((provider, key)) = link {
            self.expect(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{ch}/links"),
                Some(json!({"provider": provider, "provider_key": key})),
                201,
            )
            .await?;
        }
        let v = self
            .expect(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{ch}/activation-codes"),
                None,
                201,
            )
            .await?;
        let code = v["code"]
            .as_str()
            .ok_or_else(|| anyhow!("no activation code"))?;
        let device = Device::enroll(device_on, &self.http, code, push_token).await?;
        Ok((ch, device))
    }
}

/// A virtual phone.
#[derive(Debug)]
pub struct Device {
    /// Device key (protocol v2): request proofs.
    key: SoftwareSigningKey,
    /// Approval key: approval proofs.
    approval: SoftwareSigningKey,
    pub id: DeviceId,
    issuer: String,
    server_key: PublicKey,
    /// The instance this device talks to.
    pub target: Target,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub took: Duration,
}

impl Device {
    pub async fn enroll(
        target: &Target,
        http: &reqwest::Client,
        code: &str,
        push_token: Option<&str>,
    ) -> Result<Device> {
        let base = target.base.as_str();
        let key = SoftwareSigningKey::generate()?;
        let approval = SoftwareSigningKey::generate()?;
        let agreement = SoftwareAgreementKey::generate()?;
        let binding = pushauth_core::key_statement::sign_enrollment_binding(
            &approval,
            &key.public(),
            base,
            UnixTime(now()),
        )?;
        let body = serde_json::to_vec(&json!({
            "activation_code": code,
            "platform": if push_token.is_some() { "android" } else { "other" },
            "label": "load phone",
            "device_key": key.public().to_jwk(),
            "approval_key": approval.public().to_jwk(),
            "approval_key_proof": binding,
            "agreement_key": agreement.public_key()?.to_jwk(),
            "push_token": push_token,
        }))?;
        let path = "/v1/device/enroll";
        let proof = request::sign_enrollment(
            &key,
            base,
            HttpRequest {
                method: "POST",
                path,
                body: &body,
            },
            UnixTime(now()),
        )?;
        let resp = http
            .post(format!("{base}{path}"))
            .header("Authorization", format!("PushAuth {proof}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        target.answered();
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 201 {
            bail!("enroll: HTTP {status} {v}");
        }
        let jwk: Jwk = serde_json::from_value(v["server_key"].clone()).context("server_key")?;
        Ok(Device {
            key,
            approval,
            id: DeviceId::parse(v["device_id"].as_str().unwrap_or_default())?,
            issuer: v["issuer"].as_str().unwrap_or_default().to_owned(),
            server_key: PublicKey::from_jwk(&jwk)?,
            target: target.clone(),
            http: http.clone(),
        })
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Answer> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(&b)?,
            None => Vec::new(),
        };
        let proof = request::sign(
            &self.id,
            &self.key,
            &self.issuer,
            HttpRequest {
                method,
                path,
                body: &bytes,
            },
            UnixTime(now()),
        )?;
        let t = Instant::now();
        let resp = self
            .http
            .request(method.parse()?, format!("{}{path}", self.target.base))
            .header("Authorization", format!("PushAuth {proof}"))
            .header("Content-Type", "application/json")
            .body(bytes)
            .send()
            .await?;
        self.target.answered();
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let took = t.elapsed();
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            took,
        })
    }

    /// Fetches and verifies a challenge; returns it and the fetch latency.
    pub async fn challenge(&self, id: &str) -> Result<(VerifiedChallenge, Duration)> {
        let a = self
            .call("GET", &format!("/v1/device/challenges/{id}"), None)
            .await?;
        if a.status != 200 {
            bail!("fetch challenge: HTTP {} {}", a.status, a.body);
        }
        let token = a.body["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no token"))?;
        let c = challenge::verify(
            token,
            &self.server_key,
            &self.issuer,
            &self.id,
            UnixTime(now()),
            30,
        )?;
        Ok((c, a.took))
    }

    /// Signs an approval (with Adyen's SDK output when the challenge carries an sdkInput).
    pub fn sign_approval(&self, c: &VerifiedChallenge) -> Result<(String, Option<&'static str>)> {
        let output = c
            .claims()
            .pin
            .is_some()
            .then_some(crate::webhooks::ADYEN_SDK_OUTPUT);
        let claims = proof::claims_for(
            c,
            &DecisionInput {
                device: &self.id,
                decision: Decision::Approve,
                reason: None,
                uv: UserVerification::Biometric,
                processor_output: output,
                now: UnixTime(now()),
                lifetime_secs: 120,
            },
        )?;
        Ok((proof::sign(&claims, &self.approval)?, output))
    }

    pub async fn post_decision(&self, id: &str, jws: &str, output: Option<&str>) -> Result<Answer> {
        let mut body = json!({ "proof": jws });
        if let Some(o) = output {
            body["processor_output"] = json!(o);
        }
        self.call(
            "POST",
            &format!("/v1/device/challenges/{id}/decision"),
            Some(body),
        )
        .await
    }
}
