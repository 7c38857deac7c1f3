//! `[[chains]]`: every EVM chain the oracle serves. One aggregation feeds them
//! all; each chain has its own hub, RPC endpoints, timing, confirmations, fee
//! policy and per-feed overrides (deviation, heartbeat, adapter). The first
//! chain is the default one of the client API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, FeedConfig};
use crate::Pair;

/// One chain and the hub deployed on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Short name used in metrics, logs, subjects and the API (`?chain=`):
    /// lowercase letters, digits and `-`.
    pub name: String,
    /// The chain id the RPC must report (also the EIP-712 domain's).
    pub chain_id: u64,
    /// JSON-RPC endpoints (http(s)). An aggregator node uses the first that
    /// answers and moves to the next one that does when it stops answering;
    /// the bff reads the first.
    pub rpc_urls: Vec<String>,
    /// A websocket endpoint for new-head subscriptions (the bff); polling
    /// the first RPC URL is the fallback.
    #[serde(default)]
    pub ws_url: Option<String>,
    /// Address of the deployed `OracleHub`; required by the aggregator and the bff.
    #[serde(default)]
    pub hub_address: Option<alloy::primitives::Address>,
    /// The chain's expected block time: how long an update may take to be
    /// included, and how far this chain's updates may lag the fastest one.
    #[serde(default = "default_block_time", with = "humantime_serde")]
    pub block_time: Duration,
    /// Blocks on top of the including one before a submission is `success`;
    /// until then a reorg that drops it returns it to `pending`.
    #[serde(default)]
    pub confirmations: u64,
    /// How long to wait for a receipt before replacing the transaction
    /// (default: `aggregator.receipt_timeout`).
    #[serde(default, with = "humantime_serde")]
    pub receipt_timeout: Option<Duration>,
    /// Fee increase of a replacement, percent (default: the aggregator's).
    #[serde(default)]
    pub fee_bump_percent: Option<u32>,
    /// Cap on the max fee per gas, gwei (default: the aggregator's).
    #[serde(default)]
    pub max_fee_per_gas_gwei: Option<u64>,
    /// Failed submissions in a row before a feed waits for an operator on
    /// this chain (default: the aggregator's `retry_limit`).
    #[serde(default)]
    pub retry_limit: Option<u32>,
    /// Below this sender balance (ether) the node warns and the alert fires.
    #[serde(default = "default_min_balance")]
    pub min_sender_balance_eth: f64,
    /// Per-feed policy on this chain, by pair.
    #[serde(default)]
    pub feeds: BTreeMap<Pair, FeedOverride>,
}

/// What a chain changes of a feed's policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedOverride {
    /// Deviation threshold on this chain, basis points.
    #[serde(default)]
    pub deviation_bps: Option<u32>,
    /// Heartbeat on this chain.
    #[serde(default, with = "humantime_serde")]
    pub heartbeat: Option<Duration>,
    /// The feed's `FeedAdapter` on this chain.
    #[serde(default)]
    pub adapter: Option<alloy::primitives::Address>,
}

fn default_block_time() -> Duration {
    Duration::from_secs(12)
}
fn default_min_balance() -> f64 {
    0.1
}

impl ChainConfig {
    /// A chain with the defaults of every optional key.
    pub fn new(name: impl Into<String>, chain_id: u64, rpc_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            chain_id,
            rpc_urls: vec![rpc_url.into()],
            ws_url: None,
            hub_address: None,
            block_time: default_block_time(),
            confirmations: 0,
            receipt_timeout: None,
            fee_bump_percent: None,
            max_fee_per_gas_gwei: None,
            retry_limit: None,
            min_sender_balance_eth: default_min_balance(),
            feeds: BTreeMap::new(),
        }
    }

    /// Checks the entry at `i` (the feeds it overrides must exist).
    pub fn validate(&self, i: usize, feeds: &[FeedConfig]) -> Result<(), ConfigError> {
        let key = |k: &str| format!("chains[{i}].{k}");
        if self.name.is_empty()
            || self.name.len() > 32
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError::key(
                key("name"),
                format!("{:?}: 1 to 32 lowercase letters, digits or '-'", self.name),
            ));
        }
        if self.chain_id == 0 {
            return Err(ConfigError::key(key("chain_id"), "must be positive"));
        }
        if self.rpc_urls.is_empty() {
            return Err(ConfigError::key(key("rpc_urls"), "needs at least one URL"));
        }
        for (j, url) in self.rpc_urls.iter().enumerate() {
            let url = url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::key(
                    format!("chains[{i}].rpc_urls[{j}]"),
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        if let Some(ws) = &self.ws_url
            && !(ws.starts_with("ws://") || ws.starts_with("wss://"))
        {
            return Err(ConfigError::key(
                key("ws_url"),
                format!("{ws:?} is not a ws(s) URL"),
            ));
        }
        if self.block_time.is_zero() {
            return Err(ConfigError::key(key("block_time"), "must be positive"));
        }
        if self.confirmations > 1_000 {
            return Err(ConfigError::key(key("confirmations"), "at most 1000"));
        }
        if self.fee_bump_percent.is_some_and(|p| p < 10) {
            return Err(ConfigError::key(
                key("fee_bump_percent"),
                "must be at least 10 (nodes refuse smaller replacements)",
            ));
        }
        if self.max_fee_per_gas_gwei == Some(0) {
            return Err(ConfigError::key(
                key("max_fee_per_gas_gwei"),
                "must be positive",
            ));
        }
        if self.receipt_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::key(key("receipt_timeout"), "must be positive"));
        }
        if !(self.min_sender_balance_eth.is_finite() && self.min_sender_balance_eth >= 0.0) {
            return Err(ConfigError::key(
                key("min_sender_balance_eth"),
                "must be a non-negative number",
            ));
        }
        for (pair, o) in &self.feeds {
            let k = |f: &str| format!("chains[{i}].feeds.\"{pair}\".{f}");
            if !feeds.iter().any(|f| &f.pair == pair) {
                return Err(ConfigError::key(
                    format!("chains[{i}].feeds.\"{pair}\""),
                    "is not a configured feed",
                ));
            }
            if o.deviation_bps == Some(0) {
                return Err(ConfigError::key(k("deviation_bps"), "must be positive"));
            }
            if o.heartbeat.is_some_and(|h| h.is_zero()) {
                return Err(ConfigError::key(k("heartbeat"), "must be positive"));
            }
        }
        Ok(())
    }

    /// Checks what the aggregator and the bff need: the hub's address, which
    /// it returns.
    pub fn require_hub(&self) -> Result<alloy::primitives::Address, ConfigError> {
        self.hub_address.ok_or_else(|| {
            ConfigError::key(
                format!("chains.{}.hub_address", self.name),
                "is required (the deployed OracleHub)",
            )
        })
    }

    /// `feed` with this chain's overrides applied.
    pub fn feed(&self, feed: &FeedConfig) -> FeedConfig {
        let mut out = feed.clone();
        if let Some(o) = self.feeds.get(&feed.pair) {
            if let Some(d) = o.deviation_bps {
                out.deviation_bps = d;
            }
            if let Some(h) = o.heartbeat {
                out.heartbeat = h;
            }
            if o.adapter.is_some() {
                out.adapter = o.adapter;
            }
        }
        out
    }
}

/// Checks the list: at least one chain, names and chain ids unique.
pub fn validate_all(chains: &[ChainConfig], feeds: &[FeedConfig]) -> Result<(), ConfigError> {
    let (mut names, mut ids) = (BTreeSet::new(), BTreeSet::new());
    for (i, c) in chains.iter().enumerate() {
        c.validate(i, feeds)?;
        if !names.insert(c.name.as_str()) {
            return Err(ConfigError::key(
                format!("chains[{i}].name"),
                format!("{} is configured twice", c.name),
            ));
        }
        if !ids.insert(c.chain_id) {
            return Err(ConfigError::key(
                format!("chains[{i}].chain_id"),
                format!("{} is configured twice", c.chain_id),
            ));
        }
    }
    Ok(())
}
