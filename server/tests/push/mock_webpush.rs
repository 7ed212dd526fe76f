//! Mock Web Push service (RFC 8030) on 127.0.0.1, speaking HTTP/1.1 and HTTP/2
//! (cleartext, prior knowledge). It checks what real push services check: the VAPID
//! token (RFC 8292: ES256 signature under the `k=` key, `aud` = this origin, `exp`
//! within 24 hours, a `sub` contact; `k` = the application server key the subscription
//! was made for, when one was given), `TTL`, `Content-Encoding: aes128gcm`, `Urgency`,
//! `Topic` and the 4096-byte limit. Then it does what the device would: decrypts the
//! body with the subscription's private key (its own RFC 8291 implementation, on
//! `hmac`/`sha2` and ring's AES-GCM, independent of the server's) and records it.
//! Answers 201, or per-subscription scripted replies.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pushauth_core::b64;
use pushauth_core::keys::{KeyAgreement, PublicKey, SoftwareAgreementKey};
use serde_json::Value;
use sha2::Sha256;
use tokio::task::JoinHandle;

use crate::mock::Reply;

/// One push as the service saw it (and the device decrypted it).
#[derive(Debug, Clone)]
pub struct WebPushRequest {
    pub subscription: String,
    pub http2: bool,
    pub headers: BTreeMap<String, String>,
    /// The VAPID claims, when the token verified.
    pub vapid: Option<Value>,
    /// The `t=` token.
    pub token: String,
    /// What went over the wire (the encrypted body).
    pub body: Vec<u8>,
    /// The push data, decrypted with the subscription's key.
    pub plaintext: Option<Value>,
    pub answered: u16,
}

struct Sub {
    key: Vec<u8>,
    auth: [u8; 16],
    server_key: Option<String>,
    gone: bool,
}

#[derive(Default)]
struct St {
    origin: String,
    subs: HashMap<String, Sub>,
    requests: Vec<WebPushRequest>,
    scripts: HashMap<String, VecDeque<Reply>>,
    refuse_next_token: bool,
    refused: HashSet<String>,
}

pub struct MockWebPush {
    pub url: String,
    state: Arc<Mutex<St>>,
    task: JoinHandle<()>,
}

impl Drop for MockWebPush {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A subscription at the mock, as a browser or distributor hands it to the app.
pub struct MockSubscription {
    pub id: String,
    /// The push token to register (PushSubscription JSON).
    pub token: String,
}

impl MockWebPush {
    pub async fn start() -> MockWebPush {
        let state = Arc::new(Mutex::new(St::default()));
        let router = axum::Router::new()
            .fallback(handler)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // axum::serve speaks HTTP/1.1 and, with prior knowledge, HTTP/2.
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        state.lock().unwrap().origin = url.clone();
        MockWebPush { url, state, task }
    }

    /// A new subscription; with `server_key` (the VAPID public key, like
    /// `applicationServerKey`) pushes signed by another key are refused (403).
    pub fn subscribe(&self, server_key: Option<&str>) -> MockSubscription {
        let key = SoftwareAgreementKey::generate().unwrap();
        let auth: [u8; 16] = pushauth_core::keys::random_array().unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let endpoint = format!("{}/push/{id}", self.url);
        let token = serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": b64::encode(key.public_key().unwrap().to_sec1()),
                "auth": b64::encode(auth),
            },
        })
        .to_string();
        self.state.lock().unwrap().subs.insert(
            id.clone(),
            Sub {
                key: key.to_bytes().to_vec(),
                auth,
                server_key: server_key.map(str::to_owned),
                gone: false,
            },
        );
        MockSubscription { id, token }
    }

    /// The subscription expires: 410 from now on.
    pub fn unsubscribe(&self, id: &str) {
        if let Some(s) = self.state.lock().unwrap().subs.get_mut(id) {
            s.gone = true;
        }
    }

    pub fn script(&self, id: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(id.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Refuses the next VAPID token it sees (401), and that token from then on.
    pub fn refuse_next_token(&self) {
        self.state.lock().unwrap().refuse_next_token = true;
    }

    pub fn requests(&self) -> Vec<WebPushRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn requests_for(&self, id: &str) -> Vec<WebPushRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.subscription == id)
            .collect()
    }
}

/// The VAPID claims if `Authorization` is a valid `vapid t=…, k=…` for `origin`.
fn vapid(authorization: &str, origin: &str) -> Result<(Value, String, String), &'static str> {
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("not a vapid authorization")?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.trim()),
            Some(("k", v)) => k = Some(v.trim()),
            _ => return Err("unknown vapid parameter"),
        }
    }
    let (t, k) = (t.ok_or("no t=")?, k.ok_or("no k=")?);
    let point = b64::decode(k).ok_or("k is not base64url")?;
    PublicKey::from_sec1(&point).map_err(|_| "k is not a P-256 point")?;
    let key =
        DecodingKey::from_ec_components(&b64::encode(&point[1..33]), &b64::encode(&point[33..]))
            .map_err(|_| "k unusable")?;
    let header = jsonwebtoken::decode_header(t).map_err(|_| "t is not a JWT")?;
    if header.alg != Algorithm::ES256 {
        return Err("alg is not ES256");
    }
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[origin]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    v.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(t, &key, &v)
        .map_err(|_| "signature, aud or exp refused")?
        .claims;
    let now = pushauth_server::state::now().0 / 1000;
    if claims["exp"].as_i64().unwrap_or(0) > now + 24 * 3600 {
        return Err("exp more than 24 hours ahead");
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err("sub is not a mailto: or https: contact");
    }
    Ok((claims, t.to_owned(), k.to_owned()))
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut extract = Hmac::<Sha256>::new_from_slice(salt).unwrap();
    extract.update(ikm);
    let prk = extract.finalize().into_bytes();
    let mut expand = Hmac::<Sha256>::new_from_slice(&prk).unwrap();
    expand.update(info);
    expand.update(&[1]);
    expand.finalize().into_bytes()[..len].to_vec()
}

/// RFC 8291 / RFC 8188 decryption of a one-record message, as a user agent does it.
fn decrypt(sub: &Sub, body: &[u8]) -> Option<Vec<u8>> {
    use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let (salt, rest) = body.split_at_checked(16)?;
    let (_rs, rest) = rest.split_at_checked(4)?;
    let (idlen, rest) = rest.split_first()?;
    let (as_public, record) = rest.split_at_checked(usize::from(*idlen))?;
    let key = SoftwareAgreementKey::from_bytes(&sub.key).ok()?;
    let ecdh = key.agree(&PublicKey::from_sec1(as_public).ok()?).ok()?;
    let ua_public = key.public_key().ok()?.to_sec1();
    let info = [&b"WebPush: info\0"[..], &ua_public, as_public].concat();
    let ikm = hkdf(&sub.auth, &ecdh[..], &info, 32);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
    let aead = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).ok()?);
    let mut data = record.to_vec();
    let plain = aead
        .open_in_place(
            Nonce::try_assume_unique_for_key(&nonce).ok()?,
            Aad::empty(),
            &mut data,
        )
        .ok()?;
    let end = plain.iter().rposition(|&b| b != 0)?;
    (plain[end] == 2).then(|| plain[..end].to_vec())
}

fn shape(headers: &BTreeMap<String, String>, body: &[u8]) -> Option<(u16, &'static str)> {
    let h = |k: &str| headers.get(k).map(String::as_str);
    if h("ttl").is_none_or(|t| t.parse::<u64>().is_err()) {
        return Some((400, "TTL header missing or not a number"));
    }
    if h("content-encoding") != Some("aes128gcm") {
        return Some((400, "Content-Encoding must be aes128gcm"));
    }
    if h("urgency").is_some_and(|u| !["very-low", "low", "normal", "high"].contains(&u)) {
        return Some((400, "bad Urgency"));
    }
    if h("topic").is_some_and(|t| {
        t.is_empty()
            || t.len() > 32
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Some((400, "bad Topic"));
    }
    if body.len() > 4096 {
        return Some((413, "payload too large"));
    }
    None
}

async fn handler(State(state): State<Arc<Mutex<St>>>, req: Request) -> Response {
    let http2 = req.version() == Version::HTTP_2;
    let is_post = req.method() == axum::http::Method::POST;
    let path = req.uri().path().to_owned();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or("<bin>").to_owned(),
            )
        })
        .collect();
    let body = axum::body::to_bytes(req.into_body(), 1 << 16)
        .await
        .unwrap_or_default()
        .to_vec();
    let id = path.strip_prefix("/push/").unwrap_or_default().to_owned();
    let mut st = state.lock().unwrap();
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    let checked = vapid(&auth, &st.origin);
    let token = checked.as_ref().map(|c| c.1.clone()).unwrap_or_default();
    let mut plaintext = None;
    let (status, retry) = if !is_post {
        (405, None)
    } else if !st.subs.contains_key(&id) {
        (404, None)
    } else if st.subs[&id].gone {
        (410, None)
    } else if checked.is_err() || st.refused.contains(&token) {
        (401, None)
    } else if st.refuse_next_token {
        st.refuse_next_token = false;
        st.refused.insert(token.clone());
        (401, None)
    } else if st.subs[&id]
        .server_key
        .as_deref()
        .is_some_and(|k| checked.as_ref().is_ok_and(|c| c.2 != k))
    {
        (403, None)
    } else if let Some((status, _why)) = shape(&headers, &body) {
        (status, None)
    } else {
        plaintext = decrypt(&st.subs[&id], &body)
            .map(|p| serde_json::from_slice(&p).unwrap_or(Value::Null));
        match st.scripts.get_mut(&id).and_then(VecDeque::pop_front) {
            Some(reply) => (reply.status, reply.retry_after),
            None => (201, None),
        }
    };
    st.requests.push(WebPushRequest {
        subscription: id,
        http2,
        headers,
        vapid: checked.ok().map(|c| c.0),
        token,
        body,
        plaintext,
        answered: status,
    });
    let n = st.requests.len();
    drop(st);
    let mut resp = StatusCode::from_u16(status).unwrap().into_response();
    if status == 201 {
        resp.headers_mut()
            .insert("location", format!("/message/{n}").parse().unwrap());
    }
    if let Some(s) = retry {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}
