//! The fetchers' own rig: nats-server, the exchange simulator serving a few
//! venues on loopback, and a config polling chosen feeds every 500 ms; the
//! fetchers are started in this process. Used by `fetchers.rs`.

use std::time::Duration;

use oracle_common::config::{Config, FeedConfig, RateLimit, SourceConfig, SymbolSpec};
use oracle_common::wire::{OBS_STREAM, Observation, WireMessage};
use oracle_common::{Pair, SourceId};
use oracle_devstack::simulator::Simulator;
use oracle_devstack::{start_nats, tools};
use prometheus::Registry;
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const POLL: Duration = Duration::from_millis(500);

pub fn pair(p: &str) -> Pair {
    p.parse().unwrap()
}

pub fn id(s: &str) -> SourceId {
    s.parse().unwrap()
}

/// A conventional symbol of `kind` for `base`/USD.
pub fn symbol(kind: &str, base: &str) -> String {
    let lower = base.to_ascii_lowercase();
    match kind {
        "coinbase" => format!("{base}-USD"),
        "kraken" if base == "BTC" => "XBTUSD".into(),
        "kraken" => format!("{base}USD"),
        "binance" => format!("{base}USDT"),
        "bitstamp" | "gemini" => format!("{lower}usd"),
        other => panic!("no symbol convention for {other} in these tests"),
    }
}

pub fn feed(p: &str, sources: &[&str], fallbacks: &[&str], min: usize) -> FeedConfig {
    FeedConfig {
        pair: pair(p),
        decimals: 8,
        min_price: Decimal::ONE,
        max_price: Decimal::from(10_000_000),
        sources: sources.iter().map(|s| id(s)).collect(),
        fallbacks: fallbacks.iter().map(|s| id(s)).collect(),
        min_sources: min,
        max_age: Duration::from_secs(10),
        deviation_bps: 50,
        heartbeat: Duration::from_secs(60),
        max_report_age: Duration::from_secs(120),
        adapter: None,
    }
}

pub struct FetcherRig {
    _nats: oracle_devstack::NatsCluster,
    pub config: Config,
    pub sim: Simulator,
    pub client: async_nats::Client,
    pub shutdown: CancellationToken,
    pub data_dir: std::path::PathBuf,
}

impl Drop for FetcherRig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// nats-server, the simulator serving `sources` (`(id, kind)`), and a config
/// polling `feeds` every 500 ms. The fetchers are started by `spawn_fetchers`.
pub async fn fetcher_rig(
    name: &str,
    sources: &[(&str, &str)],
    feeds: Vec<FeedConfig>,
) -> FetcherRig {
    let data_dir =
        std::env::temp_dir().join(format!("oracle-fetchers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let nats_url = format!("nats://127.0.0.1:{}", tools::free_port().unwrap());
    let nats = start_nats(
        &nats_url,
        &data_dir.join("nats"),
        &data_dir.join("nats.log"),
    )
    .await
    .expect("nats-server starts (run scripts/bootstrap.sh)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_port = listener.local_addr().unwrap().port();

    let mut config = Config::default();
    config.nats.urls = vec![nats_url.clone()];
    for (sid, kind) in sources {
        let symbols = feeds
            .iter()
            .map(|f| {
                (
                    f.pair.clone(),
                    SymbolSpec::Plain(symbol(kind, f.pair.base())),
                )
            })
            .collect();
        config.sources.insert(
            id(sid),
            SourceConfig {
                kind: Some((*kind).to_owned()),
                base_url: format!("http://127.0.0.1:{sim_port}/{sid}"),
                timeout: Duration::from_secs(1),
                symbols,
                rate_limit: Some(RateLimit {
                    requests: 100,
                    per: Duration::from_secs(1),
                }),
            },
        );
    }
    config.feeds = feeds;
    config.fetchers.poll_interval = POLL;
    config.fetchers.max_attempts = 2;
    config.fetchers.retry_min_delay = Duration::from_millis(20);
    config.fetchers.retry_max_delay = Duration::from_millis(100);
    config.validate().unwrap();

    let sim = Simulator::from_config(&config);
    let shutdown = CancellationToken::new();
    tokio::spawn(
        sim.clone()
            .serve(listener, Duration::from_secs(1), shutdown.clone()),
    );
    let client = async_nats::connect(&nats_url).await.unwrap();
    FetcherRig {
        _nats: nats,
        config,
        sim,
        client,
        shutdown,
        data_dir,
    }
}

impl FetcherRig {
    /// Starts a fetcher process (in this process) with `config`; returns its metrics.
    pub fn spawn_fetchers(&self, config: Config) -> Registry {
        let registry = Registry::new();
        let (r, s) = (registry.clone(), self.shutdown.clone());
        tokio::spawn(async move { oracle_fetchers::run(config, &r, s).await.unwrap() });
        registry
    }

    /// Every observation in the stream, in order.
    pub async fn observations(&self) -> Vec<Observation> {
        let js = async_nats::jetstream::new(self.client.clone());
        oracle_devstack::read_stream(&js, OBS_STREAM)
            .await
            .iter()
            .map(|b| Observation::decode(b).unwrap())
            .collect()
    }

    pub fn requests(&self, source: &str) -> Vec<oracle_devstack::simulator::Request> {
        self.sim.requests(&id(source))
    }
}

pub fn metric(registry: &Registry, name: &str) -> f64 {
    oracle_devstack::metric_value(registry, name, None)
}
