//! The scenarios: webhook ingest, the full approval cycle, a decision storm, memory with
//! many pending challenges, and start-up time. Each drives the server (or instances)
//! started by `start_env` and records into `Shared`.

use super::*;

pub(crate) async fn ingest(
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
        let (sh, cards, next, http, targets, b, f) = (
            shared.clone(),
            cards.clone(),
            next.clone(),
            env.http.clone(),
            env.targets.clone(),
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
                let card = &cards[card_for(i, cards.len(), targets.len())];
                let reference = uuid::Uuid::new_v4().to_string();
                if let Err(e) = webhook_with_faults(
                    &http, &targets, &b, &sh.stats, &f, i, &reference, card, window,
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

/// After every result arrived, how long a run with several instances keeps watching
/// for a second delivery of one (by another instance's worker) before counting.
const DOUBLE_WATCH: Duration = Duration::from_secs(1);

/// Waits for every approved result at the mock processor, then counts the lost ones
/// and the ones delivered more than once (both errors).
async fn wait_upstream(
    shared: &Shared,
    env: &Env,
    sent: &[(String, Instant, Instant)],
    deadline: Instant,
) {
    let mock = &env.mock;
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
    if env.targets.len() > 1 {
        tokio::time::sleep(DOUBLE_WATCH.min(deadline.saturating_duration_since(Instant::now())))
            .await;
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
    for _ in 0..lost {
        shared.stats.error("lost_result");
    }
    for _ in 0..repeated {
        shared.stats.error("doubled_result");
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

pub(crate) async fn cycle(
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
    let cross = Arc::new(AtomicUsize::new(0));
    env.mock.arm_faults();
    shared.start_measure();
    let mut set = tokio::task::JoinSet::new();
    for card in cards {
        let mut rx = fcm.register(card.token.as_deref().unwrap_or_default());
        let (sh, next, http, targets, b, f, sent, cross) = (
            shared.clone(),
            next.clone(),
            env.http.clone(),
            env.targets.clone(),
            env.builder.clone(),
            faults.clone(),
            sent.clone(),
            cross.clone(),
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
                        &http, &targets, &b, &sh.stats, &f, i, &reference, &card, window,
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
                        if i % targets.len() != card.k % targets.len() {
                            cross.fetch_add(1, Ordering::Relaxed);
                        }
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
    finish_decisions(shared, env, set, &sent, &cross, deadline).await;
    let (sends, dismisses, unknown, tokens) = fcm.counters();
    shared.extra("fcm_sends", serde_json::json!(sends));
    shared.extra("fcm_dismisses", serde_json::json!(dismisses));
    shared.extra("fcm_token_calls", serde_json::json!(tokens));
    if unknown > 0 {
        shared.stats.error("push_to_unknown_token");
    }
    let doubled = fcm.doubled();
    shared.extra("fcm_challenge_pushes_doubled", serde_json::json!(doubled));
    for _ in 0..doubled {
        shared.stats.error("doubled_push");
    }
    Ok(())
}

/// Ends the measured phase of a run whose tasks decide (once they are all done), then
/// waits for their results upstream (`sent`: reference, start, decision sent) and
/// records how many decisions went through another instance (`cross`).
async fn finish_decisions(
    shared: &Shared,
    env: &Env,
    mut set: tokio::task::JoinSet<()>,
    sent: &std::sync::Mutex<Vec<(String, Instant, Instant)>>,
    cross: &AtomicUsize,
    deadline: Instant,
) {
    while set.join_next().await.is_some() {}
    shared.end_measure();
    let sent = std::mem::take(
        &mut *sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    wait_upstream(shared, env, &sent, deadline).await;
    cross_instance(shared, env, cross.load(Ordering::Relaxed));
}

/// With several instances: how many approved decisions went to another instance than
/// the one that received the challenge's webhook.
fn cross_instance(shared: &Shared, env: &Env, n: usize) {
    if env.targets.len() > 1 {
        shared.extra("decisions_via_other_instance", serde_json::json!(n));
    }
}

/// Creates `n` pending challenges spread over `cards` (webhooks or generic API);
/// returns their references, each with the instance that created it.
async fn create_pending(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    cards: &Arc<Vec<Card>>,
    n: usize,
    deadline: Instant,
) -> Result<Vec<(String, usize)>> {
    let next = Arc::new(AtomicUsize::new(0));
    let refs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..cli.concurrency {
        let (sh, cards, next, http, targets, b, refs) = (
            shared.clone(),
            cards.clone(),
            next.clone(),
            env.http.clone(),
            env.targets.clone(),
            env.builder.clone(),
            refs.clone(),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let card = &cards[card_for(i, cards.len(), targets.len())];
                let on = i % targets.len();
                let reference = uuid::Uuid::new_v4().to_string();
                let r = async {
                    let req = b.build(&reference, card.k, &card.cardholder, true)?;
                    send(&http, &targets[on], &req).await
                }
                .await;
                match r {
                    Ok((s, t)) if (200..300).contains(&s) => {
                        sh.stats.record("create", t);
                        refs.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((reference, on));
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

pub(crate) async fn storm(
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
    let created_on: Arc<std::collections::HashMap<String, usize>> =
        Arc::new(created.into_iter().collect());
    let cards = Arc::try_unwrap(cards).map_err(|_| anyhow!("cards still shared"))?;
    let sent = Arc::new(std::sync::Mutex::new(
        Vec::<(String, Instant, Instant)>::new(),
    ));
    let cross = Arc::new(AtomicUsize::new(0));
    let instances = env.targets.len();
    env.mock.arm_faults();
    shared.start_measure();
    let mut set = tokio::task::JoinSet::new();
    // Every device lists its pending challenges and answers them all, concurrently.
    for card in cards {
        let (sh, sent, created_on, cross) = (
            shared.clone(),
            sent.clone(),
            created_on.clone(),
            cross.clone(),
        );
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
                            if created_on
                                .get(&reference)
                                .is_some_and(|&on| on != card.k % instances)
                            {
                                cross.fetch_add(1, Ordering::Relaxed);
                            }
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
    finish_decisions(shared, env, set, &sent, &cross, deadline).await;
    Ok(())
}

pub(crate) async fn pending_rss(
    cli: &Cli,
    shared: &Arc<Shared>,
    env: &Env,
    n: usize,
    deadline: Instant,
) -> Result<()> {
    let cards =
        Arc::new(setup_cards(env, cli.processor, cli.cards.unwrap_or(100), false, 16).await?);
    let before = env.servers[0].rss();
    shared.extra("rss_before_kb", serde_json::json!(before.vm_rss_kb));
    shared.start_measure();
    let created = create_pending(cli, shared, env, &cards, n, deadline).await?;
    shared.end_measure();
    tokio::time::sleep(
        Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
    let after = env.servers[0].rss();
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

pub(crate) async fn startup(
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
