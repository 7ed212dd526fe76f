//! Start-up: open the store named by the configuration, run migrations, load (or on
//! first start create) the server's challenge-signing key and the admin key, build the
//! application state, and serve until shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pushauth_core::keys::SoftwareSigningKey;
use pushauth_store::{KeyHash, NewAdminKey, ServerKeyRecord, Store};
use pushauth_store_postgres::PgStore;
use pushauth_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::providers::api::ApiUpstream;
use crate::state::{AppState, Inner, now};
use crate::upstream::Connectors;

/// Start-up failures, each saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("storage: {0}")]
    Storage(#[from] pushauth_store::StoreError),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Opens the store named by the configuration (`sqlite://…` or `postgres://…`).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::connect(&url, config.storage.max_connections).await?,
        ))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StartupError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
        }
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else {
        Err(StartupError::Config(
            "storage.database_url must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// Loads the server signing key, creating and storing it on first start. Several
/// instances starting at once agree on one key.
pub async fn server_key(store: &dyn Store) -> Result<SoftwareSigningKey, StartupError> {
    let candidate =
        SoftwareSigningKey::generate().map_err(|e| StartupError::Config(e.to_string()))?;
    let record = ServerKeyRecord {
        kid: candidate.public().thumbprint(),
        pkcs8: candidate.to_pkcs8().to_vec(),
        created_at: now(),
    };
    let stored = store.server_key_get_or_insert(record).await?;
    SoftwareSigningKey::from_pkcs8(&stored.pkcs8)
        .map_err(|e| StartupError::Config(format!("stored server key: {e}")))
}

/// Makes sure an admin key exists: the configured one (hash stored), or on first start
/// a generated one written to `<data_dir>/admin-key` (mode 0600). Returns where the
/// key comes from, for the start-up message. The key itself is never logged.
pub async fn ensure_admin_key(config: &Config, store: &dyn Store) -> Result<String, StartupError> {
    if let Some(key) = &config.security.admin_key {
        if key.len() < 16 {
            return Err(StartupError::Config(
                "security.admin_key must be at least 16 characters".into(),
            ));
        }
        let hash = KeyHash::of(key.as_bytes());
        if store.admin_key_find(&hash).await?.is_none() {
            store
                .admin_key_insert(NewAdminKey {
                    name: "configured".into(),
                    key_hash: hash,
                    created_at: now(),
                })
                .await?;
        }
        return Ok("the admin API key is the one configured (security.admin_key / PUSHAUTH_SECURITY__ADMIN_KEY)".into());
    }
    let file = config.storage.data_dir.join("admin-key");
    if store.admin_key_any().await? {
        return Ok(format!(
            "admin API keys exist; the first generated one is in {}",
            file.display()
        ));
    }
    let key = new_admin_key().map_err(|e| StartupError::Config(e.to_string()))?;
    std::fs::create_dir_all(&config.storage.data_dir).map_err(|source| StartupError::Io {
        what: format!("creating {}", config.storage.data_dir.display()),
        source,
    })?;
    write_secret_file(&file, key.as_bytes()).map_err(|source| StartupError::Io {
        what: format!("writing {}", file.display()),
        source,
    })?;
    store
        .admin_key_insert(NewAdminKey {
            name: "generated".into(),
            key_hash: KeyHash::of(key.as_bytes()),
            created_at: now(),
        })
        .await?;
    Ok(format!(
        "generated an admin API key and wrote it to {} (mode 0600)",
        file.display()
    ))
}

/// A new admin key: `pa_` + 32 random bytes base64url.
pub fn new_admin_key() -> Result<String, pushauth_core::Error> {
    let bytes: [u8; 32] = pushauth_core::keys::random_array()?;
    Ok(format!("pa_{}", pushauth_core::b64::encode(bytes)))
}

fn write_secret_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content)?;
    f.write_all(b"\n")
}

/// Builds the application state for an opened store and a bound address.
pub async fn build_state(
    config: Config,
    store: Arc<dyn Store>,
    bound: SocketAddr,
) -> Result<AppState, StartupError> {
    let key = server_key(store.as_ref()).await?;
    let public_url = config.public_url(bound);
    let issuer = config
        .server
        .issuer
        .clone()
        .unwrap_or_else(|| public_url.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StartupError::Config(format!("HTTP client: {e}")))?;
    let mut connectors = Connectors::default();
    if let Some(secret) = &config.api.callback_secret {
        connectors.add(Arc::new(ApiUpstream::new(http.clone(), secret)));
    }
    crate::providers::build_connectors(&config, &http, &mut connectors)
        .map_err(StartupError::Config)?;
    let push = crate::push::build_gateway(&config.push).map_err(StartupError::Config)?;
    let server_jwk = key.public().to_jwk();
    let server_kid = key.public().thumbprint();
    Ok(AppState::new(Inner {
        config,
        store,
        server_key: key,
        server_jwk,
        server_kid,
        issuer,
        public_url,
        connectors,
        push,
        metrics: Metrics::new(),
        http,
    }))
}

/// A running server: HTTP listener plus workers.
#[derive(Debug)]
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    /// The state (for tests and embedding).
    pub state: AppState,
    /// Where the admin key comes from.
    pub admin_key_note: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    http: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens storage, migrates, binds, and starts serving and the workers.
    pub async fn start(config: Config) -> Result<Server, StartupError> {
        let store = open_store(&config).await?;
        store.migrate().await?;
        Self::start_with_store(config, store).await
    }

    /// Like [`Server::start`] with an already opened (and migrated) store.
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Server, StartupError> {
        let admin_key_note = ensure_admin_key(&config, store.as_ref()).await?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .map_err(|source| StartupError::Io {
                what: format!("binding {}", config.server.listen),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Io {
            what: "reading the bound address".into(),
            source,
        })?;
        let state = build_state(config, store, addr).await?;
        let (shutdown, rx) = watch::channel(false);
        let tasks = if state.config.workers.enabled {
            crate::workers::spawn(state.clone(), rx.clone())
        } else {
            Vec::new()
        };
        let app = crate::routes::router(state.clone());
        let mut http_rx = rx;
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = http_rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Server {
            addr,
            state,
            admin_key_note,
            shutdown,
            tasks,
            http,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish (up to the configured
    /// grace period), and stops the workers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let grace = Duration::from_millis(self.state.config.server.shutdown_grace_ms);
        let _ = tokio::time::timeout(grace, self.http).await;
        for t in self.tasks {
            let _ = tokio::time::timeout(grace, t).await;
        }
    }
}
