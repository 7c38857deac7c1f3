//! `oracle-devstack bench-fetchers`: the fetchers' cost at scale. Starts
//! nats-server and the simulator, writes a config polling 12 sources for 20
//! feeds every second, runs the `oracle-fetchers` binary as a child process,
//! and samples its CPU time and resident memory from `/proc`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use oracle_common::config::Config;
use oracle_fetchers::sources::Venue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::process::{ChildProcess, Output};
use crate::simulator::Simulator;
use crate::stack::{StackError, start_nats};
use crate::tools;

/// The 20 bases of the benchmark's feeds (all quoted in USD).
pub const BASES: [&str; 20] = [
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "AVAX", "UNI", "ATOM",
    "XLM", "ETC", "BCH", "FIL", "TRX", "NEAR", "APT",
];

/// CoinGecko's coin id for a base.
fn coingecko_id(base: &str) -> &'static str {
    match base {
        "BTC" => "bitcoin",
        "ETH" => "ethereum",
        "SOL" => "solana",
        "BNB" => "binancecoin",
        "XRP" => "ripple",
        "ADA" => "cardano",
        "DOGE" => "dogecoin",
        "DOT" => "polkadot",
        "LTC" => "litecoin",
        "LINK" => "chainlink",
        "AVAX" => "avalanche-2",
        "UNI" => "uniswap",
        "ATOM" => "cosmos",
        "XLM" => "stellar",
        "ETC" => "ethereum-classic",
        "BCH" => "bitcoin-cash",
        "FIL" => "filecoin",
        "TRX" => "tron",
        "NEAR" => "near",
        _ => "aptos",
    }
}

/// The venue's usual symbol for `base`/USD, as a TOML value (USDT markets
/// are marked as standing in for USD).
pub fn symbol_toml(venue: Venue, base: &str) -> String {
    let b = base;
    let l = base.to_ascii_lowercase();
    let usdt = |s: String| format!("{{ symbol = \"{s}\", quote = \"USDT\" }}");
    match venue {
        Venue::Binance => usdt(format!("{b}USDT")),
        Venue::Coinbase => format!("\"{b}-USD\""),
        Venue::Kraken if b == "BTC" => "\"XBTUSD\"".into(),
        Venue::Kraken => format!("\"{b}USD\""),
        Venue::Bitstamp | Venue::Gemini => format!("\"{l}usd\""),
        Venue::Okx => usdt(format!("{b}-USDT")),
        Venue::Bybit => usdt(format!("{b}USDT")),
        Venue::Kucoin => usdt(format!("{b}-USDT")),
        Venue::Bitfinex => format!("\"t{b}USD\""),
        Venue::Gateio => usdt(format!("{b}_USDT")),
        Venue::Htx => usdt(format!("{l}usdt")),
        Venue::Coingecko => format!("\"{}\"", coingecko_id(b)),
    }
}

/// The benchmark's configuration: every venue, every base, 1 s polling.
pub fn config_toml(nats_url: &str, sim_addr: &str, metrics_port: u16) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[telemetry]\nlog_format = \"json\"\nlog_level = \"warn\"\n"
    );
    let _ = writeln!(t, "[nats]\nurl = \"{nats_url}\"\n");
    let _ = writeln!(
        t,
        "[fetchers]\nid = \"bench\"\npoll_interval = \"1s\"\nmetrics_addr = \"127.0.0.1:{metrics_port}\"\n"
    );
    for venue in Venue::ALL {
        let name = venue.name();
        let _ = writeln!(
            t,
            "[sources.{name}]\nbase_url = \"http://{sim_addr}/{name}\"\ntimeout = \"2s\""
        );
        let _ = writeln!(t, "rate_limit = {{ requests = 100, per = \"1s\" }}");
        let _ = writeln!(t, "[sources.{name}.symbols]");
        for base in BASES {
            let _ = writeln!(t, "\"{base}/USD\" = {}", symbol_toml(venue, base));
        }
        t.push('\n');
    }
    let all = Venue::ALL.map(|v| format!("\"{}\"", v.name())).join(", ");
    for base in BASES {
        let _ = writeln!(
            t,
            "[[feeds]]\npair = \"{base}/USD\"\nmin_price = \"0.0001\"\nmax_price = \"10000000\"\nsources = [{all}]\nmin_sources = 3\n"
        );
    }
    t
}

/// CPU time (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU seconds used so far.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub rss_peak: u64,
}

/// Reads `/proc/{pid}`.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    Some(Usage {
        cpu_s: ticks / 100.0,
        rss: kb("VmRSS:")?,
        rss_peak: kb("VmHWM:")?,
    })
}

/// Runs the benchmark and prints its figures.
pub async fn bench_fetchers(
    fetchers_bin: &Path,
    warmup: Duration,
    duration: Duration,
) -> Result<(), StackError> {
    let dir = std::env::temp_dir().join(format!("oracle-bench-fetchers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| StackError::Io(e.to_string()))?;
    let nats_url = format!(
        "nats://127.0.0.1:{}",
        tools::free_port().map_err(|e| StackError::Io(e.to_string()))?
    );
    let _nats = start_nats(&nats_url, &dir.join("nats"), &dir.join("nats.log")).await?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StackError::Io(e.to_string()))?;
    let sim_addr = listener
        .local_addr()
        .map_err(|e| StackError::Io(e.to_string()))?
        .to_string();
    let metrics_port = tools::free_port().map_err(|e| StackError::Io(e.to_string()))?;
    let toml = config_toml(&nats_url, &sim_addr, metrics_port);
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, &toml).map_err(|e| StackError::Io(e.to_string()))?;
    let config = Config::load_with_env(&config_path, Vec::new())
        .map_err(|e| StackError::Config(e.to_string()))?;
    let sim = Simulator::from_config(&config);
    let shutdown = CancellationToken::new();
    tokio::spawn(
        sim.clone()
            .serve(listener, Duration::from_secs(1), shutdown.clone()),
    );

    let mut child = ChildProcess::spawn(
        "oracle-fetchers",
        fetchers_bin,
        &["--config".into(), config_path.display().to_string()],
        &[],
        Output::File(dir.join("fetchers.log")),
    )
    .map_err(|e| StackError::Io(e.to_string()))?;
    let pid = child
        .id()
        .ok_or_else(|| StackError::Io("fetchers exited at once".into()))?;
    println!(
        "fetchers cost: {} sources x {} feeds every 1 s, warm-up {warmup:?}, measuring {duration:?}",
        Venue::ALL.len(),
        BASES.len()
    );
    tokio::time::sleep(warmup).await;
    child
        .check_running()
        .map_err(|e| StackError::Io(e.to_string()))?;
    let served_before = sim.served().len();
    let before = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let started = Instant::now();
    let mut peak_rss = before.rss;
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(u) = usage(pid) {
            peak_rss = peak_rss.max(u.rss);
        }
    }
    let after = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let served = sim.served().len() - served_before;
    child
        .check_running()
        .map_err(|e| StackError::Io(e.to_string()))?;
    child.stop(Duration::from_secs(5)).await;
    shutdown.cancel();
    let cpu = (after.cpu_s - before.cpu_s) / elapsed * 100.0;
    println!(
        "requests answered by the simulator: {:.0}/s",
        served as f64 / elapsed
    );
    println!("CPU: {cpu:.1}% of one core (target < 10%)");
    println!(
        "RSS: {:.1} MiB at the end, {:.1} MiB peak while measuring, {:.1} MiB peak overall (target < 50 MiB)",
        after.rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        after.rss_peak as f64 / 1048576.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `oracle-devstack bench-consumption`: observations per second through the
/// aggregator's consumer loop (durable pull consumer, the aggregator's own
/// `ingest` per message, all 20 feeds aggregated and the batch acknowledged
/// every 500 ms tick), against a bare pull consumer that only acknowledges,
/// on the same stream in the same run. Two rounds of each.
pub async fn bench_consumption(count: usize) -> Result<(), StackError> {
    use async_nats::jetstream::{self, consumer};
    use futures::StreamExt;
    use oracle_aggregator::window::{Rules, Window};
    use oracle_common::wire::{MSG_ID_HEADER, Observation, SCHEMA_VERSION};

    let err = |e: String| StackError::Io(e);
    let dir = std::env::temp_dir().join(format!("oracle-bench-consumption-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let nats_url = format!(
        "nats://127.0.0.1:{}",
        tools::free_port().map_err(|e| err(e.to_string()))?
    );
    let _nats = start_nats(&nats_url, &dir.join("nats"), &dir.join("nats.log")).await?;
    let toml = config_toml(&nats_url, "127.0.0.1:1", 1);
    let path = dir.join("bench.toml");
    std::fs::write(&path, toml).map_err(|e| err(e.to_string()))?;
    let config =
        Config::load_with_env(&path, Vec::new()).map_err(|e| StackError::Config(e.to_string()))?;
    let client = async_nats::connect(&nats_url)
        .await
        .map_err(|e| err(e.to_string()))?;
    let js = jetstream::new(client);
    let stream = oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| err(e.to_string()))?;

    // The observations: 20 feeds x 12 sources, each with its own time.
    let t0 = oracle_common::now_ms();
    let started = Instant::now();
    let mut acks = Vec::with_capacity(5_000);
    for i in 0..count {
        let feed = &config.feeds[i % config.feeds.len()];
        let source = feed.sources[(i / config.feeds.len()) % feed.sources.len()].clone();
        let obs = Observation {
            v: SCHEMA_VERSION,
            pair: feed.pair.clone(),
            source,
            price: crate::simulator::initial_price(&feed.pair)
                + rust_decimal::Decimal::new((i % 100) as i64, 2),
            bid: None,
            ask: None,
            observed_at_ms: t0 + i as u64,
            fetched_at_ms: t0 + i as u64,
            fetcher: "bench".into(),
            fallback_rank: 0,
            trigger: None,
            market_quote: None,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, obs.msg_id().as_str());
        acks.push(
            js.publish_with_headers(obs.subject(), headers, obs.encode().into())
                .await
                .map_err(|e| err(e.to_string()))?,
        );
        if acks.len() == 5_000 {
            for a in acks.drain(..) {
                a.await.map_err(|e| err(e.to_string()))?;
            }
        }
    }
    for a in acks.drain(..) {
        a.await.map_err(|e| err(e.to_string()))?;
    }
    println!(
        "published {count} observations in {:.1} s; consuming each set twice",
        started.elapsed().as_secs_f64()
    );

    // A durable consumer of every observation, pulled as the aggregator pulls.
    let pull_all = |name: String| {
        let stream = &stream;
        async move {
            let c: consumer::PullConsumer = stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(name),
                    ack_policy: consumer::AckPolicy::Explicit,
                    max_ack_pending: 100_000,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(|e| err(e.to_string()))?;
            c.stream()
                .max_messages_per_batch(oracle_aggregator::PULL_BATCH)
                .messages()
                .await
                .map_err(|e| err(e.to_string()))
        }
    };
    let rules = Rules::from_config(&config.aggregator);
    let registry = prometheus::Registry::new();
    let metrics =
        oracle_aggregator::metrics::Metrics::register(&registry).map_err(|e| err(e.to_string()))?;
    let mut bare_rates = Vec::new();
    let mut agg_rates = Vec::new();
    for round in 0..2 {
        // Bare: pull and acknowledge.
        let mut msgs = pull_all(format!("bare-{round}")).await?;
        let t = Instant::now();
        for _ in 0..count {
            let m = msgs
                .next()
                .await
                .ok_or_else(|| err("stream ended".into()))?
                .map_err(|e| err(e.to_string()))?;
            m.ack().await.map_err(|e| err(e.to_string()))?;
        }
        bare_rates.push(count as f64 / t.elapsed().as_secs_f64());

        // The aggregator's loop.
        let mut msgs = pull_all(format!("agg-{round}")).await?;
        let mut windows: std::collections::BTreeMap<oracle_common::Pair, Window> = config
            .feeds
            .iter()
            .map(|f| (f.pair.clone(), Window::default()))
            .collect();
        let mut unacked = Vec::new();
        let mut aggregates = 0usize;
        let evaluate = |windows: &std::collections::BTreeMap<oracle_common::Pair, Window>| {
            let now = t0 + count as u64;
            config
                .feeds
                .iter()
                .filter(|f| windows[&f.pair].aggregate(f, now, &rules).is_ok())
                .count()
        };
        // As in the aggregator's run(): messages and the 500 ms evaluation tick
        // (which acknowledges) are separate branches of one select.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let t = Instant::now();
        let mut received = 0usize;
        while received < count {
            tokio::select! {
                next = msgs.next() => {
                    let m = next.ok_or_else(|| err("stream ended".into()))?.map_err(|e| err(e.to_string()))?;
                    oracle_aggregator::ingest(&m.payload, &metrics, |p| windows.get_mut(p)).map_err(|e| err(e.to_string()))?;
                    unacked.push(m);
                    received += 1;
                }
                _ = tick.tick() => {
                    aggregates += evaluate(&windows);
                    for m in unacked.drain(..) {
                        m.ack().await.map_err(|e| err(e.to_string()))?;
                    }
                }
            }
        }
        aggregates += evaluate(&windows);
        for m in unacked.drain(..) {
            m.ack().await.map_err(|e| err(e.to_string()))?;
        }
        agg_rates.push(count as f64 / t.elapsed().as_secs_f64());
        if aggregates == 0 {
            return Err(err(
                "no aggregate was formed: the benchmark measured nothing".into(),
            ));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (bare, agg) = (mean(&bare_rates), mean(&agg_rates));
    println!(
        "bare pull consumer (ack only): {:.0} obs/s (rounds: {:.0?})",
        bare, bare_rates
    );
    println!(
        "aggregator consumer loop:      {:.0} obs/s (rounds: {:.0?}) (target >= 50000)",
        agg, agg_rates
    );
    println!(
        "ratio: {:.0}% of the bare consumer (target >= 80%)",
        agg / bare * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `oracle-devstack bench-latency`: from the PubAck of the observation that
/// makes an update due to the new round being readable from the contract
/// (`eth_call` on the hub), with anvil mining each transaction at once.
/// nats-server, anvil and the hub are real; the aggregator runs in this
/// process with config/dev.toml and `tick`; the observations are published
/// here (three sources move BTC/USD by 1%, alternating up and down).
pub async fn bench_latency(iterations: usize, tick: Duration) -> Result<(), StackError> {
    use alloy::providers::ProviderBuilder;
    use oracle_common::chain::OracleHub;
    use oracle_common::wire::{MSG_ID_HEADER, Observation, SCHEMA_VERSION};

    let err = |e: String| StackError::Io(e);
    let dir = std::env::temp_dir().join(format!("oracle-bench-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::load(&tools::workspace_root().join("config/dev.toml"))
        .map_err(|e| StackError::Config(e.to_string()))?;
    let port = || tools::free_port().map_err(|e| err(e.to_string()));
    config.nats.url = format!("nats://127.0.0.1:{}", port()?);
    config.chain.rpc_url = format!("http://127.0.0.1:{}", port()?);
    config.aggregator.tick = tick;
    config.telemetry.log_level = "warn".into();
    let _nats = start_nats(&config.nats.url, &dir.join("nats"), &dir.join("nats.log")).await?;
    let _anvil =
        crate::stack::start_anvil(&config.chain.rpc_url, 31337, &dir.join("anvil.log")).await?;
    let deployment = crate::deploy::deploy(&config.chain.rpc_url, &config).await?;
    config.chain.hub_address = Some(deployment.hub);
    let shutdown = CancellationToken::new();
    let (c, s) = (config.clone(), shutdown.clone());
    tokio::spawn(async move { oracle_aggregator::run(c, &prometheus::Registry::new(), s).await });

    let client = async_nats::connect(&config.nats.url)
        .await
        .map_err(|e| err(e.to_string()))?;
    let js = async_nats::jetstream::new(client);
    oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| err(e.to_string()))?;
    let provider = ProviderBuilder::new().connect_http(
        config
            .chain
            .rpc_url
            .parse()
            .map_err(|_| err("rpc url".into()))?,
    );
    let hub = OracleHub::new(deployment.hub, &provider);
    let feed = config.feeds[0].clone();
    let sources: Vec<_> = feed
        .sources
        .iter()
        .take(feed.min_sources)
        .cloned()
        .collect();
    let round_of = || async {
        hub.latest(feed.pair.feed_id())
            .call()
            .await
            .map(|l| l.roundId)
            .unwrap_or(0)
    };

    let mut latencies = Vec::with_capacity(iterations);
    let warmup = 5;
    for i in 0..iterations + warmup {
        let before = round_of().await;
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
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(MSG_ID_HEADER, obs.msg_id().as_str());
            js.publish_with_headers(obs.subject(), headers, obs.encode().into())
                .await
                .map_err(|e| err(e.to_string()))?
                .await
                .map_err(|e| err(e.to_string()))?;
            acked_at = Instant::now();
        }
        let deadline = acked_at + Duration::from_secs(10);
        loop {
            if round_of().await > before {
                break;
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout(
                    Duration::from_secs(10),
                    format!("round after iteration {i}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if i >= warmup {
            latencies.push(acked_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "PubAck to round readable on chain, {iterations} updates, aggregator tick {tick:?}: p50 {:?}, p90 {:?}, p99 {:?} (target < 300 ms), max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
