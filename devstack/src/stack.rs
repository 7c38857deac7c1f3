//! The whole local stack: `nats-server -js`, `anvil`, the hub deployed with
//! the quorum's signer set, the exchange simulator, the fetchers, the bff and
//! one aggregator per node of the quorum, either as child processes (the `up`
//! command) or as tasks in this process (integration tests). Each node can be
//! killed and started again on its own. Stopping, or dropping, the stack stops
//! everything.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oracle_common::config::Config;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::deploy::{self, Deployment};
use crate::nodes::NodeSpec;
use crate::process::{ChildProcess, Output};
use crate::simulator::Simulator;
use crate::tools;

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A tool is not installed.
    #[error(transparent)]
    Tool(#[from] tools::MissingTool),
    /// A process or socket failed.
    #[error("{0}")]
    Io(String),
    /// Something did not become ready in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The contract could not be deployed.
    #[error(transparent)]
    Deploy(#[from] deploy::DeployError),
    /// The configuration does not fit the local stack.
    #[error("config: {0}")]
    Config(String),
}

/// How the services run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// As tasks in this process (tests).
    InProcess,
    /// As child processes: the binaries in `bin_dir`, reading `config_path`.
    Processes {
        /// Where `oracle-fetchers`, `oracle-aggregator` and `oracle-bff` are.
        bin_dir: PathBuf,
        /// The config file they read (overrides come by environment).
        config_path: PathBuf,
        /// Write each service's output to `{data_dir}/logs/{name}.log` (as
        /// JSON lines, `log_format = "auto"`) instead of this terminal.
        log_files: bool,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration (normally `config/dev.toml`).
    pub config: Config,
    /// How the services run.
    pub mode: Mode,
    /// Give every listener a free port instead of the configured one.
    pub ephemeral_ports: bool,
    /// State and logs (nats data, anvil and service logs). Emptied at start.
    pub data_dir: PathBuf,
    /// How often simulated prices move.
    pub sim_tick: Duration,
    /// The aggregator nodes of the quorum (see [`crate::nodes`]).
    pub nodes: Vec<NodeSpec>,
    /// anvil's block time in seconds (`None`: a block per transaction).
    pub block_time: Option<u64>,
}

/// The per-service metric registries of an in-process stack.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    /// The fetchers' metrics.
    pub fetchers: Registry,
    /// Each aggregator node's metrics, by node name.
    pub aggregators: std::collections::BTreeMap<String, Registry>,
    /// The bff's metrics.
    pub bff: Registry,
}

impl Registries {
    /// Every aggregator node's registry.
    pub fn aggregator_registries(&self) -> impl Iterator<Item = &Registry> {
        self.aggregators.values()
    }
}

/// What a service of the stack is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Fetchers,
    Bff,
    /// The node of that name.
    Aggregator(String),
}

impl Kind {
    /// `fetchers`, `bff`, `aggregator`.
    fn service(&self) -> &'static str {
        match self {
            Kind::Fetchers => "fetchers",
            Kind::Bff => "bff",
            Kind::Aggregator(_) => "aggregator",
        }
    }

    /// The name of its process (and log file): `oracle-aggregator-node-2`.
    fn process_name(&self) -> String {
        match self {
            Kind::Aggregator(node) => format!("oracle-aggregator-{node}"),
            other => format!("oracle-{}", other.service()),
        }
    }
}

#[derive(Debug)]
enum Running {
    Task(JoinHandle<Result<(), String>>),
    Process(Box<ChildProcess>),
}

/// One service of the stack, running or killed.
#[derive(Debug)]
struct Service {
    kind: Kind,
    running: Option<Running>,
}

/// A running stack.
#[derive(Debug)]
pub struct Stack {
    /// The effective configuration (ports, hub address).
    pub config: Config,
    /// The deployed hub.
    pub deployment: Deployment,
    /// The simulator (in this process in both modes).
    pub simulator: Simulator,
    /// Base URL of the client API.
    pub bff_url: String,
    /// Base URL of the simulator.
    pub simulator_url: String,
    /// Metric registries (in-process mode only; empty otherwise).
    pub registries: Registries,
    /// Where state and logs are.
    pub data_dir: PathBuf,
    /// The aggregator nodes (metrics addresses as they really listen).
    pub nodes: Vec<NodeSpec>,
    nats: ChildProcess,
    anvil: ChildProcess,
    services: Vec<Service>,
    mode: Mode,
    ephemeral: bool,
    prometheus: Option<ChildProcess>,
    shutdown: CancellationToken,
    simulator_task: JoinHandle<std::io::Result<()>>,
}

/// Polls `check` every 100 ms until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(StackError::Timeout(timeout, what.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn io(context: &str) -> impl FnOnce(std::io::Error) -> StackError + '_ {
    move |e| StackError::Io(format!("{context}: {e}"))
}

fn port_of(url: &str, key: &str) -> Result<(String, u16), StackError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| StackError::Config(format!("{key}: {url:?} is not a URL")))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| StackError::Config(format!("{key}: {url:?} has no port")))?;
    Ok((host, port))
}

/// Where the simulator listens: the common `host:port` of every source's
/// base URL, each of which must be `http://host:port/{source_id}`.
fn simulator_addr(config: &Config) -> Result<String, StackError> {
    let mut addr: Option<String> = None;
    for (id, source) in &config.sources {
        let url = reqwest::Url::parse(&source.base_url)
            .map_err(|_| StackError::Config(format!("sources.{id}.base_url is not a URL")))?;
        let this = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(80)
        );
        if url.path().trim_end_matches('/') != format!("/{id}") {
            return Err(StackError::Config(format!(
                "sources.{id}.base_url must be http://HOST:PORT/{id} for the simulator, got {}",
                source.base_url
            )));
        }
        match &addr {
            Some(a) if a != &this => {
                return Err(StackError::Config(format!(
                    "all sources must point at one simulator; {id} points at {this}, others at {a}"
                )));
            }
            _ => addr = Some(this),
        }
    }
    addr.ok_or_else(|| StackError::Config("no [sources] configured".into()))
}

impl Stack {
    /// Starts everything and waits until the client API answers.
    pub async fn start(options: Options) -> Result<Self, StackError> {
        let mut config = options.config;
        let mut nodes = options.nodes;
        if nodes.is_empty() {
            return Err(StackError::Config(
                "the stack needs at least one aggregator node".into(),
            ));
        }
        let data_dir = options.data_dir;
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).map_err(io("creating the data dir"))?;
        let logs = data_dir.join("logs");

        if options.ephemeral_ports {
            let p = || tools::free_port().map_err(io("finding a free port"));
            config.nats.url = format!("nats://127.0.0.1:{}", p()?);
            config.chain.rpc_url = format!("http://127.0.0.1:{}", p()?);
            let sim_port = p()?;
            for (id, source) in config.sources.iter_mut() {
                source.base_url = format!("http://127.0.0.1:{sim_port}/{id}");
            }
            config.bff.listen = ([127, 0, 0, 1], p()?).into();
            config.fetchers.metrics_addr = ([127, 0, 0, 1], p()?).into();
            config.aggregator.metrics_addr = ([127, 0, 0, 1], p()?).into();
            config.bff.metrics_addr = ([127, 0, 0, 1], p()?).into();
            for node in nodes.iter_mut() {
                node.metrics_addr = ([127, 0, 0, 1], p()?).into();
            }
        }
        let sim_addr = simulator_addr(&config)?;

        // NATS with JetStream.
        let nats = start_nats(
            &config.nats.url,
            &data_dir.join("nats"),
            &logs.join("nats-server.log"),
        )
        .await?;

        // The chain.
        let chain_id = config.chain.chain_id.unwrap_or(31337);
        let anvil = start_anvil_with(
            &config.chain.rpc_url,
            chain_id,
            options.block_time,
            &logs.join("anvil.log"),
        )
        .await?;

        let deployment = deploy::deploy(
            &config.chain.rpc_url,
            &crate::nodes::with_signers(&config, &nodes)?,
        )
        .await?;
        config.chain.hub_address = Some(deployment.hub);
        config.chain.chain_id = Some(chain_id);
        for feed in config.feeds.iter_mut() {
            let pair = feed.pair.to_string();
            feed.adapter = deployment
                .feeds
                .iter()
                .find(|d| d.pair == pair)
                .map(|d| d.adapter);
        }

        // The simulator, in this process.
        let shutdown = CancellationToken::new();
        let simulator = Simulator::from_config(&config);
        let listener = TcpListener::bind(&sim_addr)
            .await
            .map_err(io("binding the simulator"))?;
        let simulator_task = tokio::spawn(simulator.clone().serve(
            listener,
            options.sim_tick,
            shutdown.clone(),
        ));

        let bff_url = format!("http://{}", config.bff.listen);
        let mut kinds = vec![Kind::Fetchers];
        kinds.extend(nodes.iter().map(|n| Kind::Aggregator(n.name.clone())));
        kinds.push(Kind::Bff);
        let mut stack = Self {
            config,
            deployment,
            simulator,
            bff_url,
            simulator_url: format!("http://{sim_addr}"),
            registries: Registries::default(),
            data_dir,
            nodes,
            nats,
            anvil,
            services: kinds
                .into_iter()
                .map(|kind| Service {
                    kind,
                    running: None,
                })
                .collect(),
            mode: options.mode,
            ephemeral: options.ephemeral_ports,
            prometheus: None,
            shutdown,
            simulator_task,
        };
        if let Mode::Processes { bin_dir, .. } = &stack.mode {
            for name in ["oracle-fetchers", "oracle-aggregator", "oracle-bff"] {
                if !bin_dir.join(name).is_file() {
                    return Err(StackError::Config(format!(
                        "{} not found: build the services first (cargo build --workspace --bins)",
                        bin_dir.join(name).display()
                    )));
                }
            }
        }
        for i in 0..stack.services.len() {
            stack.launch(i)?;
        }
        let health = format!("{}/healthz", stack.bff_url);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(&health).send().await
                && r.status().is_success()
            {
                break;
            }
            stack.check_services()?;
            if Instant::now() >= deadline {
                return Err(StackError::Timeout(
                    Duration::from_secs(60),
                    format!("the bff at {health}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(stack)
    }

    /// Waits until the hub holds round `at_least` or later of `pair`; returns
    /// the latest round then.
    pub async fn wait_round(
        &self,
        pair: &oracle_common::Pair,
        at_least: u32,
        timeout: Duration,
    ) -> Result<u32, StackError> {
        use alloy::providers::ProviderBuilder;
        let url = self
            .config
            .chain
            .rpc_url
            .parse()
            .map_err(|_| StackError::Config("chain.rpc_url is not a URL".into()))?;
        let provider = ProviderBuilder::new().connect_http(url);
        let hub = oracle_common::chain::OracleHub::new(self.deployment.hub, &provider);
        eventually(timeout, &format!("round {at_least} of {pair}"), || async {
            let round = hub.latest(pair.feed_id()).call().await.ok()?.roundId;
            (round >= at_least).then_some(round)
        })
        .await
    }

    /// Fails if a running service or tool has stopped (killed ones aside).
    pub fn check_services(&mut self) -> Result<(), StackError> {
        self.nats.check_running().map_err(io("nats-server"))?;
        self.anvil.check_running().map_err(io("anvil"))?;
        for service in self.services.iter_mut() {
            match &mut service.running {
                Some(Running::Task(task)) if task.is_finished() => {
                    return Err(StackError::Io(format!(
                        "{} stopped",
                        service.kind.process_name()
                    )));
                }
                Some(Running::Process(child)) => {
                    child.check_running().map_err(io("service"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Log files of the processes, by name.
    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        let mut processes = vec![&self.nats, &self.anvil];
        for service in &self.services {
            if let Some(Running::Process(child)) = &service.running {
                processes.push(child);
            }
        }
        processes.extend(self.prometheus.iter());
        processes
            .into_iter()
            .filter_map(|p| Some((p.name().to_owned(), p.log()?.to_path_buf())))
            .collect()
    }

    /// The process id of a running service process: `fetchers`, `bff`, or a
    /// node's name.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.services
            .iter()
            .find_map(|s| match (&s.running, &s.kind) {
                (Some(Running::Process(child)), Kind::Aggregator(node)) if node == name => {
                    child.id()
                }
                (Some(Running::Process(child)), kind) if kind.service() == name => child.id(),
                _ => None,
            })
    }

    /// The config file the service processes read (process mode).
    pub fn config_path(&self) -> Option<&Path> {
        match &self.mode {
            Mode::Processes { config_path, .. } => Some(config_path),
            Mode::InProcess => None,
        }
    }

    /// Starts the service at `index` (again).
    fn launch(&mut self, index: usize) -> Result<(), StackError> {
        let kind = self.services[index].kind.clone();
        let node = match &kind {
            Kind::Aggregator(name) => self.nodes.iter().find(|n| &n.name == name).cloned(),
            _ => None,
        };
        let running = match &self.mode {
            Mode::InProcess => {
                let registry = Registry::new();
                let (r, s) = (registry.clone(), self.shutdown.child_token());
                let task = match &kind {
                    Kind::Fetchers => {
                        self.registries.fetchers = registry;
                        let c = self.config.clone();
                        tokio::spawn(async move {
                            oracle_fetchers::run(c, &r, s)
                                .await
                                .map_err(|e| e.to_string())
                        })
                    }
                    Kind::Bff => {
                        self.registries.bff = registry;
                        let c = self.config.clone();
                        tokio::spawn(async move {
                            oracle_bff::run(c, &r, s).await.map_err(|e| e.to_string())
                        })
                    }
                    Kind::Aggregator(name) => {
                        self.registries.aggregators.insert(name.clone(), registry);
                        let c = node
                            .as_ref()
                            .map_or_else(|| self.config.clone(), |n| n.config(&self.config));
                        tokio::spawn(async move {
                            oracle_aggregator::run(c, &r, s)
                                .await
                                .map_err(|e| e.to_string())
                        })
                    }
                };
                Running::Task(task)
            }
            Mode::Processes {
                bin_dir,
                config_path,
                log_files,
            } => {
                let mut env = child_env(&self.config, self.ephemeral);
                if let Some(node) = &node {
                    env.extend(node.env());
                }
                let name = kind.process_name();
                let bin = bin_dir.join(format!("oracle-{}", kind.service()));
                let output = if *log_files {
                    Output::File(self.data_dir.join("logs").join(format!("{name}.log")))
                } else {
                    Output::Inherit
                };
                Running::Process(Box::new(
                    ChildProcess::spawn(
                        &name,
                        &bin,
                        &["--config".into(), config_path.display().to_string()],
                        &env,
                        output,
                    )
                    .map_err(io("service"))?,
                ))
            }
        };
        self.services[index].running = Some(running);
        Ok(())
    }

    /// Starts Prometheus with `grafana/prometheus.yml` (and its alert rules)
    /// scraping this stack's services; returns its URL. Stopped with the stack.
    pub async fn start_prometheus(&mut self, ephemeral_port: bool) -> Result<String, StackError> {
        let addr = if ephemeral_port {
            format!(
                "127.0.0.1:{}",
                tools::free_port().map_err(io("finding a free port"))?
            )
        } else {
            crate::prometheus::DEV_ADDR.to_owned()
        };
        let child = crate::prometheus::start(
            &self.config,
            &self.nodes,
            &addr,
            &self.data_dir.join("prometheus"),
        )
        .await?;
        self.prometheus = Some(child);
        Ok(format!("http://{addr}"))
    }

    /// Kills the services called `name` (`fetchers`, `aggregator` for every
    /// node, `bff`, or one node's name) at once, as a crash would (SIGKILL),
    /// leaving the rest running.
    pub async fn kill_service(&mut self, name: &str) {
        for service in self.services.iter_mut() {
            let matches = service.kind.service() == name
                || matches!(&service.kind, Kind::Aggregator(node) if node == name);
            if !matches {
                continue;
            }
            match service.running.take() {
                Some(Running::Task(task)) => {
                    task.abort();
                    let _ = task.await;
                }
                Some(Running::Process(mut child)) => child.kill_now().await,
                None => {}
            }
        }
    }

    /// Starts a killed service again (same name, same keys, same ports).
    pub fn restart_service(&mut self, name: &str) -> Result<(), StackError> {
        let index = self
            .services
            .iter()
            .position(|s| {
                s.kind.service() == name
                    || matches!(&s.kind, Kind::Aggregator(node) if node == name)
            })
            .ok_or_else(|| StackError::Config(format!("no service {name}")))?;
        if self.services[index].running.is_some() {
            return Err(StackError::Config(format!("{name} is running")));
        }
        self.launch(index)
    }

    /// Stops nats-server (SIGTERM), leaving everything else running: for
    /// tests of what the services do without the bus.
    pub async fn stop_nats(&mut self) {
        self.nats.stop(Duration::from_secs(5)).await;
    }

    /// Starts nats-server again on the same port and store.
    pub async fn restart_nats(&mut self) -> Result<(), StackError> {
        let logs = self.data_dir.join("logs");
        self.nats = start_nats(
            &self.config.nats.url,
            &self.data_dir.join("nats"),
            &logs.join("nats-server.restarted.log"),
        )
        .await?;
        Ok(())
    }

    /// Stops anvil (SIGTERM): the chain becomes unreachable. Anvil keeps no
    /// state, so it is not restarted.
    pub async fn stop_anvil(&mut self) {
        self.anvil.stop(Duration::from_secs(5)).await;
    }

    /// Stops the services, then the simulator, anvil and nats-server.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let grace = Duration::from_secs(10);
        for service in self.services.iter_mut() {
            let name = service.kind.process_name();
            match service.running.take() {
                Some(Running::Task(task)) => match tokio::time::timeout(grace, task).await {
                    Ok(Ok(Err(e))) => {
                        tracing::warn!(service = %name, error = %e, "service ended with an error")
                    }
                    Ok(_) => {}
                    Err(_) => tracing::warn!(service = %name, "did not stop in time"),
                },
                Some(Running::Process(mut child)) => child.stop(grace).await,
                None => {}
            }
        }
        let _ = tokio::time::timeout(grace, &mut self.simulator_task).await;
        if let Some(p) = self.prometheus.as_mut() {
            p.stop(grace).await;
        }
        self.anvil.stop(grace).await;
        self.nats.stop(grace).await;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Child processes are killed by their own drop (kill_on_drop).
        self.shutdown.cancel();
        self.simulator_task.abort();
    }
}

/// Starts `nats-server -js` listening at `url` (host and port are taken from
/// it) with its store in `store_dir`, and waits until JetStream answers.
pub async fn start_nats(
    url: &str,
    store_dir: &Path,
    log: &Path,
) -> Result<ChildProcess, StackError> {
    let (_, port) = port_of(url, "nats.url")?;
    let mut nats = ChildProcess::spawn(
        "nats-server",
        &tools::find("nats-server")?,
        &[
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-sd".into(),
            store_dir.display().to_string(),
        ],
        &[],
        Output::File(log.to_path_buf()),
    )
    .map_err(io("nats-server"))?;
    let url = url.to_owned();
    wait_ready(&mut nats, "nats-server", || async {
        let client = async_nats::connect(&url).await.ok()?;
        async_nats::jetstream::new(client)
            .query_account()
            .await
            .ok()
            .map(|_| ())
    })
    .await?;
    Ok(nats)
}

/// Starts anvil listening at `rpc_url` (host and port are taken from it),
/// mining a block per transaction, and waits until it answers `eth_chainId`.
pub async fn start_anvil(
    rpc_url: &str,
    chain_id: u64,
    log: &Path,
) -> Result<ChildProcess, StackError> {
    start_anvil_with(rpc_url, chain_id, None, log).await
}

/// Like [`start_anvil`], with a block every `block_time` seconds instead of a
/// block per transaction (as a real chain: `anvil --block-time`).
pub async fn start_anvil_with(
    rpc_url: &str,
    chain_id: u64,
    block_time: Option<u64>,
    log: &Path,
) -> Result<ChildProcess, StackError> {
    let (_, rpc_port) = port_of(rpc_url, "chain.rpc_url")?;
    let mut args = vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        rpc_port.to_string(),
        "--chain-id".into(),
        chain_id.to_string(),
    ];
    if let Some(secs) = block_time {
        args.extend(["--block-time".into(), secs.to_string()]);
    }
    let mut anvil = ChildProcess::spawn(
        "anvil",
        &tools::find("anvil")?,
        &args,
        &[],
        Output::File(log.to_path_buf()),
    )
    .map_err(io("anvil"))?;
    let url = rpc_url.to_owned();
    wait_ready(&mut anvil, "anvil", || async {
        use alloy::providers::{Provider, ProviderBuilder};
        let url = url.parse().ok()?;
        ProviderBuilder::new()
            .connect_http(url)
            .get_chain_id()
            .await
            .ok()
    })
    .await?;
    Ok(anvil)
}

pub(crate) async fn wait_ready<F, Fut, T>(
    child: &mut ChildProcess,
    name: &str,
    mut check: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let timeout = Duration::from_secs(30);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        child.check_running().map_err(io(name))?;
        if Instant::now() >= deadline {
            return Err(StackError::Timeout(
                timeout,
                format!("{name}; log:\n{}", child.log_tail()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Environment overrides that carry the stack's effective settings to a child.
fn child_env(config: &Config, ephemeral: bool) -> Vec<(String, String)> {
    let hub = config.chain.hub_address.unwrap_or_default();
    let mut env = vec![("ORACLE__CHAIN__HUB_ADDRESS".to_owned(), hub.to_string())];
    for (i, feed) in config.feeds.iter().enumerate() {
        if let Some(adapter) = feed.adapter {
            env.push((format!("ORACLE__FEEDS__{i}__ADAPTER"), adapter.to_string()));
        }
    }
    if ephemeral {
        let c = config;
        env.push(("ORACLE__NATS__URL".into(), c.nats.url.clone()));
        env.push(("ORACLE__CHAIN__RPC_URL".into(), c.chain.rpc_url.clone()));
        env.push(("ORACLE__BFF__LISTEN".into(), c.bff.listen.to_string()));
        env.push((
            "ORACLE__FETCHERS__METRICS_ADDR".into(),
            c.fetchers.metrics_addr.to_string(),
        ));
        env.push((
            "ORACLE__BFF__METRICS_ADDR".into(),
            c.bff.metrics_addr.to_string(),
        ));
        for (id, source) in &c.sources {
            env.push((
                format!(
                    "ORACLE__SOURCES__{}__BASE_URL",
                    id.as_str().to_ascii_uppercase().replace('-', "_")
                ),
                source.base_url.clone(),
            ));
        }
    }
    env
}
