//! The whole pipeline on a three-node JetStream cluster while broker nodes
//! crash: two fetcher replicas, the four aggregator nodes of the dev quorum
//! and two bff instances, all real processes; one nats-server is SIGKILLed
//! every 20–30 s (the meta leader, the leaders of the streams, or any node)
//! and started again, for more than two minutes, under a steady client load.
//!
//! It asserts what users rely on: every observation a fetcher saw
//! acknowledged is in `ORACLE_OBS` exactly once (and the stream holds one
//! copy of each `Nats-Msg-Id`); the rounds that reached the chain are
//! contiguous, each applied once, each with its report on `ORACLE_REPORTS`;
//! the bffs answered at least 99% of the load with 2xx, went unready only
//! while the server they were on was down, and their SSE streams kept
//! delivering. The figures (publish p99, longest gap between on-chain
//! updates, availability) are printed for BENCHMARKS.md.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oracle_common::wire::{REPORTS_STREAM, ReportMessage, WireMessage};
use oracle_devstack::{eventually, nats::stream_leader};
use rand::Rng;
use rig::StackSpec;

mod rig;

/// How long broker nodes keep being killed.
const CHAOS: Duration = Duration::from_secs(140);
/// How long a killed node stays down.
const DOWN: Duration = Duration::from_secs(5);
/// After a kill, how long until a client of the killed node may still be
/// unready: the server's restart, the client's reconnect and two probes.
const UNREADY_GRACE: Duration = Duration::from_secs(10);

/// One SIGKILL of a broker node.
#[derive(Debug, Clone)]
struct Kill {
    node: String,
    role: &'static str,
    at: Instant,
    back: Instant,
}

/// One `/readyz` sample of a bff.
#[derive(Debug)]
struct ReadySample {
    at: Instant,
    status: u16,
    body: serde_json::Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_survives_broker_nodes_killed_every_20_to_30_s() {
    let spec = StackSpec {
        processes: true,
        nodes: 4,
        nats_cluster: 3,
        fetchers: 2,
        bffs: 2,
        env: vec![(
            "RUST_LOG".into(),
            "info,oracle_fetchers::publisher=debug".into(),
        )],
        ..StackSpec::default()
    };
    let mut stack = rig::stack("chaos", spec, |_, _| {}).await;
    let client = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let btc: oracle_common::Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&btc, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for url in &stack.bff_urls {
        eventually(Duration::from_secs(60), "the bffs ready", || async {
            let r = http.get(format!("{url}/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .unwrap();
    }

    // Steady load, readiness probes and an SSE client on every bff.
    let stop = tokio_util::sync::CancellationToken::new();
    let answers: Arc<Mutex<Vec<(usize, u16)>>> = Arc::default();
    let ready: Arc<Mutex<BTreeMap<usize, Vec<ReadySample>>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sse = Vec::new();
    for (i, url) in stack.bff_urls.clone().into_iter().enumerate() {
        let (client, halt, answers) = (http.clone(), stop.clone(), Arc::clone(&answers));
        let price = format!("{url}/v1/prices/BTC-USD");
        tasks.spawn(async move {
            let (http, stop) = (client, halt);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !stop.is_cancelled() {
                tick.tick().await;
                let status = match http.get(&price).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                answers.lock().unwrap().push((i, status));
            }
        });
        let (client, halt, ready) = (http.clone(), stop.clone(), Arc::clone(&ready));
        let readyz = format!("{url}/readyz");
        tasks.spawn(async move {
            let (http, stop) = (client, halt);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !stop.is_cancelled() {
                tick.tick().await;
                let at = Instant::now();
                let (status, body) = match http.get(&readyz).send().await {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json().await.unwrap_or(serde_json::Value::Null),
                    ),
                    Err(_) => (0, serde_json::Value::Null),
                };
                ready
                    .lock()
                    .unwrap()
                    .entry(i)
                    .or_default()
                    .push(ReadySample { at, status, body });
            }
        });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let response = reqwest::get(format!("{url}/v1/stream?pairs=BTC-USD,ETH-USD"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tasks.spawn(rig::read_sse(response, tx));
        sse.push(rx);
    }

    // The chaos: a node killed every 20–30 s, aimed at the leaders.
    let fetchers = stack.fetchers_metrics();
    let mut before = Vec::new();
    for addr in &fetchers {
        before.push(rig::histogram(*addr, "oracle_fetchers_publish_seconds").await);
    }
    let seed: u64 = rand::rng().random();
    println!("chaos seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let roles = [
        "meta leader",
        "ORACLE_OBS leader",
        "ORACLE_REPORTS leader",
        "ORACLE_SUBMISSIONS leader",
        "any node",
    ];
    let started = Instant::now();
    let mut kills: Vec<Kill> = Vec::new();
    let mut next = started + Duration::from_secs(5);
    while Instant::now() < started + CHAOS {
        tokio::time::sleep_until(next.into()).await;
        let role = roles[kills.len() % roles.len()];
        let leader = match role {
            "meta leader" => stack.nats().meta_leader().await,
            "any node" => Some(rng.random_range(0..3)),
            stream => {
                let name = stream.trim_end_matches(" leader");
                stream_leader(&js, name)
                    .await
                    .and_then(|n| stack.nats().index_of(&n))
            }
        };
        let victim = leader.unwrap_or_else(|| rng.random_range(0..3));
        let node = stack.nats().nodes()[victim].name.clone();
        let at = Instant::now();
        stack.nats_mut().kill(victim).await;
        println!(
            "{:>5.1}s killed {node} ({role})",
            at.duration_since(started).as_secs_f64()
        );
        tokio::time::sleep(DOWN).await;
        stack.nats_mut().restart(victim).await.unwrap();
        let back = Instant::now();
        println!(
            "{:>5.1}s {node} back and healthy",
            back.duration_since(started).as_secs_f64()
        );
        kills.push(Kill {
            node,
            role,
            at,
            back,
        });
        next = at + Duration::from_millis(rng.random_range(20_000..=30_000));
    }
    let chaos_end = Instant::now();
    // Load goes on until every SSE client got a price after the last
    // restart (a round comes at the latest with the 30 s heartbeat).
    let last_back = kills.last().unwrap().back;
    let mut sse_times: Vec<Vec<Instant>> = vec![Vec::new(); sse.len()];
    eventually(
        Duration::from_secs(90),
        "SSE prices after the last restart",
        || {
            for (rx, times) in sse.iter_mut().zip(sse_times.iter_mut()) {
                while let Ok(e) = rx.try_recv() {
                    if e.event == "price" {
                        times.push(e.at);
                    }
                }
            }
            let resumed = sse_times.iter().all(|t| t.iter().any(|at| *at > last_back));
            std::future::ready(resumed.then_some(()))
        },
    )
    .await
    .unwrap();
    stop.cancel();
    tasks.abort_all();
    stack.check_services().unwrap();
    assert!(kills.len() >= 5, "{kills:?}");
    assert!(kills.iter().any(|k| k.role == "meta leader"));
    assert!(chaos_end.duration_since(started) >= Duration::from_secs(120));

    // Everything acknowledged is in the stream, once.
    for addr in &fetchers {
        eventually(
            Duration::from_secs(60),
            "the publish buffers drained",
            || async {
                let depth = rig::scrape(*addr, "oracle_fetchers_buffer_depth", None).await?;
                let pending =
                    rig::scrape(*addr, "oracle_fetchers_publishes_in_flight", None).await?;
                (depth == 0.0 && pending == 0.0).then_some(())
            },
        )
        .await
        .unwrap();
    }
    let logs = stack.data_dir.join("logs");
    let mut acked: BTreeSet<String> = BTreeSet::new();
    for name in ["oracle-fetchers.log", "oracle-fetchers-2.log"] {
        let ids = rig::acked_msg_ids(&logs.join(name));
        assert!(!ids.is_empty(), "{name} logged no acknowledged observation");
        acked.extend(ids);
    }
    let stored = rig::obs_msg_ids(&js).await;
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in &stored {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "stored more than once: {repeated:?}");
    assert_eq!(stored.len(), copies.len());
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !copies.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged observations are not in ORACLE_OBS: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    // The rounds that reached the chain: contiguous, once each, reported.
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let provider = alloy::providers::Provider::erased(provider);
    let reports: Vec<ReportMessage> = oracle_devstack::read_stream(&js, REPORTS_STREAM)
        .await
        .iter()
        .filter_map(|b| ReportMessage::decode(b).ok())
        .collect();
    let events = rig::events(&js).await;
    let mut longest_gap = Duration::ZERO;
    for pair in ["BTC/USD", "ETH/USD"] {
        let applied = rig::applied_rounds(&provider, stack.deployment.hub, pair).await;
        println!("  {pair}: {} rounds on chain", applied.len());
        rig::assert_contiguous(pair, &applied);
        assert!(applied.len() >= 10, "{pair}: {} rounds", applied.len());
        let reported: BTreeSet<u32> = reports
            .iter()
            .filter(|r| r.pair.to_string() == pair)
            .map(|r| r.round)
            .collect();
        let unreported: Vec<&u32> = applied.iter().filter(|r| !reported.contains(r)).collect();
        assert!(
            unreported.is_empty(),
            "{pair}: rounds on chain without a report on ORACLE_REPORTS: {unreported:?}"
        );
        let mut confirmed: Vec<(u32, u64)> = rig::successes(&events)
            .iter()
            .flat_map(|e| {
                e.reports
                    .iter()
                    .filter(|r| r.pair.to_string() == pair)
                    .map(|r| (r.round, e.at_ms))
            })
            .collect();
        let rounds: BTreeSet<u32> = confirmed.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            rounds.len(),
            confirmed.len(),
            "{pair}: a round confirmed twice"
        );
        confirmed.sort_unstable();
        for w in confirmed.windows(2) {
            longest_gap = longest_gap.max(Duration::from_millis(w[1].1.saturating_sub(w[0].1)));
        }
    }

    // The bffs' followers resumed after their last sequence: each holds
    // every submission of the stream, at its last status, each event once.
    for url in &stack.bff_urls {
        eventually(
            Duration::from_secs(30),
            "the bff's submission records",
            || async {
                let mut expected: BTreeMap<String, (String, usize)> = BTreeMap::new();
                for e in rig::events(&js).await {
                    let entry = expected.entry(e.id.clone()).or_insert((String::new(), 0));
                    entry.0 = e.status.as_str().to_owned();
                    entry.1 += 1;
                }
                let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
                let mut cursor: Option<String> = None;
                loop {
                    let mut request = http
                        .get(format!("{url}/v1/submissions"))
                        .query(&[("limit", "500")]);
                    if let Some(c) = &cursor {
                        request = request.query(&[("cursor", c.as_str())]);
                    }
                    let page: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
                    for r in page["submissions"].as_array()? {
                        seen.insert(
                            r["id"].as_str()?.to_owned(),
                            (
                                r["status"].as_str()?.to_owned(),
                                r["history"].as_array()?.len(),
                            ),
                        );
                    }
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => break,
                    }
                }
                (seen == expected).then_some(())
            },
        )
        .await
        .unwrap();
    }

    // The bffs: availability, readiness, SSE.
    let answers = answers.lock().unwrap().clone();
    let ok = answers
        .iter()
        .filter(|(_, s)| (200..300).contains(s))
        .count();
    let availability = ok as f64 / answers.len() as f64;
    assert!(answers.len() > 1000, "{} requests", answers.len());
    assert!(
        availability >= 0.99,
        "bff availability {availability:.4} ({ok} of {})",
        answers.len()
    );
    let ready = std::mem::take(&mut *ready.lock().unwrap());
    for (i, samples) in &ready {
        for s in samples.iter().filter(|s| s.status != 200) {
            let checks = &s.body["checks"];
            assert_eq!(
                (
                    checks["chain"]["ok"].as_bool(),
                    checks["feeds"]["ok"].as_bool()
                ),
                (Some(true), Some(true)),
                "bff {i} unready for another reason than NATS: {}",
                s.body
            );
            let detail = checks["nats"]["detail"].as_str().unwrap_or_default();
            let during_kill = kills.iter().any(|k| {
                detail.contains(&format!("server {}", k.node))
                    && s.at >= k.at
                    && s.at <= k.back + UNREADY_GRACE
            });
            assert!(
                during_kill,
                "bff {i} unready at {:.1}s while its server was up: {}",
                s.at.duration_since(started).as_secs_f64(),
                s.body
            );
        }
    }
    let mut sse_gap = Duration::ZERO;
    for times in &sse_times {
        for w in times.windows(2) {
            sse_gap = sse_gap.max(w[1].duration_since(w[0]));
        }
    }

    let mut after = Vec::new();
    for addr in &fetchers {
        after.push(rig::histogram(*addr, "oracle_fetchers_publish_seconds").await);
    }
    let sum = |all: &[Vec<(f64, f64)>]| {
        let mut total: Vec<(f64, f64)> = all[0].iter().map(|(le, _)| (*le, 0.0)).collect();
        for h in all {
            for (slot, (_, c)) in total.iter_mut().zip(h) {
                slot.1 += c;
            }
        }
        total
    };
    let p99 = rig::quantile(&sum(&before), &sum(&after), 0.99);
    let p50 = rig::quantile(&sum(&before), &sum(&after), 0.5);
    println!(
        "FIGURES (3-node cluster, {} kills in {:.0} s):",
        kills.len(),
        CHAOS.as_secs_f64()
    );
    println!(
        "  publish (buffer turn to PubAck, both fetchers, chaos window): p50 <= {p50:?} s, p99 <= {p99:?} s"
    );
    println!("  longest gap between confirmed on-chain updates of a feed: {longest_gap:?}");
    println!("  longest gap between SSE price events of a client: {sse_gap:?}");
    println!(
        "  bff availability: {availability:.4} ({ok} of {} GET /v1/prices/BTC-USD)",
        answers.len()
    );
    println!(
        "  observations acknowledged {} / stored {} (one copy each)",
        acked.len(),
        stored.len()
    );
    stack.stop().await;
}
