//! `[aggregator]`: one node of the signer quorum: its name and keys, the
//! outlier rules, the protocol's timeouts and bounds, and transactions.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret};

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

impl AggregatorConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = self;
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
        if a.tick.is_zero() {
            return Err(ConfigError::key("aggregator.tick", "must be positive"));
        }
        Ok(())
    }
}
