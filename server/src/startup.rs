//! Start-up: open the store named by the configuration, run migrations, load (or on
//! first start create) the server's challenge-signing key and the admin key, build the
//! application state, and serve until shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pushauth_store::{AdminScope, KeyHash, KeyOrigin, NewAdminKey, Store};
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
            create_private_dir(dir)?;
        }
        create_private_file(path)?;
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else {
        Err(StartupError::Config(
            "storage.database_url must start with sqlite:// or postgres://".into(),
        ))
    }
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
        let (configured, revoked) = store
            .admin_key_sync_configured(NewAdminKey {
                name: "configured".into(),
                key_hash: KeyHash::of(key.as_bytes()),
                scope: AdminScope::Full,
                origin: KeyOrigin::Configured,
                created_at: now(),
            })
            .await?;
        if configured.revoked_at.is_some() {
            return Err(StartupError::Config(
                "security.admin_key was revoked; configure a new key".into(),
            ));
        }
        if revoked > 0 {
            tracing::warn!(
                revoked,
                "the configured admin key changed: the previously configured key is revoked"
            );
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
    create_private_dir(&config.storage.data_dir)?;
    write_secret_file(&file, key.as_bytes()).map_err(|source| StartupError::Io {
        what: format!("writing {}", file.display()),
        source,
    })?;
    store
        .admin_key_insert(NewAdminKey {
            name: "generated".into(),
            key_hash: KeyHash::of(key.as_bytes()),
            scope: AdminScope::Full,
            origin: KeyOrigin::Generated,
            created_at: now(),
        })
        .await?;
    Ok(format!(
        "generated an admin API key and wrote it to {} (mode 0600)",
        file.display()
    ))
}

/// Creates a directory (and its missing parents) readable by the server's user only
/// (0700). An existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), StartupError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StartupError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })
}

/// Creates the SQLite database file with mode 0600 if it does not exist yet; SQLite
/// gives its `-wal` and `-shm` files the database file's mode.
fn create_private_file(path: &Path) -> Result<(), StartupError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StartupError::Io {
            what: format!("creating {}", path.display()),
            source,
        }),
    }
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
    let kek = crate::keyring::Kek::from_config(&config.security)?;
    let keyring = crate::keyring::load(store.as_ref(), kek.as_ref()).await?;
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
        connectors.add(Arc::new(ApiUpstream::new(
            http.clone(),
            secret.expose(),
            config.api.clone(),
        )));
    }
    crate::providers::build_connectors(&config, &http, &mut connectors)
        .map_err(StartupError::Config)?;
    let push = crate::push::build_gateway(&config.push).map_err(StartupError::Config)?;
    let events = crate::events::Events::load(&config.events).map_err(StartupError::Config)?;
    let server_jwk = keyring.active().key.public().to_jwk();
    let server_kid = keyring.active().kid.clone();
    let keyring = crate::keyring::SharedKeyring::new(keyring, kek);
    let lanes = crate::workers::outbox::LanePermits::new(config.workers.concurrency);
    Ok(AppState::new(Inner {
        config,
        store,
        keyring,
        server_jwk,
        server_kid,
        issuer,
        public_url,
        connectors,
        push,
        metrics: Metrics::new(),
        http,
        events,
        lanes,
    }))
}

/// A running server: HTTP listener plus workers.
#[derive(Debug)]
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    /// The ops listener's bound address (`server.ops_listen`), if any.
    pub ops_addr: Option<SocketAddr>,
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
        let ops_listener = match config.server.ops_listen {
            Some(ops) => Some(
                TcpListener::bind(ops)
                    .await
                    .map_err(|source| StartupError::Io {
                        what: format!("binding {ops} (server.ops_listen)"),
                        source,
                    })?,
            ),
            None => None,
        };
        let ops_addr = ops_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|source| StartupError::Io {
                what: "reading the bound ops address".into(),
                source,
            })?;
        let state = build_state(config, store, addr).await?;
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = if state.config.workers.enabled {
            crate::workers::spawn(state.clone(), rx.clone())
        } else {
            Vec::new()
        };
        if let Some(listener) = ops_listener {
            let ops = crate::routes::ops::ops_router(state.clone());
            let mut ops_rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, ops)
                    .with_graceful_shutdown(async move {
                        let _ = ops_rx.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "ops listener failed");
                }
            }));
        }
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
            ops_addr,
            state,
            admin_key_note,
            shutdown,
            tasks,
            http,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish (up to the configured
    /// grace period), stops the workers, and lets the deliveries under way finish and
    /// record their outcome (up to the grace period again). A delivery cut off after
    /// that is taken over once its lease runs out, as after a crash.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let grace = Duration::from_millis(self.state.config.server.shutdown_grace_ms);
        let _ = tokio::time::timeout(grace, self.http).await;
        for t in self.tasks {
            let _ = tokio::time::timeout(grace, t).await;
        }
        if tokio::time::timeout(grace, self.state.lanes.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.state.metrics.outbox_in_flight.get(),
                "shutdown: deliveries still under way after the grace period are cut off; their rows are taken over after their lease"
            );
        }
    }
}
