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
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            admin_key: None,
            request_window_secs: 60,
            clock_skew_secs: 30,
            lock_after_failures: 5,
            activation_ttl_secs: 600,
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
    /// Lease on a claimed row, ms: another instance may retry it after that. Default 30,000.
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
            lease_ms: 30_000,
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
    pub callback_secret: Option<String>,
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
        for (key, value) in env {
            let path: Vec<String> = if key == "DATABASE_URL" {
                vec!["storage".into(), "database_url".into()]
            } else if key == "PUSHAUTH_CONFIG" || key.starts_with("PUSHAUTH_TEST_") {
                // the config file path (read by the CLI) and test-harness variables
                continue;
            } else if let Some(rest) = key.strip_prefix("PUSHAUTH_") {
                rest.split("__").map(str::to_ascii_lowercase).collect()
            } else {
                continue;
            };
            if path.len() != 2 || path.iter().any(String::is_empty) {
                return Err(ConfigError::Invalid(format!(
                    "environment variable {key}: expected PUSHAUTH_<SECTION>__<KEY>"
                )));
            }
            let section = root
                .entry(path[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section) = section else {
                return Err(ConfigError::Invalid(format!(
                    "{} is not a section",
                    path[0]
                )));
            };
            section.insert(path[1].clone(), env_value(&value));
        }
        let config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
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
                .as_deref()
                .is_none_or(str::is_empty)
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
        assert!(Config::load(None, env(&[("PUSHAUTH_LISTEN", "x")])).is_err());
    }
}
