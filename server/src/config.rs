//! Typed configuration: built-in defaults, overlaid by an optional TOML file, overlaid
//! by environment variables. `PUSHAUTH_<SECTION>__<KEY>=value` sets `[section] key`
//! (e.g. `PUSHAUTH_SERVER__LISTEN=0.0.0.0:8080`); `DATABASE_URL` sets
//! `storage.database_url`. Unknown keys are refused, so a typo fails at start instead
//! of being ignored. Every field is documented in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listener and identity.
    pub server: ServerConfig,
    /// Database.
    pub storage: StorageConfig,
    /// Security policy.
    pub security: SecurityConfig,
    /// Background workers.
    pub workers: WorkerConfig,
    /// Challenge policy.
    pub challenges: ChallengeConfig,
    /// The generic challenge API (provider `api`).
    pub api: ApiProviderConfig,
    /// Processor connectors (`[providers.enfuce]`, …).
    pub providers: crate::providers::config::ProvidersConfig,
    /// Push services (`[push]` apns_* / fcm_* keys, docs/push.md).
    pub push: crate::push::config::PushConfig,
    /// Device key policy (`[devices]`: decline key, user-verification minimum).
    pub devices: crate::services::device_policy::DevicesConfig,
    /// Enrollment links (`[enrollment]`: deeplink scheme).
    pub enrollment: crate::services::device_policy::EnrollmentConfig,
    /// Issuer events (`[events]`: endpoints, retry schedule; docs/api.md).
    pub events: crate::events::EventsConfig,
    /// The ops console (`[console]`: served under `/console` only when enabled).
    pub console: crate::console::ConsoleConfig,
    /// `PUSHAUTH_*` environment variables that are not settings (no `__` between a
    /// section and a key): ignored, and named in a warning at start-up.
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Base URL devices and processors use to reach this server (goes into
    /// enrollment links). Default `http://<listen>`.
    pub public_url: Option<String>,
    /// Issuer name: `iss` of server challenges and `aud` of device proofs. Default:
    /// the public URL. Changing it invalidates every enrolled device's pin.
    pub issuer: Option<String>,
    /// Largest request body accepted, in bytes. Default 64 KiB.
    pub body_limit_bytes: usize,
    /// Time limit for handling one request, in milliseconds. Default 10,000.
    pub request_timeout_ms: u64,
    /// Log format: `text` or `json`. Default `text`.
    pub log_format: LogFormat,
    /// Grace period for in-flight requests at shutdown, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// A second listener for operations only (`/metrics`, `/healthz`, `/readyz`), e.g.
    /// `127.0.0.1:9090`. When set, `/metrics` is served there and no longer on
    /// `listen`. Default: unset (everything on `listen`).
    pub ops_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            issuer: None,
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            log_format: LogFormat::Text,
            shutdown_grace_ms: 5_000,
            ops_listen: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path` or `postgres://…`. Default: `sqlite://<data_dir>/pushauth.db`.
    pub database_url: Option<String>,
    /// Directory for the SQLite file and the generated admin key. Default `./data`.
    pub data_dir: PathBuf,
    /// Connection pool size (PostgreSQL). Default 16.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            database_url: None,
            data_dir: PathBuf::from("data"),
            max_connections: 16,
        }
    }
}

/// `[security]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// An admin API key to accept (its hash is stored at start). When unset and no
    /// key exists, one is generated and written to `<data_dir>/admin-key` (mode 0600).
    pub admin_key: Option<String>,
    /// Accepted |now − iat| of device request proofs, seconds. Default 60.
    pub request_window_secs: i64,
    /// Accepted clock skew for approval proofs, seconds. Default 30.
    pub clock_skew_secs: i64,
    /// Consecutive refused proofs that lock a device (PSD2 RTS art. 4: at most 5).
    pub lock_after_failures: i32,
    /// Activation code lifetime, seconds. Default 600.
    pub activation_ttl_secs: i64,
    /// File holding the key-encryption key (32 bytes, base64url or hex) that wraps the
    /// server's challenge-signing keys in the database (AES-256-GCM). Default unset.
    pub key_encryption_key_file: Option<PathBuf>,
    /// The key-encryption key itself, for an environment secret
    /// (`PUSHAUTH_SECURITY__KEY_ENCRYPTION_KEY`). At most one of the two.
    pub key_encryption_key: Option<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            admin_key: None,
            request_window_secs: 60,
            clock_skew_secs: 30,
            lock_after_failures: 5,
            activation_ttl_secs: 600,
            key_encryption_key_file: None,
            key_encryption_key: None,
        }
    }
}

/// `[workers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Run the outbox and expiry workers in this process. Default true.
    pub enabled: bool,
    /// Outbox rows claimed per round. Default 32.
    pub batch: i64,
    /// Lease on a claimed row, ms, renewed every third of it while the row is worked on:
    /// a dead holder's rows are claimed again at most this long after its last renewal.
    /// Default 5,000.
    pub lease_ms: i64,
    /// Longest sleep between rounds when nothing is due, ms. Default 1,000.
    pub idle_poll_ms: u64,
    /// Concurrent deliveries per lane (device pushes and dismisses; processor results).
    /// Default 64 each.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            enabled: true,
            batch: 32,
            lease_ms: 5_000,
            idle_poll_ms: 1_000,
            concurrency: 64,
        }
    }
}

/// `[challenges]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeConfig {
    /// Default decision window for the generic API, seconds. Default 300.
    pub default_ttl_secs: i64,
    /// Longest decision window accepted from the generic API, seconds. Default 900.
    pub max_ttl_secs: i64,
    /// Pending challenges allowed per cardholder at once (MFA-fatigue guard). Default 5.
    pub max_pending_per_cardholder: i64,
    /// What to do when the push to every device of the cardholder failed for good
    /// (dead tokens, refused): `wait` (default: the challenge stays answerable through
    /// the SDK's pending list and stream until its deadline) or `close` (close it at once
    /// and report the processor's timeout outcome early — Enfuce `TIMEOUT`, Treezor
    /// `FALLBACK` when `on_expiry = "fallback"` — so the processor can fall back to
    /// another method without waiting out its window). Devices without a push target
    /// count as reachable (they poll), so `close` never fires while one exists.
    pub when_unreachable: UnreachablePolicy,
}

/// See [`ChallengeConfig::when_unreachable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreachablePolicy {
    /// Keep the challenge open until its deadline.
    #[default]
    Wait,
    /// Close it and report the timeout outcome upstream at once.
    Close,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            default_ttl_secs: 300,
            max_ttl_secs: 900,
            max_pending_per_cardholder: 5,
            when_unreachable: UnreachablePolicy::Wait,
        }
    }
}

/// `[api]`: the generic challenge API.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ApiProviderConfig {
    /// Hosts (`host` or `host:port`) callback URLs may point to. Empty: callbacks are
    /// refused (SSRF guard).
    pub callback_hosts: Vec<String>,
    /// Secret for the `PushAuth-Signature` HMAC on callbacks. Required when
    /// `callback_hosts` is not empty.
    pub callback_secret: Option<crate::providers::config::Secret>,
    /// Allow `http://` callback URLs (tests, internal networks). Default false.
    pub allow_http_callbacks: bool,
}

/// Configuration errors, with the offending key named.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax or a value of the wrong type / an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults ← file ← environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        let mut ignored_env = Vec::new();
        for (key, value) in env {
            let Some(path) = env_setting(&key)? else {
                if key.starts_with("PUSHAUTH_") {
                    ignored_env.push(key);
                }
                continue;
            };
            let [section_name, field] = path;
            // Each variable is checked on its own first, so that an unknown key or a
            // value of the wrong type names the variable that carries it.
            let mut alone = toml::Table::new();
            let mut one = toml::Table::new();
            one.insert(field.clone(), env_value(&value));
            alone.insert(section_name.clone(), toml::Value::Table(one));
            if let Err(e) = toml::Value::Table(alone).try_into::<Config>() {
                return Err(ConfigError::Invalid(format!(
                    "environment variable {key}: {}",
                    e.message()
                )));
            }
            let section = root
                .entry(section_name.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section) = section else {
                return Err(ConfigError::Invalid(format!(
                    "{section_name} is not a section"
                )));
            };
            section.insert(field, env_value(&value));
        }
        let mut config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        config.ignored_env = ignored_env;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.security;
        if !(1..=5).contains(&s.lock_after_failures) {
            return Err(ConfigError::Invalid(
                "security.lock_after_failures must be 1 to 5 (PSD2 RTS art. 4)".into(),
            ));
        }
        if s.request_window_secs <= 0 || s.clock_skew_secs < 0 || s.activation_ttl_secs <= 0 {
            return Err(ConfigError::Invalid(
                "security windows must be positive".into(),
            ));
        }
        if self.challenges.default_ttl_secs <= 0
            || self.challenges.max_ttl_secs < self.challenges.default_ttl_secs
        {
            return Err(ConfigError::Invalid(
                "challenges.default_ttl_secs must be positive and ≤ max_ttl_secs".into(),
            ));
        }
        if !self.api.callback_hosts.is_empty()
            && self
                .api
                .callback_secret
                .as_ref()
                .is_none_or(|s| s.expose().is_empty())
        {
            return Err(ConfigError::Invalid(
                "api.callback_secret is required when api.callback_hosts is set".into(),
            ));
        }
        if self.workers.batch <= 0 || self.workers.concurrency == 0 || self.workers.lease_ms <= 0 {
            return Err(ConfigError::Invalid(
                "workers.batch, workers.concurrency and workers.lease_ms must be positive".into(),
            ));
        }
        if let Some(url) = &self.server.public_url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::Invalid(format!("server.public_url: {e}")))?;
        }
        self.devices.validate().map_err(ConfigError::Invalid)?;
        self.enrollment.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.storage.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.storage.data_dir.join("pushauth.db").display()
            ),
        }
    }

    /// The public base URL in effect (no trailing slash).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Which setting an environment variable names, if any.
///
/// - `DATABASE_URL` is `[storage] database_url`;
/// - `PUSHAUTH_CONFIG` (the file, read by the command line) and `PUSHAUTH_TEST_*` (the
///   test harness) are not settings;
/// - `PUSHAUTH_<SECTION>__<KEY>` is `[section] key`: the section must be one of
///   [`Config`]'s (an unknown one is an error that lists them), the key is checked by
///   the caller against the section's own keys;
/// - any other `PUSHAUTH_*` variable (no `__`) is not a setting: `None`, and the
///   caller names it in a warning. Other variables are not ours: `None`.
fn env_setting(key: &str) -> Result<Option<[String; 2]>, ConfigError> {
    if key == "DATABASE_URL" {
        return Ok(Some(["storage".into(), "database_url".into()]));
    }
    if key == "PUSHAUTH_CONFIG" || key.starts_with("PUSHAUTH_TEST_") {
        return Ok(None);
    }
    let Some(rest) = key.strip_prefix("PUSHAUTH_") else {
        return Ok(None);
    };
    let Some((section, field)) = rest.split_once("__") else {
        return Ok(None);
    };
    let (section, field) = (section.to_ascii_lowercase(), field.to_ascii_lowercase());
    let sections = config_sections();
    if !sections.contains(&section.as_str()) {
        return Err(ConfigError::Invalid(format!(
            "environment variable {key}: unknown section `{section}` (sections: {})",
            sections.join(", ")
        )));
    }
    if field.is_empty() || field.contains("__") {
        return Err(ConfigError::Invalid(format!(
            "environment variable {key}: expected PUSHAUTH_{}__<KEY> with one key; \
             nested tables are given whole as an inline TOML table",
            section.to_ascii_uppercase()
        )));
    }
    Ok(Some([section, field]))
}

/// The section names of [`Config`], read from its `Deserialize` implementation (so
/// the list cannot drift from the struct).
fn config_sections() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only the field list is read"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(serde::de::Error::custom("only the field list is read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = Config::deserialize(&mut fields);
    fields.0
}

/// Interprets an environment value as a TOML scalar or array when it parses as one
/// (`8080`, `true`, `["a","b"]`), otherwise as a string.
fn env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.port(), 8080);
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.security.lock_after_failures, 5);
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[challenges]\ndefault_ttl_secs = 60\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("PUSHAUTH_SERVER__LISTEN", "0.0.0.0:7000"),
                ("DATABASE_URL", "postgres://x@localhost/db"),
                ("PUSHAUTH_API__CALLBACK_HOSTS", "[\"a.example\"]"),
                ("PUSHAUTH_API__CALLBACK_SECRET", "s3cret-value"),
                ("HOME", "/root"),
                ("PUSHAUTH_CONFIG", "/etc/pushauth.toml"),
                ("PUSHAUTH_TEST_PG_URL", "postgres://x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 7000);
        assert_eq!(c.challenges.default_ttl_secs, 60);
        assert_eq!(c.database_url(), "postgres://x@localhost/db");
        assert_eq!(c.api.callback_hosts, vec!["a.example".to_string()]);
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = Config::load(None, env(&[("PUSHAUTH_SERVER__LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listn"), "{e}");
        let e = Config::load(
            None,
            env(&[("PUSHAUTH_SECURITY__LOCK_AFTER_FAILURES", "9")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lock_after_failures"), "{e}");
        let e = Config::load(None, env(&[("PUSHAUTH_API__CALLBACK_HOSTS", "[\"a\"]")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("callback_secret"), "{e}");
    }

    #[test]
    fn environment_variables_are_settings_only_in_the_documented_form() {
        // not of the form PUSHAUTH_<SECTION>__<KEY>: not a setting, named for a warning
        let c = Config::load(
            None,
            env(&[("PUSHAUTH_LISTEN", "x"), ("PUSHAUTH_DEPLOY_COLOR", "blue")]),
        )
        .unwrap();
        assert_eq!(
            c.ignored_env,
            vec!["PUSHAUTH_LISTEN", "PUSHAUTH_DEPLOY_COLOR"]
        );
        assert_eq!(c.server.listen.port(), 8080);
        // an unknown section is an error that names the variable and lists the sections
        let e = Config::load(None, env(&[("PUSHAUTH_SERVR__LISTEN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PUSHAUTH_SERVR__LISTEN"), "{e}");
        assert!(e.contains("unknown section `servr`"), "{e}");
        assert!(e.contains("server, storage, security"), "{e}");
        // an unknown key names the variable and the key
        let e = Config::load(None, env(&[("PUSHAUTH_SERVER__LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PUSHAUTH_SERVER__LISTN"), "{e}");
        assert!(e.contains("listn"), "{e}");
        // a value of the wrong type names the variable too
        let e = Config::load(None, env(&[("PUSHAUTH_WORKERS__BATCH", "many")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PUSHAUTH_WORKERS__BATCH"), "{e}");
        // nested keys are not spelled with more separators
        let e = Config::load(
            None,
            env(&[("PUSHAUTH_PROVIDERS__ENFUCE__WEBHOOK_USER", "u")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("inline TOML table"), "{e}");
    }

    #[test]
    fn section_list_is_read_from_the_struct() {
        let sections = config_sections();
        assert!(
            sections.contains(&"server") && sections.contains(&"push"),
            "{sections:?}"
        );
        for s in sections {
            let mut t = toml::Table::new();
            t.insert((*s).to_owned(), toml::Value::Table(toml::Table::new()));
            toml::Value::Table(t)
                .try_into::<Config>()
                .unwrap_or_else(|e| panic!("section {s}: {e}"));
        }
    }
}
