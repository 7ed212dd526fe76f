//! The run's environment: the server instance(s) started with their configuration
//! pointing at the in-process mocks, the cardholders and devices a scenario needs, and
//! the webhook sender with fault injection.

use super::*;

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

pub(crate) struct Env {
    /// The instances (one unless `--instances`), all on the same database.
    pub(crate) servers: Vec<ServerProc>,
    /// Where requests to each instance go, counted.
    pub(crate) targets: Vec<Target>,
    pub(crate) mock: Arc<MockProcessor>,
    pub(crate) fcm: Option<Arc<MockFcm>>,
    pub(crate) admin: Admin,
    pub(crate) builder: Arc<Builder>,
    pub(crate) http: reqwest::Client,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) sampler: tokio::task::JoinHandle<()>,
}

impl Env {
    /// The instance request (webhook, card) number `i` goes to: `i % N`.
    pub(crate) fn target(&self, i: usize) -> &Target {
        &self.targets[i % self.targets.len()]
    }

    /// The last log lines of every instance.
    pub(crate) fn log_tails(&self) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- instance {i} ({}) ---\n{}", s.base, s.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(crate) async fn stop(self, shared: &Shared) {
        let rss = self.servers[0].rss();
        shared
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rss_end = rss;
        shared.instances_rss_end();
        self.sampler.abort();
        for s in self.servers {
            s.kill().await;
        }
    }
}

pub(crate) fn base_env(cli: &Cli, pg: Option<&PgDb>, mock: &str) -> Result<Vec<(String, String)>> {
    let mut env = webhooks::provider_env(mock)?;
    env.push((
        "PUSHAUTH_CHALLENGES__MAX_PENDING_PER_CARDHOLDER".into(),
        "1000000".into(),
    ));
    if let Some(pg) = pg {
        env.push(("DATABASE_URL".into(), pg.url.clone()));
    }
    if cli.instances > 1 {
        // One issuer for all: a device enrolled on one instance is pinned to it and
        // signs its request proofs for it, whichever instance it then talks to.
        env.push((
            "PUSHAUTH_SERVER__ISSUER".into(),
            instances::SHARED_ISSUER.into(),
        ));
    }
    for kv in &cli.server_env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--server-env {kv:?}: expected KEY=VALUE"))?;
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(env)
}

pub(crate) async fn start_env(
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
    // The instances one after the other (the first runs the migrations), each with a
    // data directory of its own and the same configuration.
    let mut servers = Vec::with_capacity(cli.instances);
    let mut targets = Vec::with_capacity(cli.instances);
    for i in 0..cli.instances {
        let data = dir.path().join(format!("instance-{i}"));
        std::fs::create_dir_all(&data)?;
        let server = match ServerProc::start(bin, &data, &env, Duration::from_secs(30)).await {
            Ok(s) => s,
            Err(e) => {
                for s in servers {
                    ServerProc::kill(s).await;
                }
                return Err(e.context(format!("starting instance {i}")));
            }
        };
        let target = Target::new(&server.base);
        shared.track(&server, &target);
        servers.push(server);
        targets.push(target);
    }
    {
        let first = &servers[0];
        let mut s = shared
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.pid = first.pid;
        s.start_to_listening_ms = first.to_listening.as_secs_f64() * 1000.0;
        s.start_to_ready_ms = first.to_ready.as_secs_f64() * 1000.0;
        s.rss_after_ready_kb = first.rss().vm_rss_kb;
    }
    let sampler = {
        let sh = shared.clone();
        tokio::spawn(async move {
            loop {
                sh.sample_rss();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.concurrency * 2 + 8)
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = Admin {
        target: targets[0].clone(),
        http: http.clone(),
    };
    let builder = Arc::new(Builder::new(cli.processor, &mock.url)?);
    Ok(Env {
        servers,
        targets,
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
pub(crate) struct Card {
    pub(crate) k: usize,
    pub(crate) cardholder: String,
    pub(crate) device: Device,
    pub(crate) token: Option<String>,
}

/// `n` cardholders, each linked to its card and with one enrolled device (with a push
/// token when `push`), set up `conc` at a time; device `j` on instance `j % N`.
pub(crate) async fn setup_cards(
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
            let on = env.target(j).clone();
            set.spawn(async move {
                let key = processor.link_key(j);
                let token =
                    push.then(|| format!("load-token-{j}-{}", uuid::Uuid::new_v4().simple()));
                let link = key.as_deref().map(|key| (processor.name(), key));
                let (cardholder, device) = admin
                    .cardholder_with_device(link, token.as_deref(), &on)
                    .await?;
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

pub(crate) async fn send(
    http: &reqwest::Client,
    target: &Target,
    r: &Req,
) -> Result<(u16, Duration)> {
    let t = Instant::now();
    let mut b = http
        .request(r.method.clone(), format!("{}{}", target.base, r.path))
        .body(r.body.clone());
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = b.send().await?;
    target.answered();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await?;
    Ok((status, t.elapsed()))
}

/// One webhook with the faults that apply to request `i`, to instance `i % N` (its
/// injected duplicate to the next instance); returns whether the real (valid) webhook
/// was acknowledged.
#[allow(
    clippy::too_many_arguments,
    reason = "one webhook, every input named at the call"
)]
pub(crate) async fn webhook_with_faults(
    http: &reqwest::Client,
    targets: &[Target],
    builder: &Builder,
    stats: &Stats,
    faults: &Faults,
    i: usize,
    reference: &str,
    card: &Card,
    window: Duration,
) -> Result<bool> {
    let target = &targets[i % targets.len()];
    let req = builder.build(reference, card.k, &card.cardholder, true)?;
    let (status, took) = send(http, target, &req).await?;
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
        let (s, t) = send(http, target, &bad).await?;
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
        // Redelivered to another instance when there are several: the duplicate is
        // recognised through the shared database.
        let again = &targets[(i + 1) % targets.len()];
        let (s, t) = send(http, again, &req).await?;
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
