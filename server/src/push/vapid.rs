//! VAPID (RFC 8292): the server identifies itself to Web Push services with an ES256
//! JWT per push service origin, `Authorization: vapid t=<JWT>, k=<public key>`.
//!
//! ```text
//! header: {"typ":"JWT","alg":"ES256"}
//! claims: {"aud":"<origin of the endpoint>","exp":<now + 12 h>,"sub":"mailto:…"|"https://…"}
//! k     = base64url of the 65-byte uncompressed public key
//! ```
//!
//! Tokens are cached per origin and replaced an hour before they expire, or at once
//! when the push service refuses one (401/403), once per refused token.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use pushauth_core::b64;
use pushauth_core::keys::SoftwareSigningKey;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zeroize::Zeroizing;

/// Lifetime of a token (RFC 8292 §2: at most 24 hours).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Replace a cached token this long before it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(3600);
/// Most origins kept; beyond it the cache is emptied (devices use a handful).
const MAX_ORIGINS: usize = 256;

/// Reads a VAPID private key: PKCS#8 PEM, SEC1 PEM (`EC PRIVATE KEY`), or the 32-byte
/// scalar as base64url (optionally padded).
pub fn parse_key(text: &[u8]) -> Result<SoftwareSigningKey, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not text (expected PEM or base64url)")?;
    let text = text.trim();
    let pkcs8: Zeroizing<Vec<u8>> = if let Some(der) = pem_body(text, "PRIVATE KEY")? {
        der
    } else if let Some(der) = pem_body(text, "EC PRIVATE KEY")? {
        let secret =
            p256::SecretKey::from_sec1_der(&der).map_err(|_| "EC PRIVATE KEY: not a P-256 key")?;
        pkcs8_of(&secret)?
    } else {
        let scalar = Zeroizing::new(
            b64::decode(text.trim_end_matches('='))
                .ok_or("neither PEM nor a base64url private key")?,
        );
        let secret = p256::SecretKey::from_slice(&scalar)
            .map_err(|_| "base64url key: not a 32-byte P-256 private scalar")?;
        pkcs8_of(&secret)?
    };
    SoftwareSigningKey::from_pkcs8(&pkcs8).map_err(|_| "not a P-256 private key".to_owned())
}

fn pkcs8_of(secret: &p256::SecretKey) -> Result<Zeroizing<Vec<u8>>, String> {
    use p256::pkcs8::EncodePrivateKey as _;
    let doc = secret
        .to_pkcs8_der()
        .map_err(|_| "cannot encode the key as PKCS#8")?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// The DER inside `-----BEGIN {label}-----`, if the text is such a PEM block.
fn pem_body(text: &str, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(rest) = text.strip_prefix(&begin) else {
        return Ok(None);
    };
    let body = rest
        .split(&end)
        .next()
        .filter(|_| rest.contains(&end))
        .ok_or_else(|| format!("{label} PEM without its END line"))?;
    let b64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|d| Some(Zeroizing::new(d)))
        .map_err(|_| format!("{label} PEM: bad base64"))
}

/// Writes a new VAPID key as PKCS#8 PEM (`pushauth vapid-key generate`).
pub fn generate_pem() -> Result<Zeroizing<String>, String> {
    use base64::Engine as _;
    let key = SoftwareSigningKey::generate().map_err(|e| e.to_string())?;
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&key.to_pkcs8()[..]));
    let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// Writes a new key to `path` (created, mode 0600; an existing file is kept and is an
/// error) and returns its public key, base64url.
pub fn write_new(path: &std::path::Path) -> Result<String, String> {
    use std::io::Write as _;
    let pem = generate_pem()?;
    let key = parse_key(pem.as_bytes())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(b64::encode(key.public().to_sec1()))
}

/// The public key (base64url) of the key in `path`.
pub fn public_key_of_file(path: &std::path::Path) -> Result<String, String> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let key = parse_key(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(b64::encode(key.public().to_sec1()))
}

#[derive(Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

/// The VAPID identity: key, subject, tokens per origin.
pub struct Vapid {
    key: SoftwareSigningKey,
    public_b64: String,
    subject: String,
    cache: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for Vapid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_b64)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// A VAPID identity; signs one token to prove the key usable.
    pub fn new(key: SoftwareSigningKey, subject: &str) -> Result<Vapid, String> {
        let public_b64 = b64::encode(key.public().to_sec1());
        let vapid = Vapid {
            key,
            public_b64,
            subject: subject.to_owned(),
            cache: Mutex::new(HashMap::new()),
        };
        vapid.sign("https://push.example", 0)?;
        Ok(vapid)
    }

    /// The public key as apps pass it to `PushManager.subscribe`
    /// (`applicationServerKey`) or a UnifiedPush distributor: base64url, 65 bytes.
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// A signed token for `aud` (an origin) expiring at `exp` (Unix seconds).
    pub fn sign(&self, aud: &str, exp: u64) -> Result<String, String> {
        let header = b64::encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": aud, "exp": exp, "sub": self.subject });
        let input = format!("{header}.{}", b64::encode(claims.to_string()));
        let signature = self
            .key
            .sign_raw(input.as_bytes())
            .map_err(|e| format!("signing the VAPID token failed: {e}"))?;
        Ok(format!("{input}.{}", b64::encode(signature)))
    }

    fn fresh(&self, origin: &str) -> Result<Cached, String> {
        let now = crate::state::now().0 / 1000;
        let exp = u64::try_from(now).unwrap_or_default() + TOKEN_LIFETIME.as_secs();
        Ok(Cached {
            token: self.sign(origin, exp)?,
            renew_at: Instant::now() + TOKEN_LIFETIME - RENEW_MARGIN,
        })
    }

    /// The `Authorization` value for `origin` (`vapid t=…, k=…`) and the token in it.
    pub async fn authorization(&self, origin: &str) -> Result<(String, String), String> {
        let mut cache = self.cache.lock().await;
        let token = match cache.get(origin) {
            Some(c) if Instant::now() < c.renew_at => c.token.clone(),
            _ => {
                if cache.len() >= MAX_ORIGINS {
                    cache.clear();
                }
                let c = self.fresh(origin)?;
                let token = c.token.clone();
                cache.insert(origin.to_owned(), c);
                token
            }
        };
        Ok((self.header(&token), token))
    }

    /// The push service refused `rejected`: a new token for `origin` unless another
    /// sender already replaced it.
    pub async fn renew(&self, origin: &str, rejected: &str) -> Result<(String, String), String> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache
            .get(origin)
            .filter(|c| c.token != rejected && Instant::now() < c.renew_at)
        {
            return Ok((self.header(&c.token), c.token.clone()));
        }
        let c = self.fresh(origin)?;
        let token = c.token.clone();
        cache.insert(origin.to_owned(), c);
        Ok((self.header(&token), token))
    }

    fn header(&self, token: &str) -> String {
        format!("vapid t={token}, k={}", self.public_b64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn check(token: &str, public: &str, aud: &str) -> serde_json::Value {
        let point = b64::decode(public).unwrap();
        let key = DecodingKey::from_ec_components(
            &b64::encode(&point[1..33]),
            &b64::encode(&point[33..]),
        )
        .unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .unwrap()
            .claims
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_origin_verify_and_are_cached() {
        let key = parse_key(generate_pem().unwrap().as_bytes()).unwrap();
        let vapid = Vapid::new(key, "mailto:push@bank.example").unwrap();
        let (auth, a) = vapid
            .authorization("https://fcm.googleapis.com")
            .await
            .unwrap();
        assert_eq!(auth, format!("vapid t={a}, k={}", vapid.public_key()));
        let claims = check(&a, vapid.public_key(), "https://fcm.googleapis.com");
        assert_eq!(claims["sub"], "mailto:push@bank.example");
        let exp = claims["exp"].as_i64().unwrap();
        let now = crate::state::now().0 / 1000;
        assert!(
            (now + 12 * 3600 - 5..=now + 12 * 3600).contains(&exp),
            "{exp}"
        );
        // Cached per origin; another origin gets its own audience.
        assert_eq!(
            vapid
                .authorization("https://fcm.googleapis.com")
                .await
                .unwrap()
                .1,
            a
        );
        let (_, b) = vapid
            .authorization("https://updates.push.services.mozilla.com")
            .await
            .unwrap();
        check(
            &b,
            vapid.public_key(),
            "https://updates.push.services.mozilla.com",
        );
        // Replaced once it is 11 hours old.
        tokio::time::advance(Duration::from_secs(11 * 3600 + 1)).await;
        let (_, c) = vapid
            .authorization("https://fcm.googleapis.com")
            .await
            .unwrap();
        assert_ne!(a, c);
        // A refusal renews once; a late refusal of the old token does not again.
        let (_, d) = vapid.renew("https://fcm.googleapis.com", &c).await.unwrap();
        assert_ne!(c, d);
        assert_eq!(
            vapid
                .renew("https://fcm.googleapis.com", &c)
                .await
                .unwrap()
                .1,
            d
        );
    }

    #[test]
    fn generate_then_show() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vapid.pem");
        let public = write_new(&path).unwrap();
        assert_eq!(public_key_of_file(&path).unwrap(), public);
        assert_eq!(b64::decode(&public).unwrap().len(), 65);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_new(&path).is_err(), "never overwrites");
        assert_eq!(public_key_of_file(&path).unwrap(), public);
    }

    #[test]
    fn key_forms() {
        let pem = generate_pem().unwrap();
        let key = parse_key(pem.as_bytes()).unwrap();
        // The bare scalar (web-push generate-vapid-keys) of a known key.
        let agreement = pushauth_core::keys::SoftwareAgreementKey::generate().unwrap();
        let scalar = b64::encode(&agreement.to_bytes()[..]);
        let from_scalar = parse_key(scalar.as_bytes()).unwrap();
        use pushauth_core::keys::KeyAgreement as _;
        assert_eq!(from_scalar.public(), agreement.public_key().unwrap());
        // SEC1 PEM (openssl ecparam -genkey).
        use p256::pkcs8::DecodePrivateKey as _;
        let secret = p256::SecretKey::from_pkcs8_der(&key.to_pkcs8()).unwrap();
        let sec1 = secret.to_sec1_der().unwrap();
        use base64::Engine as _;
        let sec1_pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&sec1[..])
        );
        assert_eq!(
            parse_key(sec1_pem.as_bytes()).unwrap().public(),
            key.public()
        );
        for bad in [
            &b"hello"[..],
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n",
            b"AAAA",
            b"\xff",
        ] {
            assert!(parse_key(bad).is_err());
        }
    }
}
