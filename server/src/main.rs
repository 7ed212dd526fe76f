//! `pushauth`: the command line. Everything it does lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pushauth_server::config::{Config, LogFormat};
use pushauth_server::services::admin_keys;
use pushauth_server::{Server, keyring, open_store};

/// mimalloc instead of glibc's allocator: glibc's `malloc`/`free` (arena locking,
/// `malloc_consolidate`) were ~11 % of the server's CPU in the approval cycle; with
/// mimalloc the cycle did 8-20 % more approvals/s at 9-15 % less CPU each, for ~14 MB
/// more resident memory (docs/benchmarks.md, fourth round).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// pushauth: push approval of card payments (3-D Secure) for issuers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML). Environment variables PUSHAUTH_<SECTION>__<KEY> and
    /// DATABASE_URL override it; see docs/configuration.md.
    #[arg(long, short, global = true, env = "PUSHAUTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API and workers). With no configuration: SQLite in ./data,
    /// listening on 127.0.0.1:8080.
    Serve {
        /// Once ready, write {"listen","public_url","pid","storage","server_kid"} as
        /// JSON to this file (atomically), e.g. to learn the port chosen for
        /// `listen = "127.0.0.1:0"`. Removed at a clean shutdown.
        #[arg(long, value_name = "PATH")]
        ready_file: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Re-compute the audit log's hash chain and report whether it is intact.
    AuditVerify,
    /// Admin API keys: create (printed once), list, revoke.
    AdminKey {
        #[command(subcommand)]
        action: AdminKeyAction,
    },
    /// The server's challenge-signing keys.
    ServerKey {
        #[command(subcommand)]
        action: ServerKeyAction,
    },
    /// The Web Push VAPID key (docs/push.md): `generate --out FILE` writes a new one;
    /// `show` prints the public key of `[push.webpush] vapid_key_file` for the apps.
    VapidKey {
        #[command(subcommand)]
        action: VapidKeyAction,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Health probe for container and service managers: GET /readyz on this
    /// server and exit 0 only on 200. Default address: the configured listen
    /// address (0.0.0.0 / :: probed on loopback).
    Probe {
        /// host:port to probe instead of the configured listen address.
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum AdminKeyAction {
    /// Create a key and print it once.
    Create {
        /// A name for the key (shown in the audit trail as admin:<name>).
        #[arg(long)]
        name: String,
        /// `full` (default) or `read` (GET requests only).
        #[arg(long, default_value = "full", value_parser = parse_scope)]
        scope: pushauth_store::AdminScope,
    },
    /// List every key (never the keys themselves) as JSON lines.
    List,
    /// Revoke a key by id; refused at once by every running instance.
    Revoke {
        /// The key's id (see `list`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ServerKeyAction {
    /// List the keyring (kid, active or retired) as JSON lines.
    List,
    /// Make a new active key; the current one is kept for the devices that pinned it.
    /// Restart every instance afterwards (docs/operations.md).
    Rotate,
    /// Re-wrap every key under a new key-encryption key (read from FILE); the current
    /// one comes from the configuration. Start the servers with the new one afterwards.
    Rewrap {
        /// File with the new key-encryption key (32 bytes, base64url or hex).
        #[arg(long)]
        new_kek_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum VapidKeyAction {
    /// Write a new P-256 key (PKCS#8 PEM, mode 0600, never overwrites) and print its
    /// public key.
    Generate {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key (base64url) of the configured key.
    Show,
}

fn parse_scope(s: &str) -> Result<pushauth_store::AdminScope, String> {
    pushauth_store::AdminScope::parse(s).ok_or_else(|| "expected full or read".into())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Registers the SIGINT and SIGTERM handlers at once and returns what waits for either:
/// registered before the server starts, a signal during start-up stops the start-up,
/// and one between the ready file and the wait shuts the server down gracefully
/// instead of killing the process.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind| signal(kind).map_err(|e| format!("signal handler: {e}"));
        let (mut int, mut term) = (
            handler(SignalKind::interrupt())?,
            handler(SignalKind::terminate())?,
        );
        Ok(async move {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

async fn run(cli: Cli) -> Result<(), String> {
    let config =
        Config::load(cli.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    init_logging(config.server.log_format);
    for key in &config.ignored_env {
        tracing::warn!(
            variable = %key,
            "ignored environment variable: settings are PUSHAUTH_<SECTION>__<KEY> (docs/configuration.md)"
        );
    }
    match cli.command {
        Command::Serve { ready_file } => {
            let stop = shutdown_signal()?;
            tokio::pin!(stop);
            // A signal while starting (a database that does not answer, a migration
            // waiting on another instance's lock) stops the start-up.
            let server = tokio::select! {
                started = Server::start(config) => started.map_err(|e| e.to_string())?,
                () = &mut stop => {
                    tracing::info!("stopped while starting");
                    return Ok(());
                }
            };
            tracing::info!(
                addr = %server.addr,
                storage = server.state.store.backend(),
                issuer = %server.state.issuer,
                server_kid = %server.state.server_kid,
                "pushauth is listening"
            );
            eprintln!(
                "pushauth listening on http://{} — {}",
                server.addr, server.admin_key_note
            );
            let ready = match ready_file {
                Some(path) => Some(
                    pushauth_server::ready::write(&path, &server)
                        .map_err(|e| format!("writing the ready file {}: {e}", path.display()))?,
                ),
                None => None,
            };
            stop.await;
            tracing::info!("shutting down");
            server.shutdown().await;
            if let Some(path) = ready {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&config).await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            eprintln!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::AuditVerify => {
            let store = open_store(&config).await.map_err(|e| e.to_string())?;
            let check = store.audit_verify().await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&check).unwrap_or_default());
            match check {
                pushauth_store::ChainCheck::Intact { .. } => Ok(()),
                pushauth_store::ChainCheck::Broken { seq } => {
                    Err(format!("audit chain broken at entry {seq}"))
                }
            }
        }
        Command::AdminKey { action } => {
            let store = open_store(&config).await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            let store = store.as_ref();
            match action {
                AdminKeyAction::Create { name, scope } => {
                    let created = admin_keys::create_in(store, "cli", name, scope)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("{}", created.key);
                }
                AdminKeyAction::List => {
                    for key in store.admin_key_list().await.map_err(|e| e.to_string())? {
                        println!("{}", serde_json::to_string(&key).unwrap_or_default());
                    }
                }
                AdminKeyAction::Revoke { id } => {
                    admin_keys::revoke_in(store, "cli", id)
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!("admin key {id} revoked");
                }
            }
            Ok(())
        }
        Command::ServerKey { action } => {
            let store = open_store(&config).await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            let kek = keyring::Kek::from_config(&config.security).map_err(|e| e.to_string())?;
            match action {
                ServerKeyAction::List => {
                    let ring = keyring::load(store.as_ref(), kek.as_ref())
                        .await
                        .map_err(|e| e.to_string())?;
                    for k in ring.keys() {
                        let line = serde_json::json!({
                            "kid": k.kid,
                            "created_at": k.created_at,
                            "retired_at": k.retired_at,
                        });
                        println!("{line}");
                    }
                }
                ServerKeyAction::Rotate => {
                    let kid = keyring::rotate(store.as_ref(), kek.as_ref())
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!("new active server key {kid}; restart every instance");
                }
                ServerKeyAction::Rewrap { new_kek_file } => {
                    let text = std::fs::read_to_string(&new_kek_file)
                        .map_err(|e| format!("{}: {e}", new_kek_file.display()))?;
                    let new = keyring::Kek::parse(&text)?;
                    let n = keyring::rewrap_all(store.as_ref(), kek.as_ref(), &new)
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!("{n} server keys re-wrapped; configure the new key-encryption key");
                }
            }
            Ok(())
        }
        Command::VapidKey { action } => {
            use pushauth_server::push::vapid;
            let public = match action {
                VapidKeyAction::Generate { out } => vapid::write_new(&out)?,
                VapidKeyAction::Show => {
                    let file = config
                        .push
                        .webpush
                        .vapid_key_file
                        .as_ref()
                        .ok_or("push.webpush.vapid_key_file is not set (docs/push.md)")?;
                    vapid::public_key_of_file(file)?
                }
            };
            println!("{public}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", pushauth_server::routes::ops::OPENAPI);
            Ok(())
        }
        Command::Probe { addr, timeout_ms } => {
            let target = addr.unwrap_or_else(|| {
                pushauth_server::ready::probe_target(config.server.listen).to_string()
            });
            pushauth_server::ready::probe(&target, std::time::Duration::from_millis(timeout_ms))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushauth: {e}");
            ExitCode::FAILURE
        }
    }
}
