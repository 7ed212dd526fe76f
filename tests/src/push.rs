//! Mock APNs (HTTP/2 cleartext, prior knowledge) and mock FCM (OAuth token endpoint +
//! HTTP v1 send) on 127.0.0.1, adapted from `server/tests/push/mock.rs`. Both check the
//! credentials the way Apple and Google do (ES256 provider token; RS256 assertion
//! exchanged for a bearer issued here), record every message, and can lose messages
//! (answered 200, never delivered to the phone) or be down (503).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const KEY_ID: &str = "KEY1234567";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "com.example.bank";
pub const PROJECT: &str = "pushauth-e2e";
pub const CLIENT_EMAIL: &str = "pushauth@pushauth-e2e.iam.gserviceaccount.com";

/// One push as the phone would get it (or as it was lost).
#[derive(Debug, Clone)]
pub struct PushMessage {
    /// APNs device token or FCM registration token.
    pub token: String,
    /// `cid`.
    pub cid: String,
    /// `challenge` or `dismiss`.
    pub kind: String,
    /// The envelope (challenge pushes).
    pub enc: Option<String>,
    /// `apns` or `fcm`.
    pub service: &'static str,
    /// Whether the phone got it (false: lost on the way, or refused).
    pub delivered: bool,
}

#[derive(Default)]
struct Shared {
    messages: Vec<PushMessage>,
    /// Tokens whose next N messages are lost.
    lose: HashMap<String, usize>,
    /// Answer 503 to every message.
    down: bool,
    fcm_issued: HashSet<String>,
    fcm_token_uri: String,
}

/// The two mock push services of one test.
pub struct PushMocks {
    /// APNs base URL (production and sandbox alike).
    pub apns_url: String,
    /// FCM base URL.
    pub fcm_url: String,
    state: Arc<Mutex<Shared>>,
    tasks: Vec<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl Drop for PushMocks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Mutex<Shared>>,
    apns_key: Arc<DecodingKey>,
    fcm_key: Arc<DecodingKey>,
}

async fn serve(router: axum::Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl PushMocks {
    /// Starts both mocks and writes the key files the server needs.
    pub async fn start() -> PushMocks {
        let dir = tempfile::tempdir().unwrap();
        let apns = pushauth_core::keys::SoftwareSigningKey::generate().unwrap();
        let jwk = apns.public().to_jwk();
        let apns_key = DecodingKey::from_ec_components(&jwk.x, &jwk.y).unwrap();
        std::fs::write(
            dir.path().join("AuthKey.p8"),
            pem("PRIVATE KEY", &apns.to_pkcs8()),
        )
        .unwrap();
        let fcm_key = DecodingKey::from_rsa_pem(
            crate::fixture("test-only-fcm-service-account-key.pub.pem").as_bytes(),
        )
        .unwrap();
        let state = Arc::new(Mutex::new(Shared::default()));
        let ctx = Ctx {
            state: state.clone(),
            apns_key: Arc::new(apns_key),
            fcm_key: Arc::new(fcm_key),
        };
        let (apns_url, t1) = serve(
            axum::Router::new()
                .fallback(apns_handler)
                .with_state(ctx.clone()),
        )
        .await;
        let (fcm_url, t2) = serve(axum::Router::new().fallback(fcm_handler).with_state(ctx)).await;
        state.lock().unwrap().fcm_token_uri = format!("{fcm_url}/token");
        let sa = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-only-key-1",
            "private_key": crate::fixture("test-only-fcm-service-account-key.pem"),
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": format!("{fcm_url}/token"),
        });
        std::fs::write(dir.path().join("service-account.json"), sa.to_string()).unwrap();
        PushMocks {
            apns_url,
            fcm_url,
            state,
            tasks: vec![t1, t2],
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[push]` section for the server.
    pub fn toml(&self) -> String {
        let key = format!("{:?}", self.path("AuthKey.p8"));
        let sa = format!("{:?}", self.path("service-account.json"));
        let (apns, fcm) = (&self.apns_url, &self.fcm_url);
        format!(
            "[push]\napns_key_file = {key}\napns_key_id = \"{KEY_ID}\"\napns_team_id = \"{TEAM_ID}\"\napns_topic = \"{TOPIC}\"\n\
             apns_base_url_production = \"{apns}\"\napns_base_url_sandbox = \"{apns}\"\nfcm_service_account_file = {sa}\n\
             fcm_base_url = \"{fcm}\"\nrequest_timeout_ms = 5000\n"
        )
    }

    /// Loses the next `n` messages to `token`.
    pub fn lose(&self, token: &str, n: usize) {
        *self
            .state
            .lock()
            .unwrap()
            .lose
            .entry(token.to_owned())
            .or_default() += n;
    }

    /// Both services answer 503 (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Every message, delivered or not.
    pub fn all(&self) -> Vec<PushMessage> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Messages the phone with `token` received.
    pub fn delivered_to(&self, token: &str) -> Vec<PushMessage> {
        self.all()
            .into_iter()
            .filter(|m| m.token == token && m.delivered)
            .collect()
    }
}

fn record(state: &Mutex<Shared>, service: &'static str, token: String, data: &Value) -> u16 {
    let mut st = state.lock().unwrap();
    let (status, delivered) = if st.down {
        (503, false)
    } else if let Some(n) = st.lose.get_mut(&token).filter(|n| **n > 0) {
        *n -= 1;
        (200, false)
    } else {
        (200, true)
    };
    let cid = data["cid"].as_str().unwrap_or_default().to_owned();
    let kind = data["kind"].as_str().unwrap_or_default().to_owned();
    let enc = data["enc"].as_str().map(str::to_owned);
    st.messages.push(PushMessage {
        token,
        cid,
        kind,
        enc,
        service,
        delivered,
    });
    status
}

fn headers_of(req: &Request) -> BTreeMap<String, String> {
    req.headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or("<bin>").to_owned(),
            )
        })
        .collect()
}

fn bearer(headers: &BTreeMap<String, String>) -> Option<String> {
    let (scheme, token) = headers.get("authorization")?.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.to_owned())
}

fn apns_answer(status: u16, reason: Option<&str>) -> Response {
    let mut resp = match reason {
        Some(r) => (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({ "reason": r })),
        )
            .into_response(),
        None => StatusCode::from_u16(status).unwrap().into_response(),
    };
    resp.headers_mut().insert(
        "apns-id",
        "00000000-0000-4000-8000-000000000000".parse().unwrap(),
    );
    resp
}

async fn apns_handler(State(ctx): State<Ctx>, req: Request) -> Response {
    if req.version() != Version::HTTP_2 {
        return apns_answer(505, None);
    }
    let headers = headers_of(&req);
    let path = req.uri().path().to_owned();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let Some(token) = path.strip_prefix("/3/device/").filter(|t| !t.is_empty()) else {
        return apns_answer(404, Some("BadPath"));
    };
    if !bearer(&headers).is_some_and(|b| provider_token_valid(&b, &ctx.apns_key)) {
        return apns_answer(403, Some("InvalidProviderToken"));
    }
    if headers.get("apns-topic").map(String::as_str) != Some(TOPIC) || !body["aps"].is_object() {
        return apns_answer(400, Some("BadTopic"));
    }
    match record(&ctx.state, "apns", token.to_owned(), &body) {
        200 => apns_answer(200, None),
        s => apns_answer(s, Some("ServiceUnavailable")),
    }
}

fn provider_token_valid(token: &str, key: &DecodingKey) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
        return false;
    }
    let mut v = Validation::new(Algorithm::ES256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let Ok(data) = jsonwebtoken::decode::<Value>(token, key, &v) else {
        return false;
    };
    let iat = data.claims["iat"].as_i64().unwrap_or(0);
    data.claims["iss"] == TEAM_ID && (crate::now() - 3600..=crate::now() + 60).contains(&iat)
}

fn fcm_error(status: u16, code: &str) -> Response {
    let body = json!({"error": {"code": status, "message": "mock error", "status": "UNAVAILABLE", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]}});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn fcm_handler(State(ctx): State<Ctx>, req: Request<Body>) -> Response {
    let headers = headers_of(&req);
    let path = req.uri().path().to_owned();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    if path == "/token" {
        return fcm_token(&ctx, &bytes);
    }
    if path != format!("/v1/projects/{PROJECT}/messages:send") {
        return fcm_error(404, "UNSPECIFIED_ERROR");
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let issued =
        bearer(&headers).is_some_and(|b| ctx.state.lock().unwrap().fcm_issued.contains(&b));
    if !issued {
        return fcm_error(401, "THIRD_PARTY_AUTH_ERROR");
    }
    let m = &body["message"];
    if m.get("notification").is_some() || !m["data"].is_object() || !m["token"].is_string() {
        return fcm_error(400, "INVALID_ARGUMENT");
    }
    match record(
        &ctx.state,
        "fcm",
        m["token"].as_str().unwrap().to_owned(),
        &m["data"],
    ) {
        200 => {
            axum::Json(json!({ "name": format!("projects/{PROJECT}/messages/1") })).into_response()
        }
        s => fcm_error(s, "UNAVAILABLE"),
    }
}

fn fcm_token(ctx: &Ctx, form: &[u8]) -> Response {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(form).into_owned().collect();
    let refuse = |code: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": code })),
        )
            .into_response()
    };
    let Some(assertion) = fields.get("assertion") else {
        return refuse("invalid_request");
    };
    let token_uri = ctx.state.lock().unwrap().fcm_token_uri.clone();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[token_uri.as_str()]);
    v.set_issuer(&[CLIENT_EMAIL]);
    let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &ctx.fcm_key, &v) else {
        return refuse("invalid_grant");
    };
    if data.claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return refuse("invalid_scope");
    }
    let token = format!("ya29.mock-{}", uuid::Uuid::new_v4().simple());
    ctx.state.lock().unwrap().fcm_issued.insert(token.clone());
    axum::Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}
