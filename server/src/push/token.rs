//! Credentials for the push services, cached:
//!
//! - [`ProviderToken`]: the APNs provider token, an ES256 JWT (`kid` = key id, `iss` =
//!   team id, `iat`) signed with the `.p8` key, reused until it is `refresh_after` old
//!   (20–55 minutes: APNs refuses more frequent renewals and tokens over an hour old).
//! - [`OAuthToken`]: the FCM access token, obtained with an RS256 JWT assertion from
//!   the service-account key (RFC 7523 grant to the key file's `token_uri`), reused
//!   until one minute before it expires.
//!
//! Both are replaced early when the service says the current one is stale
//! (`403 ExpiredProviderToken`, `401`), once per rejected token: concurrent senders
//! that saw the same rejection share one renewal.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{PushResult, retry_after};

/// OAuth scope for FCM HTTP v1.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's token endpoint, when a key file does not name one.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Renew an access token this long before Google says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Clone)]
struct Cached {
    token: String,
    /// When the cached token must no longer be used.
    renew_at: Instant,
}

/// The APNs provider token.
pub struct ProviderToken {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    refresh_after: Duration,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderToken")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("refresh_after", &self.refresh_after)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ApnsClaims<'a> {
    iss: &'a str,
    iat: u64,
}

impl ProviderToken {
    /// From the `.p8` file's contents; signs one token to prove the key usable.
    pub fn new(
        pem: &[u8],
        key_id: &str,
        team_id: &str,
        refresh_after: Duration,
    ) -> Result<Self, String> {
        let key = EncodingKey::from_ec_pem(pem)
            .map_err(|e| format!("not a PKCS#8 P-256 private key (.p8): {e}"))?;
        let token = ProviderToken {
            key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            refresh_after,
            cache: Mutex::new(None),
        };
        token.sign().map_err(|e| {
            format!("cannot sign an ES256 token with this key (is it a P-256 key?): {e}")
        })?;
        Ok(token)
    }

    fn sign(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(
            &header,
            &ApnsClaims {
                iss: &self.team_id,
                iat: unix_now(),
            },
            &self.key,
        )
    }

    fn fresh(&self) -> Result<Cached, String> {
        let token = self
            .sign()
            .map_err(|e| format!("signing the APNs provider token failed: {e}"))?;
        Ok(Cached {
            token,
            renew_at: Instant::now() + self.refresh_after,
        })
    }

    /// The token to use now (a new one when the cached one reached its age limit).
    pub async fn current(&self) -> Result<String, String> {
        let mut cache = self.cache.lock().await;
        match cache.as_ref() {
            Some(c) if Instant::now() < c.renew_at => Ok(c.token.clone()),
            _ => {
                let c = self.fresh()?;
                let token = c.token.clone();
                *cache = Some(c);
                Ok(token)
            }
        }
    }

    /// APNs said `rejected` is expired: replace it (unless another sender already did)
    /// and return the token to retry with.
    pub async fn renew(&self, rejected: &str) -> Result<String, String> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache
            .as_ref()
            .filter(|c| c.token != rejected && Instant::now() < c.renew_at)
        {
            return Ok(c.token.clone());
        }
        let c = self.fresh()?;
        let token = c.token.clone();
        *cache = Some(c);
        Ok(token)
    }
}

/// The fields of a Google service-account key file that matter here.
#[derive(Deserialize)]
pub struct ServiceAccount {
    /// `service_account`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Project id.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Key id (goes into the assertion's `kid`).
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// RSA private key, PEM.
    pub private_key: String,
    /// The service account's e-mail (assertion `iss`).
    pub client_email: String,
    /// Token endpoint (assertion `aud`).
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: Option<String>,
}

/// The FCM OAuth2 access token.
pub struct OAuthToken {
    http: reqwest::Client,
    key: EncodingKey,
    key_id: Option<String>,
    client_email: String,
    token_uri: String,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl OAuthToken {
    /// From a parsed service-account file; signs one assertion to prove the key usable.
    pub fn new(http: reqwest::Client, account: &ServiceAccount) -> Result<Self, String> {
        if account
            .kind
            .as_deref()
            .is_some_and(|k| k != "service_account")
        {
            return Err(
                "not a service-account key file (\"type\" is not \"service_account\")".into(),
            );
        }
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("private_key is not an RSA private key in PEM form: {e}"))?;
        let token_uri = account
            .token_uri
            .clone()
            .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
        let url = url::Url::parse(&token_uri).map_err(|e| format!("token_uri: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("token_uri: expected an https:// URL".into());
        }
        if account.client_email.trim().is_empty() {
            return Err("client_email is empty".into());
        }
        let token = OAuthToken {
            http,
            key,
            key_id: account.private_key_id.clone().filter(|k| !k.is_empty()),
            client_email: account.client_email.clone(),
            token_uri,
            cache: Mutex::new(None),
        };
        token
            .assertion()
            .map_err(|e| format!("cannot sign an RS256 assertion with private_key: {e}"))?;
        Ok(token)
    }

    fn assertion(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let iat = unix_now();
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: FCM_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + 3600,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }

    /// Exchanges a new assertion for an access token.
    async fn fetch(&self) -> Result<Cached, PushResult> {
        let assertion = self.assertion().map_err(|e| PushResult::Fatal {
            http_status: None,
            error: format!("signing the OAuth assertion failed: {e}"),
        })?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let resp = self
            .http
            .post(&self.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| PushResult::Retry {
                http_status: None,
                error: format!(
                    "OAuth token endpoint unreachable: {}",
                    super::error_chain(&e)
                ),
                after: None,
            })?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        if status == 200 {
            let answer: TokenAnswer =
                serde_json::from_slice(&body).map_err(|_| PushResult::Retry {
                    http_status: Some(status),
                    error: "OAuth token endpoint: unreadable answer".into(),
                    after: None,
                })?;
            if answer.access_token.is_empty()
                || answer
                    .token_type
                    .as_deref()
                    .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
            {
                return Err(PushResult::Fatal {
                    http_status: Some(status),
                    error: "OAuth token endpoint: no bearer token".into(),
                });
            }
            let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
            let renew_at = Instant::now()
                + lifetime
                    .saturating_sub(EXPIRY_MARGIN)
                    .max(Duration::from_secs(1));
            return Ok(Cached {
                token: answer.access_token,
                renew_at,
            });
        }
        let code = serde_json::from_slice::<TokenError>(&body)
            .ok()
            .and_then(|e| e.error)
            .unwrap_or_default();
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        let error = format!("OAuth token endpoint answered {status} {code}")
            .trim_end()
            .to_owned();
        if status == 429 || status >= 500 {
            Err(PushResult::Retry {
                http_status: Some(status),
                error,
                after,
            })
        } else {
            // invalid_grant (key revoked, clock off), invalid_client…: configuration.
            tracing::error!(status, code = %code, "FCM OAuth token refused: check push.fcm_service_account_file");
            Err(PushResult::Fatal {
                http_status: Some(status),
                error,
            })
        }
    }

    /// The access token to use now (fetched when none is cached or it is near expiry).
    pub async fn current(&self) -> Result<String, PushResult> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let c = self.fetch().await?;
        let token = c.token.clone();
        *cache = Some(c);
        Ok(token)
    }

    /// FCM refused `rejected` (401): fetch a new one unless another sender already did.
    pub async fn renew(&self, rejected: &str) -> Result<String, PushResult> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache
            .as_ref()
            .filter(|c| c.token != rejected && Instant::now() < c.renew_at)
        {
            return Ok(c.token.clone());
        }
        let c = self.fetch().await?;
        let token = c.token.clone();
        *cache = Some(c);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn p8() -> String {
        let der = pushauth_core::keys::SoftwareSigningKey::generate()
            .unwrap()
            .to_pkcs8();
        pem("PRIVATE KEY", &der)
    }

    fn claims(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&pushauth_core::b64::decode(part).unwrap()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn provider_token_is_reused_then_refreshed() {
        let t = ProviderToken::new(
            p8().as_bytes(),
            "KEY1234567",
            "TEAM123456",
            Duration::from_secs(2400),
        )
        .unwrap();
        let a = t.current().await.unwrap();
        let header = jsonwebtoken::decode_header(&a).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        assert_eq!(claims(&a)["iss"], "TEAM123456");
        assert!(claims(&a)["iat"].as_u64().unwrap() > 1_600_000_000);
        tokio::time::advance(Duration::from_secs(2399)).await;
        assert_eq!(t.current().await.unwrap(), a);
        tokio::time::advance(Duration::from_secs(2)).await;
        let b = t.current().await.unwrap();
        assert_ne!(a, b);
        // A rejection of the current token renews it once; a late rejection of an
        // older token does not renew again.
        let c = t.renew(&b).await.unwrap();
        assert_ne!(b, c);
        assert_eq!(t.renew(&b).await.unwrap(), c);
        assert_eq!(t.current().await.unwrap(), c);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(ProviderToken::new(b"not a key", "K", "T", Duration::from_secs(1200)).is_err());
        let rsa_as_ec = pem("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(
            ProviderToken::new(rsa_as_ec.as_bytes(), "K", "T", Duration::from_secs(1200)).is_err()
        );
        let account = ServiceAccount {
            kind: Some("service_account".into()),
            project_id: Some("p".into()),
            private_key_id: None,
            private_key: p8(),
            client_email: "a@b".into(),
            token_uri: None,
        };
        assert!(OAuthToken::new(reqwest::Client::new(), &account).is_err());
    }
}
