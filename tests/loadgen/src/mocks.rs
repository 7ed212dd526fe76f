//! In-process mocks on 127.0.0.1:0: one processor endpoint for every connector's result
//! call (Enfuce callback, Adyen finalize, Paysafe attempts, Treezor result + OAuth token,
//! generic API callback) and a mock FCM (OAuth token + HTTP v1 send) that hands each
//! challenge push to the virtual device owning the registration token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve(router: Router) -> Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), task))
}

/// Upstream faults.
#[derive(Debug, Clone, Default)]
pub struct UpstreamFaults {
    /// Delay before every answer.
    pub slow: Option<Duration>,
    /// Answer 500 from `start` for this long.
    pub fail_for: Option<Duration>,
}

#[derive(Debug, Default)]
struct ProcState {
    /// reference → (first successful delivery, successful deliveries)
    delivered: HashMap<String, (Instant, u32)>,
    answered_500: u64,
    token_calls: u64,
    unknown: u64,
    fail_until: Option<Instant>,
}

#[derive(Debug)]
pub struct MockProcessor {
    pub url: String,
    state: Arc<Mutex<ProcState>>,
    faults: UpstreamFaults,
    task: JoinHandle<()>,
}

impl Drop for MockProcessor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The processor reference a result call is about.
fn reference_of(method: &Method, path: &str, body: &[u8]) -> Option<String> {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    if path.starts_with("/v1/callback/") {
        return seg.last().map(|s| (*s).to_owned()); // Enfuce: …/{customer}/{session}
    }
    if path.starts_with("/acs/v1/challenges/") {
        return seg.last().map(|s| (*s).to_owned()); // Adyen finalize
    }
    if path.starts_with("/sca/events/") && path.ends_with("/attempts") {
        return seg.get(seg.len().wrapping_sub(2)).map(|s| (*s).to_owned()); // Paysafe
    }
    if path.starts_with("/v1/auth-requests/") && path.ends_with("/result") {
        return seg.get(seg.len().wrapping_sub(2)).map(|s| (*s).to_owned()); // Treezor
    }
    if path == "/api/callback" && method == Method::POST {
        let v: Value = serde_json::from_slice(body).ok()?;
        return v["reference"].as_str().map(str::to_owned); // generic API
    }
    None
}

impl MockProcessor {
    pub async fn start(faults: UpstreamFaults) -> Result<MockProcessor> {
        let state = Arc::new(Mutex::new(ProcState::default()));
        let (s, f) = (state.clone(), faults.clone());
        let router = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let (s, f) = (s.clone(), f.clone());
            async move { handle_processor(&s, &f, method, uri, body).await }
        });
        let (url, task) = serve(router).await?;
        Ok(MockProcessor {
            url,
            state,
            faults,
            task,
        })
    }

    /// Starts the "upstream answers 500" window now (if that fault is on).
    pub fn arm_faults(&self) {
        if let Some(d) = self.faults.fail_for {
            lock(&self.state).fail_until = Some(Instant::now() + d);
        }
    }

    pub fn delivered_at(&self, reference: &str) -> Option<(Instant, u32)> {
        lock(&self.state).delivered.get(reference).copied()
    }

    /// (answered 500, OAuth token calls, calls not recognised)
    pub fn counters(&self) -> (u64, u64, u64) {
        let g = lock(&self.state);
        (g.answered_500, g.token_calls, g.unknown)
    }
}

async fn handle_processor(
    state: &Mutex<ProcState>,
    faults: &UpstreamFaults,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path == "/oauth/token" {
        lock(state).token_calls += 1;
        return axum::Json(
            json!({"access_token": "tok-load", "token_type": "Bearer", "expires_in": 3600}),
        )
        .into_response();
    }
    if let Some(d) = faults.slow {
        tokio::time::sleep(d).await;
    }
    let Some(reference) = reference_of(&method, &path, &body) else {
        lock(state).unknown += 1;
        return (StatusCode::NOT_FOUND, "{}").into_response();
    };
    let mut g = lock(state);
    if g.fail_until.is_some_and(|t| Instant::now() < t) {
        g.answered_500 += 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            "{\"error\":\"injected\"}",
        )
            .into_response();
    }
    let now = Instant::now();
    let e = g.delivered.entry(reference).or_insert((now, 0));
    e.1 += 1;
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        "{\"id\":\"a1\",\"status\":\"VERIFIED\"}",
    )
        .into_response()
}

/// A challenge push as FCM received it.
#[derive(Debug, Clone)]
pub struct Push {
    pub cid: String,
    pub at: Instant,
}

#[derive(Debug, Default)]
struct FcmState {
    devices: HashMap<String, mpsc::UnboundedSender<Push>>,
    /// (token, challenge id) of every challenge push seen.
    challenge_pushes: std::collections::HashSet<(String, String)>,
    /// Challenge pushes seen before for the same token and challenge.
    doubled: u64,
    sends: u64,
    dismisses: u64,
    unknown_token: u64,
    token_calls: u64,
}

#[derive(Debug)]
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

pub const FCM_PROJECT: &str = "pushauth-load";

impl MockFcm {
    pub async fn start() -> Result<MockFcm> {
        let state = Arc::new(Mutex::new(FcmState::default()));
        let s = state.clone();
        let router = Router::new().fallback(move |uri: Uri, body: Bytes| {
            let s = s.clone();
            async move { handle_fcm(&s, uri, body) }
        });
        let (url, task) = serve(router).await?;
        Ok(MockFcm { url, state, task })
    }

    /// Registers a device token; its challenge pushes arrive on the receiver.
    pub fn register(&self, token: &str) -> mpsc::UnboundedReceiver<Push> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.state).devices.insert(token.to_owned(), tx);
        rx
    }

    /// A service-account file for this mock, with the committed test-only RSA key.
    pub fn service_account_json(&self, private_key_pem: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "test-only-key-1",
            "private_key": private_key_pem,
            "client_email": "pushauth@pushauth-load.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }

    /// (sends, dismisses, unknown tokens, token calls)
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        let g = lock(&self.state);
        (g.sends, g.dismisses, g.unknown_token, g.token_calls)
    }

    /// Challenge pushes sent again to the same token for the same challenge.
    pub fn doubled(&self) -> u64 {
        lock(&self.state).doubled
    }
}

fn handle_fcm(state: &Mutex<FcmState>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path();
    let mut g = lock(state);
    if path == "/token" {
        g.token_calls += 1;
        return axum::Json(
            json!({"access_token": "ya29.load", "expires_in": 3599, "token_type": "Bearer"}),
        )
        .into_response();
    }
    if path != format!("/v1/projects/{FCM_PROJECT}/messages:send") {
        return (StatusCode::NOT_FOUND, "{}").into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = v["message"]["token"].as_str().unwrap_or_default();
    let kind = v["message"]["data"]["kind"].as_str().unwrap_or_default();
    let cid = v["message"]["data"]["cid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    g.sends += 1;
    if kind == "dismiss" {
        g.dismisses += 1;
    } else if !g.challenge_pushes.insert((token.to_owned(), cid.clone())) {
        g.doubled += 1;
    } else if let Some(tx) = g.devices.get(token) {
        let _ = tx.send(Push {
            cid,
            at: Instant::now(),
        });
    } else {
        g.unknown_token += 1;
    }
    let n = g.sends;
    axum::Json(json!({ "name": format!("projects/{FCM_PROJECT}/messages/{n}") })).into_response()
}
