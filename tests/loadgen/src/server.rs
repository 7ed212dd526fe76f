//! Starts the real `pushauth` binary on loopback with env configuration, waits for
//! `/readyz`, reads its RSS from `/proc`, kills it; creates and drops the throw-away
//! PostgreSQL database.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sqlx::Connection as _;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const ADMIN_KEY: &str = "loadgen-admin-key-0123456789abcdef";

/// Refuses anything that is not a loopback host.
pub fn ensure_loopback(host: &str) -> Result<()> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let ok = h == "localhost"
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !ok {
        bail!("refusing non-loopback target {host:?}: the load generator runs on loopback only");
    }
    Ok(())
}

pub fn ensure_loopback_url(u: &str) -> Result<()> {
    let url = url::Url::parse(u).with_context(|| format!("bad URL {u}"))?;
    ensure_loopback(url.host_str().unwrap_or_default())
}

/// Where the server binary is: the given path, else release, else debug.
pub fn find_server_bin(explicit: Option<&Path>, workspace: &Path) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_owned());
        }
        bail!("--server-bin {} does not exist", p.display());
    }
    for profile in ["release", "debug"] {
        let p = workspace.join("target").join(profile).join("pushauth");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no server binary: build it with `cargo build --release -p pushauth-server` or pass --server-bin"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A throw-away PostgreSQL database, dropped by [`PgDb::drop_db`].
#[derive(Debug)]
pub struct PgDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    /// A new database on the server of `base` (any database named in its path is
    /// ignored: the maintenance database `postgres` creates the new one).
    pub async fn create(base: &str) -> Result<PgDb> {
        ensure_loopback_url(base)?;
        let on = |db: &str| -> Result<String> {
            let mut u = url::Url::parse(base).with_context(|| format!("bad URL {base}"))?;
            u.set_path(&format!("/{db}"));
            Ok(u.to_string())
        };
        let admin_url = on("postgres")?;
        let name = format!("loadgen_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connect {admin_url}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut c)
            .await?;
        crate::pgcpu::set_backend(backend);
        c.close().await.ok();
        Ok(PgDb {
            url: on(&name)?,
            admin_url,
            name,
        })
    }

    pub async fn drop_db(&self) -> Result<()> {
        let mut c = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut c)
        .await?;
        c.close().await.ok();
        Ok(())
    }
}

#[derive(Debug)]
pub struct ServerProc {
    child: tokio::process::Child,
    pub pid: u32,
    pub base: String,
    /// Spawn → `listening on` line.
    pub to_listening: Duration,
    /// Spawn → first `/readyz` 200.
    pub to_ready: Duration,
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Rss {
    pub vm_rss_kb: u64,
    pub vm_hwm_kb: u64,
}

impl ServerProc {
    /// Spawns `bin serve` with `env` (plus listen/data dir/admin key) and waits for
    /// readiness (at most `timeout`).
    pub async fn start(
        bin: &Path,
        data_dir: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<ServerProc> {
        let t0 = Instant::now();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("serve")
            .env("PUSHAUTH_SERVER__LISTEN", "127.0.0.1:0")
            .env("PUSHAUTH_STORAGE__DATA_DIR", data_dir)
            .env("PUSHAUTH_SECURITY__ADMIN_KEY", ADMIN_KEY)
            .env(
                "RUST_LOG",
                std::env::var("LOADGEN_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("server exited at once"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let log_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Instant)>(1);
        {
            let tail = log_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                let mut tx = Some(tx);
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(i) = line.find("listening on http://")
                        && let Some(t) = tx.take()
                    {
                        let rest = &line[i + "listening on ".len()..];
                        let url = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = t.send((url, Instant::now())).await;
                    }
                    let mut g = tail
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.push_back(line);
                    if g.len() > 50 {
                        g.pop_front();
                    }
                }
            });
        }
        let tail_text = |t: &Arc<Mutex<VecDeque<String>>>| {
            t.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (base, listening_at) = match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(x)) => x,
            _ => {
                let _ = child.kill().await;
                bail!(
                    "server did not print `listening on` within {timeout:?}:\n{}",
                    tail_text(&log_tail)
                );
            }
        };
        ensure_loopback_url(&base)?;
        let http = reqwest::Client::new();
        let ready_at = loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break Instant::now();
            }
            if t0.elapsed() > timeout {
                let _ = child.kill().await;
                bail!(
                    "server not ready within {timeout:?}:\n{}",
                    tail_text(&log_tail)
                );
            }
            if let Ok(Some(st)) = child.try_wait() {
                bail!("server exited ({st}):\n{}", tail_text(&log_tail));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        Ok(ServerProc {
            child,
            pid,
            base,
            to_listening: listening_at - t0,
            to_ready: ready_at - t0,
            log_tail,
        })
    }

    pub fn rss(&self) -> Rss {
        read_rss(self.pid)
    }

    pub fn log_tail(&self) -> String {
        self.log_tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

pub fn read_rss(pid: u32) -> Rss {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Rss {
        vm_rss_kb: field("VmRSS:"),
        vm_hwm_kb: field("VmHWM:"),
    }
}
