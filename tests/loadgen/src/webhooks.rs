//! Valid (or deliberately invalid) signed webhooks in each processor's shape, built from
//! the committed example requests in `server/tests/providers/fixtures/` with the test
//! credentials there, the same way the connector tests build them.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::server::ADMIN_KEY;

const CREDENTIALS: &str = include_str!("../../../server/tests/providers/fixtures/credentials.json");
const ENFUCE: &str = include_str!("../../../server/tests/providers/fixtures/enfuce-webhook.json");
const ADYEN: &str = include_str!("../../../server/tests/providers/fixtures/adyen-webhook.json");
const PAYSAFE: &str = include_str!("../../../server/tests/providers/fixtures/paysafe-webhook.json");
const TREEZOR: &str = include_str!("../../../server/tests/providers/fixtures/treezor-webhook.json");

pub const ENFUCE_CALLBACK_USER: &str = "pushauth";
pub const ENFUCE_CALLBACK_PASSWORD: &str = "callback-password-0123";
pub const API_CALLBACK_SECRET: &str = "loadgen-callback-secret";
/// Adyen's app-SDK output the virtual device returns with its decision.
pub const ADYEN_SDK_OUTPUT: &str = "eyJhc3NlcnRpb24iOiJ0ZXN0In0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Processor {
    Enfuce,
    Adyen,
    Paysafe,
    Treezor,
    Api,
}

impl Processor {
    pub fn name(self) -> &'static str {
        match self {
            Processor::Enfuce => "enfuce",
            Processor::Adyen => "adyen",
            Processor::Paysafe => "paysafe",
            Processor::Treezor => "treezor",
            Processor::Api => "api",
        }
    }

    /// The card-link key of card number `k` (`None` for the generic API: by cardholder id).
    pub fn link_key(self, k: usize) -> Option<String> {
        match self {
            Processor::Enfuce => Some(format!("94{k:07}")),
            Processor::Adyen => Some(format!("PILOAD{k:019}")),
            Processor::Paysafe => Some(format!("63{k:010}")),
            Processor::Treezor => Some(format!("86{k:05}")),
            Processor::Api => None,
        }
    }
}

fn fixture(text: &str) -> Result<Value> {
    serde_json::from_str(text).context("fixture")
}

fn s<'a>(v: &'a Value, k: &str) -> Result<&'a str> {
    v[k].as_str().ok_or_else(|| anyhow!("fixture field {k}"))
}

fn creds() -> Result<Value> {
    fixture(CREDENTIALS)
}

/// The `PUSHAUTH_PROVIDERS__*` sections (TOML inline tables) for every connector, all
/// pointing at the mock processor.
pub fn provider_env(mock: &str) -> Result<Vec<(String, String)>> {
    let c = creds()?;
    let q = |v: &str| serde_json::to_string(v).unwrap_or_default();
    Ok(vec![
        (
            "PUSHAUTH_PROVIDERS__ENFUCE".into(),
            format!(
                "{{ path_prefix = \"/enfuce\", webhook_user = {}, webhook_password = {}, callback_hosts = [\"127.0.0.1\"], allow_http_callbacks = true, callback_user = {}, callback_password = {} }}",
                q(s(&c, "enfuce_user")?),
                q(s(&c, "enfuce_password")?),
                q(ENFUCE_CALLBACK_USER),
                q(ENFUCE_CALLBACK_PASSWORD)
            ),
        ),
        (
            "PUSHAUTH_PROVIDERS__ADYEN".into(),
            format!(
                "{{ webhook_user = {}, webhook_password = {}, hmac_key = {}, base_url = {}, allow_http = true, api_key = \"adyen-api-key-load\" }}",
                q(s(&c, "adyen_user")?),
                q(s(&c, "adyen_password")?),
                q(s(&c, "adyen_hmac_key_hex")?),
                q(mock)
            ),
        ),
        (
            "PUSHAUTH_PROVIDERS__PAYSAFE".into(),
            format!(
                "{{ webhook_key = {}, api_token = \"paysafe-token-load\", base_url = {}, allow_http = true }}",
                q(s(&c, "paysafe_key_b64")?),
                q(mock)
            ),
        ),
        (
            "PUSHAUTH_PROVIDERS__TREEZOR".into(),
            format!(
                "{{ webhook_secret = {}, base_url = {}, allow_http = true, client_id = \"12345\", client_secret = \"treezor-client-secret\" }}",
                q(s(&c, "treezor_webhook_secret")?),
                q(mock)
            ),
        ),
        (
            "PUSHAUTH_API__CALLBACK_HOSTS".into(),
            "[\"127.0.0.1\"]".into(),
        ),
        (
            "PUSHAUTH_API__CALLBACK_SECRET".into(),
            API_CALLBACK_SECRET.into(),
        ),
        ("PUSHAUTH_API__ALLOW_HTTP_CALLBACKS".into(), "true".into()),
    ])
}

/// One HTTP request to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Pre-parsed fixtures and keys.
#[derive(Debug)]
pub struct Builder {
    pub processor: Processor,
    mock: String,
    enfuce: Value,
    adyen: Value,
    paysafe: Value,
    treezor: Value,
    adyen_hmac: Vec<u8>,
    paysafe_key: Vec<u8>,
    treezor_secret: String,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC text of a Unix time in seconds.
fn rfc3339(secs: i64) -> String {
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

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Builder {
    pub fn new(processor: Processor, mock: &str) -> Result<Builder> {
        let c = creds()?;
        Ok(Builder {
            processor,
            mock: mock.to_owned(),
            enfuce: fixture(ENFUCE)?,
            adyen: fixture(ADYEN)?,
            paysafe: fixture(PAYSAFE)?,
            treezor: fixture(TREEZOR)?,
            adyen_hmac: hex::decode(s(&c, "adyen_hmac_key_hex")?)?,
            paysafe_key: base64::engine::general_purpose::STANDARD
                .decode(s(&c, "paysafe_key_b64")?)?,
            treezor_secret: s(&c, "treezor_webhook_secret")?.to_owned(),
        })
        .and_then(Builder::self_check)
    }

    /// Our signing reproduces the committed example requests' signatures.
    fn self_check(self) -> Result<Builder> {
        let body = s(&self.adyen, "body")?;
        if self.hmac_b64(&self.adyen_hmac, body.as_bytes())?
            != s(&self.adyen["headers"], "HmacSignature")?
        {
            bail!("Adyen HMAC does not reproduce the example");
        }
        let body = s(&self.paysafe, "body")?;
        if self.hmac_b64(&self.paysafe_key, body.as_bytes())?
            != s(&self.paysafe["headers"], "Signature")?
        {
            bail!("Paysafe signature does not reproduce the example");
        }
        let body = s(&self.treezor, "body")?;
        if self.treezor_resign(body, false)? != body {
            bail!("Treezor signature does not reproduce the example");
        }
        Ok(self)
    }

    fn hmac_b64(&self, key: &[u8], msg: &[u8]) -> Result<String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| anyhow!("{e}"))?;
        mac.update(msg);
        Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn adyen_sig(&self, body: &str) -> Result<String> {
        self.hmac_b64(&self.adyen_hmac, body.as_bytes())
    }

    fn treezor_resign(&self, body: &str, corrupt: bool) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct E<'a> {
            #[serde(borrow)]
            object_payload: &'a serde_json::value::RawValue,
            object_payload_signature: String,
        }
        let e: E<'_> = serde_json::from_str(body)?;
        // The example payload is already PHP `json_encode` output (no whitespace, `\/`,
        // `\uXXXX`) and we only substitute ASCII ids and digits, so the raw text is the
        // canonical form Treezor signs (checked against the example in `self_check`).
        let canon = e.object_payload.get();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.treezor_secret.as_bytes())
            .map_err(|e| anyhow!("{e}"))?;
        mac.update(canon.as_bytes());
        if corrupt {
            mac.update(b"x");
        }
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let old = serde_json::to_string(&e.object_payload_signature)?.replace('/', "\\/");
        Ok(body.replace(&old, &serde_json::to_string(&sig)?.replace('/', "\\/")))
    }

    /// The webhook (or generic API call) creating a challenge for `reference` on card
    /// `card` (`cardholder` for the generic API). `valid = false` breaks its signature.
    pub fn build(
        &self,
        reference: &str,
        card: usize,
        cardholder: &str,
        valid: bool,
    ) -> Result<Req> {
        let json = ("Content-Type".to_owned(), "application/json".to_owned());
        let key = self.processor.link_key(card).unwrap_or_default();
        Ok(match self.processor {
            Processor::Enfuce => {
                let e = &self.enfuce;
                let original = "https://id.enfuce.example/v1/callback/kitbank/940102053/4914f82b-c0cb-4b3d-a390-67e7831f8908";
                let body = s(e, "body")?.replace(
                    original,
                    &format!("{}/v1/callback/kitbank/{key}/{reference}", self.mock),
                );
                let c = creds()?;
                let auth = basic(
                    s(&c, "enfuce_user")?,
                    if valid {
                        s(&c, "enfuce_password")?
                    } else {
                        "wrong-password"
                    },
                );
                Req {
                    method: reqwest::Method::POST,
                    path: format!("/enfuce/v1/authenticate/{key}/{reference}"),
                    headers: vec![json, ("Authorization".into(), auth)],
                    body: body.into_bytes(),
                }
            }
            Processor::Adyen => {
                let e = &self.adyen;
                let body = s(e, "body")?
                    .replace(s(e, "provider_reference")?, reference)
                    .replace(s(e, "card_reference")?, &key)
                    .replace(",\"timestamp\":\"2026-11-18T11:06:40.000Z\"", "");
                let sig = if valid {
                    self.adyen_sig(&body)?
                } else {
                    self.adyen_sig("tampered")?
                };
                Req {
                    method: reqwest::Method::POST,
                    path: "/webhooks/adyen/relayed".into(),
                    headers: vec![
                        json,
                        (
                            "Authorization".into(),
                            s(&e["headers"], "Authorization")?.to_owned(),
                        ),
                        ("HmacSignature".into(), sig),
                        (
                            "WWW-Authenticate".into(),
                            s(&e["headers"], "WWW-Authenticate")?.to_owned(),
                        ),
                    ],
                    body: body.into_bytes(),
                }
            }
            Processor::Paysafe => {
                let e = &self.paysafe;
                let body = s(e, "body")?
                    .replace(s(e, "provider_reference")?, reference)
                    .replace(
                        "e38c8a9c-62aa-48cb-a214-99a6f5e77de8",
                        &uuid::Uuid::new_v4().to_string(),
                    )
                    .replace(s(e, "card_reference")?, &key)
                    .replace(
                        "\"expirationTime\": \"2026-11-18T11:21:40Z\"",
                        &format!("\"expirationTime\": \"{}\"", rfc3339(unix_now() + 600)),
                    );
                let sig = self.hmac_b64(
                    &self.paysafe_key,
                    if valid { body.as_bytes() } else { b"{}" },
                )?;
                Req {
                    method: reqwest::Method::POST,
                    path: "/webhooks/paysafe/sca/events".into(),
                    headers: vec![json, ("Signature".into(), sig)],
                    body: body.into_bytes(),
                }
            }
            Processor::Treezor => {
                let e = &self.treezor;
                let created = unix_now() * 10_000;
                let body = s(e, "body")?
                    .replace(s(e, "provider_reference")?, reference)
                    .replace(
                        "569ba20f-609e-47bc-a2ce-592416ad601c",
                        &uuid::Uuid::new_v4().to_string(),
                    )
                    .replace("17950000000000", &created.to_string())
                    .replace(
                        &format!("\"cardId\":\"{}\"", s(e, "card_reference")?),
                        &format!("\"cardId\":\"{key}\""),
                    );
                let body = self.treezor_resign(&body, !valid)?;
                Req {
                    method: reqwest::Method::POST,
                    path: "/webhooks/treezor".into(),
                    headers: vec![("Content-Type".into(), "text/plain".into())],
                    body: body.into_bytes(),
                }
            }
            Processor::Api => {
                let body = json!({
                    "cardholder_id": cardholder,
                    "reference": reference,
                    "amount": {"minor": 4990, "currency": "EUR"},
                    "payee": "Example Shop",
                    "ttl_secs": 300,
                    "callback_url": format!("{}/api/callback", self.mock),
                });
                let bearer = if valid {
                    ADMIN_KEY.to_owned()
                } else {
                    "wrong-admin-key-0123456789".to_owned()
                };
                Req {
                    method: reqwest::Method::POST,
                    path: "/v1/admin/challenges".into(),
                    headers: vec![json, ("Authorization".into(), format!("Bearer {bearer}"))],
                    body: serde_json::to_vec(&body)?,
                }
            }
        })
    }
}
