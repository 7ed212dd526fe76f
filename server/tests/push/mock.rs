//! Mock APNs (HTTP/2 cleartext, prior knowledge) and mock FCM (OAuth token endpoint +
//! HTTP v1 send) as real servers on 127.0.0.1. Both check credentials the way the real
//! services do (provider token signature, kid, iss; OAuth assertion signature, iss,
//! aud, scope; bearer issued here), check the request shape, record every request and
//! answer from per-device-token scripts (default: accepted).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pushauth_core::keys::SoftwareSigningKey;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

mod fcm;
pub use fcm::MockFcm;

pub const KEY_ID: &str = "KEY1234567";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "com.example.bank";
pub const PROJECT: &str = "pushauth-test";
pub const CLIENT_EMAIL: &str = "pushauth@pushauth-test.iam.gserviceaccount.com";

/// PEM-wraps DER.
pub fn pem(label: &str, der: &[u8]) -> String {
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

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/push/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn serve(router: axum::Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
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
    let v = headers.get("authorization")?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.to_owned())
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// APNs `reason` / FCM `errorCode`.
    pub reason: &'static str,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn new(status: u16, reason: &'static str) -> Reply {
        Reply {
            status,
            reason,
            retry_after: None,
        }
    }
    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }
}

fn unix_now() -> i64 {
    pushauth_server::state::now().0 / 1000
}

// ---------------------------------------------------------------- APNs

/// One request as APNs saw it.
#[derive(Debug, Clone)]
pub struct ApnsRequest {
    pub device_token: String,
    pub headers: BTreeMap<String, String>,
    pub raw: String,
    pub body: Value,
    pub bearer: String,
    pub http2: bool,
    pub answered: u16,
}

#[derive(Default)]
struct ApnsState {
    requests: Vec<ApnsRequest>,
    scripts: HashMap<String, VecDeque<Reply>>,
    expire_next_token: bool,
    expired: HashSet<String>,
}

pub struct MockApns {
    pub url: String,
    /// The `.p8` the server must use.
    pub p8: String,
    state: Arc<Mutex<ApnsState>>,
    task: JoinHandle<()>,
}

impl Drop for MockApns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct ApnsCtx {
    state: Arc<Mutex<ApnsState>>,
    key: Arc<DecodingKey>,
}

impl MockApns {
    /// A mock that trusts `key` (several mocks can share one key, like Apple's hosts).
    pub async fn with_key(key: &SoftwareSigningKey) -> MockApns {
        let jwk = key.public().to_jwk();
        let decoding = DecodingKey::from_ec_components(&jwk.x, &jwk.y).unwrap();
        let state = Arc::new(Mutex::new(ApnsState::default()));
        let ctx = ApnsCtx {
            state: state.clone(),
            key: Arc::new(decoding),
        };
        let router = axum::Router::new().fallback(apns_handler).with_state(ctx);
        let (url, task) = serve(router).await;
        MockApns {
            url,
            p8: pem("PRIVATE KEY", &key.to_pkcs8()),
            state,
            task,
        }
    }

    /// Answers the next requests for `token` with `replies`, in order.
    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(token.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Treats the next provider token it sees as expired (`403 ExpiredProviderToken`).
    pub fn expire_next_token(&self) {
        self.state.lock().unwrap().expire_next_token = true;
    }

    pub fn requests(&self) -> Vec<ApnsRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn requests_for(&self, token: &str) -> Vec<ApnsRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.device_token == token)
            .collect()
    }
}

fn apns_answer(status: u16, reason: Option<&str>, retry_after: Option<u64>) -> Response {
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
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}

/// Checks what a well-formed APNs request must have; returns the refusal reason.
fn apns_shape(headers: &BTreeMap<String, String>, body: &Value) -> Option<&'static str> {
    let h = |k: &str| headers.get(k).map(String::as_str);
    if h("apns-topic") != Some(TOPIC) {
        return Some(if h("apns-topic").is_none() {
            "MissingTopic"
        } else {
            "BadTopic"
        });
    }
    let push_type = h("apns-push-type");
    let priority = h("apns-priority");
    match (push_type, priority) {
        (Some("alert"), Some("10")) | (Some("background"), Some("5")) => {}
        _ => return Some("BadPriority"),
    }
    if h("apns-expiration").is_none_or(|e| e.parse::<i64>().is_err()) {
        return Some("BadExpirationDate");
    }
    if h("apns-collapse-id").is_none_or(|c| c.is_empty() || c.len() > 64) {
        return Some("BadCollapseId");
    }
    let Some(aps) = body.get("aps").and_then(Value::as_object) else {
        return Some("PayloadEmpty");
    };
    // A background push must not carry an alert; an alert push must.
    if push_type == Some("background")
        && (aps.contains_key("alert") || aps.get("content-available") != Some(&json!(1)))
    {
        return Some("BadPriority");
    }
    if push_type == Some("alert") && !aps.contains_key("alert") {
        return Some("PayloadEmpty");
    }
    if serde_json::to_vec(body).unwrap().len() > 4096 {
        return Some("PayloadTooLarge");
    }
    None
}

async fn apns_handler(State(ctx): State<ApnsCtx>, req: Request) -> Response {
    let http2 = req.version() == Version::HTTP_2;
    let headers = headers_of(&req);
    let path = req.uri().path().to_owned();
    let is_post = req.method() == axum::http::Method::POST;
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let device_token = path
        .strip_prefix("/3/device/")
        .unwrap_or_default()
        .to_owned();
    let bearer = bearer(&headers).unwrap_or_default();
    let mut st = ctx.state.lock().unwrap();
    let (status, reason, retry) = if !http2 {
        (505, None, None)
    } else if !is_post {
        (405, Some("MethodNotAllowed"), None)
    } else if device_token.is_empty() {
        (404, Some("BadPath"), None)
    } else if bearer.is_empty() {
        (403, Some("MissingProviderToken"), None)
    } else if !provider_token_valid(&bearer, &ctx.key) {
        (403, Some("InvalidProviderToken"), None)
    } else if st.expired.contains(&bearer) {
        (403, Some("ExpiredProviderToken"), None)
    } else if st.expire_next_token {
        st.expire_next_token = false;
        st.expired.insert(bearer.clone());
        (403, Some("ExpiredProviderToken"), None)
    } else if let Some(reason) = apns_shape(&headers, &body) {
        (400, Some(reason), None)
    } else if let Some(reply) = st
        .scripts
        .get_mut(&device_token)
        .and_then(VecDeque::pop_front)
    {
        (
            reply.status,
            Some(reply.reason).filter(|r| !r.is_empty()),
            reply.retry_after,
        )
    } else {
        (200, None, None)
    };
    st.requests.push(ApnsRequest {
        device_token,
        headers,
        raw,
        body,
        bearer,
        http2,
        answered: status,
    });
    apns_answer(status, reason, retry)
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
    data.claims["iss"] == TEAM_ID && (unix_now() - 3600..=unix_now() + 60).contains(&iat)
}

/// Polls `cond` until it holds (10 s at most).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// What Apple and Google must never see: amount (minor units and display form),
/// payee, reference.
pub const PLAINTEXT: [&str; 4] = ["4990", "49.90", "Example Shop", "order-"];

/// Asserts that `text` holds none of [`PLAINTEXT`] once the random parts (challenge
/// id, envelope, timestamps), which may contain "4990" by chance, are cut out.
pub fn assert_no_plaintext(text: &str, random: &[&str]) {
    let mut rest = text.to_owned();
    for r in random.iter().filter(|r| !r.is_empty()) {
        rest = rest.replace(r, "<random>");
    }
    for secret in PLAINTEXT {
        assert!(!rest.contains(secret), "{secret} sent in clear: {rest}");
    }
}
