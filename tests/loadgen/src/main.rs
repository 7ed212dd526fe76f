//! `loadgen`: a loopback-only, bounded load generator for the pushauth server (issue 9).
//!
//! It starts the real server binary with env configuration pointing the processors and
//! FCM at in-process mocks, drives one scenario with virtual devices on `pushauth-core`,
//! samples the server's RSS, kills the server, prints a table and writes JSON.

mod device;
mod mocks;
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
use mocks::{MockFcm, MockProcessor, UpstreamFaults};
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
    server: ServerFigures,
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
    pid: AtomicU64,
    rss_peak: AtomicU64,
    /// (server CPU ticks, loadgen CPU ticks) at the start of the measured phase.
    cpu_at_start: std::sync::Mutex<Option<(u64, u64)>>,
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
        let pid = self.pid.load(Ordering::Relaxed).to_string();
        *self
            .cpu_at_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((cpu_ticks(&pid), cpu_ticks("self")));
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
        if let (Some(t0), Some((s0, l0))) = (start, cpu) {
            let pid = self.pid.load(Ordering::Relaxed).to_string();
            let secs = now.saturating_duration_since(t0).as_secs_f64();
            let server_cpu = cpu_ticks(&pid).saturating_sub(s0) as f64 / 100.0;
            let own_cpu = cpu_ticks("self").saturating_sub(l0) as f64 / 100.0;
            if secs > 0.0 && pid != "0" {
                self.extra("server_cpu_secs_measured", serde_json::json!(server_cpu));
                self.extra(
                    "server_cpu_cores_busy",
                    serde_json::json!(server_cpu / secs),
                );
                self.extra("loadgen_cpu_cores_busy", serde_json::json!(own_cpu / secs));
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

struct Env {
    server: ServerProc,
    mock: Arc<MockProcessor>,
    fcm: Option<Arc<MockFcm>>,
    admin: Admin,
    builder: Arc<Builder>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    sampler: tokio::task::JoinHandle<()>,
}

impl Env {
    async fn stop(self, shared: &Shared) {
        let rss = self.server.rss();
        shared
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rss_end = rss;
        self.sampler.abort();
        self.server.kill().await;
    }
}

fn base_env(cli: &Cli, pg: Option<&PgDb>, mock: &str) -> Result<Vec<(String, String)>> {
    let mut env = webhooks::provider_env(mock)?;
    env.push((
        "PUSHAUTH_CHALLENGES__MAX_PENDING_PER_CARDHOLDER".into(),
        "1000000".into(),
    ));
    if let Some(pg) = pg {
        env.push(("DATABASE_URL".into(), pg.url.clone()));
    }
    for kv in &cli.server_env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--server-env {kv:?}: expected KEY=VALUE"))?;
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(env)
}

async fn start_env(
    cli: &Cli,
    shared: &Arc<Shared>,
    bin: &Path,
    pg: Option<&PgDb>,
    faults: &Faults,
    push: bool,
) -> Result<Env> {
    let mock = Arc::new(
        MockProcessor::start(UpstreamFaults {
            slow: faults.slow_upstream_ms.map(Duration::from_millis),
            fail_for: faults.upstream_500_for_ms.map(Duration::from_millis),
        })
        .await?,
    );
    let dir = tempfile::tempdir()?;
    let mut env = base_env(cli, pg, &mock.url)?;
    let fcm = if push {
        let fcm = MockFcm::start().await?;
        let pem_path = workspace_root()
            .join("server/tests/push/fixtures/test-only-fcm-service-account-key.pem");
        let pem = std::fs::read_to_string(&pem_path)
            .with_context(|| format!("read {}", pem_path.display()))?;
        let sa = dir.path().join("fcm-service-account.json");
        std::fs::write(&sa, fcm.service_account_json(&pem))?;
        env.push((
            "PUSHAUTH_PUSH__FCM_SERVICE_ACCOUNT_FILE".into(),
            sa.display().to_string(),
        ));
        env.push(("PUSHAUTH_PUSH__FCM_BASE_URL".into(), fcm.url.clone()));
        Some(Arc::new(fcm))
    } else {
        None
    };
    let server = ServerProc::start(bin, dir.path(), &env, Duration::from_secs(30)).await?;
    shared.pid.store(u64::from(server.pid), Ordering::Relaxed);
    {
        let mut s = shared
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.pid = server.pid;
        s.start_to_listening_ms = server.to_listening.as_secs_f64() * 1000.0;
        s.start_to_ready_ms = server.to_ready.as_secs_f64() * 1000.0;
        s.rss_after_ready_kb = server.rss().vm_rss_kb;
    }
    let sampler = {
        let (sh, pid) = (shared.clone(), server.pid);
        tokio::spawn(async move {
            loop {
                let r = server::read_rss(pid);
                sh.rss_peak.fetch_max(r.vm_rss_kb, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.concurrency * 2 + 8)
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = Admin {
        base: server.base.clone(),
        http: http.clone(),
    };
    let builder = Arc::new(Builder::new(cli.processor, &mock.url)?);
    Ok(Env {
        server,
        mock,
        fcm,
        admin,
        builder,
        http,
        _dir: dir,
        sampler,
    })
}

#[derive(Debug)]
struct Card {
    k: usize,
    cardholder: String,
    device: Device,
    token: Option<String>,
}

/// `n` cardholders, each linked to its card and with one enrolled device (with a push
/// token when `push`), set up `conc` at a time.
async fn setup_cards(
    env: &Env,
    processor: Processor,
    n: usize,
    push: bool,
    conc: usize,
) -> Result<Vec<Card>> {
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    while k < n {
        let mut set = tokio::task::JoinSet::new();
        for j in k..(k + conc.max(1)).min(n) {
            let admin = env.admin.clone();
            set.spawn(async move {
                let key = processor.link_key(j);
                let token =
                    push.then(|| format!("load-token-{j}-{}", uuid::Uuid::new_v4().simple()));
                let link = key.as_deref().map(|key| (processor.name(), key));
                let (cardholder, device) =
                    admin.cardholder_with_device(link, token.as_deref()).await?;
                Ok::<_, anyhow::Error>(Card {
                    k: j,
                    cardholder,
                    device,
                    token,
                })
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
        k += conc.max(1);
    }
    out.sort_by_key(|c| c.k);
    Ok(out)
}

async fn send(http: &reqwest::Client, base: &str, r: &Req) -> Result<(u16, Duration)> {
    let t = Instant::now();
    let mut b = http
        .request(r.method.clone(), format!("{base}{}", r.path))
        .body(r.body.clone());
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = b.send().await?;
    let status = resp.status().as_u16();
    let _ = resp.bytes().await?;
    Ok((status, t.elapsed()))
}

/// One webhook with the faults that apply to request `i`; returns whether the real
/// (valid) webhook was acknowledged.
#[allow(
    clippy::too_many_arguments,
    reason = "one webhook, every input named at the call"
)]
async fn webhook_with_faults(
    http: &reqwest::Client,
    base: &str,
    builder: &Builder,
    stats: &Stats,
    faults: &Faults,
    i: usize,
    reference: &str,
    card: &Card,
    window: Duration,
) -> Result<bool> {
    let req = builder.build(reference, card.k, &card.cardholder, true)?;
    let (status, took) = send(http, base, &req).await?;
    stats.record("webhook_ack", took);
    if took > window {
        stats.error("ack_over_window");
    }
    let ok = (200..300).contains(&status);
    if !ok {
        stats.error(format!("webhook_http_{status}"));
    }
    if pick(i, faults.invalid_sig) {
        let bad = builder.build(
            &uuid::Uuid::new_v4().to_string(),
            card.k,
            &card.cardholder,
            false,
        )?;
        let (s, t) = send(http, base, &bad).await?;
        stats.record("invalid_sig_ack", t);
        // Treezor's documented rule is 5xx for a bad signature; the others answer 4xx.
        let refused = if builder.processor == Processor::Treezor {
            s == 500
        } else {
            (400..500).contains(&s)
        };
        if refused {
            stats.injected("invalid_sig_refused");
        } else {
            stats.error(format!("invalid_sig_answered_{s}"));
        }
    }
    if pick(i, faults.duplicates) {
        let (s, t) = send(http, base, &req).await?;
        stats.record("duplicate_ack", t);
        if t > window {
            stats.error("ack_over_window");
        }
        // Same answer as the first delivery (the generic API answers 200 instead of 201).
        if s == status || ((200..300).contains(&s) && (200..300).contains(&status)) {
            stats.injected("duplicate_acknowledged");
        } else {
            stats.error(format!("duplicate_answered_{s}_first_{status}"));
        }
    }
    Ok(ok)
}

async fn ingest(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    faults: &Faults,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    let cards =
        Arc::new(setup_cards(env, cli.processor, cli.cards.unwrap_or(16), false, 16).await?);
    let next = Arc::new(AtomicUsize::new(0));
    env.mock.arm_faults();
    shared.start_measure();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..cli.concurrency {
        let (sh, cards, next, http, base, b, f) = (
            shared.clone(),
            cards.clone(),
            next.clone(),
            env.http.clone(),
            env.server.base.clone(),
            env.builder.clone(),
            faults.clone(),
        );
        let window = Duration::from_millis(cli.ack_window_ms);
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let card = &cards[i % cards.len()];
                let reference = uuid::Uuid::new_v4().to_string();
                if let Err(e) = webhook_with_faults(
                    &http, &base, &b, &sh.stats, &f, i, &reference, card, window,
                )
                .await
                {
                    sh.stats.error(format!("transport: {e}"));
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    shared.end_measure();
    Ok(())
}

async fn wait_upstream(
    shared: &Shared,
    mock: &MockProcessor,
    sent: &[(String, Instant, Instant)],
    deadline: Instant,
) {
    let grace = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = sent
            .iter()
            .filter(|(r, _, _)| mock.delivered_at(r).is_none())
            .count();
        if missing == 0 || Instant::now() >= deadline.min(grace) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lost = 0u64;
    let mut repeated = 0u64;
    let mut last: Option<Instant> = None;
    for (r, t0, t_dec) in sent {
        match mock.delivered_at(r) {
            Some((at, n)) => {
                shared
                    .stats
                    .record("decision_to_upstream", at.saturating_duration_since(*t_dec));
                if t0 != t_dec {
                    shared
                        .stats
                        .record("webhook_to_upstream", at.saturating_duration_since(*t0));
                }
                if n > 1 {
                    repeated += 1;
                }
                last = Some(last.map_or(at, |l| l.max(at)));
            }
            None => lost += 1,
        }
    }
    if lost > 0 {
        shared.stats.error("lost_result");
        for _ in 1..lost {
            shared.stats.error("lost_result");
        }
    }
    let (a500, tokens, unknown) = mock.counters();
    shared.extra("upstream_results_expected", serde_json::json!(sent.len()));
    shared.extra("upstream_results_lost", serde_json::json!(lost));
    shared.extra(
        "upstream_results_delivered_more_than_once",
        serde_json::json!(repeated),
    );
    shared.extra("upstream_answered_500", serde_json::json!(a500));
    shared.extra("upstream_token_calls", serde_json::json!(tokens));
    if unknown > 0 {
        shared.stats.error("upstream_unrecognised_call");
    }
    if let (Some(l), Some(s)) = (
        last,
        *shared
            .measure_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ) {
        let secs = l.saturating_duration_since(s).as_secs_f64();
        if secs > 0.0 {
            shared.extra(
                "upstream_results_per_sec",
                serde_json::json!((sent.len() as u64 - lost) as f64 / secs),
            );
        }
    }
}

async fn cycle(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    faults: &Faults,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    let fcm = env.fcm.clone().ok_or_else(|| anyhow!("no FCM mock"))?;
    let cards = setup_cards(
        env,
        cli.processor,
        cli.cards.unwrap_or(cli.concurrency),
        true,
        16,
    )
    .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(std::sync::Mutex::new(
        Vec::<(String, Instant, Instant)>::new(),
    ));
    env.mock.arm_faults();
    shared.start_measure();
    let mut set = tokio::task::JoinSet::new();
    for card in cards {
        let mut rx = fcm.register(card.token.as_deref().unwrap_or_default());
        let (sh, next, http, base, b, f, sent) = (
            shared.clone(),
            next.clone(),
            env.http.clone(),
            env.server.base.clone(),
            env.builder.clone(),
            faults.clone(),
            sent.clone(),
        );
        let window = Duration::from_millis(cli.ack_window_ms);
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let reference = uuid::Uuid::new_v4().to_string();
                let t0 = Instant::now();
                let r: Result<()> = async {
                    if !webhook_with_faults(
                        &http, &base, &b, &sh.stats, &f, i, &reference, &card, window,
                    )
                    .await?
                    {
                        return Ok(());
                    }
                    let wait = deadline
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_secs(10));
                    let push = match tokio::time::timeout(wait, rx.recv()).await {
                        Ok(Some(p)) => p,
                        _ => {
                            sh.stats.error("push_not_received");
                            return Ok(());
                        }
                    };
                    sh.stats
                        .record("webhook_to_push", push.at.saturating_duration_since(t0));
                    let (c, fetch) = card.device.challenge(&push.cid).await?;
                    sh.stats.record("device_fetch_verify", fetch);
                    let (jws, output) = card.device.sign_approval(&c)?;
                    let t_dec = Instant::now();
                    let a = card.device.post_decision(&push.cid, &jws, output).await?;
                    sh.stats.record("decision_post", a.took);
                    if a.status == 200 {
                        sh.stats
                            .record("approval", t_dec.saturating_duration_since(t0) + a.took);
                        sent.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((reference.clone(), t0, t_dec));
                    } else {
                        sh.stats.error(format!("decision_http_{}", a.status));
                    }
                    Ok(())
                }
                .await;
                if let Err(e) = r {
                    sh.stats.error(format!("cycle: {e}"));
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    shared.end_measure();
    let sent = std::mem::take(
        &mut *sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    wait_upstream(shared, &env.mock, &sent, deadline).await;
    let (sends, dismisses, unknown, tokens) = fcm.counters();
    shared.extra("fcm_sends", serde_json::json!(sends));
    shared.extra("fcm_dismisses", serde_json::json!(dismisses));
    shared.extra("fcm_token_calls", serde_json::json!(tokens));
    if unknown > 0 {
        shared.stats.error("push_to_unknown_token");
    }
    Ok(())
}

/// Creates `n` pending challenges spread over `cards` (webhooks or generic API).
async fn create_pending(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    cards: &Arc<Vec<Card>>,
    n: usize,
    deadline: Instant,
) -> Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let refs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..cli.concurrency {
        let (sh, cards, next, http, base, b, refs) = (
            shared.clone(),
            cards.clone(),
            next.clone(),
            env.http.clone(),
            env.server.base.clone(),
            env.builder.clone(),
            refs.clone(),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let card = &cards[i % cards.len()];
                let reference = uuid::Uuid::new_v4().to_string();
                let r = async {
                    let req = b.build(&reference, card.k, &card.cardholder, true)?;
                    send(&http, &base, &req).await
                }
                .await;
                match r {
                    Ok((s, t)) if (200..300).contains(&s) => {
                        sh.stats.record("create", t);
                        refs.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(reference);
                    }
                    Ok((s, _)) => sh.stats.error(format!("create_http_{s}")),
                    Err(e) => sh.stats.error(format!("create: {e}")),
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let v = std::mem::take(
        &mut *refs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(v)
}

async fn storm(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    let cards = Arc::new(
        setup_cards(
            env,
            cli.processor,
            cli.cards.unwrap_or(cli.concurrency),
            false,
            16,
        )
        .await?,
    );
    let created = create_pending(cli, shared, env, &cards, n, deadline).await?;
    shared.extra("pending_created", serde_json::json!(created.len()));
    let cards = Arc::try_unwrap(cards).map_err(|_| anyhow!("cards still shared"))?;
    let sent = Arc::new(std::sync::Mutex::new(
        Vec::<(String, Instant, Instant)>::new(),
    ));
    env.mock.arm_faults();
    shared.start_measure();
    let mut set = tokio::task::JoinSet::new();
    // Every device lists its pending challenges and answers them all, concurrently.
    for card in cards {
        let (sh, sent) = (shared.clone(), sent.clone());
        set.spawn(async move {
            let r: Result<()> = async {
                loop {
                    if Instant::now() >= deadline {
                        return Ok(());
                    }
                    let a = card
                        .device
                        .call("GET", "/v1/device/challenges", None)
                        .await?;
                    sh.stats.record("device_list", a.took);
                    if a.status != 200 {
                        bail!("list: HTTP {}", a.status);
                    }
                    let items = a.body["challenges"].as_array().cloned().unwrap_or_default();
                    if items.is_empty() {
                        return Ok(());
                    }
                    for it in items {
                        if Instant::now() >= deadline {
                            return Ok(());
                        }
                        let id = it["id"].as_str().unwrap_or_default().to_owned();
                        let (c, _) = card.device.challenge(&id).await?;
                        let reference = c.claims().txn.reference().as_str().to_owned();
                        let (jws, output) = card.device.sign_approval(&c)?;
                        let t = Instant::now();
                        let d = card.device.post_decision(&id, &jws, output).await?;
                        sh.stats.record("decision_post", d.took);
                        if d.status == 200 {
                            sh.stats.record("decision", d.took);
                            sent.lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((reference, t, t));
                        } else {
                            sh.stats.error(format!("decision_http_{}", d.status));
                        }
                    }
                }
            }
            .await;
            if let Err(e) = r {
                sh.stats.error(format!("storm: {e}"));
            }
        });
    }
    while set.join_next().await.is_some() {}
    shared.end_measure();
    let sent = std::mem::take(
        &mut *sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    wait_upstream(shared, &env.mock, &sent, deadline).await;
    Ok(())
}

async fn pending_rss(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    let cards =
        Arc::new(setup_cards(env, cli.processor, cli.cards.unwrap_or(100), false, 16).await?);
    let before = env.server.rss();
    shared.extra("rss_before_kb", serde_json::json!(before.vm_rss_kb));
    shared.start_measure();
    let created = create_pending(cli, shared, env, &cards, n, deadline).await?;
    shared.end_measure();
    tokio::time::sleep(
        Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
    let after = env.server.rss();
    shared.extra("pending_created", serde_json::json!(created.len()));
    shared.extra("rss_with_pending_kb", serde_json::json!(after.vm_rss_kb));
    shared.extra("hwm_with_pending_kb", serde_json::json!(after.vm_hwm_kb));
    // The server keeps them pending: a device sees them all (one list call per card).
    let mut listed = 0usize;
    for c in cards.iter().take(3) {
        let a = c.device.call("GET", "/v1/device/challenges", None).await?;
        listed += a.body["challenges"].as_array().map_or(0, Vec::len);
    }
    shared.extra("pending_listed_first_3_cards", serde_json::json!(listed));
    Ok(())
}

async fn startup(
    cli: &Cli,
    shared: &Arc<Shared>,
    bin: &Path,
    runs: usize,
    deadline: Instant,
) -> Result<()> {
    let mock = MockProcessor::start(UpstreamFaults::default()).await?;
    shared.start_measure();
    for _ in 0..runs {
        if Instant::now() >= deadline {
            break;
        }
        let pg = match cli.backend {
            Backend::Postgres => Some(PgDb::create(&cli.pg_url).await?),
            Backend::Sqlite => None,
        };
        let r: Result<()> = async {
            let dir = tempfile::tempdir()?;
            let env = base_env(cli, pg.as_ref(), &mock.url)?;
            let s = ServerProc::start(bin, dir.path(), &env, Duration::from_secs(30)).await?;
            shared
                .stats
                .record("fresh_start_to_listening", s.to_listening);
            shared.stats.record("fresh_start_to_ready", s.to_ready);
            shared
                .rss_peak
                .fetch_max(s.rss().vm_rss_kb, Ordering::Relaxed);
            s.kill().await;
            let s = ServerProc::start(bin, dir.path(), &env, Duration::from_secs(30)).await?;
            shared.stats.record("restart_to_listening", s.to_listening);
            shared.stats.record("restart_to_ready", s.to_ready);
            shared
                .server
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .rss_end = s.rss();
            s.kill().await;
            Ok(())
        }
        .await;
        if let Some(pg) = pg {
            pg.drop_db().await?;
        }
        if let Err(e) = r {
            shared.stats.error(format!("startup: {e}"));
        }
    }
    shared.end_measure();
    Ok(())
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
        eprintln!("server log tail:\n{}", env.server.log_tail());
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
    let cpu = shared
        .extra
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get("server_cpu_secs_measured")
        .and_then(serde_json::Value::as_f64);
    if let Some(cpu) = cpu
        && completed > 0
    {
        shared.extra(
            "server_cpu_ms_per_op",
            serde_json::json!(cpu * 1000.0 / completed as f64),
        );
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
