//! `[push]` configuration: APNs and FCM credentials, and `[push.webpush]`.
//!
//! The APNs and FCM keys are flat (`apns_…`, `fcm_…`) so that every one of them can be
//! set from the environment as `PUSHAUTH_PUSH__<KEY>` (e.g.
//! `PUSHAUTH_PUSH__APNS_KEY_FILE`); Web Push is its own table (from the environment:
//! `PUSHAUTH_PUSH__WEBPUSH='{vapid_key_file = "…", subject = "mailto:…"}'`). A service
//! is enabled when its required keys are all set; setting only some of them is
//! refused at start with the missing key named. See `docs/push.md`.

use std::path::PathBuf;

use serde::Deserialize;

/// Default APNs production endpoint.
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// Default APNs sandbox (development) endpoint.
pub const APNS_SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// Default FCM endpoint.
pub const FCM_BASE: &str = "https://fcm.googleapis.com";
/// Default age after which the APNs provider token is replaced, seconds (40 min).
pub const APNS_TOKEN_REFRESH_SECS: u64 = 40 * 60;
/// Shortest allowed APNs token age before a refresh: APNs answers
/// `TooManyProviderTokenUpdates` to tokens renewed more often than every 20 minutes.
pub const APNS_TOKEN_REFRESH_MIN: u64 = 20 * 60;
/// Longest allowed APNs token age: APNs refuses tokens older than an hour; 55 minutes
/// leaves room for clock skew and requests in flight.
pub const APNS_TOKEN_REFRESH_MAX: u64 = 55 * 60;

/// `[push]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// APNs token-signing key: the `AuthKey_XXXXXXXXXX.p8` file downloaded from the
    /// Apple Developer account (PKCS#8 PEM, P-256). Required for APNs.
    pub apns_key_file: Option<PathBuf>,
    /// The key's 10-character Key ID (shown next to the key in the developer account).
    /// Required for APNs.
    #[serde(deserialize_with = "text")]
    pub apns_key_id: Option<String>,
    /// The 10-character Team ID of the developer account that owns the key and the
    /// app. Required for APNs.
    #[serde(deserialize_with = "text")]
    pub apns_team_id: Option<String>,
    /// `apns-topic`: the iOS app's bundle id (`com.example.bank`). Required for APNs.
    pub apns_topic: Option<String>,
    /// APNs endpoint for devices registered with `push_environment = "production"`
    /// (App Store / TestFlight builds). Default `https://api.push.apple.com`.
    /// `http://` means cleartext HTTP/2 (tests against a local mock only).
    pub apns_base_url_production: Option<String>,
    /// APNs endpoint for devices registered with `push_environment = "sandbox"`
    /// (development builds). Default `https://api.sandbox.push.apple.com`.
    pub apns_base_url_sandbox: Option<String>,
    /// Age at which the APNs provider token (ES256 JWT) is replaced, seconds; 1200 to
    /// 3300 (Apple: no more often than every 20 minutes, never older than an hour).
    /// Default 2400.
    pub apns_token_refresh_secs: u64,
    /// Generic alert title of challenge pushes; the Notification Service Extension
    /// replaces it after decrypting the details. Default `Confirm a payment`.
    pub apns_alert_title: String,
    /// Generic alert body of challenge pushes. Default
    /// `Open the app to review the request.`
    pub apns_alert_body: String,
    /// Optional `title-loc-key`: a key of the app's `Localizable.strings` to show
    /// instead of `apns_alert_title` (the app must define it).
    pub apns_alert_title_loc_key: Option<String>,
    /// Optional `loc-key`: likewise for the body.
    pub apns_alert_loc_key: Option<String>,
    /// Firebase service-account key file (JSON, "Generate new private key" in the
    /// Firebase console). Required for FCM.
    pub fcm_service_account_file: Option<PathBuf>,
    /// Firebase project id. Default: `project_id` of the service-account file.
    #[serde(deserialize_with = "text")]
    pub fcm_project_id: Option<String>,
    /// FCM HTTP v1 endpoint. Default `https://fcm.googleapis.com`.
    pub fcm_base_url: Option<String>,
    /// Time limit of one request to APNs, FCM, a Web Push service or the OAuth token
    /// endpoint, ms. Default 10,000.
    pub request_timeout_ms: u64,
    /// `[push.webpush]`: Web Push (RFC 8030) for `webpush` devices.
    pub webpush: WebPushConfig,
}

/// `[push.webpush]`. Enabled by `vapid_key_file`; the endpoint rules apply to every
/// subscription registered, enabled or not.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebPushConfig {
    /// The VAPID key (RFC 8292), P-256: PKCS#8 PEM (`PRIVATE KEY`), SEC1 PEM (`EC
    /// PRIVATE KEY`) or the 32-byte private scalar in base64url (the form
    /// `web-push generate-vapid-keys` prints). Required for Web Push.
    pub vapid_key_file: Option<PathBuf>,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push services.
    /// Required for Web Push.
    pub subject: Option<String>,
    /// Hosts subscription endpoints may point to: `host`, `host:port` or `*.domain`
    /// (any subdomain). Empty (default): any host, subject to the other rules.
    pub allowed_hosts: Vec<String>,
    /// Accept `http://` endpoints. Default false (https only). For tests against a
    /// local mock.
    pub allow_http: bool,
    /// Accept endpoints on loopback, private, link-local and other non-public
    /// addresses (as IP literals or as what a name resolves to). Default false. For
    /// tests against a local mock.
    pub allow_private_addresses: bool,
}

/// Validated Web Push settings.
#[derive(Debug, Clone)]
pub struct WebPushSettings {
    /// VAPID key file.
    pub vapid_key_file: PathBuf,
    /// `sub` claim.
    pub subject: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_base_url_production: None,
            apns_base_url_sandbox: None,
            apns_token_refresh_secs: APNS_TOKEN_REFRESH_SECS,
            apns_alert_title: "Confirm a payment".into(),
            apns_alert_body: "Open the app to review the request.".into(),
            apns_alert_title_loc_key: None,
            apns_alert_loc_key: None,
            fcm_service_account_file: None,
            fcm_project_id: None,
            fcm_base_url: None,
            request_timeout_ms: 10_000,
            webpush: WebPushConfig::default(),
        }
    }
}

/// Validated APNs settings.
#[derive(Debug, Clone)]
pub struct ApnsSettings {
    /// `.p8` file.
    pub key_file: PathBuf,
    /// Key id.
    pub key_id: String,
    /// Team id.
    pub team_id: String,
    /// Bundle id.
    pub topic: String,
    /// Production endpoint, no trailing slash.
    pub production: String,
    /// Sandbox endpoint, no trailing slash.
    pub sandbox: String,
    /// Provider token refresh age, seconds.
    pub refresh_secs: u64,
}

/// Validated FCM settings.
#[derive(Debug, Clone)]
pub struct FcmSettings {
    /// Service-account file.
    pub service_account_file: PathBuf,
    /// Project id override.
    pub project_id: Option<String>,
    /// Endpoint, no trailing slash.
    pub base_url: String,
}

/// A string that may have arrived as a TOML integer: an environment value such as
/// `PUSHAUTH_PUSH__APNS_TEAM_ID=1234567890` is read as TOML first.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        N(i64),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::S(s) => s,
        Text::N(n) => n.to_string(),
    }))
}

fn set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

fn base_url(key: &str, value: Option<&str>, default: &str) -> Result<String, String> {
    let raw = value.unwrap_or(default).trim().trim_end_matches('/');
    let url = url::Url::parse(raw).map_err(|e| format!("push.{key}: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!(
            "push.{key}: expected an https:// (or, for tests, http://) URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("push.{key}: no query or fragment allowed"));
    }
    Ok(raw.to_owned())
}

fn identifier(key: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "push.{key}: expected letters and digits (Apple's are 10 characters)"
        ));
    }
    Ok(v.to_owned())
}

impl PushConfig {
    /// The APNs settings when APNs is configured, `None` when no APNs key is set, an
    /// error naming the missing or bad key otherwise.
    pub fn apns(&self) -> Result<Option<ApnsSettings>, String> {
        let file = self
            .apns_key_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let required = [
            ("apns_key_file", file.is_some()),
            ("apns_key_id", set(&self.apns_key_id)),
            ("apns_team_id", set(&self.apns_team_id)),
            ("apns_topic", set(&self.apns_topic)),
        ];
        let optional = [
            (
                "apns_base_url_production",
                self.apns_base_url_production.is_some(),
            ),
            (
                "apns_base_url_sandbox",
                self.apns_base_url_sandbox.is_some(),
            ),
            (
                "apns_alert_title_loc_key",
                self.apns_alert_title_loc_key.is_some(),
            ),
            ("apns_alert_loc_key", self.apns_alert_loc_key.is_some()),
        ];
        let given: Vec<&str> = required
            .iter()
            .chain(optional.iter())
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .filter(|(_, s)| !*s)
            .map(|(k, _)| *k)
            .collect();
        if given.is_empty() {
            return Ok(None);
        }
        if !missing.is_empty() {
            return Err(format!(
                "APNs is partly configured ({} set): missing push.{}",
                given.join(", "),
                missing.join(", push.")
            ));
        }
        if !(APNS_TOKEN_REFRESH_MIN..=APNS_TOKEN_REFRESH_MAX)
            .contains(&self.apns_token_refresh_secs)
        {
            return Err(format!(
                "push.apns_token_refresh_secs must be {APNS_TOKEN_REFRESH_MIN} to {APNS_TOKEN_REFRESH_MAX} (APNs refuses tokens renewed more often than every 20 minutes or older than an hour)"
            ));
        }
        let topic = self.apns_topic.as_deref().unwrap_or_default().trim();
        if topic.len() > 255
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err("push.apns_topic: expected a bundle id such as com.example.bank".into());
        }
        for (key, value) in [
            ("apns_alert_title", &self.apns_alert_title),
            ("apns_alert_body", &self.apns_alert_body),
        ] {
            if value.trim().is_empty() || value.chars().count() > 200 {
                return Err(format!("push.{key}: 1 to 200 characters"));
            }
        }
        Ok(Some(ApnsSettings {
            key_file: file.cloned().unwrap_or_default(),
            key_id: identifier(
                "apns_key_id",
                self.apns_key_id.as_deref().unwrap_or_default(),
            )?,
            team_id: identifier(
                "apns_team_id",
                self.apns_team_id.as_deref().unwrap_or_default(),
            )?,
            topic: topic.to_owned(),
            production: base_url(
                "apns_base_url_production",
                self.apns_base_url_production.as_deref(),
                APNS_PRODUCTION,
            )?,
            sandbox: base_url(
                "apns_base_url_sandbox",
                self.apns_base_url_sandbox.as_deref(),
                APNS_SANDBOX,
            )?,
            refresh_secs: self.apns_token_refresh_secs,
        }))
    }

    /// The FCM settings when FCM is configured, `None` when no FCM key is set, an
    /// error naming the missing or bad key otherwise.
    pub fn fcm(&self) -> Result<Option<FcmSettings>, String> {
        let file = self
            .fcm_service_account_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let given: Vec<&str> = [
            ("fcm_project_id", self.fcm_project_id.is_some()),
            ("fcm_base_url", self.fcm_base_url.is_some()),
        ]
        .iter()
        .filter(|(_, s)| *s)
        .map(|(k, _)| *k)
        .collect();
        let Some(file) = file else {
            if given.is_empty() {
                return Ok(None);
            }
            return Err(format!(
                "FCM is partly configured ({} set): missing push.fcm_service_account_file",
                given.join(", ")
            ));
        };
        let project_id =
            match self.fcm_project_id.as_deref().map(str::trim) {
                None => None,
                Some(p) if valid_project_id(p) => Some(p.to_owned()),
                Some(_) => return Err(
                    "push.fcm_project_id: expected a Firebase project id (letters, digits, '-')"
                        .into(),
                ),
            };
        Ok(Some(FcmSettings {
            service_account_file: file.clone(),
            project_id,
            base_url: base_url("fcm_base_url", self.fcm_base_url.as_deref(), FCM_BASE)?,
        }))
    }
}

impl WebPushConfig {
    /// The Web Push settings when enabled (`vapid_key_file` set), `None` when no
    /// VAPID setting is given, an error naming the missing or bad key otherwise.
    pub fn settings(&self) -> Result<Option<WebPushSettings>, String> {
        let file = self
            .vapid_key_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let subject = self.subject.as_deref().map(str::trim);
        let (file, subject) = match (file, subject) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(
                    "Web Push is partly configured (push.webpush.subject set): missing push.webpush.vapid_key_file".into(),
                );
            }
            (Some(_), None) => {
                return Err(
                    "Web Push is partly configured (push.webpush.vapid_key_file set): missing push.webpush.subject".into(),
                );
            }
            (Some(f), Some(s)) => (f, s),
        };
        let contact = subject
            .strip_prefix("mailto:")
            .or_else(|| subject.strip_prefix("https://"));
        if contact.is_none_or(|c| c.is_empty() || c.len() > 200)
            || !subject.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(
                "push.webpush.subject: expected a mailto: or https: contact (RFC 8292 §2.1), e.g. mailto:push-ops@bank.example".into(),
            );
        }
        Ok(Some(WebPushSettings {
            vapid_key_file: file.clone(),
            subject: subject.to_owned(),
        }))
    }
}

/// A Google Cloud project id: 6–30 lower-case letters, digits and hyphens (older ones
/// may carry a `domain:` prefix).
pub(crate) fn valid_project_id(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 100
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_means_disabled() {
        let c = PushConfig::default();
        assert!(c.apns().unwrap().is_none());
        assert!(c.fcm().unwrap().is_none());
    }

    #[test]
    fn partial_apns_names_the_missing_keys() {
        let c = PushConfig {
            apns_key_id: Some("ABC123DEFG".into()),
            apns_topic: Some("com.example".into()),
            ..Default::default()
        };
        let e = c.apns().unwrap_err();
        assert!(
            e.contains("push.apns_key_file") && e.contains("push.apns_team_id"),
            "{e}"
        );
        assert!(!e.contains("push.apns_key_id,"), "{e}");
        let c = PushConfig {
            apns_base_url_sandbox: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        assert!(c.apns().unwrap_err().contains("apns_key_file"));
    }

    #[test]
    fn full_apns_with_defaults() {
        let c = PushConfig {
            apns_key_file: Some("k.p8".into()),
            apns_key_id: Some("ABC123DEFG".into()),
            apns_team_id: Some("TEAM123456".into()),
            apns_topic: Some("com.example.bank".into()),
            apns_base_url_sandbox: Some("http://127.0.0.1:9/".into()),
            ..Default::default()
        };
        let s = c.apns().unwrap().unwrap();
        assert_eq!(s.production, APNS_PRODUCTION);
        assert_eq!(s.sandbox, "http://127.0.0.1:9");
        assert_eq!(s.refresh_secs, 2400);
        let bad = PushConfig {
            apns_token_refresh_secs: 3600,
            ..c.clone()
        };
        assert!(bad.apns().unwrap_err().contains("apns_token_refresh_secs"));
        let bad = PushConfig {
            apns_base_url_production: Some("ftp://x".into()),
            ..c.clone()
        };
        assert!(bad.apns().unwrap_err().contains("apns_base_url_production"));
        let bad = PushConfig {
            apns_key_id: Some("AB C".into()),
            ..c
        };
        assert!(bad.apns().unwrap_err().contains("apns_key_id"));
    }

    #[test]
    fn fcm_requires_the_file() {
        let c = PushConfig {
            fcm_project_id: Some("demo-project".into()),
            ..Default::default()
        };
        assert!(
            c.fcm()
                .unwrap_err()
                .contains("push.fcm_service_account_file")
        );
        let c = PushConfig {
            fcm_service_account_file: Some("sa.json".into()),
            ..Default::default()
        };
        let s = c.fcm().unwrap().unwrap();
        assert_eq!(s.base_url, FCM_BASE);
        assert!(s.project_id.is_none());
    }

    #[test]
    fn env_style_keys_deserialize() {
        let t: toml::Table = "apns_key_file = \"/k.p8\"\nfcm_base_url = \"http://127.0.0.1:1\"\napns_token_refresh_secs = 1800"
            .parse()
            .unwrap();
        let c: PushConfig = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(c.apns_token_refresh_secs, 1800);
        let t: toml::Table = "apns_unknown = 1".parse().unwrap();
        assert!(toml::Value::Table(t).try_into::<PushConfig>().is_err());
    }

    #[test]
    fn environment_overrides_reach_push() {
        let env = [
            ("PUSHAUTH_PUSH__APNS_KEY_FILE", "/run/secrets/AuthKey.p8"),
            ("PUSHAUTH_PUSH__APNS_KEY_ID", "ABC123DEFG"),
            ("PUSHAUTH_PUSH__APNS_TEAM_ID", "1234567890"),
            ("PUSHAUTH_PUSH__APNS_TOPIC", "com.example.bank"),
            ("PUSHAUTH_PUSH__APNS_TOKEN_REFRESH_SECS", "1800"),
            (
                "PUSHAUTH_PUSH__FCM_SERVICE_ACCOUNT_FILE",
                "/run/secrets/sa.json",
            ),
        ];
        let c = crate::config::Config::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        let apns = c.push.apns().unwrap().unwrap();
        assert_eq!(
            (apns.team_id.as_str(), apns.refresh_secs),
            ("1234567890", 1800)
        );
        assert_eq!(
            apns.key_file,
            std::path::PathBuf::from("/run/secrets/AuthKey.p8")
        );
        assert!(c.push.fcm().unwrap().is_some());
    }

    #[test]
    fn webpush_settings() {
        assert!(WebPushConfig::default().settings().unwrap().is_none());
        let only_file = WebPushConfig {
            vapid_key_file: Some("vapid.pem".into()),
            ..Default::default()
        };
        assert!(
            only_file
                .settings()
                .unwrap_err()
                .contains("push.webpush.subject")
        );
        let only_subject = WebPushConfig {
            subject: Some("mailto:ops@bank.example".into()),
            ..Default::default()
        };
        assert!(
            only_subject
                .settings()
                .unwrap_err()
                .contains("push.webpush.vapid_key_file")
        );
        for bad in [
            "ops@bank.example",
            "mailto:",
            "http://bank.example",
            "mailto:a b",
        ] {
            let c = WebPushConfig {
                subject: Some(bad.into()),
                ..only_file.clone()
            };
            assert!(
                c.settings().unwrap_err().contains("push.webpush.subject"),
                "{bad}"
            );
        }
        let c = WebPushConfig {
            subject: Some(" https://bank.example/contact ".into()),
            ..only_file
        };
        assert_eq!(
            c.settings().unwrap().unwrap().subject,
            "https://bank.example/contact"
        );
        // From the environment: the table inline, as documented.
        let env = [(
            "PUSHAUTH_PUSH__WEBPUSH",
            r#"{vapid_key_file = "/run/secrets/vapid.pem", subject = "mailto:ops@bank.example", allowed_hosts = ["*.push.services.mozilla.com"]}"#,
        )];
        let c = crate::config::Config::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        let s = c.push.webpush.settings().unwrap().unwrap();
        assert_eq!(
            s.vapid_key_file,
            std::path::PathBuf::from("/run/secrets/vapid.pem")
        );
        assert_eq!(
            c.push.webpush.allowed_hosts,
            ["*.push.services.mozilla.com"]
        );
        assert!(!c.push.webpush.allow_http);
        let e = crate::config::Config::load(
            None,
            [(
                "PUSHAUTH_PUSH__WEBPUSH".to_owned(),
                "{vapid_file = \"x\"}".to_owned(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("vapid_file"), "{e}");
    }
}
