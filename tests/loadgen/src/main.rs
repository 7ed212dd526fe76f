//! `loadgen`: a loopback-only, bounded load generator for the pushauth server (issue 9).
//!
//! It starts the real server binary with env configuration pointing the processors and
//! FCM at in-process mocks, drives one scenario with virtual devices on `pushauth-core`,
//! samples the server's RSS, kills the server, prints a table and writes JSON. With
//! `--instances N` (PostgreSQL) it starts N servers on one database and spreads the
//! webhooks and devices over them (`instances.rs`).

mod device;
mod env;
mod instances;
mod mocks;
mod pgcpu;
mod scenarios;
mod server;
mod stats;
mod webhooks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use serde::Serialize;

use device::{Admin, Device};
use env::*;
use instances::{InstanceFigures, Target, card_for};
use mocks::{MockFcm, MockProcessor, UpstreamFaults};
use scenarios::{cycle, ingest, pending_rss, startup, storm};
use server::{Backend, PgDb, Rss, ServerProc};
use stats::{Stats, StepSummary};
use webhooks::{Builder, Processor, Req};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// Webhook ingest with valid signatures (acks measured).
    Ingest,
    /// Webhook → push (mock FCM) → device fetch/verify/sign/decide → upstream result.
    Cycle,
    /// Many devices answering pending challenges at once.
    Storm,
    /// Server RSS with N pending challenges.
    PendingRss,
    /// Start to ready, N runs.
    Startup,
}

/// Load generator for pushauth (loopback only; bounded in count and time).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "enfuce")]
    processor: Processor,
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Requests (ingest), approvals (cycle, storm), challenges (pending-rss), runs (startup).
    #[arg(long)]
    requests: Option<usize>,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Hard cap on the whole run, set-up included; the run always stops.
    #[arg(long, default_value_t = 120)]
    duration_secs: u64,
    /// e.g. `invalid-sig=10%,duplicates=10%,slow-upstream=2s,upstream-500-for=5s`
    #[arg(long)]
    faults: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Server binary (default target/release/pushauth, then target/debug/pushauth).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// PostgreSQL server (loopback only); a fresh database is created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/")]
    pg_url: String,
    /// Cards/cardholders (each with one device) to spread the load over.
    #[arg(long)]
    cards: Option<usize>,
    /// Extra server environment, KEY=VALUE (repeatable), e.g. PUSHAUTH_WORKERS__IDLE_POLL_MS=100.
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// Acknowledgement window counted as an error when exceeded, in ms.
    #[arg(long, default_value_t = 2000)]
    ack_window_ms: u64,
    /// Server instances on one database (more than one: `--backend postgres`; scenarios
    /// ingest, cycle, storm). Webhook i goes to instance i % N, device j talks to j % N.
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Faults {
    invalid_sig: f64,
    duplicates: f64,
    slow_upstream_ms: Option<u64>,
    upstream_500_for_ms: Option<u64>,
}

fn parse_duration(v: &str) -> Result<Duration> {
    if let Some(ms) = v.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse()?));
    }
    if let Some(s) = v.strip_suffix('s') {
        return Ok(Duration::from_secs_f64(s.parse()?));
    }
    bail!("duration {v:?}: use e.g. 2s or 500ms")
}

fn parse_faults(spec: Option<&str>) -> Result<Faults> {
    let mut f = Faults::default();
    for part in spec
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("fault {part:?}: expected key=value"))?;
        let pct = || -> Result<f64> {
            let n: f64 = v.trim_end_matches('%').parse()?;
            if !(0.0..=100.0).contains(&n) {
                bail!("{k}: 0..100%");
            }
            Ok(n / 100.0)
        };
        match k {
            "invalid-sig" => f.invalid_sig = pct()?,
            "duplicates" => f.duplicates = pct()?,
            "slow-upstream" => f.slow_upstream_ms = Some(parse_duration(v)?.as_millis() as u64),
            "upstream-500-for" => {
                f.upstream_500_for_ms = Some(parse_duration(v)?.as_millis() as u64)
            }
            _ => bail!(
                "unknown fault {k:?} (invalid-sig, duplicates, slow-upstream, upstream-500-for)"
            ),
        }
    }
    Ok(f)
}

/// Whether request `i` gets a fault of rate `p` (evenly spread, deterministic).
fn pick(i: usize, p: f64) -> bool {
    p > 0.0 && ((i as f64 + 1.0) * p).floor() > (i as f64 * p).floor()
}

#[derive(Debug, Default, Serialize)]
struct ServerFigures {
    pid: u32,
    start_to_listening_ms: f64,
    start_to_ready_ms: f64,
    rss_after_ready_kb: u64,
    rss_end: Rss,
    rss_peak_sampled_kb: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: Scenario,
    processor: Processor,
    backend: Backend,
    requests: usize,
    concurrency: usize,
    faults: Faults,
    started_unix: i64,
    server_bin: String,
    elapsed_secs: f64,
    measured_secs: f64,
    throughput_step: String,
    completed: usize,
    throughput_per_sec: f64,
    steps: BTreeMap<String, StepSummary>,
    errors: BTreeMap<String, u64>,
    unexpected_errors: u64,
    injected: BTreeMap<String, u64>,
    extra: BTreeMap<String, serde_json::Value>,
    /// Instance 0 (the only one without `--instances`).
    server: ServerFigures,
    /// Every instance: requests served, CPU, RSS.
    instances: Vec<InstanceFigures>,
    timed_out: bool,
    fatal: Option<String>,
}

/// What the scenario shares with the report even when the hard cap cuts it short.
#[derive(Debug, Default)]
struct Shared {
    stats: Stats,
    measure_start: std::sync::Mutex<Option<Instant>>,
    measure_end: std::sync::Mutex<Option<Instant>>,
    server: std::sync::Mutex<ServerFigures>,
    extra: std::sync::Mutex<BTreeMap<String, serde_json::Value>>,
    /// The running instances, in index order (none in the startup scenario).
    instances: std::sync::Mutex<Vec<instances::Tracked>>,
    /// Sampled RSS peak of instance 0.
    rss_peak: AtomicU64,
    /// Loadgen CPU ticks at the start of the measured phase.
    cpu_at_start: std::sync::Mutex<Option<u64>>,
    /// PostgreSQL server CPU ticks at the start of the measured phase.
    pg_cpu_at_start: std::sync::Mutex<Option<u64>>,
}

/// utime + stime of a process in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after the comm field: state is f[0]; utime is field 14 overall = f[11], stime f[12]
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

impl Shared {
    fn start_measure(&self) {
        self.instances_start();
        *self
            .cpu_at_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cpu_ticks("self"));
        *self
            .pg_cpu_at_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = pgcpu::ticks();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        self.extra("loadavg_at_start", serde_json::json!(load.trim()));
        *self
            .measure_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }
    fn end_measure(&self) {
        let now = Instant::now();
        *self
            .measure_end
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
        let start = *self
            .measure_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cpu = *self
            .cpu_at_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Summed over the instances.
        let server_cpu = self.instances_end();
        if let (Some(t0), Some(l0), Some(server_cpu)) = (start, cpu, server_cpu) {
            let secs = now.saturating_duration_since(t0).as_secs_f64();
            let own_cpu = cpu_ticks("self").saturating_sub(l0) as f64 / 100.0;
            if secs > 0.0 {
                self.extra("server_cpu_secs_measured", serde_json::json!(server_cpu));
                self.extra(
                    "server_cpu_cores_busy",
                    serde_json::json!(server_cpu / secs),
                );
                self.extra("loadgen_cpu_cores_busy", serde_json::json!(own_cpu / secs));
                let pg0 = *self
                    .pg_cpu_at_start
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let (Some(p0), Some(p1)) = (pg0, pgcpu::ticks()) {
                    let pg = p1.saturating_sub(p0) as f64 / 100.0;
                    self.extra("postgres_cpu_secs_measured", serde_json::json!(pg));
                    self.extra("postgres_cpu_cores_busy", serde_json::json!(pg / secs));
                }
            }
        }
    }
    fn extra(&self, k: &str, v: serde_json::Value) {
        self.extra
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(k.to_owned(), v);
    }
}

async fn run_scenario(
    cli: &Cli,
    shared: &Arc<Shared>,
    bin: &Path,
    pg: Option<&PgDb>,
    faults: &Faults,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    if cli.scenario == Scenario::Startup {
        return startup(cli, shared, bin, n, deadline).await;
    }
    let env = start_env(
        cli,
        shared,
        bin,
        pg,
        faults,
        cli.scenario == Scenario::Cycle,
    )
    .await?;
    let r = match cli.scenario {
        Scenario::Ingest => ingest(cli, shared, &env, faults, n, deadline).await,
        Scenario::Cycle => cycle(cli, shared, &env, faults, n, deadline).await,
        Scenario::Storm => storm(cli, shared, &env, n, deadline).await,
        Scenario::PendingRss => pending_rss(cli, shared, &env, n, deadline).await,
        Scenario::Startup => Ok(()),
    };
    if r.is_err() {
        eprintln!("server log tail:\n{}", env.log_tails());
    }
    env.stop(shared).await;
    r
}

fn default_requests(s: Scenario) -> usize {
    match s {
        Scenario::Ingest => 10_000,
        Scenario::Cycle | Scenario::Storm => 2_000,
        Scenario::PendingRss => 10_000,
        Scenario::Startup => 5,
    }
}

fn throughput_step(s: Scenario) -> &'static str {
    match s {
        Scenario::Ingest => "webhook_ack",
        Scenario::Cycle => "approval",
        Scenario::Storm => "decision",
        Scenario::PendingRss => "create",
        Scenario::Startup => "fresh_start_to_ready",
    }
}

fn print_table(r: &Report) {
    println!(
        "\nloadgen {:?}  processor={}  backend={:?}  requests={}  concurrency={}  faults={:?}",
        r.scenario,
        r.processor.name(),
        r.backend,
        r.requests,
        r.concurrency,
        r.faults
    );
    println!(
        "elapsed {:.2} s (measured {:.2} s)   {} completed: {}   throughput {:.1}/s{}",
        r.elapsed_secs,
        r.measured_secs,
        r.throughput_step,
        r.completed,
        r.throughput_per_sec,
        if r.timed_out {
            "   [HARD CAP REACHED]"
        } else {
            ""
        }
    );
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "step", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"
    );
    for (k, s) in &r.steps {
        println!(
            "{:<28} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            k, s.count, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.mean_ms
        );
    }
    if r.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors ({}):", r.unexpected_errors);
        for (k, v) in &r.errors {
            println!("  {k}: {v}");
        }
    }
    for (k, v) in &r.injected {
        println!("injected and handled as expected: {k}: {v}");
    }
    for (k, v) in &r.extra {
        println!("{k}: {v}");
    }
    println!(
        "server: start→listening {:.0} ms, start→ready {:.0} ms, RSS after ready {:.1} MB, RSS at end {:.1} MB, VmHWM {:.1} MB, sampled peak {:.1} MB",
        r.server.start_to_listening_ms,
        r.server.start_to_ready_ms,
        r.server.rss_after_ready_kb as f64 / 1024.0,
        r.server.rss_end.vm_rss_kb as f64 / 1024.0,
        r.server.rss_end.vm_hwm_kb as f64 / 1024.0,
        r.server.rss_peak_sampled_kb as f64 / 1024.0
    );
    instances::print_instances(&r.instances);
    if let Some(f) = &r.fatal {
        println!("FATAL: {f}");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match real_main(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn real_main(cli: Cli) -> Result<std::process::ExitCode> {
    let faults = parse_faults(cli.faults.as_deref())?;
    if cli.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if cli.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if cli.instances > 1 {
        if cli.backend != Backend::Postgres {
            bail!(
                "--instances {} needs --backend postgres: instances share one PostgreSQL database (a SQLite file belongs to one server)",
                cli.instances
            );
        }
        if matches!(cli.scenario, Scenario::Startup | Scenario::PendingRss) {
            bail!(
                "--instances {} works with the ingest, cycle and storm scenarios; {:?} measures one server (run it without --instances)",
                cli.instances,
                cli.scenario
            );
        }
    }
    if cli.backend == Backend::Postgres {
        server::ensure_loopback_url(&cli.pg_url)?;
    }
    let bin = server::find_server_bin(cli.server_bin.as_deref(), &workspace_root())?;
    let n = cli
        .requests
        .unwrap_or_else(|| default_requests(cli.scenario));
    let started = Instant::now();
    let started_unix = device::now();
    let deadline = started + Duration::from_secs(cli.duration_secs);
    let shared = Arc::new(Shared::default());

    let pg = match (cli.backend, cli.scenario) {
        (Backend::Postgres, s) if s != Scenario::Startup => Some(PgDb::create(&cli.pg_url).await?),
        _ => None,
    };
    // Hard cap: the scenario future is dropped at the deadline (the server is killed
    // with it); a little slack lets an orderly end report first.
    let outcome = tokio::time::timeout_at(
        (deadline + Duration::from_secs(2)).into(),
        run_scenario(&cli, &shared, &bin, pg.as_ref(), &faults, n, deadline),
    )
    .await;
    if let Some(pg) = &pg
        && let Err(e) = pg.drop_db().await
    {
        eprintln!("loadgen: could not drop database {}: {e:#}", pg.name);
    }
    let (timed_out, fatal) = match outcome {
        Ok(Ok(())) => (Instant::now() > deadline, None),
        Ok(Err(e)) => (false, Some(format!("{e:#}"))),
        Err(_) => (true, None),
    };
    let step = throughput_step(cli.scenario);
    let completed = shared.stats.count(step);
    let ms = *shared
        .measure_start
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let me = *shared
        .measure_end
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let measured = match (ms, me) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        (Some(s), None) => s.elapsed(),
        _ => Duration::ZERO,
    };
    for (secs, per_op) in [
        ("server_cpu_secs_measured", "server_cpu_ms_per_op"),
        ("postgres_cpu_secs_measured", "postgres_cpu_ms_per_op"),
    ] {
        let cpu = shared
            .extra
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(secs)
            .and_then(serde_json::Value::as_f64);
        if let Some(cpu) = cpu
            && completed > 0
        {
            shared.extra(per_op, serde_json::json!(cpu * 1000.0 / completed as f64));
        }
    }
    let errors = shared.stats.errors();
    let unexpected: u64 = errors.values().sum::<u64>() + u64::from(fatal.is_some());
    let mut server = std::mem::take(
        &mut *shared
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    server.rss_peak_sampled_kb = shared.rss_peak.load(Ordering::Relaxed);
    let instances = shared.instance_figures(completed);
    let report = Report {
        scenario: cli.scenario,
        processor: cli.processor,
        backend: cli.backend,
        requests: n,
        concurrency: cli.concurrency,
        faults,
        started_unix,
        server_bin: bin.display().to_string(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        measured_secs: measured.as_secs_f64(),
        throughput_step: step.to_owned(),
        completed,
        throughput_per_sec: if measured.is_zero() || cli.scenario == Scenario::Startup {
            0.0
        } else {
            completed as f64 / measured.as_secs_f64()
        },
        steps: shared.stats.summaries(),
        errors,
        unexpected_errors: unexpected,
        injected: shared.stats.injected_counts(),
        extra: std::mem::take(
            &mut *shared
                .extra
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ),
        server,
        instances,
        timed_out,
        fatal,
    };
    print_table(&report);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(if report.unexpected_errors == 0 && report.completed > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
