//! The whole local stack: the broker (one `nats-server` with JetStream, or a
//! cluster of them), `anvil`, the hub deployed with the quorum's signer set,
//! the exchange simulator, the fetchers and bff (one or more replicas each)
//! and one aggregator per node of the quorum, either as child processes (the
//! `up` command) or as tasks in this process (integration tests). Each
//! service, node and broker node can be killed and started again on its own.
//! Stopping, or dropping, the stack stops everything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oracle_common::config::Config;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::deploy::{self, Deployment};
pub use crate::error::{StackError, eventually};
use crate::error::{io, port_of, wait_ready};
use crate::nats::{NatsCluster, NodePorts};
use crate::nodes::NodeSpec;
use crate::process::{ChildProcess, Output};
use crate::simulator::Simulator;
use crate::tools;

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
        /// Extra environment of every service process (`RUST_LOG=…`).
        env: Vec<(String, String)>,
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
    /// The first chain's anvil block time in seconds (`None`: a block per
    /// transaction); the other chains mine every configured `block_time`.
    pub block_time: Option<u64>,
    /// How many of the configured chains to run (the first ones).
    pub chains: usize,
    /// nats-server processes: 1, or a JetStream cluster of 3 (or 5) with the
    /// streams at 3 replicas.
    pub nats_cluster: usize,
    /// Fetcher replicas (polling the same slots: the stream keeps one copy).
    pub fetchers: usize,
    /// bff instances (the first on `bff.listen`, the others on free ports).
    pub bffs: usize,
}

impl Options {
    /// The dev defaults around `config`: one broker node, one fetcher, one
    /// bff, the first `nodes` of the dev quorum, a block per transaction.
    pub fn new(config: Config, mode: Mode, data_dir: PathBuf, nodes: Vec<NodeSpec>) -> Self {
        Self {
            config,
            mode,
            ephemeral_ports: false,
            data_dir,
            sim_tick: Duration::from_millis(500),
            nodes,
            block_time: None,
            chains: usize::MAX,
            nats_cluster: 1,
            fetchers: 1,
            bffs: 1,
        }
    }
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
    /// Every service instance's metrics, by instance name (`fetchers-2`).
    pub all: std::collections::BTreeMap<String, Registry>,
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
    /// Fetcher replica `n` (from 1).
    Fetchers(usize),
    /// bff instance `n` (from 1).
    Bff(usize),
    /// The node of that name.
    Aggregator(String),
}

impl Kind {
    /// `fetchers`, `bff`, `aggregator`.
    fn service(&self) -> &'static str {
        match self {
            Kind::Fetchers(_) => "fetchers",
            Kind::Bff(_) => "bff",
            Kind::Aggregator(_) => "aggregator",
        }
    }

    /// Its own name: `fetchers`, `fetchers-2`, `bff`, `bff-2`, `node-3`.
    fn instance(&self) -> String {
        match self {
            Kind::Fetchers(1) | Kind::Bff(1) => self.service().to_owned(),
            Kind::Fetchers(n) | Kind::Bff(n) => format!("{}-{n}", self.service()),
            Kind::Aggregator(node) => node.clone(),
        }
    }

    /// Whether `name` (a service, or one instance's name) designates it.
    fn matches(&self, name: &str) -> bool {
        self.service() == name || self.instance() == name
    }

    /// The name of its process (and log file): `oracle-aggregator-node-2`,
    /// `oracle-fetchers-2`.
    fn process_name(&self) -> String {
        match self {
            Kind::Aggregator(node) => format!("oracle-aggregator-{node}"),
            _ => format!("oracle-{}", self.instance()),
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
    /// Its configuration: the stack's, with this instance's id and ports.
    config: Config,
    running: Option<Running>,
}

/// A running stack.
#[derive(Debug)]
pub struct Stack {
    /// The effective configuration (ports, hub address).
    pub config: Config,
    /// The hub deployed on the first (default) chain.
    pub deployment: Deployment,
    /// The hub deployed on each chain, in `config.chains` order.
    pub deployments: Vec<Deployment>,
    /// The simulator (in this process in both modes).
    pub simulator: Simulator,
    /// Base URL of the client API (the first bff).
    pub bff_url: String,
    /// Base URL of every bff instance.
    pub bff_urls: Vec<String>,
    /// Base URL of the simulator.
    pub simulator_url: String,
    /// Metric registries (in-process mode only; empty otherwise).
    pub registries: Registries,
    /// Where state and logs are.
    pub data_dir: PathBuf,
    /// The aggregator nodes (metrics addresses as they really listen).
    pub nodes: Vec<NodeSpec>,
    nats: NatsCluster,
    /// One anvil per chain, in `config.chains` order.
    anvils: Vec<ChildProcess>,
    services: Vec<Service>,
    mode: Mode,
    ephemeral: bool,
    prometheus: Option<ChildProcess>,
    shutdown: CancellationToken,
    simulator_task: JoinHandle<std::io::Result<()>>,
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

        // NATS with JetStream: one server, or a cluster with the streams at
        // three replicas.
        let size = options.nats_cluster.max(1);
        let first_port = if options.ephemeral_ports {
            None
        } else {
            let first = config
                .nats
                .urls
                .first()
                .ok_or_else(|| StackError::Config("nats.urls is empty".into()))?;
            Some(port_of(first, "nats.urls[0]")?.1)
        };
        let nats = NatsCluster::start(
            &NodePorts::plan(size, first_port)?,
            &data_dir.join("nats"),
            &logs,
        )
        .await?;
        config.nats.urls = nats.urls();
        config.nats.replicas = size.min(3);

        // The chains: the first `options.chains` of the config, each its own
        // anvil with a hub and adapters. The first mines as `block_time`
        // says (a block per transaction by default), the others every
        // configured `block_time` (at least a second).
        config.chains.truncate(options.chains.max(1));
        if config.chains.is_empty() {
            return Err(StackError::Config("no [[chains]] configured".into()));
        }
        let signers = crate::nodes::with_signers(&config, &nodes)?;
        let mut anvils = Vec::new();
        let mut deployments = Vec::new();
        for i in 0..config.chains.len() {
            let chain = &mut config.chains[i];
            if options.ephemeral_ports {
                let port = free_port()?;
                chain.rpc_urls = vec![format!("http://127.0.0.1:{port}")];
                // anvil answers websockets on its HTTP port; a chain configured
                // without one stays without (its bff polls).
                if chain.ws_url.is_some() {
                    chain.ws_url = Some(format!("ws://127.0.0.1:{port}"));
                }
            }
            let block_time = if i == 0 {
                options.block_time
            } else {
                Some(chain.block_time.as_secs().max(1))
            };
            let rpc = chain.rpc_urls[0].clone();
            let log = logs.join(if i == 0 {
                "anvil.log".to_owned()
            } else {
                format!("anvil-{}.log", chain.name)
            });
            anvils.push(start_anvil_with(&rpc, chain.chain_id, block_time, &log).await?);
            let deployment = deploy::deploy(&rpc, &signers).await?;
            chain.hub_address = Some(deployment.hub);
            for d in &deployment.feeds {
                if let Ok(pair) = d.pair.parse() {
                    chain.feeds.entry(pair).or_default().adapter = Some(d.adapter);
                }
            }
            deployments.push(deployment);
        }
        let deployment = deployments[0].clone();
        for feed in config.feeds.iter_mut() {
            let pair = feed.pair.to_string();
            feed.adapter = deployment
                .feeds
                .iter()
                .find(|d| d.pair == pair)
                .map(|d| d.adapter);
        }
        // Processes read a file: the configured one, with these chains.
        let mut mode = options.mode;
        if let Mode::Processes { config_path, .. } = &mut mode {
            let effective = data_dir.join("config.toml");
            write_effective_config(config_path, &config, &effective)?;
            *config_path = effective;
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

        let mut services = Vec::new();
        for n in 1..=options.fetchers.max(1) {
            let mut c = config.clone();
            if n > 1 {
                c.fetchers.id = format!("{}-{n}", config.fetchers.id);
                c.fetchers.metrics_addr = ([127, 0, 0, 1], free_port()?).into();
            }
            services.push((Kind::Fetchers(n), c));
        }
        for node in &nodes {
            services.push((Kind::Aggregator(node.name.clone()), node.config(&config)));
        }
        for n in 1..=options.bffs.max(1) {
            let mut c = config.clone();
            if n > 1 {
                c.bff.listen = ([127, 0, 0, 1], free_port()?).into();
                c.bff.metrics_addr = ([127, 0, 0, 1], free_port()?).into();
            }
            services.push((Kind::Bff(n), c));
        }
        let bff_urls: Vec<String> = services
            .iter()
            .filter(|(k, _)| matches!(k, Kind::Bff(_)))
            .map(|(_, c)| format!("http://{}", c.bff.listen))
            .collect();
        let mut stack = Self {
            config,
            deployment,
            simulator,
            bff_url: bff_urls[0].clone(),
            bff_urls,
            simulator_url: format!("http://{sim_addr}"),
            registries: Registries::default(),
            data_dir,
            nodes,
            nats,
            anvils,
            deployments,
            services: services
                .into_iter()
                .map(|(kind, config)| Service {
                    kind,
                    config,
                    running: None,
                })
                .collect(),
            mode,
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
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        stack.wait_services_ready(&client, deadline).await?;
        for url in stack.bff_urls.clone() {
            let health = format!("{url}/healthz");
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
        }
        Ok(stack)
    }

    /// Waits until every service reports ready (`/readyz` of its metrics
    /// endpoint, or its registry's checks in this process), failing early
    /// with the log of one that exited.
    async fn wait_services_ready(
        &mut self,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Result<(), StackError> {
        for i in 0..self.services.len() {
            let kind = self.services[i].kind.clone();
            let addr = match &kind {
                Kind::Fetchers(_) => self.services[i].config.fetchers.metrics_addr,
                Kind::Bff(_) => self.services[i].config.bff.metrics_addr,
                Kind::Aggregator(name) => self
                    .nodes
                    .iter()
                    .find(|n| &n.name == name)
                    .map(|n| n.metrics_addr)
                    .unwrap_or(self.services[i].config.aggregator.metrics_addr),
            };
            loop {
                let ready = match &self.mode {
                    Mode::Processes { .. } => client
                        .get(format!("http://{addr}/readyz"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    Mode::InProcess => self
                        .registries
                        .all
                        .get(&kind.instance())
                        .and_then(oracle_common::telemetry::readiness_checks)
                        .is_some_and(|checks| checks.iter().all(|(_, ok)| *ok)),
                };
                if ready {
                    break;
                }
                self.check_services()?;
                if Instant::now() >= deadline {
                    return Err(StackError::Timeout(
                        Duration::from_secs(60),
                        format!("{} to be ready", kind.process_name()),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
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
        let url = self.config.chains[0].rpc_urls[0]
            .parse()
            .map_err(|_| StackError::Config("chains[0].rpc_urls[0] is not a URL".into()))?;
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
        self.nats.check_running()?;
        for anvil in &mut self.anvils {
            anvil.check_running().map_err(io("anvil"))?;
        }
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
        let mut processes: Vec<&ChildProcess> = self.nats.processes().collect();
        processes.extend(self.anvils.iter());
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

    /// The process id of a running service process: `fetchers`, `bff`, a
    /// replica (`fetchers-2`, `bff-2`) or a node's name; the first match.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.services
            .iter()
            .filter(|s| s.kind.matches(name))
            .find_map(|s| match &s.running {
                Some(Running::Process(child)) => child.id(),
                _ => None,
            })
    }

    /// The configuration of a service instance (`fetchers-2`, `bff`,
    /// `node-1`): its id, listen and metrics addresses.
    pub fn service_config(&self, name: &str) -> Option<&Config> {
        self.services
            .iter()
            .find(|s| s.kind.instance() == name)
            .map(|s| &s.config)
    }

    /// The metrics addresses of every fetcher replica.
    pub fn fetchers_metrics(&self) -> Vec<std::net::SocketAddr> {
        self.services
            .iter()
            .filter(|s| matches!(s.kind, Kind::Fetchers(_)))
            .map(|s| s.config.fetchers.metrics_addr)
            .collect()
    }

    /// The metrics addresses of every bff instance.
    pub fn bffs_metrics(&self) -> Vec<std::net::SocketAddr> {
        self.services
            .iter()
            .filter(|s| matches!(s.kind, Kind::Bff(_)))
            .map(|s| s.config.bff.metrics_addr)
            .collect()
    }

    /// The broker.
    pub fn nats(&self) -> &NatsCluster {
        &self.nats
    }

    /// The broker, to kill, freeze or restart its nodes.
    pub fn nats_mut(&mut self) -> &mut NatsCluster {
        &mut self.nats
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
        let config = self.services[index].config.clone();
        let node = match &kind {
            Kind::Aggregator(name) => self.nodes.iter().find(|n| &n.name == name).cloned(),
            _ => None,
        };
        let running = match &self.mode {
            Mode::InProcess => {
                let registry = Registry::new();
                self.registries
                    .all
                    .insert(kind.instance(), registry.clone());
                let (r, s) = (registry.clone(), self.shutdown.child_token());
                let task = match &kind {
                    Kind::Fetchers(n) => {
                        if *n == 1 {
                            self.registries.fetchers = registry;
                        }
                        tokio::spawn(async move {
                            oracle_fetchers::run(config, &r, s)
                                .await
                                .map_err(|e| e.to_string())
                        })
                    }
                    Kind::Bff(n) => {
                        if *n == 1 {
                            self.registries.bff = registry;
                        }
                        tokio::spawn(async move {
                            oracle_bff::run(config, &r, s)
                                .await
                                .map_err(|e| e.to_string())
                        })
                    }
                    Kind::Aggregator(name) => {
                        self.registries.aggregators.insert(name.clone(), registry);
                        tokio::spawn(async move {
                            oracle_aggregator::run(config, &r, s)
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
                env: extra_env,
            } => {
                // Errors end a log with their cause, not a backtrace.
                let mut env = vec![("RUST_LIB_BACKTRACE".to_owned(), "0".to_owned())];
                env.extend(extra_env.iter().cloned());
                env.extend(child_env(&config, self.ephemeral));
                match &kind {
                    Kind::Fetchers(_) => {
                        env.push(("ORACLE__FETCHERS__ID".into(), config.fetchers.id.clone()));
                        env.push((
                            "ORACLE__FETCHERS__METRICS_ADDR".into(),
                            config.fetchers.metrics_addr.to_string(),
                        ));
                    }
                    Kind::Bff(_) => {
                        env.push(("ORACLE__BFF__LISTEN".into(), config.bff.listen.to_string()));
                        env.push((
                            "ORACLE__BFF__METRICS_ADDR".into(),
                            config.bff.metrics_addr.to_string(),
                        ));
                    }
                    Kind::Aggregator(_) => {}
                }
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
            &crate::prometheus::Targets {
                fetchers: self.fetchers_metrics(),
                bffs: self.bffs_metrics(),
            },
            &self.nodes,
            &addr,
            &self.data_dir.join("prometheus"),
        )
        .await?;
        self.prometheus = Some(child);
        Ok(format!("http://{addr}"))
    }

    /// Kills the services called `name` (`fetchers` or `bff` for every
    /// replica, `aggregator` for every node, or one instance's name:
    /// `fetchers-2`, `bff`, `node-1`) at once, as a crash would (SIGKILL),
    /// leaving the rest running.
    pub async fn kill_service(&mut self, name: &str) {
        for service in self.services.iter_mut() {
            if !service.kind.matches(name) {
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

    /// Starts the killed services called `name` again (same names, keys and
    /// ports).
    pub fn restart_service(&mut self, name: &str) -> Result<(), StackError> {
        let indexes: Vec<usize> = (0..self.services.len())
            .filter(|&i| self.services[i].kind.matches(name))
            .collect();
        if indexes.is_empty() {
            return Err(StackError::Config(format!("no service {name}")));
        }
        for i in indexes {
            if self.services[i].running.is_some() {
                return Err(StackError::Config(format!(
                    "{} is running",
                    self.services[i].kind.instance()
                )));
            }
            self.launch(i)?;
        }
        Ok(())
    }

    /// Stops every broker node (SIGTERM), leaving everything else running:
    /// for tests of what the services do without the bus.
    pub async fn stop_nats(&mut self) {
        self.nats.stop(Duration::from_secs(5)).await;
    }

    /// Starts every stopped broker node again on the same ports and stores.
    pub async fn restart_nats(&mut self) -> Result<(), StackError> {
        for i in 0..self.nats.nodes().len() {
            if !self.nats.nodes()[i].is_running() {
                self.nats.restart(i).await?;
            }
        }
        Ok(())
    }

    /// Stops the first chain's anvil (SIGTERM): the chain becomes
    /// unreachable. Anvil keeps no state, so it is not restarted.
    pub async fn stop_anvil(&mut self) {
        self.stop_chain(0).await;
    }

    /// Stops chain `i`'s anvil (SIGTERM).
    pub async fn stop_chain(&mut self, i: usize) {
        if let Some(anvil) = self.anvils.get_mut(i) {
            anvil.stop(Duration::from_secs(5)).await;
        }
    }

    /// Freezes the first chain's anvil (SIGSTOP): connections are accepted by
    /// the kernel and never answered, as a stalled node behaves.
    pub fn pause_anvil(&self) {
        self.pause_chain(0);
    }

    /// Thaws the first chain's anvil (SIGCONT).
    pub fn resume_anvil(&self) {
        self.resume_chain(0);
    }

    /// Freezes chain `i`'s anvil (SIGSTOP).
    pub fn pause_chain(&self, i: usize) {
        if let Some(anvil) = self.anvils.get(i) {
            anvil.pause();
        }
    }

    /// Thaws chain `i`'s anvil (SIGCONT).
    pub fn resume_chain(&self, i: usize) {
        if let Some(anvil) = self.anvils.get(i) {
            anvil.resume();
        }
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
        for anvil in &mut self.anvils {
            anvil.stop(grace).await;
        }
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

/// Starts a single `nats-server` with JetStream at `url` (its port), its
/// store and config under `data_dir`, its log in `logs/`; stopped on drop.
pub async fn start_nats(
    url: &str,
    data_dir: &Path,
    logs: &Path,
) -> Result<NatsCluster, StackError> {
    NatsCluster::single(url, data_dir, logs).await
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

/// A free loopback port.
fn free_port() -> Result<u16, StackError> {
    tools::free_port().map_err(io("finding a free port"))
}

/// Environment overrides that carry the stack's effective settings to a child
/// (the instance's own id and ports are added by the caller).
fn child_env(config: &Config, ephemeral: bool) -> Vec<(String, String)> {
    // The chains (hubs, adapters, endpoints) are in the effective config file.
    let mut env = vec![
        ("ORACLE__NATS__URLS".to_owned(), config.nats.urls.join(",")),
        (
            "ORACLE__NATS__REPLICAS".to_owned(),
            config.nats.replicas.to_string(),
        ),
    ];
    for (i, feed) in config.feeds.iter().enumerate() {
        if let Some(adapter) = feed.adapter {
            env.push((format!("ORACLE__FEEDS__{i}__ADAPTER"), adapter.to_string()));
        }
    }
    if ephemeral {
        let c = config;
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

/// Writes `original` as `out` with the stack's chains: only those it runs,
/// each with its endpoints, its hub and its feeds' adapters (list items the
/// environment cannot add or remove).
pub fn write_effective_config(
    original: &Path,
    config: &Config,
    out: &Path,
) -> Result<(), StackError> {
    let text = std::fs::read_to_string(original).map_err(io("reading the config"))?;
    let mut root: toml::Table = toml::from_str(&text)
        .map_err(|e| StackError::Config(format!("{}: {e}", original.display())))?;
    let chains: Vec<toml::Value> = config
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut t = root
                .get("chains")
                .and_then(|v| v.as_array())
                .and_then(|a| a.get(i))
                .and_then(|v| v.as_table())
                .cloned()
                .unwrap_or_default();
            let s = |v: &str| toml::Value::String(v.to_owned());
            t.insert(
                "rpc_urls".into(),
                toml::Value::Array(c.rpc_urls.iter().map(|u| s(u)).collect()),
            );
            if let Some(ws) = &c.ws_url {
                t.insert("ws_url".into(), s(ws));
            }
            if let Some(hub) = c.hub_address {
                t.insert("hub_address".into(), s(&hub.to_string()));
            }
            let feeds = t
                .entry("feeds")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(feeds) = feeds.as_table_mut() {
                for (pair, o) in &c.feeds {
                    if let Some(adapter) = o.adapter {
                        let entry = feeds
                            .entry(pair.to_string())
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        if let Some(e) = entry.as_table_mut() {
                            e.insert("adapter".into(), s(&adapter.to_string()));
                        }
                    }
                }
            }
            toml::Value::Table(t)
        })
        .collect();
    root.insert("chains".into(), toml::Value::Array(chains));
    let text = toml::to_string(&root).map_err(|e| StackError::Config(e.to_string()))?;
    std::fs::write(out, text).map_err(io("writing the effective config"))
}
