//! Mock processors (real HTTP servers on 127.0.0.1 that check the credentials each
//! connector uses for its result calls, record every call and answer from a script)
//! and [`Processor`], which knows each processor's webhook, configuration and expected
//! result call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

mod results;

/// One call the processor received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the credentials check passed.
    pub accepted: bool,
    /// The status answered.
    pub answered: u16,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Check = Arc<dyn Fn(&Call, &State) -> bool + Send + Sync>;

/// Scripted behaviour of a mock processor.
#[derive(Default)]
pub struct State {
    pub calls: Vec<Call>,
    /// Answers for the next calls (status, body); then 200 `{}`.
    pub script: VecDeque<(u16, String)>,
    /// Answer every result call with 503 while set ("down").
    pub down: bool,
    /// OAuth tokens issued (`tok-1`, …), Treezor.
    pub tokens_issued: usize,
    /// Hold the next accepted result call this long before answering (a slow
    /// processor); its `answered` stays 0 until the answer is actually written.
    pub hold_next: Option<Duration>,
}

impl State {
    /// Whether `header` is `Bearer <a token this mock issued>` (each server instance
    /// gets and caches its own token).
    fn issued(&self, header: Option<&str>) -> bool {
        let n = header
            .and_then(|h| h.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok());
        n.is_some_and(|n| (1..=self.tokens_issued).contains(&n))
    }
}

/// A mock processor API.
pub struct MockProcessor {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockProcessor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockProcessor {
    async fn start(check: Check) -> MockProcessor {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (s, c) = (s.clone(), check.clone());
                async move {
                    let (hold, index, response) = handle(&s, &c, method, uri, headers, body);
                    if let Some(hold) = hold {
                        // Dropped here if the caller goes away (its process was killed):
                        // the call then stays unanswered (`answered` 0).
                        tokio::time::sleep(hold).await;
                        let mut st = s.lock().unwrap();
                        let status = response.status().as_u16();
                        if let Some(call) = st.calls.get_mut(index) {
                            call.answered = status;
                        }
                    }
                    response
                }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockProcessor { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next result calls with these statuses and bodies, then 200 again
    /// (e.g. "500 twice then 200").
    pub fn script(&self, answers: &[(u16, &str)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    }

    /// Holds the next accepted result call for `hold` before answering it.
    pub fn hold_next(&self, hold: Duration) {
        self.state.lock().unwrap().hold_next = Some(hold);
    }

    /// Down (every result call answered 503) or up again.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Result calls received (token requests excluded).
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

    /// Result calls answered 200 whose path contains `needle` (the processor reference).
    pub fn delivered(&self, needle: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.answered == 200 && c.path.contains(needle))
            .collect()
    }

    /// Result calls about `needle`, whatever they were answered.
    pub fn calls_for(&self, needle: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.contains(needle))
            .collect()
    }

    /// Waits until `n` calls about `needle` were answered 200.
    pub async fn wait_delivered(&self, needle: &str, n: usize, within: Duration) -> Vec<Call> {
        let ok = crate::wait_for(within, || async { self.delivered(needle).len() >= n }).await;
        let calls = self.calls_for(needle);
        assert!(
            ok,
            "expected {n} delivered calls for {needle}, got: {calls:#?}"
        );
        self.delivered(needle)
    }
}

fn handle(
    state: &Mutex<State>,
    check: &Check,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (Option<Duration>, usize, Response) {
    let mut s = state.lock().unwrap();
    let now = |r: Response| (None, 0, r);
    let mut call = Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
        accepted: false,
        answered: 0,
    };
    if call.path == "/oauth/token" {
        let form = String::from_utf8_lossy(&call.body).into_owned();
        call.accepted =
            form.contains("grant_type=client_credentials") && form.contains("client_secret=");
        call.answered = if call.accepted { 200 } else { 401 };
        s.calls.push(call.clone());
        if !call.accepted {
            return now((StatusCode::UNAUTHORIZED, "{}").into_response());
        }
        s.tokens_issued += 1;
        return now(axum::Json(json!({ "access_token": format!("tok-{}", s.tokens_issued), "token_type": "Bearer", "expires_in": 3600 }))
            .into_response());
    }
    call.accepted = check(&call, &s);
    let (status, body) = if !call.accepted {
        (401, r#"{"error":"unauthorized"}"#.to_owned())
    } else if s.down {
        (503, r#"{"error":"unavailable"}"#.to_owned())
    } else {
        s.script.pop_front().unwrap_or((200, "{}".to_owned()))
    };
    let hold = if call.accepted && !s.down {
        s.hold_next.take()
    } else {
        None
    };
    call.answered = if hold.is_some() { 0 } else { status };
    s.calls.push(call);
    let index = s.calls.len() - 1;
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    (hold, index, resp)
}

/// The four processors with connectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    Enfuce,
    Adyen,
    Paysafe,
    Treezor,
}

/// How a challenge ended, from the test's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Approved,
    Denied,
    NotMe,
    TimedOut,
}

const ENFUCE_PREFIX: &str = "/enfuce";
const ENFUCE_CB_USER: &str = "pushauth";
const ENFUCE_CB_PASSWORD: &str = "callback-password-0123";
const ADYEN_RELAYED: &str = "/webhooks/adyen/relayed";
const ADYEN_API_KEY: &str = "adyen-api-key-for-tests";
/// What the (simulated) Adyen Authentication SDK on the phone outputs.
pub const ADYEN_SDK_OUTPUT: &str = "eyJhc3NlcnRpb24iOiJ0ZXN0In0";
const PAYSAFE_PREFIX: &str = "/webhooks/paysafe";
const PAYSAFE_TOKEN: &str = "paysafe-api-token-for-tests";
const TREEZOR_PATH: &str = "/webhooks/treezor";

fn credentials() -> Value {
    crate::fixture_json("credentials.json")
}

fn cred(name: &str) -> String {
    credentials()[name].as_str().unwrap().to_owned()
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn paysafe_sign(msg: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(cred("paysafe_key_b64"))
        .unwrap();
    hmac_b64(&key, msg)
}

/// What a webhook made the cardholder see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub payee: Option<String>,
}

impl Processor {
    pub const ALL: [Processor; 4] = [
        Processor::Enfuce,
        Processor::Adyen,
        Processor::Paysafe,
        Processor::Treezor,
    ];

    /// The provider name in the API (`provider` of links and challenges).
    pub fn name(self) -> &'static str {
        match self {
            Processor::Enfuce => "enfuce",
            Processor::Adyen => "adyen",
            Processor::Paysafe => "paysafe",
            Processor::Treezor => "treezor",
        }
    }

    /// A fresh card / customer reference to link a cardholder with.
    pub fn new_card(self) -> String {
        let n = uuid::Uuid::new_v4().as_u128() % 1_000_000_000;
        match self {
            Processor::Enfuce => format!("9{n:09}"),
            Processor::Adyen => format!("PI{n:09}X"),
            Processor::Paysafe => format!("6{n:011}"),
            Processor::Treezor => format!("8{n:07}"),
        }
    }

    /// Starts a mock of this processor's API, checking the credentials the connector
    /// is configured with below.
    pub async fn mock(self) -> MockProcessor {
        let check: Check = match self {
            Processor::Enfuce => {
                let expected = crate::basic(ENFUCE_CB_USER, ENFUCE_CB_PASSWORD);
                Arc::new(move |c: &Call, _: &State| {
                    c.header("authorization") == Some(expected.as_str()) && c.method == "POST"
                })
            }
            Processor::Adyen => Arc::new(|c: &Call, _: &State| {
                c.header("x-api-key") == Some(ADYEN_API_KEY) && c.method == "PATCH"
            }),
            Processor::Paysafe => Arc::new(|c: &Call, _: &State| {
                c.header("authorization") == Some(format!("Bearer {PAYSAFE_TOKEN}").as_str())
                    && c.header("signature") == Some(paysafe_sign(&c.body).as_str())
            }),
            Processor::Treezor => Arc::new(|c: &Call, s: &State| {
                s.issued(c.header("authorization")) && c.method == "PUT"
            }),
        };
        MockProcessor::start(check).await
    }

    /// The `[providers.<name>]` section: results to `mock_url`, a decision window of
    /// `window` seconds of which 1 is kept for the result call, or half of a short one
    /// (the timeout scenario): on a loaded machine the expiry sweep, an OAuth token and
    /// the result call can take more than a second.
    pub fn toml(self, mock_url: &str, window: u64) -> String {
        let margin = if window < 10 { window / 2 } else { 1 };
        let c = credentials();
        let s = |k: &str| c[k].as_str().unwrap().to_owned();
        match self {
            Processor::Enfuce => format!(
                "[providers.enfuce]\npath_prefix = \"{ENFUCE_PREFIX}\"\nwebhook_user = \"{}\"\nwebhook_password = \"{}\"\n\
                 callback_hosts = [\"127.0.0.1\"]\nallow_http_callbacks = true\ncallback_user = \"{ENFUCE_CB_USER}\"\n\
                 callback_password = \"{ENFUCE_CB_PASSWORD}\"\nwindow_secs = {window}\nresult_margin_secs = {margin}\n",
                s("enfuce_user"),
                s("enfuce_password")
            ),
            Processor::Adyen => format!(
                "[providers.adyen]\nrelayed_path = \"{ADYEN_RELAYED}\"\ncreated_path = \"/webhooks/adyen/created\"\n\
                 webhook_user = \"{}\"\nwebhook_password = \"{}\"\nhmac_key = \"{}\"\nbase_url = \"{mock_url}\"\nallow_http = true\n\
                 api_key = \"{ADYEN_API_KEY}\"\nfinalize_on_deny = true\nwindow_secs = {window}\nresult_margin_secs = {margin}\n",
                s("adyen_user"),
                s("adyen_password"),
                s("adyen_hmac_key_hex")
            ),
            Processor::Paysafe => format!(
                "[providers.paysafe]\npath_prefix = \"{PAYSAFE_PREFIX}\"\nwebhook_key = \"{}\"\napi_token = \"{PAYSAFE_TOKEN}\"\n\
                 base_url = \"{mock_url}\"\nallow_http = true\ndefault_window_secs = {window}\nmax_window_secs = {window}\nresult_margin_secs = {margin}\n",
                s("paysafe_key_b64")
            ),
            Processor::Treezor => format!(
                "[providers.treezor]\npath = \"{TREEZOR_PATH}\"\nwebhook_secret = \"{}\"\nbase_url = \"{mock_url}\"\nallow_http = true\n\
                 client_id = \"12345\"\nclient_secret = \"treezor-client-secret\"\nwindow_secs = {window}\n\
                 result_margin_secs = {margin}\non_expiry = \"fallback\"\n",
                s("treezor_webhook_secret")
            ),
        }
    }

    /// What the example webhooks show the cardholder.
    pub fn shown(self) -> Shown {
        match self {
            Processor::Enfuce => Shown {
                amount_minor: Some(4990),
                currency: Some("EUR".into()),
                payee: Some("Café Zoë / Paris 11e".into()),
            },
            Processor::Adyen => Shown {
                amount_minor: Some(1000),
                currency: Some("EUR".into()),
                payee: Some("TeaShop_NL".into()),
            },
            Processor::Paysafe => Shown {
                amount_minor: None,
                currency: None,
                payee: None,
            },
            Processor::Treezor => Shown {
                amount_minor: Some(1234),
                currency: Some("EUR".into()),
                payee: Some("Baeckerei Brezel Basel".into()),
            },
        }
    }

    /// What the phone's processor SDK outputs on approval (Adyen only).
    pub fn processor_output(self) -> Option<String> {
        (self == Processor::Adyen).then(|| ADYEN_SDK_OUTPUT.to_owned())
    }

    /// Sends the processor's webhook for a new authentication `reference` on card
    /// `card` to the server at `server_url`, with the processor's credentials, and
    /// checks that it was accepted. `window` is the decision window in seconds (used
    /// where the webhook itself carries the deadline: Paysafe).
    pub async fn send_webhook(
        self,
        http: &reqwest::Client,
        server_url: &str,
        mock_url: &str,
        card: &str,
        reference: &str,
        window: i64,
    ) {
        let (path, headers, body) = self.webhook(mock_url, card, reference, window);
        let mut req = http.post(format!("{server_url}{path}")).body(body.clone());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(
            status,
            200,
            "{} webhook refused: {text}\n{body}",
            self.name()
        );
        if self == Processor::Adyen {
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                json!({"authenticationDecision": {"status": "proceed"}})
            );
        }
    }

    /// The webhook: path, headers, body.
    pub fn webhook(
        self,
        mock_url: &str,
        card: &str,
        reference: &str,
        window: i64,
    ) -> (String, Vec<(String, String)>, String) {
        let json_ct = ("Content-Type".to_owned(), "application/json".to_owned());
        match self {
            Processor::Enfuce => {
                let e = crate::fixture_json("enfuce-webhook.json");
                let original = "https://id.enfuce.example/v1/callback/kitbank/940102053/4914f82b-c0cb-4b3d-a390-67e7831f8908";
                let body = e["body"].as_str().unwrap().replace(
                    original,
                    &format!("{mock_url}/v1/callback/kitbank/{card}/{reference}"),
                );
                let auth = e["headers"]["Authorization"].as_str().unwrap().to_owned();
                (
                    format!("{ENFUCE_PREFIX}/v1/authenticate/{card}/{reference}"),
                    vec![json_ct, ("Authorization".into(), auth)],
                    body,
                )
            }
            Processor::Adyen => {
                let e = crate::fixture_json("adyen-webhook.json");
                let body = e["body"]
                    .as_str()
                    .unwrap()
                    .replace(e["provider_reference"].as_str().unwrap(), reference)
                    .replace(e["card_reference"].as_str().unwrap(), card)
                    .replace(",\"timestamp\":\"2026-11-18T11:06:40.000Z\"", "");
                let key = hex::decode(cred("adyen_hmac_key_hex")).unwrap();
                let headers = vec![
                    json_ct,
                    (
                        "Authorization".into(),
                        e["headers"]["Authorization"].as_str().unwrap().to_owned(),
                    ),
                    ("HmacSignature".into(), hmac_b64(&key, body.as_bytes())),
                    (
                        "WWW-Authenticate".into(),
                        e["headers"]["WWW-Authenticate"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    ),
                ];
                (ADYEN_RELAYED.to_owned(), headers, body)
            }
            Processor::Paysafe => {
                let e = crate::fixture_json("paysafe-webhook.json");
                let body = e["body"]
                    .as_str()
                    .unwrap()
                    .replace(e["provider_reference"].as_str().unwrap(), reference)
                    .replace(e["card_reference"].as_str().unwrap(), card)
                    .replace(
                        "\"expirationTime\": \"2026-11-18T11:21:40Z\"",
                        &format!(
                            "\"expirationTime\": \"{}\"",
                            crate::rfc3339(crate::now() + window)
                        ),
                    );
                let sig = paysafe_sign(body.as_bytes());
                (
                    format!("{PAYSAFE_PREFIX}/sca/events"),
                    vec![json_ct, ("Signature".into(), sig)],
                    body,
                )
            }
            Processor::Treezor => {
                // ASCII only and no '/': PHP's json_encode of this payload is these bytes.
                let payload = json!({"card3DSv2Authentications": [{
                    "authenticationRequestId": reference,
                    "cardId": card,
                    "publicToken": format!("P{card}"),
                    "walletId": "5048794",
                    "userId": "8354222",
                    "authenticationMethod": "OOB",
                    "merchantName": "Baeckerei Brezel Basel",
                    "merchantCity": "Zurich",
                    "merchantCountry": "CHE",
                    "mcc": "4511",
                    "paymentAmount": "12.34",
                    "paymentCurrency": "978",
                    "paymentDate": "2026-11-18 11:06:40",
                }]})
                .to_string();
                let sig = hmac_b64(
                    cred("treezor_webhook_secret").as_bytes(),
                    payload.as_bytes(),
                );
                let created_at = crate::now_ms() * 10;
                let body = format!(
                    "{{\"webhook\":\"card3DSv2Authentication.create\",\"webhook_id\":\"{}\",\"webhook_created_at\":{created_at},\
                     \"object\":\"card3DSv2Authentication\",\"object_id\":\"{reference}\",\"object_payload\":{payload},\
                     \"object_payload_signature\":{}}}",
                    crate::new_ref(),
                    serde_json::to_string(&sig).unwrap().replace('/', "\\/"),
                );
                (
                    TREEZOR_PATH.to_owned(),
                    vec![("Content-Type".into(), "text/plain".into())],
                    body,
                )
            }
        }
    }
}
