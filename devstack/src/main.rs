//! `oracle-devstack`: runs the whole oracle locally (see `scripts/dev.sh`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use oracle_common::config::Config;
use oracle_common::telemetry;
use oracle_devstack::{Mode, Options, Stack, tools};

/// Starts nats-server (one, or a cluster), anvil, the contract, the exchange
/// simulator and the services.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything and run until Ctrl-C.
    Up {
        /// Configuration file for the stack and the services.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
        /// Use free ports instead of the configured ones.
        #[arg(long)]
        ephemeral_ports: bool,
        /// How often simulated prices move.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        sim_tick: Duration,
        /// Also start Prometheus (grafana/prometheus.yml, with the alert
        /// rules of grafana/alerts.yml) scraping the services.
        #[arg(long)]
        prometheus: bool,
        /// Write the services' logs (JSON lines) to files under .devstack/logs
        /// instead of this terminal.
        #[arg(long)]
        log_files: bool,
        /// Aggregator nodes of the signer quorum (config/dev-nodes.toml has 4;
        /// the hub needs config/dev.toml's deploy.threshold of them).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Mine a block every this many seconds, as a real chain does
        /// (default: a block per transaction).
        #[arg(long)]
        block_time: Option<u64>,
        /// nats-server processes: 1, or a JetStream cluster of 3 (routes, a
        /// cluster name, a store each; the streams at 3 replicas).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        nats_cluster: u8,
        /// Fetcher replicas (the stream keeps one copy of each observation).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        fetchers: u8,
        /// bff instances (the first on bff.listen, the others on free ports).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        bffs: u8,
    },
    /// Measure the fetchers' CPU and memory polling 12 sources for 20 feeds
    /// every second against the simulator (see scripts/bench-fetchers.sh).
    BenchFetchers {
        /// The oracle-fetchers binary to measure (a release build).
        #[arg(long, default_value = "target/release/oracle-fetchers")]
        fetchers_bin: PathBuf,
        /// Time before measuring.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        warmup: Duration,
        /// Time measured.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Measure the latency from an observation's PubAck to its round being
    /// readable on chain, with a quorum of oracle-aggregator node processes
    /// (see scripts/bench-aggregator.sh).
    BenchLatency {
        /// Updates measured.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Aggregator node processes (config/dev-nodes.toml).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
    },
    /// Requests per second and latency of GET /v1/prices/{pair} against a
    /// bare axum handler (see scripts/bench-bff.sh).
    BenchBff {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Load before measuring.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        warmup: Duration,
        /// Time measured per target.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Thousands of concurrent `/v1/stream` clients on the release bff: how
    /// long after the bff saw a round's block the clients read it, and the
    /// bff's memory per client (see scripts/bench-bff.sh).
    BenchSse {
        /// Concurrent stream clients.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// How long rounds are measured after every client connected.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// A bare axum server answering every path with `body` (the baseline of
    /// bench-bff).
    #[command(hide = true)]
    BareHttp {
        /// Listen address.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// The JSON body.
        #[arg(long)]
        body: String,
    },
    /// A bare fan-out of stream events to every connection (the floor of
    /// bench-sse).
    #[command(hide = true)]
    BareSse {
        /// Listen address.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// The JSON `data` of each event.
        #[arg(long)]
        data: String,
    },
    /// Measure observations per second through a node's real service loop
    /// against a bare pull consumer (see scripts/bench-aggregator.sh).
    BenchConsumption {
        /// Observations to publish and consume.
        #[arg(long, default_value_t = 300_000)]
        count: usize,
        /// Rounds of each (alternating).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Measure a node's evaluation time per cycle with many feeds, 12
    /// sources each publishing every second (see scripts/bench-aggregator.sh).
    BenchEvaluation {
        /// Feeds.
        #[arg(long, default_value_t = 500)]
        feeds: usize,
        /// Time measured (after a 10 s warm-up).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Up {
            config,
            ephemeral_ports,
            sim_tick,
            prometheus,
            log_files,
            nodes,
            block_time,
            nats_cluster,
            fetchers,
            bffs,
        } => {
            up(
                config,
                UpOptions {
                    ephemeral_ports,
                    sim_tick,
                    prometheus,
                    log_files,
                    nodes,
                    block_time,
                    nats_cluster: nats_cluster.into(),
                    fetchers: fetchers.into(),
                    bffs: bffs.into(),
                },
            )
            .await
        }
        Command::BenchFetchers {
            fetchers_bin,
            warmup,
            duration,
        } => Ok(oracle_devstack::bench::bench_fetchers(&fetchers_bin, warmup, duration).await?),
        Command::BenchBff {
            connections,
            warmup,
            duration,
        } => {
            let bin_dir = bin_dir()?;
            Ok(
                oracle_devstack::bench_bff::bench_bff(&bin_dir, connections, warmup, duration)
                    .await?,
            )
        }
        Command::BenchSse { clients, duration } => {
            let bin_dir = bin_dir()?;
            Ok(oracle_devstack::bench_bff::bench_sse(&bin_dir, clients, duration).await?)
        }
        Command::BareSse { addr, data } => {
            Ok(oracle_devstack::bench_bff::bare_sse(addr, data).await?)
        }
        Command::BareHttp { addr, body } => {
            Ok(oracle_devstack::bench_bff::bare_http(addr, body).await?)
        }
        Command::BenchConsumption { count, rounds } => {
            Ok(oracle_devstack::bench_aggregator::bench_consumption(count, rounds).await?)
        }
        Command::BenchEvaluation { feeds, duration } => {
            Ok(oracle_devstack::bench_aggregator::bench_evaluation(feeds, duration).await?)
        }
        Command::BenchLatency { iterations, nodes } => {
            let bin_dir = bin_dir()?;
            Ok(
                oracle_devstack::bench_aggregator::bench_latency(&bin_dir, iterations, nodes)
                    .await?,
            )
        }
    }
}

/// The directory of this executable, where the service binaries are built too.
fn bin_dir() -> anyhow::Result<PathBuf> {
    std::env::current_exe()
        .context("locating this executable")?
        .parent()
        .map(PathBuf::from)
        .context("executable has no directory")
}

/// The flags of `up`.
struct UpOptions {
    ephemeral_ports: bool,
    sim_tick: Duration,
    prometheus: bool,
    log_files: bool,
    nodes: usize,
    block_time: Option<u64>,
    nats_cluster: usize,
    fetchers: usize,
    bffs: usize,
}

async fn up(config_path: PathBuf, opts: UpOptions) -> anyhow::Result<()> {
    let config =
        Config::load(&config_path).with_context(|| format!("loading {}", config_path.display()))?;
    telemetry::init_tracing(&config.telemetry);
    let bin_dir = bin_dir()?;
    let data_dir = tools::workspace_root().join(".devstack");
    let shutdown = telemetry::shutdown_on_signals();
    println!(
        "starting the local oracle stack (state and logs in {})…",
        data_dir.display()
    );
    let start = Stack::start(Options {
        config,
        mode: Mode::Processes {
            bin_dir,
            config_path: config_path.clone(),
            log_files: opts.log_files,
            env: Vec::new(),
        },
        ephemeral_ports: opts.ephemeral_ports,
        data_dir,
        sim_tick: opts.sim_tick,
        nodes: oracle_devstack::nodes::dev_nodes(opts.nodes)?,
        block_time: opts.block_time,
        chains: usize::MAX,
        nats_cluster: opts.nats_cluster,
        fetchers: opts.fetchers,
        bffs: opts.bffs,
    });
    let mut stack = tokio::select! {
        stack = start => stack.context("starting the stack")?,
        _ = shutdown.cancelled() => anyhow::bail!("interrupted during start-up"),
    };
    let prometheus_url = if opts.prometheus {
        Some(
            stack
                .start_prometheus(opts.ephemeral_ports)
                .await
                .context("starting Prometheus")?,
        )
    } else {
        None
    };
    let c = &stack.config;
    println!();
    for url in &stack.bff_urls {
        println!("  client API     {url}/v1/prices/BTC-USD");
    }
    println!("  simulator      {}/_sim/state", stack.simulator_url);
    println!(
        "  NATS           {}  (stream replicas {})",
        c.nats.describe(),
        c.nats.replicas
    );
    for node in stack.nats().nodes() {
        println!(
            "  nats {:<9} {}  monitoring http://127.0.0.1:{}/jsz",
            node.name,
            node.url(),
            node.ports.monitor
        );
    }
    for (chain, deployment) in c.chains.iter().zip(&stack.deployments) {
        println!(
            "  chain {:<8} {}  chain id {}, block time {:?}",
            chain.name, chain.rpc_urls[0], chain.chain_id, chain.block_time
        );
        println!("    OracleHub    {}", deployment.hub);
        for feed in &deployment.feeds {
            println!(
                "    {:<12} FeedAdapter {} (AggregatorV3Interface), index {}",
                feed.pair, feed.adapter, feed.index
            );
        }
    }
    for addr in stack.fetchers_metrics() {
        println!("  fetchers       metrics http://{addr}/metrics  readiness /readyz");
    }
    for addr in stack.bffs_metrics() {
        println!("  bff            metrics http://{addr}/metrics");
    }
    println!(
        "  signer quorum  {} of {} nodes (one signer key each)",
        stack.deployment.threshold,
        stack.nodes.len()
    );
    for node in &stack.nodes {
        println!(
            "  {:<14} signer {}  metrics http://{}/metrics",
            node.name,
            node.signer().map(|a| a.to_string()).unwrap_or_default(),
            node.metrics_addr
        );
    }
    match &prometheus_url {
        Some(url) => println!(
            "  Prometheus     {url}  (alerts {url}/alerts; Grafana: see docs/operations.md)"
        ),
        None => println!("  Prometheus     not started (pass --prometheus)"),
    }
    for (name, log) in stack.logs() {
        println!("  {name:<17} log {}", log.display());
    }
    println!("\nrunning; Ctrl-C stops everything.");
    let mut failure = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Err(e) = stack.check_services() {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    println!("stopping…");
    stack.stop().await;
    println!("stopped.");
    match failure {
        Some(e) => Err(anyhow::anyhow!(e).context("a part of the stack stopped")),
        None => Ok(()),
    }
}
