//! The real `pushauth` binary as a child process.
//!
//! The binary is `target/debug/pushauth` of this workspace (or `PUSHAUTH_BIN`); it is
//! (re)built once per test binary with `cargo build -p pushauth-server --bin pushauth`
//! so that a test never runs a stale server (`CARGO_BIN_EXE_*` only exists for binaries
//! of the test's own package, and artifact dependencies are not stable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The admin key every test server accepts.
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";
/// The issuer every test server uses, so that devices keep their pin across restarts
/// and instances.
pub const ISSUER: &str = "https://pushauth.e2e.test";

/// Storage backend of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's data directory.
    Sqlite,
    /// A fresh PostgreSQL database at `PUSHAUTH_TEST_PG_URL`.
    Postgres,
}

/// Where the binary is. Built once per test process with `cargo build -p
/// pushauth-server --bin pushauth` unless `target/debug/pushauth` is newer than every
/// source it is built from (then the build would be a no-op, or would only relink the
/// binary with the feature set of another cargo invocation, e.g. `cargo test
/// --workspace`, which costs minutes on a cold CI cache and changes nothing).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("PUSHAUTH_BIN") {
            return PathBuf::from(bin);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let bin = target.join("debug").join("pushauth");
        if !is_fresh(&bin, &workspace) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "pushauth-server",
                    "--bin",
                    "pushauth",
                ])
                .current_dir(&workspace)
                .status()
                .expect("running cargo build for the pushauth binary");
            assert!(
                status.success(),
                "cargo build -p pushauth-server --bin pushauth failed"
            );
        }
        assert!(bin.exists(), "{} not found after the build", bin.display());
        bin
    })
    .clone()
}

/// Whether `bin` is newer than every file the server is built from (`core/`,
/// `server/` without its tests, the workspace manifest and lock file).
fn is_fresh(bin: &Path, workspace: &Path) -> bool {
    fn newest(path: &Path, newest_seen: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "tests" || n == "target")
            {
                return;
            }
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                newest(&entry.path(), newest_seen);
            }
        } else if let Ok(m) = meta.modified() {
            *newest_seen = (*newest_seen).max(m);
        }
    }
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let mut sources = std::time::SystemTime::UNIX_EPOCH;
    for p in ["core", "server", "Cargo.toml", "Cargo.lock"] {
        newest(&workspace.join(p), &mut sources);
    }
    built > sources
}

/// PostgreSQL URL of the test cluster.
pub fn pg_url() -> String {
    std::env::var("PUSHAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of one test: a SQLite file (the server's default) or a PostgreSQL
/// database created for the test and dropped afterwards.
pub struct Database {
    /// `DATABASE_URL` for the server, `None` for SQLite in the data directory.
    pub url: Option<String>,
    pg_name: Option<String>,
}

impl Database {
    /// A new empty database on `backend`.
    pub async fn create(backend: Backend) -> Arc<Database> {
        match backend {
            Backend::Sqlite => Arc::new(Database {
                url: None,
                pg_name: None,
            }),
            Backend::Postgres => {
                use sqlx::Connection as _;
                let name = format!("pa_e2e_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connecting to PostgreSQL (PUSHAUTH_TEST_PG_URL)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                Arc::new(Database {
                    url: Some(url.to_string()),
                    pg_name: Some(name),
                })
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Best effort, on a thread of its own (Drop may run inside a runtime).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// What a server is started with.
#[derive(Clone)]
pub struct ServerSpec {
    /// The TOML configuration file's text (processors, push).
    pub toml: String,
    /// The database.
    pub db: Arc<Database>,
    /// Extra `PUSHAUTH_…` variables.
    pub env: Vec<(String, String)>,
}

/// A running `pushauth serve`.
pub struct ServerProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The bound address (kept across restarts).
    pub addr: SocketAddr,
    spec: ServerSpec,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: usize,
    http: reqwest::Client,
}

impl ServerProcess {
    /// Starts the binary on a free port and waits until `/readyz` answers.
    pub async fn start(spec: ServerSpec) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), &spec.toml).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut s = ServerProcess {
            url: String::new(),
            addr: "127.0.0.1:0".parse().unwrap(),
            spec,
            dir,
            child: None,
            starts: 0,
            http,
        };
        s.launch("127.0.0.1:0").await;
        s
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("server-{n}.log"))
    }

    async fn launch(&mut self, listen: &str) {
        self.starts += 1;
        let log = self.log_path(self.starts);
        let data = self.dir.path().join("data");
        let mut cmd = Command::new(binary());
        // Nothing of the test's environment may reach the server's configuration
        // (PUSHAUTH_TEST_PG_URL would be read as a malformed PUSHAUTH_ key).
        for (k, _) in std::env::vars() {
            if k.starts_with("PUSHAUTH_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("serve")
            .env("PUSHAUTH_SERVER__LISTEN", listen)
            .env("PUSHAUTH_SERVER__ISSUER", ISSUER)
            .env("PUSHAUTH_STORAGE__DATA_DIR", &data)
            .env("PUSHAUTH_STORAGE__MAX_CONNECTIONS", "4")
            .env("PUSHAUTH_SECURITY__ADMIN_KEY", ADMIN_KEY)
            .env("PUSHAUTH_WORKERS__IDLE_POLL_MS", "100")
            .env("RUST_LOG", "info,sqlx=warn,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        if let Some(url) = &self.spec.db.url {
            cmd.env("DATABASE_URL", url);
        }
        for (k, v) in &self.spec.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning pushauth");
        // `pushauth listening on http://…` on stderr, then /readyz.
        let mut url = None;
        for _ in 0..300 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                // Only a whole address: the log may be read while the line is written.
                if rest.len() > addr.len() && addr.parse::<std::net::SocketAddr>().is_ok() {
                    url = Some(addr);
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pushauth exited at start ({status}):\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Some(addr) = url else {
            panic!("pushauth did not start within 15 s:\n{}", self.logs())
        };
        self.addr = addr.parse().unwrap();
        self.url = format!("http://{addr}");
        self.child = Some(child);
        let ready = crate::wait_for(Duration::from_secs(15), || async {
            matches!(self.http.get(format!("{}/readyz", self.url)).send().await, Ok(r) if r.status().as_u16() == 200)
        })
        .await;
        assert!(ready, "pushauth never became ready:\n{}", self.logs());
    }

    /// SIGKILL: no shutdown, no flush, nothing finishes.
    pub async fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            let _ = child.wait().await;
        }
    }

    /// Starts again, on the same address, data directory and database.
    pub async fn restart(&mut self) {
        self.kill_9().await;
        let listen = self.addr.to_string();
        self.launch(&listen).await;
    }

    /// Every log line of every start so far.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                format!(
                    "--- start {n} ---\n{}",
                    std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An admin API call; returns the status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A new cardholder linked to `provider`/`key`; returns its id.
    pub async fn cardholder(&self, provider: &str, key: &str) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/cardholders",
                Some(json!({"label": "e2e"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/admin/cardholders/{id}/links");
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &path,
                Some(json!({"provider": provider, "provider_key": key})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        id
    }

    /// A fresh activation deeplink for the cardholder.
    pub async fn activation(&self, cardholder: &str) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/cardholders/{cardholder}/activation-codes"),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["deeplink"].as_str().unwrap().to_owned()
    }

    /// The admin evidence view of a challenge.
    pub async fn view(&self, id: &str) -> Value {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/challenges/{id}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// The challenges of a provider (newest first).
    pub async fn challenges(&self, provider: &str) -> Vec<Value> {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/challenges?provider={provider}&limit=500"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["challenges"].as_array().cloned().unwrap_or_default()
    }

    /// The id of the challenge a processor reference made.
    pub async fn challenge_id(&self, provider: &str, reference: &str) -> String {
        let list = self.challenges(provider).await;
        let found = list.iter().find(|c| c["provider_ref"] == reference);
        found.unwrap_or_else(|| panic!("no {provider} challenge for {reference}: {list:#?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until `field` of the challenge (`status`, `upstream`) equals `value`.
    pub async fn wait_challenge(
        &self,
        id: &str,
        field: &str,
        value: &str,
        within: Duration,
    ) -> Value {
        let end = tokio::time::Instant::now() + within;
        let (ok, last) = loop {
            let last = self.view(id).await;
            if last["challenge"][field] == value || tokio::time::Instant::now() > end {
                break (last["challenge"][field] == value, last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(ok, "challenge {field} never became {value}: {last:#}");
        last
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "===== pushauth server logs ({}) =====\n{}",
                self.url,
                self.logs()
            );
        }
    }
}
