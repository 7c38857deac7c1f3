//! The aggregator's benchmarks, on real nats-server and anvil processes:
//!
//! - `bench-consumption`: observations per second through a node's real
//!   service loop (`oracle_aggregator::run`: ingest, evaluate, acknowledge),
//!   against a bare pull consumer that only acknowledges, on the same stream
//!   in the same run, alternating.
//! - `bench-evaluation`: one node's evaluation time per cycle (its real
//!   service loop's `oracle_aggregator_evaluation_seconds`) with 500 feeds of
//!   12 sources each publishing every second.
//! - `bench-latency`: from the PubAck of the observation that makes an update
//!   due to its round being readable from the contract, with a quorum of
//!   `oracle-aggregator` node processes (3 of 4 signing) at the default
//!   configuration and anvil mining each transaction at once.

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use oracle_common::config::{Config, Secret};
use oracle_common::wire::{MSG_ID_HEADER, Observation, SCHEMA_VERSION, WireMessage};
use tokio_util::sync::CancellationToken;

use crate::nodes::{NodeSpec, with_signers};
use crate::process::{ChildProcess, Output};
use crate::stack::{StackError, eventually, start_anvil, start_nats};
use crate::tools;

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Io(e.to_string())
}

/// Publishes `obs` and waits for its PubAck.
async fn publish(js: &jetstream::Context, obs: &Observation) -> Result<u64, StackError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MSG_ID_HEADER, obs.msg_id().as_str());
    let ack = js
        .publish_with_headers(obs.subject(), headers, obs.encode().into())
        .await
        .map_err(err)?
        .await
        .map_err(err)?;
    Ok(ack.sequence)
}

/// Waits until durable `name` has acknowledged every message up to `last`.
async fn acked_through(
    stream: &jetstream::stream::Stream,
    name: &str,
    last: u64,
) -> Result<Instant, StackError> {
    loop {
        if let Ok(mut c) = stream.get_consumer::<consumer::pull::Config>(name).await
            && let Ok(info) = c.info().await
            && info.ack_floor.stream_sequence >= last
        {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the single-node benchmarks run on: nats-server and anvil on free
/// ports, the hub deployed for `bases` (every venue a source of each) with
/// one node as its only signer, and that node's configuration.
struct OneNode {
    dir: std::path::PathBuf,
    nats_url: String,
    config: Config,
    node: NodeSpec,
    _nats: crate::NatsCluster,
    _anvil: ChildProcess,
}

impl OneNode {
    /// Starts everything under a temporary `name` directory; `adjust` edits
    /// the configuration before the hub is deployed for it.
    async fn start(
        name: &str,
        bases: &[String],
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self, StackError> {
        let dir = std::env::temp_dir().join(format!("oracle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = || tools::free_port().map_err(err);
        let nats_url = format!("nats://127.0.0.1:{}", port()?);
        let rpc_url = format!("http://127.0.0.1:{}", port()?);
        let nats = start_nats(&nats_url, &dir.join("nats"), &dir.join("logs")).await?;
        let anvil = start_anvil(&rpc_url, 31337, &dir.join("anvil.log")).await?;
        let path = dir.join("bench.toml");
        let toml = crate::bench::config_toml_for(
            &nats_url,
            "127.0.0.1:1",
            port()?,
            bases,
            Duration::from_secs(1),
        );
        std::fs::write(&path, toml).map_err(err)?;
        let mut config = Config::load_with_env(&path, Vec::new())
            .map_err(|e| StackError::Config(e.to_string()))?;
        config.chains = vec![oracle_common::config::ChainConfig::new(
            "bench",
            31337,
            rpc_url.clone(),
        )];
        config.telemetry.log_level = "warn".into();
        adjust(&mut config);
        let node = NodeSpec {
            name: "bench".into(),
            signer_key: Secret::new(
                "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            ),
            sender_key: Secret::new(
                "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
            ),
            metrics_addr: ([127, 0, 0, 1], port()?).into(),
        };
        let deploying = Instant::now();
        let deployment = crate::deploy::deploy(
            &rpc_url,
            &with_signers(&config, std::slice::from_ref(&node))?,
        )
        .await?;
        println!(
            "deployed the hub with {} feeds in {:.1} s",
            config.feeds.len(),
            deploying.elapsed().as_secs_f64()
        );
        config.chains[0].hub_address = Some(deployment.hub);
        Ok(Self {
            dir,
            nats_url,
            config,
            node,
            _nats: nats,
            _anvil: anvil,
        })
    }
}

impl Drop for OneNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `oracle-devstack bench-consumption`.
pub async fn bench_consumption(count: usize, rounds: usize) -> Result<(), StackError> {
    // 20 feeds x 12 sources (the fetchers' benchmark config), a window long
    // enough to hold the whole published set.
    let bench = OneNode::start(
        "bench-consumption",
        &crate::bench::bases(crate::bench::BASES.len()),
        |config| {
            for feed in config.feeds.iter_mut() {
                feed.max_age = Duration::from_secs(120);
            }
        },
    )
    .await?;
    let (config, node, nats_url) = (&bench.config, &bench.node, &bench.nats_url);
    let client = async_nats::connect(nats_url).await.map_err(err)?;
    let js = jetstream::new(client);
    let stream = oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(err)?;
    // The observations: each with its own time, all in the last 60 s.
    let started = Instant::now();
    let t0 = oracle_common::now_ms() - 60_000;
    let mut acks = Vec::with_capacity(5_000);
    let mut last = 0;
    for i in 0..count {
        let feed = &config.feeds[i % config.feeds.len()];
        let source = feed.sources[(i / config.feeds.len()) % feed.sources.len()].clone();
        let at = t0 + (i as u64 * 50_000) / count as u64;
        let obs = Observation {
            v: SCHEMA_VERSION,
            pair: feed.pair.clone(),
            source,
            price: crate::simulator::initial_price(&feed.pair)
                + rust_decimal::Decimal::new((i % 100) as i64, 2),
            bid: None,
            ask: None,
            observed_at_ms: at,
            fetched_at_ms: at,
            fetcher: "bench".into(),
            fallback_rank: 0,
            trigger: None,
            market_quote: None,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, format!("{}:{i}", obs.msg_id()).as_str());
        acks.push(
            js.publish_with_headers(obs.subject(), headers, obs.encode().into())
                .await
                .map_err(err)?,
        );
        if acks.len() == 5_000 {
            for a in acks.drain(..) {
                last = last.max(a.await.map_err(err)?.sequence);
            }
        }
    }
    for a in acks.drain(..) {
        last = last.max(a.await.map_err(err)?.sequence);
    }
    println!(
        "published {count} observations (20 feeds x 12 sources) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut bare_rates = Vec::new();
    let mut node_rates = Vec::new();
    for round in 0..rounds {
        // Bare: a durable pull consumer that only acknowledges.
        let name = format!("bare-{round}");
        let c: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: oracle_aggregator::ACK_WAIT,
                max_ack_pending: 100_000,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(err)?;
        let mut msgs = c
            .stream()
            .max_messages_per_batch(oracle_aggregator::PULL_BATCH)
            .messages()
            .await
            .map_err(err)?;
        let mut first = None;
        for _ in 0..count {
            let m = msgs
                .next()
                .await
                .ok_or_else(|| err("stream ended"))?
                .map_err(err)?;
            first.get_or_insert_with(Instant::now);
            m.ack().await.map_err(err)?;
        }
        let end = acked_through(&stream, &name, last).await?;
        let first = first.unwrap_or(end);
        bare_rates.push(count as f64 / (end - first).as_secs_f64());

        // The node's real service loop, as `oracle-aggregator` runs it.
        let name = format!("node-{round}");
        let mut node_config = node.config(config);
        node_config.aggregator.consumer = name.clone();
        let registry = prometheus::Registry::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (r, s) = (registry.clone(), stop.clone());
            async move { oracle_aggregator::run(node_config, &r, s).await }
        });
        let consumed = || {
            crate::metric_value(
                &registry,
                "oracle_aggregator_observations_consumed_total",
                None,
            )
        };
        let first = eventually(Duration::from_secs(120), "the node consuming", || async {
            (consumed() > 0.0).then(Instant::now)
        })
        .await?;
        let end = acked_through(&stream, &name, last).await?;
        node_rates.push(count as f64 / (end - first).as_secs_f64());
        if consumed() < count as f64 {
            return Err(err(format!("the node consumed {} of {count}", consumed())));
        }
        stop.cancel();
        task.await.map_err(err)?.map_err(err)?;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (bare, agg) = (mean(&bare_rates), mean(&node_rates));
    println!("bare pull consumer (ack only):           {bare:.0} obs/s (rounds: {bare_rates:.0?})");
    println!(
        "node service loop (ingest, evaluate, ack): {agg:.0} obs/s (rounds: {node_rates:.0?}) (target >= 50000)"
    );
    println!(
        "ratio: {:.0}% of the bare consumer (target >= 80%)",
        agg / bare * 100.0
    );
    Ok(())
}

/// `oracle-devstack bench-latency`: `nodes` node processes serving every
/// chain of config/dev.toml (each its own anvil and hub; the first automines,
/// the others mine every `block_time`); per chain, the time from the PubAck
/// of the observations that make BTC/USD due to its next round being
/// readable there. An iteration ends when every chain shows it.
pub async fn bench_latency(
    bin_dir: &Path,
    iterations: usize,
    nodes: usize,
) -> Result<(), StackError> {
    use alloy::providers::{Provider, ProviderBuilder};
    use oracle_common::chain::OracleHub;

    let dir = std::env::temp_dir().join(format!("oracle-bench-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config_path = tools::workspace_root().join("config/dev.toml");
    let mut config = Config::load(&config_path).map_err(|e| StackError::Config(e.to_string()))?;
    let port = || tools::free_port().map_err(err);
    config.nats.urls = vec![format!("nats://127.0.0.1:{}", port()?)];
    let mut quorum = crate::nodes::dev_nodes(nodes)?;
    for node in quorum.iter_mut() {
        node.metrics_addr = ([127, 0, 0, 1], port()?).into();
    }
    let _nats = start_nats(&config.nats.urls[0], &dir.join("nats"), &dir.join("logs")).await?;
    // Every configured chain: the first automines, the others mine every
    // configured block time, as `oracle-devstack up` runs them.
    let signers = with_signers(&config, &quorum)?;
    let mut anvils = Vec::new();
    let mut hubs = Vec::new();
    for (i, chain) in config.chains.iter_mut().enumerate() {
        let port = port()?;
        chain.rpc_urls = vec![format!("http://127.0.0.1:{port}")];
        chain.ws_url = Some(format!("ws://127.0.0.1:{port}"));
        let block_time = (i > 0).then(|| chain.block_time.as_secs().max(1));
        let log = dir.join(format!("anvil-{}.log", chain.name));
        anvils.push(
            crate::stack::start_anvil_with(&chain.rpc_urls[0], chain.chain_id, block_time, &log)
                .await?,
        );
        let deployment = crate::deploy::deploy(&chain.rpc_urls[0], &signers).await?;
        chain.hub_address = Some(deployment.hub);
        hubs.push(deployment.hub);
    }
    let effective = dir.join("config.toml");
    crate::stack::write_effective_config(&config_path, &config, &effective)?;
    let config_path = effective;
    let bin = bin_dir.join("oracle-aggregator");
    let mut children = Vec::new();
    for node in &quorum {
        let mut env = vec![
            ("ORACLE__NATS__URLS".to_owned(), config.nats.urls.join(",")),
            ("ORACLE__TELEMETRY__LOG_LEVEL".to_owned(), "warn".to_owned()),
        ];
        env.extend(node.env());
        children.push(
            ChildProcess::spawn(
                &format!("oracle-aggregator-{}", node.name),
                &bin,
                &["--config".into(), config_path.display().to_string()],
                &env,
                Output::File(dir.join(format!("{}.log", node.name))),
            )
            .map_err(err)?,
        );
    }

    let client = async_nats::connect(&config.nats.urls).await.map_err(err)?;
    let js = jetstream::new(client);
    oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(err)?;
    let mut readers = Vec::new();
    for (chain, hub) in config.chains.iter().zip(&hubs) {
        let provider = ProviderBuilder::new()
            .connect_http(chain.rpc_urls[0].parse().map_err(|_| err("rpc url"))?)
            .erased();
        readers.push(OracleHub::new(*hub, provider));
    }
    let feed = config.feeds[0].clone();
    let sources: Vec<_> = feed
        .sources
        .iter()
        .take(feed.min_sources)
        .cloned()
        .collect();
    let round_of = |i: usize| {
        let (hub, id) = (&readers[i], feed.pair.feed_id());
        async move { hub.latest(id).call().await.map(|l| l.roundId).unwrap_or(0) }
    };
    let chains = config.chains.len();
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); chains];
    let warmup = 5;
    for i in 0..iterations + warmup {
        for child in children.iter_mut() {
            child.check_running().map_err(err)?;
        }
        let mut before = Vec::with_capacity(chains);
        for c in 0..chains {
            before.push(round_of(c).await);
        }
        let cents: i64 = if i % 2 == 0 { 9_800_000 } else { 9_700_000 }; // 1% apart
        let now = oracle_common::now_ms();
        let mut acked_at = Instant::now();
        for source in &sources {
            let obs = Observation {
                v: SCHEMA_VERSION,
                pair: feed.pair.clone(),
                source: source.clone(),
                price: rust_decimal::Decimal::new(cents, 2),
                bid: None,
                ask: None,
                observed_at_ms: now,
                fetched_at_ms: now,
                fetcher: "bench".into(),
                fallback_rank: 0,
                trigger: None,
                market_quote: None,
            };
            publish(&js, &obs).await?;
            acked_at = Instant::now();
        }
        // The first rounds wait for a leader and the quorum to come up.
        let wait = if i < warmup {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(20)
        };
        let deadline = acked_at + wait;
        let mut landed: Vec<Option<Duration>> = vec![None; chains];
        while landed.iter().any(Option::is_none) {
            for c in 0..chains {
                if landed[c].is_none() && round_of(c).await > before[c] {
                    landed[c] = Some(acked_at.elapsed());
                }
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout(
                    wait,
                    format!("rounds on every chain after iteration {i}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if i >= warmup {
            for (c, l) in landed.into_iter().enumerate() {
                latencies[c].extend(l);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in children.iter_mut() {
        child.stop(Duration::from_secs(5)).await;
    }
    let threshold = signers.deploy.threshold.unwrap_or_default();
    for (c, mut l) in latencies.into_iter().enumerate() {
        l.sort();
        let pct = |p: f64| l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1];
        let chain = &config.chains[c];
        let (mining, target) = if c == 0 {
            ("anvil automine".to_owned(), "target < 300 ms".to_owned())
        } else {
            (
                format!("anvil --block-time {}", chain.block_time.as_secs().max(1)),
                format!("lags by at most its block time, {:?}", chain.block_time),
            )
        };
        println!(
            "chain {} ({mining}): PubAck to round readable, {iterations} updates on {chains} chains, {nodes} node processes ({threshold} signatures per batch), default config: p50 {:?}, p90 {:?}, p99 {:?} ({target}), max {:?}",
            chain.name,
            pct(0.50),
            pct(0.90),
            pct(0.99),
            l[l.len() - 1]
        );
    }
    drop(anvils);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The cumulative buckets `(upper bound, count)` of the `scope` series of
/// histogram `name` in `registry`.
fn histogram_buckets(registry: &prometheus::Registry, name: &str, scope: &str) -> Vec<(f64, u64)> {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| m.get_label().iter().any(|l| l.value() == scope))
        .flat_map(|m| {
            m.get_histogram()
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The upper bound of the bucket that holds quantile `q` of what was
/// observed between two snapshots of the same histogram, and the count.
fn bucket_quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> (Option<f64>, u64) {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, c)| {
            let was = before.iter().find(|(l, _)| l == le).map_or(0, |(_, c)| *c);
            (*le, c - was)
        })
        .collect();
    let total = delta.last().map_or(0, |(_, c)| *c);
    let found = delta
        .iter()
        .find(|(_, c)| *c as f64 >= q * total as f64)
        .map(|(le, _)| *le);
    (if total == 0 { None } else { found }, total)
}

/// `oracle-devstack bench-evaluation`: the time one node takes to evaluate
/// `feeds` feeds (window pruning, aggregate, update policy; the histogram
/// `oracle_aggregator_evaluation_seconds` of its real service loop), with
/// 12 sources per feed publishing every second, for `duration` after a
/// 10 s warm-up. The node leads (the hub's only signer) and submits what is
/// due to anvil as it would in production.
pub async fn bench_evaluation(feeds: usize, duration: Duration) -> Result<(), StackError> {
    use oracle_fetchers::sources::Venue;
    let bench = OneNode::start("bench-evaluation", &crate::bench::bases(feeds), |_| {}).await?;
    // The node's warnings (RUST_LOG for more) go to stderr.
    oracle_common::telemetry::init_tracing(&bench.config.telemetry);
    let (config, node) = (&bench.config, &bench.node);
    let registry = prometheus::Registry::new();
    let stop = CancellationToken::new();
    let node_task = tokio::spawn({
        let (r, s, c) = (registry.clone(), stop.clone(), node.config(config));
        async move { oracle_aggregator::run(c, &r, s).await }
    });

    // The node is ready (its streams exist) before anything is published.
    eventually(Duration::from_secs(120), "the node ready", || async {
        oracle_common::telemetry::readiness_checks(&registry)
            .filter(|checks| checks.iter().all(|(_, ok)| *ok))
            .map(|_| ())
    })
    .await?;

    // The sources: every venue, every feed, every second, each price a small
    // random step from the last (some steps cross the deviation threshold),
    // published with up to 512 PubAcks awaited at once, as the fetchers do.
    let client = async_nats::connect(&bench.nats_url).await.map_err(err)?;
    let js = jetstream::new(client);
    let publisher = tokio::spawn({
        let (js, stop, feeds) = (js.clone(), stop.clone(), config.feeds.clone());
        async move {
            use rand::Rng;
            let mut prices: Vec<rust_decimal::Decimal> = feeds
                .iter()
                .map(|f| crate::simulator::initial_price(&f.pair))
                .collect();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut published = 0u64;
            while !stop.is_cancelled() {
                tick.tick().await;
                let slot = oracle_common::now_ms() / 1000 * 1000;
                let mut batch = Vec::with_capacity(feeds.len() * Venue::ALL.len());
                for (feed, price) in feeds.iter().zip(prices.iter_mut()) {
                    let step: i64 = rand::rng().random_range(-8..=8);
                    *price += *price * rust_decimal::Decimal::new(step, 4);
                    for venue in Venue::ALL {
                        let Ok(source) = venue.name().parse() else {
                            continue;
                        };
                        batch.push(Observation {
                            v: SCHEMA_VERSION,
                            pair: feed.pair.clone(),
                            source,
                            price: price.round_dp(8),
                            bid: None,
                            ask: None,
                            observed_at_ms: slot,
                            fetched_at_ms: slot,
                            fetcher: "bench".into(),
                            fallback_rank: 0,
                            trigger: None,
                            market_quote: None,
                        });
                    }
                }
                published += futures::stream::iter(batch)
                    .map(|obs| {
                        let js = js.clone();
                        async move { publish(&js, &obs).await.is_ok() }
                    })
                    .buffer_unordered(512)
                    .filter(|ok| std::future::ready(*ok))
                    .count()
                    .await as u64;
            }
            published
        }
    });

    let name = "oracle_aggregator_evaluation_seconds";
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (all_before, touched_before) = (
        histogram_buckets(&registry, name, "all"),
        histogram_buckets(&registry, name, "touched"),
    );
    let consumed_before = crate::metric_value(
        &registry,
        "oracle_aggregator_observations_consumed_total",
        None,
    );
    let reports_before = crate::metric_value(&registry, "oracle_aggregator_reports_total", None);
    tokio::time::sleep(duration).await;
    let (all_after, touched_after) = (
        histogram_buckets(&registry, name, "all"),
        histogram_buckets(&registry, name, "touched"),
    );
    let consumed = crate::metric_value(
        &registry,
        "oracle_aggregator_observations_consumed_total",
        None,
    ) - consumed_before;
    let reports =
        crate::metric_value(&registry, "oracle_aggregator_reports_total", None) - reports_before;
    stop.cancel();
    let published = publisher.await.map_err(err)?;
    node_task.await.map_err(err)?.map_err(err)?;

    let secs = duration.as_secs_f64();
    println!(
        "{feeds} feeds x {} sources, observations every 1 s, one node leading (measured {secs:.0} s after 10 s warm-up)",
        Venue::ALL.len()
    );
    println!(
        "  observations: published {published} in all, consumed {:.0}/s while measured; reports made {:.1}/s",
        consumed / secs,
        reports / secs
    );
    for (scope, before, after, what) in [
        (
            "all",
            &all_before,
            &all_after,
            "a pass over every feed (the tick)",
        ),
        (
            "touched",
            &touched_before,
            &touched_after,
            "a pass over the feeds new observations touched",
        ),
    ] {
        let (p50, n) = bucket_quantile(before, after, 0.5);
        let (p99, _) = bucket_quantile(before, after, 0.99);
        let (max, _) = bucket_quantile(before, after, 1.0);
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("<= {:.2} ms", s * 1000.0));
        println!(
            "  evaluation, {what} (scope={scope}): {n} passes; p50 {}, p99 {}, max {}",
            ms(p50),
            ms(p99),
            ms(max)
        );
    }
    Ok(())
}
