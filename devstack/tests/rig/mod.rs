//! The rig the integration tests share: real nats-server and anvil on free
//! ports, the hub deployed from `config/dev.toml` for the first nodes of the
//! dev quorum (`config/dev-nodes.toml`), the exchange simulator on loopback,
//! aggregator nodes in this process or as real processes, and helpers to
//! read what was recorded and to wait for it; [`stack`] for whole-stack
//! tests (in this process or as real processes, one nats-server or a
//! cluster, replicas); [`fetchers`] for the fetchers against the simulator.

#![allow(dead_code)] // each test file uses a part of the rig
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::path::PathBuf;
use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use oracle_common::chain::OracleHub;
use oracle_common::config::Config;
use oracle_common::wire::{SUBMISSIONS_STREAM, SubmissionEvent, SubmissionStatus, WireMessage};
use oracle_devstack::nodes::NodeSpec;
use oracle_devstack::process::{ChildProcess, Output};
use oracle_devstack::simulator::Simulator;
use oracle_devstack::{deploy, eventually, start_anvil, start_nats, tools};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod fetchers;

/// A running rig; dropping it stops everything it started.
pub struct Rig {
    pub config: Config,
    pub dir: PathBuf,
    pub shutdown: CancellationToken,
    pub js: async_nats::jetstream::Context,
    pub nats: async_nats::Client,
    pub deployment: oracle_deploy::Deployment,
    pub simulator: Simulator,
    pub provider: DynProvider,
    /// The quorum's nodes (free metrics ports).
    pub nodes: Vec<NodeSpec>,
    /// The in-process fetchers' metrics (when started).
    pub fetchers: Registry,
    _nats: oracle_devstack::NatsCluster,
    _anvil: ChildProcess,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What to start besides nats-server, anvil and the hub.
#[derive(Debug, Clone, Copy)]
pub struct RigOptions {
    /// Run the fetchers in this process (against the simulator).
    pub fetchers: bool,
    /// Signers of the hub: the first `nodes` of the dev quorum.
    pub nodes: usize,
    /// Signatures a batch needs (default: config/dev.toml's, at most `nodes`).
    pub threshold: Option<u8>,
    /// anvil's block time (`None`: a block per transaction).
    pub block_time: Option<u64>,
}

impl Default for RigOptions {
    fn default() -> Self {
        Self {
            fetchers: false,
            nodes: 1,
            threshold: None,
            block_time: None,
        }
    }
}

impl RigOptions {
    /// One node, fetchers on.
    pub fn fetchers() -> Self {
        Self {
            fetchers: true,
            ..Self::default()
        }
    }
}

impl Rig {
    /// nats-server, anvil with the hub, the simulator (and the fetchers when
    /// asked), from config/dev.toml on free ports.
    pub async fn start(name: &str, options: RigOptions) -> Rig {
        Self::start_with(name, options, |_| {}).await
    }

    /// Like [`Rig::start`], with the config adjusted before anything starts.
    pub async fn start_with(
        name: &str,
        options: RigOptions,
        adjust: impl FnOnce(&mut Config),
    ) -> Rig {
        let dir = std::env::temp_dir().join(format!("oracle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config::load(&tools::workspace_root().join("config/dev.toml")).unwrap();
        let port = || tools::free_port().unwrap();
        config.nats.urls = vec![format!("nats://127.0.0.1:{}", port())];
        // One chain: the aggregator's tests of the chain side run on the first.
        config.chains.truncate(1);
        config.chains[0].rpc_urls[0] = format!("http://127.0.0.1:{}", port());
        config.aggregator.metrics_addr = ([127, 0, 0, 1], port()).into();
        config.fetchers.metrics_addr = ([127, 0, 0, 1], port()).into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_port = listener.local_addr().unwrap().port();
        for (id, source) in config.sources.iter_mut() {
            source.base_url = format!("http://127.0.0.1:{sim_port}/{id}");
        }
        config.aggregator.receipt_timeout = Duration::from_secs(3);
        adjust(&mut config);
        let nats = start_nats(&config.nats.urls[0], &dir.join("nats"), &dir.join("logs"))
            .await
            .unwrap();
        let anvil = match options.block_time {
            None => start_anvil(&config.chains[0].rpc_urls[0], 31337, &dir.join("anvil.log"))
                .await
                .unwrap(),
            Some(secs) => oracle_devstack::stack::start_anvil_with(
                &config.chains[0].rpc_urls[0],
                31337,
                Some(secs),
                &dir.join("anvil.log"),
            )
            .await
            .unwrap(),
        };
        let mut nodes = oracle_devstack::nodes::dev_nodes(options.nodes).unwrap();
        for node in nodes.iter_mut() {
            node.metrics_addr = ([127, 0, 0, 1], port()).into();
        }
        let mut deploying = oracle_devstack::nodes::with_signers(&config, &nodes).unwrap();
        if let Some(t) = options.threshold {
            deploying.deploy.threshold = Some(t);
        }
        let deployment = deploy::deploy(&config.chains[0].rpc_urls[0], &deploying)
            .await
            .unwrap();
        config.chains[0].hub_address = Some(deployment.hub);
        let shutdown = CancellationToken::new();
        let simulator = Simulator::from_config(&config);
        tokio::spawn(
            simulator
                .clone()
                .serve(listener, Duration::from_secs(1), shutdown.clone()),
        );
        let fetchers = Registry::new();
        if options.fetchers {
            let (c, r, s) = (config.clone(), fetchers.clone(), shutdown.clone());
            tokio::spawn(async move { oracle_fetchers::run(c, &r, s).await.unwrap() });
        }
        let client = async_nats::connect(&config.nats.urls).await.unwrap();
        let provider = ProviderBuilder::new()
            .connect_http(config.chains[0].rpc_urls[0].parse().unwrap())
            .erased();
        Rig {
            config,
            dir,
            shutdown,
            js: async_nats::jetstream::new(client.clone()),
            nats: client,
            deployment,
            simulator,
            provider,
            nodes,
            fetchers,
            _nats: nats,
            _anvil: anvil,
        }
    }

    /// Node `i`'s configuration (this rig's ports and hub, its own keys).
    pub fn node_config(&self, i: usize) -> Config {
        self.nodes[i].config(&self.config)
    }

    /// Runs node `i` in this process with `config` until `stop` (or the rig
    /// stops); returns its metrics and its task.
    pub fn run_node_with(
        &self,
        config: Config,
        stop: &CancellationToken,
    ) -> (Registry, tokio::task::JoinHandle<Result<(), String>>) {
        let registry = Registry::new();
        let (r, s) = (registry.clone(), stop.clone());
        let task = tokio::spawn(async move {
            oracle_aggregator::run(config, &r, s)
                .await
                .map_err(|e| e.to_string())
        });
        (registry, task)
    }

    /// Runs node `i` in this process until the rig stops; returns its metrics.
    pub fn run_node(&self, i: usize) -> Registry {
        self.run_node_with(self.node_config(i), &self.shutdown.child_token())
            .0
    }

    /// The config file node processes read: config/dev.toml with this rig's
    /// chain (its endpoint and hub).
    pub fn config_file(&self) -> std::path::PathBuf {
        let path = self.dir.join("config.toml");
        oracle_devstack::stack::write_effective_config(
            &tools::workspace_root().join("config/dev.toml"),
            &self.config,
            &path,
        )
        .unwrap();
        path
    }

    /// Starts node `i` as a real `oracle-aggregator` process reading
    /// config/dev.toml (with this rig's chain), with this rig's settings and
    /// its own keys in its environment; `extra` adds overrides. Logs to `{dir}/{node}-{run}.log`.
    pub fn spawn_node(&self, i: usize, run: u32, extra: &[(&str, &str)]) -> ChildProcess {
        let node = &self.nodes[i];
        let mut env = vec![
            (
                "ORACLE__NATS__URLS".to_owned(),
                self.config.nats.urls.join(","),
            ),
            (
                "ORACLE__AGGREGATOR__RECEIPT_TIMEOUT".to_owned(),
                format!("{}s", self.config.aggregator.receipt_timeout.as_secs()),
            ),
            (
                "ORACLE__TELEMETRY__LOG_FORMAT".to_owned(),
                "json".to_owned(),
            ),
        ];
        env.extend(node.env());
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let bin = tools::debug_bin_dir().join("oracle-aggregator");
        assert!(
            bin.is_file(),
            "{} not found: run `cargo build --workspace --bins` (scripts/test.sh does)",
            bin.display()
        );
        ChildProcess::spawn(
            &format!("oracle-aggregator-{}", node.name),
            &bin,
            &["--config".into(), self.config_file().display().to_string()],
            &env,
            Output::File(self.dir.join(format!("{}-{run}.log", node.name))),
        )
        .unwrap()
    }

    /// The hub, read through the rig's provider.
    pub fn hub(&self) -> OracleHub::OracleHubInstance<DynProvider> {
        OracleHub::new(self.deployment.hub, self.provider.clone())
    }

    /// The latest round of `pair` on the hub.
    pub async fn round(&self, pair: &str) -> u32 {
        let pair: oracle_common::Pair = pair.parse().unwrap();
        self.hub()
            .latest(pair.feed_id())
            .call()
            .await
            .unwrap()
            .roundId
    }

    /// Waits until `pair` reaches round `at_least` on the hub.
    pub async fn wait_round(&self, pair: &str, at_least: u32, timeout: Duration) -> u32 {
        eventually(timeout, &format!("round {at_least} of {pair}"), || async {
            let r = self.round(pair).await;
            (r >= at_least).then_some(r)
        })
        .await
        .unwrap()
    }

    /// Every submission event recorded so far, in order.
    pub async fn events(&self) -> Vec<SubmissionEvent> {
        events(&self.js).await
    }

    /// Waits up to `timeout` for a recorded submission event that `matches`.
    pub async fn wait_event(
        &self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&SubmissionEvent) -> bool,
    ) -> SubmissionEvent {
        eventually(timeout, what, || async {
            self.events().await.into_iter().find(|e| matches(e))
        })
        .await
        .unwrap()
    }

    /// Holds transactions in anvil's mempool (`false`) or mines them as they come.
    pub async fn set_automine(&self, on: bool) {
        self.provider
            .raw_request::<_, ()>("evm_setAutomine".into(), (on,))
            .await
            .unwrap();
    }

    /// Mines what the mempool holds now and every later transaction at once.
    pub async fn mine_held(&self) {
        self.set_automine(true).await;
        self.provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .unwrap();
    }

    /// The value of a metric of node `i`'s `/metrics` endpoint (a process),
    /// summed over series carrying `label` (any when `None`).
    pub async fn scrape(&self, i: usize, name: &str, label: Option<&str>) -> Option<f64> {
        scrape(self.nodes[i].metrics_addr, name, label).await
    }

    /// Checks that the hub skipped no report of any successful submission (a
    /// skip would mean a round applied twice, or a stale one sent).
    pub async fn assert_nothing_skipped(&self) {
        for e in successes(&self.events().await) {
            assert!(
                e.skipped.is_empty(),
                "the hub skipped reports of {}: {:?}",
                e.id,
                e.skipped
            );
        }
    }

    /// Every round of `pair` the hub applied, from its `PriceUpdated` logs, in
    /// block order.
    pub async fn applied_rounds(&self, pair: &str) -> Vec<u32> {
        applied_rounds(&self.provider, self.deployment.hub, pair).await
    }
}

/// Every submission event of `ORACLE_SUBMISSIONS`, in order.
pub async fn events(js: &async_nats::jetstream::Context) -> Vec<SubmissionEvent> {
    oracle_devstack::read_stream(js, SUBMISSIONS_STREAM)
        .await
        .iter()
        .map(|b| <SubmissionEvent as WireMessage>::decode(b).unwrap())
        .collect()
}

/// A metric of the `/metrics` endpoint at `addr`, summed over the series
/// carrying `label` as a label value (any when `None`); `None` when the
/// endpoint does not answer.
pub async fn scrape(addr: std::net::SocketAddr, name: &str, label: Option<&str>) -> Option<f64> {
    let url = format!("http://{addr}/metrics");
    let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| label.is_none_or(|v| l.contains(&format!("\"{v}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Every round of `pair` the hub at `hub` applied, from its `PriceUpdated`
/// logs, in block order.
pub async fn applied_rounds(
    provider: &DynProvider,
    hub: alloy::primitives::Address,
    pair: &str,
) -> Vec<u32> {
    use alloy::sol_types::SolEvent;
    let pair: oracle_common::Pair = pair.parse().unwrap();
    let index = OracleHub::new(hub, provider.clone())
        .feedIndex(pair.feed_id())
        .call()
        .await
        .unwrap();
    let filter = alloy::rpc::types::Filter::new()
        .address(hub)
        .event_signature(OracleHub::PriceUpdated::SIGNATURE_HASH)
        .from_block(0);
    provider
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .filter_map(|l| l.log_decode::<OracleHub::PriceUpdated>().ok())
        .map(|l| oracle_common::chain::PriceUpdate::from_event(&l.inner.data))
        .filter(|u| u.feed_index == index)
        .map(|u| u.round)
        .collect()
}

/// Successful submissions, each with its reports.
pub fn successes(events: &[SubmissionEvent]) -> Vec<&SubmissionEvent> {
    events
        .iter()
        .filter(|e| e.status == SubmissionStatus::Success)
        .collect()
}

/// Asserts that `rounds` (as applied on chain) run 1, 2, 3… with no gap and
/// no repeat.
pub fn assert_contiguous(pair: &str, rounds: &[u32]) {
    let expected: Vec<u32> = (1..=rounds.len() as u32).collect();
    assert_eq!(rounds, expected, "{pair}: rounds applied on chain");
}

/// What a whole-stack test starts (see [`stack`]).
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// The services as real processes (the binaries of `cargo build
    /// --workspace --bins`), or as tasks in the test process.
    pub processes: bool,
    /// The first nodes of `config/dev-nodes.toml`.
    pub nodes: usize,
    /// The first chain's anvil block time (`None`: a block per transaction).
    pub block_time: Option<u64>,
    /// How many of the configured chains run (the first ones).
    pub chains: usize,
    /// nats-server processes (3: a JetStream cluster, streams at R3).
    pub nats_cluster: usize,
    /// Fetcher replicas.
    pub fetchers: usize,
    /// bff instances.
    pub bffs: usize,
    /// Extra environment of the service processes.
    pub env: Vec<(String, String)>,
}

impl Default for StackSpec {
    fn default() -> Self {
        Self {
            processes: false,
            nodes: 1,
            block_time: None,
            chains: 1,
            nats_cluster: 1,
            fetchers: 1,
            bffs: 1,
            env: Vec::new(),
        }
    }
}

/// The whole stack of `config/dev.toml` (adjusted by `edit`, with the nodes)
/// on free ports, state and logs under `target/test-data/{name}`.
pub async fn stack(
    name: &str,
    spec: StackSpec,
    edit: impl FnOnce(&mut Config, &mut Vec<NodeSpec>),
) -> oracle_devstack::Stack {
    let config_path = tools::workspace_root().join("config/dev.toml");
    let mut config = Config::load(&config_path).unwrap();
    let mut nodes = oracle_devstack::nodes::dev_nodes(spec.nodes).unwrap();
    edit(&mut config, &mut nodes);
    let mode = if spec.processes {
        oracle_devstack::Mode::Processes {
            bin_dir: tools::debug_bin_dir(),
            config_path,
            log_files: true,
            env: spec.env,
        }
    } else {
        oracle_devstack::Mode::InProcess
    };
    oracle_devstack::Stack::start(oracle_devstack::Options {
        config,
        mode,
        ephemeral_ports: true,
        data_dir: tools::workspace_root().join(format!("target/test-data/{name}")),
        sim_tick: Duration::from_secs(1),
        nodes,
        block_time: spec.block_time,
        chains: spec.chains,
        nats_cluster: spec.nats_cluster,
        fetchers: spec.fetchers,
        bffs: spec.bffs,
    })
    .await
    .expect("stack starts (scripts/test.sh builds the binaries and installs the tools)")
}

/// The whole stack of `config/dev.toml` as real processes: the fetchers, the
/// bff and the four nodes of `config/dev-nodes.toml`; anvil with
/// `block_time` when given.
pub async fn process_stack(name: &str, block_time: Option<u64>) -> oracle_devstack::Stack {
    let spec = StackSpec {
        processes: true,
        nodes: 4,
        block_time,
        ..StackSpec::default()
    };
    stack(name, spec, |_, _| {}).await
}

/// One Server-Sent Event and when it arrived.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub data: serde_json::Value,
    pub at: std::time::Instant,
}

/// Reads events from `response` into `out` until the stream ends.
pub async fn read_sse(
    mut response: reqwest::Response,
    out: tokio::sync::mpsc::UnboundedSender<SseEvent>,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut data) = (String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // keep-alive comment
            }
            let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
            let _ = out.send(SseEvent {
                event,
                data,
                at: std::time::Instant::now(),
            });
        }
    }
}

/// An observation of `pair` from `source` at `cents` / 100, dated `at_ms`.
pub fn observation(
    pair: &str,
    source: &str,
    cents: i64,
    at_ms: u64,
) -> oracle_common::wire::Observation {
    oracle_common::wire::Observation {
        v: oracle_common::wire::SCHEMA_VERSION,
        pair: pair.parse().unwrap(),
        source: source.parse().unwrap(),
        price: rust_decimal::Decimal::new(cents, 2),
        bid: None,
        ask: None,
        observed_at_ms: at_ms,
        fetched_at_ms: at_ms.min(oracle_common::now_ms()),
        fetcher: "test".into(),
        fallback_rank: 0,
        trigger: None,
        market_quote: None,
    }
}

/// Publishes `obs` to `ORACLE_OBS` (with its `Nats-Msg-Id`); its sequence.
pub async fn publish(
    js: &async_nats::jetstream::Context,
    obs: &oracle_common::wire::Observation,
) -> u64 {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(oracle_common::wire::MSG_ID_HEADER, obs.msg_id().as_str());
    js.publish_with_headers(obs.subject(), headers, obs.encode().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// The `Nats-Msg-Id` of every message of `ORACLE_OBS`, in stream order.
pub async fn obs_msg_ids(js: &async_nats::jetstream::Context) -> Vec<String> {
    use async_nats::jetstream::consumer;
    let stream = js
        .get_stream(oracle_common::wire::OBS_STREAM)
        .await
        .unwrap();
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .unwrap();
    oracle_common::streams::drain(&reader)
        .await
        .unwrap()
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(oracle_common::wire::MSG_ID_HEADER))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The `msg_id` of every observation a fetcher process logged as
/// acknowledged (`published`, at debug level) in its JSON log `path`.
pub fn acked_msg_ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "published")
        .filter_map(|v| v["msg_id"].as_str().map(str::to_owned))
        .collect()
}

/// The cumulative buckets `(le, count)` of histogram `name` in the Prometheus
/// text of `/metrics` at `addr`.
pub async fn histogram(addr: std::net::SocketAddr, name: &str) -> Vec<(f64, f64)> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding quantile `q` of the difference
/// `after - before` of cumulative histogram buckets (same bounds).
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let was = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, c - was)
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}
