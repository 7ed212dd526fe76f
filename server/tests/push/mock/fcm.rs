//! Mock FCM: the OAuth token endpoint (checks the service account's assertion:
//! signature, iss, aud, scope) and the HTTP v1 send (checks the bearer issued here and
//! the message's shape), answering from per-device-token scripts. Split from
//! `mock.rs`, whose helpers it shares.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{CLIENT_EMAIL, PROJECT, Reply, bearer, fixture, headers_of, serve, unix_now};

/// One send request as FCM saw it.
#[derive(Debug, Clone)]
pub struct FcmRequest {
    pub device_token: String,
    pub raw: String,
    pub body: Value,
    pub bearer: String,
    pub answered: u16,
}

#[derive(Default)]
struct FcmState {
    token_uri: String,
    issued: HashSet<String>,
    revoked: HashSet<String>,
    token_requests: usize,
    requests: Vec<FcmRequest>,
    scripts: HashMap<String, VecDeque<Reply>>,
    revoke_next: bool,
    /// Tokens whose sends are answered only after this long; sends in progress now.
    slow: HashMap<String, std::time::Duration>,
    in_flight: usize,
    max_in_flight: usize,
}

pub struct MockFcm {
    pub url: String,
    state: Arc<Mutex<FcmState>>,
    task: JoinHandle<()>,
}

impl Drop for MockFcm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct FcmCtx {
    state: Arc<Mutex<FcmState>>,
    key: Arc<DecodingKey>,
}

impl MockFcm {
    pub async fn start() -> MockFcm {
        let public = fixture("test-only-fcm-service-account-key.pub.pem");
        let key = DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let state = Arc::new(Mutex::new(FcmState::default()));
        let ctx = FcmCtx {
            state: state.clone(),
            key: Arc::new(key),
        };
        let router = axum::Router::new().fallback(fcm_handler).with_state(ctx);
        let (url, task) = serve(router).await;
        state.lock().unwrap().token_uri = format!("{url}/token");
        MockFcm { url, state, task }
    }

    /// A service-account key file for this mock (token_uri = the mock).
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-only-key-1",
            "private_key": fixture("test-only-fcm-service-account-key.pem"),
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }

    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(token.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Revokes the access token of the next send (answered 401).
    pub fn revoke_next_token(&self) {
        self.state.lock().unwrap().revoke_next = true;
    }

    /// Answers sends to `token` only after `ms` milliseconds.
    pub fn slow(&self, token: &str, ms: u64) {
        let d = std::time::Duration::from_millis(ms);
        self.state.lock().unwrap().slow.insert(token.to_owned(), d);
    }

    /// The most sends this mock had in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    pub fn requests(&self) -> Vec<FcmRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn requests_for(&self, token: &str) -> Vec<FcmRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.device_token == token)
            .collect()
    }
}

fn fcm_error(status: u16, code: &str, retry_after: Option<u64>) -> Response {
    let canonical = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let message = if code == "INVALID_ARGUMENT" {
        "The registration token is not a valid FCM registration token"
    } else {
        "mock error"
    };
    let body = json!({"error": {"code": status, "message": message, "status": canonical, "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]}});
    let mut resp = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}

fn bad_request(field: &str) -> Response {
    let body = json!({"error": {"code": 400, "message": format!("Invalid value at '{field}'"), "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": field, "description": "invalid"}]}
    ]}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Checks an HTTP v1 message the way FCM does for the fields we use.
fn fcm_shape(body: &Value) -> Option<&'static str> {
    let m = &body["message"];
    if !m["token"].is_string() {
        return Some("message.token");
    }
    if m.get("notification").is_some() {
        return Some("message.notification");
    }
    let Some(data) = m["data"].as_object() else {
        return Some("message.data");
    };
    if data.values().any(|v| !v.is_string())
        || data.keys().any(|k| k.starts_with("google") || k == "from")
    {
        return Some("message.data");
    }
    if !matches!(m["android"]["priority"].as_str(), Some("HIGH" | "NORMAL")) {
        return Some("message.android.priority");
    }
    let ttl_ok = m["android"]["ttl"]
        .as_str()
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n <= 2_419_200);
    if !ttl_ok {
        return Some("message.android.ttl");
    }
    None
}

async fn fcm_handler(State(ctx): State<FcmCtx>, req: Request<Body>) -> Response {
    let headers = headers_of(&req);
    let path = req.uri().path().to_owned();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    if path == "/token" {
        return fcm_token(&ctx, &bytes);
    }
    if path != format!("/v1/projects/{PROJECT}/messages:send") {
        return fcm_error(404, "UNSPECIFIED_ERROR", None);
    }
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let device_token = body["message"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let bearer = bearer(&headers).unwrap_or_default();
    let delay = {
        let mut st = ctx.state.lock().unwrap();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        st.slow.get(&device_token).copied()
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut st = ctx.state.lock().unwrap();
    st.in_flight -= 1;
    let resp = if !st.issued.contains(&bearer) || st.revoked.contains(&bearer) {
        fcm_error(401, "THIRD_PARTY_AUTH_ERROR", None)
    } else if st.revoke_next {
        st.revoke_next = false;
        st.revoked.insert(bearer.clone());
        fcm_error(401, "THIRD_PARTY_AUTH_ERROR", None)
    } else if let Some(field) = fcm_shape(&body) {
        bad_request(field)
    } else if let Some(reply) = st
        .scripts
        .get_mut(&device_token)
        .and_then(VecDeque::pop_front)
    {
        fcm_error(reply.status, reply.reason, reply.retry_after)
    } else {
        let n = st.requests.len();
        axum::Json(json!({ "name": format!("projects/{PROJECT}/messages/{n}") })).into_response()
    };
    st.requests.push(FcmRequest {
        device_token,
        raw,
        body,
        bearer,
        answered: resp.status().as_u16(),
    });
    resp
}

fn fcm_token(ctx: &FcmCtx, form: &[u8]) -> Response {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(form).into_owned().collect();
    let mut st = ctx.state.lock().unwrap();
    st.token_requests += 1;
    let refuse = |code: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": code })),
        )
            .into_response()
    };
    if fields.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse("unsupported_grant_type");
    }
    let Some(assertion) = fields.get("assertion") else {
        return refuse("invalid_request");
    };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return refuse("invalid_grant");
    };
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some("test-only-key-1") {
        return refuse("invalid_grant");
    }
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[st.token_uri.as_str()]);
    v.set_issuer(&[CLIENT_EMAIL]);
    let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &ctx.key, &v) else {
        return refuse("invalid_grant");
    };
    if data.claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return refuse("invalid_scope");
    }
    let exp = data.claims["exp"].as_i64().unwrap_or(0);
    let iat = data.claims["iat"].as_i64().unwrap_or(0);
    if exp - iat > 3600 || (iat - unix_now()).abs() > 300 {
        return refuse("invalid_grant");
    }
    let token = format!("ya29.mock-{}", st.token_requests);
    st.issued.insert(token.clone());
    axum::Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}
