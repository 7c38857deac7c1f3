//! Configuration: one TOML file per environment (`config/default.toml` for the
//! real exchanges, `config/dev.toml` for the local simulator), every key
//! overridable by an environment variable, checked at start-up.
//!
//! Environment overrides use the prefix `ORACLE__` and `__` between path
//! segments, matched case-insensitively (`-` and `/` in keys match `_`):
//! `ORACLE__CHAIN__RPC_URL=http://…` sets `chain.rpc_url`,
//! `ORACLE__FEEDS__0__HEARTBEAT=30s` sets the first feed's heartbeat.
//!
//! Secrets (keys) are never printed: [`Secret`] redacts itself in `Debug`,
//! and a secret's value may be `file:/path` to read it from a file.
//!
//! Every error names the key it is about, e.g.
//! `config key feeds[0].heartbeat: invalid value: …`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{Pair, SourceId, price};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "ORACLE__";

/// A configuration that could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment override does not fit the file's structure.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a wrong type or value.
    #[error("config key {key}: {message}")]
    Key {
        /// Dotted path of the key, e.g. `feeds[0].heartbeat`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A secret value (a private key). `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.strip_prefix("file:") {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim().to_owned()))
                .map_err(|e| {
                    serde::de::Error::custom(format!("cannot read secret file {path}: {e}"))
                }),
            None => Ok(Secret(raw)),
        }
    }
}

/// The whole configuration. Each service validates the parts it uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// NATS connection and streams.
    pub nats: NatsConfig,
    /// The chain and the contract.
    pub chain: ChainConfig,
    /// The feeds the oracle serves.
    pub feeds: Vec<FeedConfig>,
    /// The price sources, by id.
    pub sources: BTreeMap<SourceId, SourceConfig>,
    /// The fetchers service.
    pub fetchers: FetchersConfig,
    /// The aggregator service.
    pub aggregator: AggregatorConfig,
    /// The client API.
    pub bff: BffConfig,
    /// Deploying the contracts (`oracle-deploy`, the local stack).
    pub deploy: DeployConfig,
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `auto` (JSON unless stderr is a terminal), `json` or `text`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `info,oracle_fetchers=debug`;
    /// `RUST_LOG` wins when set.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_level: "info".into(),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, text otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// NATS connection and JetStream streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// How long the observation stream keeps messages.
    #[serde(with = "humantime_serde")]
    pub obs_max_age: Duration,
    /// Window in which the stream drops a repeated `Nats-Msg-Id`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Stream replicas (1 for a single server, 3 for a cluster).
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            obs_max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }
}

/// The chain and the deployed contract.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// Address of the deployed `OracleHub`; required by the aggregator and the bff.
    pub hub_address: Option<alloy::primitives::Address>,
    /// The chain id the RPC must report; checked at start-up when set.
    pub chain_id: Option<u64>,
}

/// One feed: which sources, how many are needed, when to update.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The pair, `BTC/USD`.
    pub pair: Pair,
    /// Decimals of the on-chain integer.
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// Sanity bound: prices at or below it are rejected, never clamped (quote
    /// units, a decimal string such as `"1000"`). The hub stores bounds as
    /// `m × 10^e` with m < 65536 after scaling by `decimals`.
    pub min_price: Decimal,
    /// Sanity bound: prices at or above it are rejected, never clamped.
    pub max_price: Decimal,
    /// Primary sources, polled every cycle.
    pub sources: Vec<SourceId>,
    /// Fallback sources in priority order, polled within the same cycle only
    /// when fewer than `min_sources` primaries answered.
    #[serde(default)]
    pub fallbacks: Vec<SourceId>,
    /// Fewest distinct sources an aggregate needs.
    #[serde(default = "default_min_sources")]
    pub min_sources: usize,
    /// Oldest observation an aggregate may use.
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Update when the aggregate moved this many basis points from the on-chain value.
    #[serde(default = "default_deviation_bps")]
    pub deviation_bps: u32,
    /// Update at least this often.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How old a report's observation time may be when a block includes it
    /// (1 s to 4095 s): the hub skips older reports (`ReportTooOld`), so that
    /// a signed batch withheld and relayed later cannot look fresh. Set on the
    /// hub at deployment (`setMaxReportAge` changes it); the aggregator reads
    /// the hub's value.
    #[serde(default = "default_max_report_age", with = "humantime_serde")]
    pub max_report_age: Duration,
    /// The feed's Chainlink-compatible `FeedAdapter`, as `oracle-deploy`
    /// printed it; shown by the bff's `/v1/feeds`.
    #[serde(default)]
    pub adapter: Option<alloy::primitives::Address>,
}

fn default_decimals() -> u8 {
    8
}
fn default_min_sources() -> usize {
    2
}
fn default_max_age() -> Duration {
    Duration::from_secs(10)
}
fn default_deviation_bps() -> u32 {
    50
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_report_age() -> Duration {
    Duration::from_secs(120)
}

/// The longest `max_report_age` the hub stores (12 bits of seconds).
pub const MAX_REPORT_AGE_LIMIT: Duration = Duration::from_secs(4095);

/// One price source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The connector that speaks this source's API; defaults to the source id.
    #[serde(default)]
    pub kind: Option<String>,
    /// Base URL of the API, e.g. `https://api.kraken.com` (a path prefix is kept).
    pub base_url: String,
    /// Per-request timeout.
    #[serde(default = "default_source_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The source's market for each pair it serves: `"BTC/USD" = "XBTUSD"`
    /// (a market quoted in the pair's quote currency), or
    /// `"BTC/USD" = { symbol = "BTCUSDT", quote = "USDT" }` to let a market
    /// quoted in another currency stand in for it (observations then carry
    /// `market_quote`).
    pub symbols: BTreeMap<Pair, SymbolSpec>,
    /// Request budget, never exceeded; defaults to the API's documented limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A source's market for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SymbolSpec {
    /// A market quoted in the pair's own quote currency.
    Plain(String),
    /// A market quoted in `quote`, standing in for the pair's quote currency.
    Proxy {
        /// The source's symbol.
        symbol: String,
        /// The market's quote currency, e.g. `USDT`.
        quote: String,
    },
}

impl SymbolSpec {
    /// The source's symbol.
    pub fn symbol(&self) -> &str {
        match self {
            SymbolSpec::Plain(s) => s,
            SymbolSpec::Proxy { symbol, .. } => symbol,
        }
    }

    /// The market's quote currency when it differs from the pair's.
    pub fn proxy_quote(&self) -> Option<&str> {
        match self {
            SymbolSpec::Plain(_) => None,
            SymbolSpec::Proxy { quote, .. } => Some(quote),
        }
    }
}

/// A request budget: at most `requests` in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

fn default_source_timeout() -> Duration {
    Duration::from_secs(3)
}

impl SourceConfig {
    /// The connector name: `kind`, or the source id when `kind` is not set.
    pub fn kind_or<'a>(&'a self, id: &'a SourceId) -> &'a str {
        self.kind.as_deref().unwrap_or(id.as_str())
    }
}

/// Deploying the hub and its adapters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Authorized signers, one per aggregator node; when empty, the address of
    /// `aggregator.signer_key` alone (a single-node deployment).
    pub signers: Vec<alloy::primitives::Address>,
    /// Distinct signatures per batch; when unset, a majority of the signers.
    pub threshold: Option<u8>,
    /// How far a report's observation time may run ahead of the block.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// Who owns the hub; when unset, the deployer. A different owner must
    /// accept the transfer (two-step).
    pub owner: Option<alloy::primitives::Address>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            signers: Vec::new(),
            threshold: None,
            max_future_skew: Duration::from_secs(60),
            owner: None,
        }
    }
}

/// The fetchers service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchersConfig {
    /// This process's name, carried in every observation.
    pub id: String,
    /// How often every source is polled.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Attempts per poll of one source (1 = no retry).
    pub max_attempts: usize,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Largest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// When, within a cycle, to decide on fallbacks if primaries have not all
    /// answered; default half the poll interval.
    #[serde(with = "humantime_serde::option")]
    pub fallback_after: Option<Duration>,
    /// Consecutive failed polls of a source that open its circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips its source before one probe request.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Observations that may wait for NATS before new ones are dropped.
    pub publish_buffer: usize,
    /// Where `/metrics` and `/healthz` listen.
    pub metrics_addr: SocketAddr,
    /// How far ahead of this host's clock an exchange's data timestamp may be;
    /// a quote dated later is refused (`future_timestamp`), never published.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
}

impl Default for FetchersConfig {
    fn default() -> Self {
        Self {
            id: "fetchers-1".into(),
            poll_interval: Duration::from_secs(1),
            max_attempts: 3,
            retry_min_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(2),
            fallback_after: None,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            publish_buffer: 10_000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9101)),
            max_clock_skew: Duration::from_secs(2),
        }
    }
}

/// The aggregator service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorConfig {
    /// This node's name: its durable JetStream consumer, its leader-lease
    /// holder id, and the `aggregator` of its submissions. Unique per node.
    pub consumer: String,
    /// How often feeds are evaluated without a new observation (heartbeats);
    /// an observation that makes a feed due is evaluated at once.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// This node's one signer key (EIP-712 reports), hex; an authorized signer
    /// of the hub. Each node of the quorum is run by its own operator with
    /// exactly one key.
    pub signer_key: Secret,
    /// Refused: a list of signer keys in one process would let one host sign
    /// for the whole quorum. Present only to say so by name at start-up.
    pub signer_keys: Vec<Secret>,
    /// Key of the account that pays for and sends transactions, hex (each node
    /// has its own; only the leader sends).
    pub sender_key: Secret,
    /// How long to wait for a transaction receipt.
    #[serde(with = "humantime_serde")]
    pub receipt_timeout: Duration,
    /// Where `/metrics` and `/healthz` listen.
    pub metrics_addr: SocketAddr,
    /// Outlier rule: drop a price farther from the median than `outlier_k`
    /// median absolute deviations…
    pub outlier_k: f64,
    /// …but never closer than this many basis points (when most sources agree
    /// exactly, the MAD is 0).
    pub min_outlier_bps: u32,
    /// Hard limit: drop a price farther than this from the median, in bps.
    pub max_spread_bps: u32,
    /// Most reports in one transaction; more due feeds wait for the next tick.
    pub max_batch: usize,
    /// How many times a failed submission's feeds are retried automatically
    /// before they wait for an operator.
    pub retry_limit: u32,
    /// Fee increase of a replacement transaction, percent (at least 10).
    pub fee_bump_percent: u32,
    /// Cap on the max fee per gas, gwei.
    pub max_fee_per_gas_gwei: u64,
    /// How long an on-demand refresh waits for fresh observations from a quorum.
    #[serde(with = "humantime_serde")]
    pub refresh_timeout: Duration,
    /// Leader lease lifetime: with several aggregators, only the holder of the
    /// lease (NATS KV bucket `oracle_leader`) submits; a standby takes over
    /// within this time after the leader stops renewing. Each aggregator needs
    /// its own `consumer` name.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long the leader waits for the other nodes' signatures on a
    /// proposal; nodes refuse to sign after it.
    #[serde(with = "humantime_serde")]
    pub proposal_timeout: Duration,
    /// A node signs only if its own newest-per-source median lies within this
    /// many basis points of the proposed price (no cherry-picked sources).
    pub max_disagreement_bps: u32,
    /// How far ahead of this node's clock an observation (or a proposal's
    /// computation time) may be; later ones are rejected and counted.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            consumer: "aggregator".into(),
            tick: Duration::from_millis(500),
            signer_key: Secret::default(),
            signer_keys: Vec::new(),
            sender_key: Secret::default(),
            receipt_timeout: Duration::from_secs(60),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9102)),
            outlier_k: 5.0,
            min_outlier_bps: 10,
            max_spread_bps: 200,
            max_batch: 32,
            retry_limit: 3,
            fee_bump_percent: 25,
            max_fee_per_gas_gwei: 500,
            refresh_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(6),
            proposal_timeout: Duration::from_secs(2),
            max_disagreement_bps: 50,
            max_clock_skew: Duration::from_secs(2),
        }
    }
}

/// The client API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BffConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_addr: SocketAddr,
    /// How long `POST /v1/prices/{pair}/refresh` waits for inclusion before
    /// answering 202 with the submission id.
    #[serde(with = "humantime_serde")]
    pub refresh_wait: Duration,
    /// Submissions kept in memory for `/v1/submissions` (the oldest are
    /// dropped beyond this; `ORACLE_SUBMISSIONS` keeps the full record).
    pub max_submissions: usize,
    /// Bearer token of the `/v1/admin` endpoints; unset disables them. Set it
    /// through `ORACLE__BFF__ADMIN_TOKEN`, not in a file.
    pub admin_token: Option<Secret>,
    /// How often the price cache polls the chain head for new events.
    #[serde(with = "humantime_serde")]
    pub chain_poll: Duration,
    /// API keys accepted in `X-API-Key` on the `/v1` client endpoints; empty
    /// leaves them open. Secrets (`file:` works).
    pub api_keys: Vec<Secret>,
    /// Requests per API key (or per client IP without one); unset: no limit.
    pub rate_limit: Option<RateLimit>,
    /// Origins allowed by CORS (`*` for any); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest time to produce a response (streams: to start one); must
    /// exceed `refresh_wait`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for BffConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9103)),
            refresh_wait: Duration::from_secs(12),
            max_submissions: 100_000,
            admin_token: None,
            chain_poll: Duration::from_millis(500),
            api_keys: Vec::new(),
            rate_limit: None,
            cors_origins: Vec::new(),
            max_body_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The `--config` option every service binary takes (`ORACLE_CONFIG` in the
/// environment works too); flatten it into a clap parser.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Configuration file (TOML); keys can be overridden by ORACLE__… variables.
    #[arg(
        long = "config",
        value_name = "CONFIG",
        env = "ORACLE_CONFIG",
        default_value = "config/default.toml",
        global = true
    )]
    pub path: PathBuf,
}

/// A configuration file that could not be loaded, with its path.
#[derive(Debug, thiserror::Error)]
#[error("loading {}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: ConfigError,
}

impl ConfigArg {
    /// Loads the file with the environment's overrides.
    pub fn load(&self) -> Result<Config, LoadError> {
        Config::load(&self.path).map_err(|source| LoadError {
            path: self.path.clone(),
            source,
        })
    }
}

impl Config {
    /// Loads `path`, applies `ORACLE__…` overrides from the process
    /// environment, and checks the parts every service shares.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`], with the environment given explicitly.
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_with_env(&text, path, env)
    }

    /// Parses TOML text (`origin` names it in errors), applies overrides, checks.
    pub fn from_toml_with_env(
        text: &str,
        origin: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort();
        let mut applied = Vec::with_capacity(overrides.len());
        for (var, value) in &overrides {
            applied.push(apply_override(&mut root, var, value)?);
        }
        // A value set from the environment for a key the file does not have is
        // typed by its look (`7` is an integer). Where the schema wants text
        // instead, retry with the text: at most once per override.
        let mut retries = applied.len();
        let config: Config = loop {
            match serde_path_to_error::deserialize::<_, Config>(root.clone()) {
                Ok(config) => break config,
                Err(e) => {
                    let key = e.path().to_string();
                    let by_env = applied.iter().find(|a| a.key == key);
                    if let Some(a) = by_env.filter(|a| a.inferred && retries > 0) {
                        retries -= 1;
                        set_path(&mut root, &a.segments, toml::Value::String(a.text.clone()));
                        if let Some(a) = applied.iter_mut().find(|x| x.key == key) {
                            a.inferred = false;
                        }
                        continue;
                    }
                    let mut message = e.inner().to_string();
                    if let Some(a) = by_env {
                        message = format!("{} (set by {})", message.trim_end(), a.var);
                    }
                    let key = if key == "." { "(root)".to_owned() } else { key };
                    return Err(ConfigError::key(key, message));
                }
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules that span keys: feeds reference configured sources,
    /// quorums are reachable, durations are positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nats.url.trim().is_empty() {
            return Err(ConfigError::key("nats.url", "must not be empty"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, feed) in self.feeds.iter().enumerate() {
            let k = |field: &str| format!("feeds[{i}].{field}");
            if !seen.insert(feed.pair.clone()) {
                return Err(ConfigError::key(
                    k("pair"),
                    format!("{} is configured twice", feed.pair),
                ));
            }
            if feed.decimals > 18 {
                return Err(ConfigError::key(k("decimals"), "must be at most 18"));
            }
            if feed.sources.is_empty() {
                return Err(ConfigError::key(
                    k("sources"),
                    "must name at least one source",
                ));
            }
            let mut named = std::collections::BTreeSet::new();
            let listed = feed.sources.iter().map(|s| ("sources", s));
            for (field, source) in listed.chain(feed.fallbacks.iter().map(|s| ("fallbacks", s))) {
                if !named.insert(source) {
                    return Err(ConfigError::key(
                        k(field),
                        format!("source {source} is named twice"),
                    ));
                }
                let Some(sc) = self.sources.get(source) else {
                    return Err(ConfigError::key(
                        k(field),
                        format!("source {source} is not configured under [sources]"),
                    ));
                };
                if !sc.symbols.contains_key(&feed.pair) {
                    return Err(ConfigError::key(
                        format!("sources.{source}.symbols"),
                        format!(
                            "has no symbol for {}, which feed {} polls it for",
                            feed.pair, feed.pair
                        ),
                    ));
                }
            }
            let available = feed.sources.len() + feed.fallbacks.len();
            if feed.min_sources == 0 || feed.min_sources > available {
                return Err(ConfigError::key(
                    k("min_sources"),
                    format!(
                        "must be between 1 and the number of sources and fallbacks ({available})"
                    ),
                ));
            }
            if feed.max_age.is_zero() {
                return Err(ConfigError::key(k("max_age"), "must be positive"));
            }
            if feed.heartbeat.is_zero() {
                return Err(ConfigError::key(k("heartbeat"), "must be positive"));
            }
            if feed.max_report_age < Duration::from_secs(1)
                || feed.max_report_age > MAX_REPORT_AGE_LIMIT
            {
                return Err(ConfigError::key(
                    k("max_report_age"),
                    "must be between 1s and 4095s (the hub stores 12 bits of seconds)",
                ));
            }
            if feed.deviation_bps == 0 || feed.deviation_bps > 10_000 {
                return Err(ConfigError::key(
                    k("deviation_bps"),
                    "must be between 1 and 10000",
                ));
            }
            if feed.min_price < Decimal::ZERO || feed.max_price <= feed.min_price {
                return Err(ConfigError::key(
                    k("max_price"),
                    format!(
                        "bounds must satisfy 0 <= min_price < max_price, got {} and {}",
                        feed.min_price, feed.max_price
                    ),
                ));
            }
            for (field, value) in [("min_price", feed.min_price), ("max_price", feed.max_price)] {
                let decimals = u32::from(feed.decimals);
                let exact = price::to_scaled(value, decimals).is_ok_and(|scaled| {
                    Decimal::from_i128_with_scale(scaled, decimals) == value
                        && price::bound_representable(scaled)
                });
                if !exact {
                    return Err(ConfigError::key(
                        k(field),
                        format!(
                            "{value} cannot be stored by the hub: use at most 5 significant digits \
                             (like 1000 or 12.5) and at most {decimals} decimals"
                        ),
                    ));
                }
            }
        }
        for (id, source) in &self.sources {
            let url = source.base_url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::key(
                    format!("sources.{id}.base_url"),
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
            if source.timeout.is_zero() {
                return Err(ConfigError::key(
                    format!("sources.{id}.timeout"),
                    "must be positive",
                ));
            }
            if let Some(limit) = source.rate_limit
                && (limit.requests == 0 || limit.per.is_zero())
            {
                return Err(ConfigError::key(
                    format!("sources.{id}.rate_limit"),
                    "requests and per must be positive",
                ));
            }
        }
        if let Some(limit) = self.bff.rate_limit
            && (limit.requests == 0 || limit.per.is_zero())
        {
            return Err(ConfigError::key(
                "bff.rate_limit",
                "requests and per must be positive",
            ));
        }
        if self.bff.request_timeout <= self.bff.refresh_wait {
            return Err(ConfigError::key(
                "bff.request_timeout",
                "must be longer than bff.refresh_wait",
            ));
        }
        if self.bff.chain_poll.is_zero() {
            return Err(ConfigError::key("bff.chain_poll", "must be positive"));
        }
        if self.fetchers.poll_interval.is_zero() {
            return Err(ConfigError::key(
                "fetchers.poll_interval",
                "must be positive",
            ));
        }
        if self.fetchers.breaker_failures == 0 {
            return Err(ConfigError::key(
                "fetchers.breaker_failures",
                "must be at least 1",
            ));
        }
        if self.fetchers.publish_buffer == 0 {
            return Err(ConfigError::key(
                "fetchers.publish_buffer",
                "must be at least 1",
            ));
        }
        if self.fetchers.max_attempts == 0 {
            return Err(ConfigError::key(
                "fetchers.max_attempts",
                "must be at least 1",
            ));
        }
        let a = &self.aggregator;
        if !a.signer_keys.is_empty() {
            return Err(ConfigError::key(
                "aggregator.signer_keys",
                format!(
                    "holds {} keys, but a node holds exactly one signer key: set \
                     aggregator.signer_key to this node's key and run one aggregator per key",
                    a.signer_keys.len()
                ),
            ));
        }
        if a.proposal_timeout < Duration::from_millis(100) {
            return Err(ConfigError::key(
                "aggregator.proposal_timeout",
                "must be at least 100ms",
            ));
        }
        if a.max_disagreement_bps == 0 || a.max_disagreement_bps > 10_000 {
            return Err(ConfigError::key(
                "aggregator.max_disagreement_bps",
                "must be between 1 and 10000",
            ));
        }
        if !(a.outlier_k.is_finite() && a.outlier_k > 0.0) {
            return Err(ConfigError::key(
                "aggregator.outlier_k",
                "must be a positive number",
            ));
        }
        if a.max_spread_bps == 0 || a.max_spread_bps > 10_000 {
            return Err(ConfigError::key(
                "aggregator.max_spread_bps",
                "must be between 1 and 10000",
            ));
        }
        if a.lease_ttl < Duration::from_secs(1) {
            return Err(ConfigError::key(
                "aggregator.lease_ttl",
                "must be at least 1s",
            ));
        }
        if a.max_batch == 0 {
            return Err(ConfigError::key(
                "aggregator.max_batch",
                "must be at least 1",
            ));
        }
        if a.fee_bump_percent < 10 {
            return Err(ConfigError::key(
                "aggregator.fee_bump_percent",
                "must be at least 10 (nodes refuse smaller replacements)",
            ));
        }
        if self.aggregator.tick.is_zero() {
            return Err(ConfigError::key("aggregator.tick", "must be positive"));
        }
        Ok(())
    }

    /// Checks what the aggregator and the bff need of the chain section.
    pub fn require_chain(&self) -> Result<alloy::primitives::Address, ConfigError> {
        let url = self.chain.rpc_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::key(
                "chain.rpc_url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        self.chain.hub_address.ok_or_else(|| {
            ConfigError::key("chain.hub_address", "is required (the deployed OracleHub)")
        })
    }

    /// The feed for a pair, if configured.
    pub fn feed(&self, pair: &Pair) -> Option<&FeedConfig> {
        self.feeds.iter().find(|f| &f.pair == pair)
    }
}

/// Normalizes a key for case- and punctuation-insensitive matching.
fn norm(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '-' | '/' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Parses an override's text as the type of the value it replaces.
fn typed_value(text: &str, like: Option<&toml::Value>) -> Result<toml::Value, String> {
    let parsed = || -> Option<toml::Value> {
        toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
    };
    match like {
        Some(toml::Value::String(_)) => Ok(toml::Value::String(text.to_owned())),
        Some(existing) => match parsed() {
            Some(v) if v.same_type(existing) => Ok(v),
            Some(toml::Value::Integer(i)) if matches!(existing, toml::Value::Float(_)) => {
                Ok(toml::Value::Float(i as f64))
            }
            _ => Err(format!(
                "expected a {} value, got {text:?}",
                existing.type_str()
            )),
        },
        None => Ok(match parsed() {
            Some(
                v @ (toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_)),
            ) => v,
            Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(text.to_owned()),
        }),
    }
}

/// What one environment override changed.
#[derive(Debug)]
struct Applied {
    var: String,
    /// The key as serde_path_to_error prints it: `feeds[0].heartbeat`.
    key: String,
    /// The actual keys and indices walked.
    segments: Vec<Segment>,
    text: String,
    /// The value's type was guessed (the file had no value there).
    inferred: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn set_path(root: &mut toml::Value, segments: &[Segment], value: toml::Value) {
    let mut node = root;
    for seg in segments {
        let next = match (seg, node) {
            (Segment::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Segment::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    *node = value;
}

fn apply_override(root: &mut toml::Value, var: &str, text: &str) -> Result<Applied, ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let path: Vec<&str> = var[ENV_PREFIX.len()..].split("__").collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(env_err("empty path segment".into()));
    }
    let mut applied = Applied {
        var: var.to_owned(),
        key: String::new(),
        segments: Vec::with_capacity(path.len()),
        text: text.to_owned(),
        inferred: false,
    };
    let mut node = root;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        node = match node {
            toml::Value::Table(table) => {
                let wanted = norm(segment);
                let key = table
                    .keys()
                    .find(|k| norm(k) == wanted)
                    .cloned()
                    .unwrap_or_else(|| segment.to_ascii_lowercase());
                if !applied.key.is_empty() {
                    applied.key.push('.');
                }
                applied.key.push_str(&key);
                applied.segments.push(Segment::Key(key.clone()));
                if last {
                    applied.inferred = !table.contains_key(&key);
                    let value = typed_value(text, table.get(&key)).map_err(env_err)?;
                    table.insert(key, value);
                    return Ok(applied);
                }
                table
                    .entry(key)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(items) => {
                let index: usize = segment
                    .parse()
                    .map_err(|_| env_err(format!("{segment:?} is not an index into a list")))?;
                let len = items.len();
                let item = items.get_mut(index).ok_or_else(|| {
                    env_err(format!("index {index} is past the list's {len} items"))
                })?;
                applied.key.push_str(&format!("[{index}]"));
                applied.segments.push(Segment::Index(index));
                if last {
                    *item = typed_value(text, Some(item)).map_err(env_err)?;
                    return Ok(applied);
                }
                item
            }
            other => {
                return Err(env_err(format!(
                    "{} is a {} and has no key {segment:?}",
                    path[..depth].join("__"),
                    other.type_str()
                )));
            }
        };
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[nats]
url = "nats://127.0.0.1:4222"

[chain]
rpc_url = "http://127.0.0.1:8545"

[sources.kraken]
base_url = "https://api.kraken.com"
symbols = { "BTC/USD" = "XBTUSD" }

[sources.coinbase]
base_url = "https://api.exchange.coinbase.com"
symbols = { "BTC/USD" = "BTC-USD" }

[[feeds]]
pair = "BTC/USD"
sources = ["kraken", "coinbase"]
heartbeat = "1h"
min_price = "1000"
max_price = "10000000"

[aggregator]
signer_key = "0x01"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn loads_with_defaults() {
        let c = load(SAMPLE, &[]).unwrap();
        assert_eq!(c.feeds[0].decimals, 8);
        assert_eq!(c.feeds[0].heartbeat, Duration::from_secs(3600));
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.fetchers.poll_interval, Duration::from_secs(1));
    }

    #[test]
    fn env_overrides_nested_keys_and_list_items() {
        let c = load(
            SAMPLE,
            &[
                ("ORACLE__CHAIN__RPC_URL", "http://10.0.0.1:8545"),
                ("ORACLE__FEEDS__0__HEARTBEAT", "30s"),
                ("ORACLE__FEEDS__0__MIN_SOURCES", "1"),
                ("ORACLE__FETCHERS__ID", "7"),
                ("ORACLE__SOURCES__KRAKEN__SYMBOLS__BTC_USD", "XXBTZUSD"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.chain.rpc_url, "http://10.0.0.1:8545");
        assert_eq!(c.feeds[0].heartbeat, Duration::from_secs(30));
        assert_eq!(c.feeds[0].min_sources, 1);
        assert_eq!(c.fetchers.id, "7");
        let pair: Pair = "BTC/USD".parse().unwrap();
        assert_eq!(
            c.sources[&"kraken".parse().unwrap()].symbols[&pair].symbol(),
            "XXBTZUSD"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__HEARTBEAT", "soon")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].heartbeat"), "{err}");

        let err = load(
            &SAMPLE.replace("heartbeat = \"1h\"", "hartbeat = \"1h\""),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("hartbeat"), "{err}");

        let err = load(
            &SAMPLE.replace("\"kraken\", \"coinbase\"", "\"kraken\", \"bitstamp\""),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("feeds[0].sources"), "{err}");
        assert!(err.to_string().contains("bitstamp"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_SOURCES", "3")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].min_sources"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_SOURCES", "many")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].min_sources"), "{err}");
        assert!(
            err.to_string().contains("ORACLE__FEEDS__0__MIN_SOURCES"),
            "{err}"
        );

        let err = load(SAMPLE, &[("ORACLE__FEEDS__5__HEARTBEAT", "1s")]).unwrap_err();
        assert!(err.to_string().contains("past the list"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_PRICE", "10000001")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].max_price"), "{err}");
        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_PRICE", "20000000")]).unwrap_err();
        assert!(err.to_string().contains("min_price < max_price"), "{err}");

        let err = load("[nats\nurl=1", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn fallbacks_and_proxy_markets() {
        let text = SAMPLE.replace(
            "sources = [\"kraken\", \"coinbase\"]",
            "sources = [\"kraken\"]\nfallbacks = [\"coinbase\"]",
        ).replace(
            "symbols = { \"BTC/USD\" = \"BTC-USD\" }",
            "symbols = { \"BTC/USD\" = { symbol = \"BTC-USDT\", quote = \"USDT\" } }\nrate_limit = { requests = 5, per = \"1s\" }",
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.feeds[0].fallbacks.len(), 1);
        let pair: Pair = "BTC/USD".parse().unwrap();
        let cb = &c.sources[&"coinbase".parse().unwrap()];
        assert_eq!(cb.symbols[&pair].symbol(), "BTC-USDT");
        assert_eq!(cb.symbols[&pair].proxy_quote(), Some("USDT"));
        assert_eq!(cb.rate_limit.unwrap().requests, 5);

        let twice = SAMPLE.replace(
            "heartbeat = \"1h\"",
            "heartbeat = \"1h\"\nfallbacks = [\"kraken\"]",
        );
        let err = load(&twice, &[]).unwrap_err();
        assert!(
            err.to_string().contains("feeds[0].fallbacks")
                && err.to_string().contains("named twice"),
            "{err}"
        );
        let zero = text.replace("requests = 5", "requests = 0");
        let err = load(&zero, &[]).unwrap_err();
        assert!(
            err.to_string().contains("sources.coinbase.rate_limit"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_and_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("oracle-secret-{}", std::process::id()));
        std::fs::write(&dir, "0xabc\n").unwrap();
        let c = load(
            SAMPLE,
            &[(
                "ORACLE__AGGREGATOR__SENDER_KEY",
                &format!("file:{}", dir.display()),
            )],
        )
        .unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(c.aggregator.sender_key.expose(), "0xabc");
        let shown = format!("{:?}", c.aggregator);
        assert!(
            !shown.contains("0xabc") && !shown.contains("0x01"),
            "{shown}"
        );
    }

    #[test]
    fn a_list_of_signer_keys_is_refused_by_name_without_showing_them() {
        let text = SAMPLE.replace(
            "signer_key = \"0x01\"",
            "signer_keys = [\"0xaaaa\", \"0xbbbb\"]",
        );
        let err = load(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("aggregator.signer_keys"), "{err}");
        assert!(err.contains("exactly one signer key"), "{err}");
        assert!(!err.contains("0xaaaa") && !err.contains("0xbbbb"), "{err}");
        // One key is the way.
        assert_eq!(
            load(SAMPLE, &[]).unwrap().aggregator.signer_key.expose(),
            "0x01"
        );
    }

    #[test]
    fn max_report_age_must_fit_the_hub() {
        let c = load(SAMPLE, &[]).unwrap();
        assert_eq!(c.feeds[0].max_report_age, Duration::from_secs(120));
        for bad in ["0s", "4096s"] {
            let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_REPORT_AGE", bad)]).unwrap_err();
            assert!(err.to_string().contains("feeds[0].max_report_age"), "{err}");
        }
        let ok = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_REPORT_AGE", "4095s")]).unwrap();
        assert_eq!(ok.feeds[0].max_report_age, Duration::from_secs(4095));
    }

    #[test]
    fn shipped_configs_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("config");
        for name in ["default.toml", "dev.toml"] {
            let c = Config::load_with_env(&root.join(name), Vec::new())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.feeds.is_empty(), "{name} has no feeds");
        }
    }
}
