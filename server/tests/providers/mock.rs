//! A mock processor: a real HTTP server on 127.0.0.1 that checks each call with a
//! connector-specific closure (credentials, signatures), records every call, and answers
//! from a script (default 200). A scripted answer may be held back for a while (a slow
//! processor) or replaced by dropping the connection (status [`DROP`]). `/oauth/token`
//! hands out numbered tokens (Treezor).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the check closure accepted it.
    pub accepted: bool,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type Check = Arc<dyn Fn(&Call, &State) -> bool + Send + Sync>;

/// Scripted "status" that closes the connection without answering.
pub const DROP: u16 = 0;

#[derive(Default)]
pub struct State {
    pub calls: Vec<Call>,
    pub script: VecDeque<(u16, String, Duration)>,
    /// Token calls received and tokens issued (`tok-1`, `tok-2`, …).
    pub tokens_issued: usize,
    /// Answer token requests with this status instead of a token.
    pub token_status: Option<u16>,
}

impl State {
    /// The last token issued, as a Bearer header value.
    pub fn bearer(&self) -> String {
        format!("Bearer tok-{}", self.tokens_issued)
    }
}

pub struct Mock {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    /// Starts a mock that accepts calls passing `check` (others get 401).
    pub async fn start(check: impl Fn(&Call, &State) -> bool + Send + Sync + 'static) -> Mock {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(l, Arc::new(check)).await
    }

    /// Starts on a given address (to bring a "down" processor back up).
    pub async fn start_at(
        addr: SocketAddr,
        check: impl Fn(&Call, &State) -> bool + Send + Sync + 'static,
    ) -> Mock {
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(l, Arc::new(check)).await
    }

    async fn serve(listener: tokio::net::TcpListener, check: Check) -> Mock {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (s, c) = (state.clone(), check);
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (s, c) = (s.clone(), c.clone());
                async move {
                    let (delay, answer) = handle(&s, &c, method, uri, headers, body);
                    tokio::time::sleep(delay).await;
                    match answer {
                        Some(response) => response,
                        // Unwinds the connection's task: the socket closes unanswered.
                        None => {
                            std::panic::resume_unwind(Box::new("mock: dropping the connection"))
                        }
                    }
                }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next calls with these statuses and bodies, then 200 again.
    pub fn script(&self, answers: &[(u16, &str)]) {
        self.state.lock().unwrap().script.extend(
            answers
                .iter()
                .map(|(s, b)| (*s, (*b).to_owned(), Duration::ZERO)),
        );
    }

    /// Like [`Mock::script`], each answer held back for its delay first ([`DROP`]:
    /// the connection is closed after the delay).
    pub fn script_slow(&self, answers: &[(u16, &str, Duration)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().map(|(s, b, d)| (*s, (*b).to_owned(), *d)));
    }

    /// Calls received, token requests excluded.
    pub fn calls(&self) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.path != "/oauth/token")
            .cloned()
            .collect()
    }

    pub fn token_calls(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.path == "/oauth/token")
            .count()
    }

    /// Waits until at least `n` calls arrived.
    pub async fn wait_calls(&self, n: usize, within: Duration) -> Vec<Call> {
        let ok = crate::helpers::wait_for(within, || async { self.calls().len() >= n }).await;
        let calls = self.calls();
        assert!(ok, "expected {n} calls, got {}: {calls:#?}", calls.len());
        calls
    }
}

fn handle(
    state: &Mutex<State>,
    check: &Check,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (Duration, Option<Response>) {
    let now = |r: Response| (Duration::ZERO, Some(r));
    let mut s = state.lock().unwrap();
    let mut call = Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
        accepted: false,
    };
    if call.path == "/oauth/token" {
        let form = String::from_utf8_lossy(&call.body).into_owned();
        call.accepted =
            form.contains("grant_type=client_credentials") && form.contains("client_secret=");
        s.calls.push(call.clone());
        if let Some(status) = s.token_status {
            return now((StatusCode::from_u16(status).unwrap(), "{}").into_response());
        }
        if !call.accepted {
            return now((StatusCode::UNAUTHORIZED, "{}").into_response());
        }
        s.tokens_issued += 1;
        let body = serde_json::json!({ "access_token": format!("tok-{}", s.tokens_issued), "token_type": "Bearer", "expires_in": 3600 });
        return now(axum::Json(body).into_response());
    }
    call.accepted = check(&call, &s);
    let accepted = call.accepted;
    s.calls.push(call);
    if !accepted {
        return now((StatusCode::UNAUTHORIZED, "{\"error\":\"unauthorized\"}").into_response());
    }
    let (status, body, delay) =
        s.script
            .pop_front()
            .unwrap_or((200, "{}".to_owned(), Duration::ZERO));
    if status == DROP {
        return (delay, None);
    }
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    (delay, Some(resp))
}
