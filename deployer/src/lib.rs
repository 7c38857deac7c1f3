//! Deploying the contracts for a configuration: `OracleHub` with the signer set
//! and threshold of `[deploy]`, every `[[feeds]]` entry registered with its
//! decimals, bounds and heartbeat, and one `FeedAdapter` (Chainlink's
//! `AggregatorV3Interface`) per feed. Used by `oracle-deploy` and the local stack.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;

use oracle_common::chain::{FeedAdapter, OracleHub};
use oracle_common::config::Config;
use oracle_common::price;

/// Transactions sent before their receipts are awaited.
const IN_FLIGHT: usize = 32;

/// What was deployed, as printed by `oracle-deploy`.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// Chain id of the RPC.
    pub chain_id: u64,
    /// The hub.
    pub hub: Address,
    /// Its owner (a proposed owner must still accept).
    pub owner: Address,
    /// A proposed new owner, when `[deploy].owner` differs from the deployer.
    pub pending_owner: Option<Address>,
    /// Authorized signers.
    pub signers: Vec<Address>,
    /// Signatures needed per batch.
    pub threshold: u8,
    /// The feeds, in registration order.
    pub feeds: Vec<DeployedFeed>,
}

/// One registered feed.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedFeed {
    /// `BTC/USD`.
    pub pair: String,
    /// keccak256 of the pair.
    pub feed_id: B256,
    /// Index in the hub (used in reports).
    pub index: u16,
    /// Its `FeedAdapter`.
    pub adapter: Address,
}

/// Deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The configuration cannot be deployed.
    #[error("config key {key}: {message}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A transaction or call failed.
    #[error("{step}: {message}")]
    Chain {
        /// What was being done.
        step: String,
        /// What the node said.
        message: String,
    },
}

fn chain_err(step: impl Into<String>) -> impl FnOnce(String) -> DeployError {
    let step = step.into();
    move |message| DeployError::Chain { step, message }
}

/// The signer addresses and threshold `config` deploys with.
pub fn signer_set(config: &Config) -> Result<(Vec<Address>, u8), DeployError> {
    let mut signers = config.deploy.signers.clone();
    if signers.is_empty() && !config.aggregator.signer_key.is_empty() {
        let signer: PrivateKeySigner = config
            .aggregator
            .signer_key
            .expose()
            .trim()
            .parse()
            .map_err(|_| DeployError::Config {
                key: "aggregator.signer_key",
                message: "is not a private key".into(),
            })?;
        signers.push(signer.address());
    }
    if signers.is_empty() || signers.len() > 255 {
        return Err(DeployError::Config {
            key: "deploy.signers",
            message: "needs 1 to 255 signers, one per aggregator node (or aggregator.signer_key \
                      for a single node)"
                .into(),
        });
    }
    let mut distinct = signers.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != signers.len() {
        return Err(DeployError::Config {
            key: "deploy.signers",
            message: "names a signer twice".into(),
        });
    }
    let threshold = config
        .deploy
        .threshold
        .unwrap_or((signers.len() / 2 + 1) as u8);
    if threshold == 0 || usize::from(threshold) > signers.len() {
        return Err(DeployError::Config {
            key: "deploy.threshold",
            message: format!(
                "must be between 1 and the number of signers ({})",
                signers.len()
            ),
        });
    }
    Ok((signers, threshold))
}

/// Deploys the hub and adapters for `config` on `rpc_url`, paid and owned by `deployer`.
pub async fn deploy(
    config: &Config,
    rpc_url: &str,
    deployer: PrivateKeySigner,
) -> Result<Deployment, DeployError> {
    let (signers, threshold) = signer_set(config)?;
    let deployer_address = deployer.address();
    let url = rpc_url.parse().map_err(|_| DeployError::Config {
        key: "chain.rpc_url",
        message: format!("{rpc_url:?} is not a URL"),
    })?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(url);
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| chain_err("eth_chainId")(e.to_string()))?;
    let skew = u32::try_from(config.deploy.max_future_skew.as_secs()).unwrap_or(u32::MAX);
    let hub = OracleHub::deploy(
        &provider,
        deployer_address,
        signers.clone(),
        threshold,
        skew,
    )
    .await
    .map_err(|e| chain_err("deploying OracleHub")(e.to_string()))?;

    // Transactions go out IN_FLIGHT at a time and their receipts are awaited
    // together: hundreds of feeds take a few blocks, not two blocks each.
    let mut feeds = Vec::with_capacity(config.feeds.len());
    for chunk in config.feeds.chunks(IN_FLIGHT) {
        let mut added = Vec::with_capacity(chunk.len());
        for feed in chunk {
            let decimals = u32::from(feed.decimals);
            let scale = |v| {
                price::to_scaled(v, decimals).map_err(|e| DeployError::Config {
                    key: "feeds",
                    message: format!("{}: {e}", feed.pair),
                })
            };
            let (min, max) = (scale(feed.min_price)?, scale(feed.max_price)?);
            let description = format!("{} / {}", feed.pair.base(), feed.pair.quote());
            let heartbeat = u32::try_from(feed.heartbeat.as_secs()).unwrap_or(u32::MAX);
            let max_report_age = u32::try_from(feed.max_report_age.as_secs()).unwrap_or(u32::MAX);
            let call = hub.addFeed(
                feed.pair.feed_id(),
                feed.decimals,
                alloy::primitives::I256::try_from(min).unwrap_or_default(),
                alloy::primitives::I256::try_from(max).unwrap_or_default(),
                heartbeat,
                max_report_age,
                description,
            );
            // Estimated before the previous additions are mined: a quarter
            // more covers what they change (a new storage word, a longer list).
            let gas = call
                .estimate_gas()
                .await
                .map_err(|e| chain_err(format!("addFeed {}", feed.pair))(e.to_string()))?;
            let pending = call
                .gas(gas + gas / 4)
                .send()
                .await
                .map_err(|e| chain_err(format!("addFeed {}", feed.pair))(e.to_string()))?;
            added.push((feed, pending));
        }
        for (feed, pending) in added {
            let receipt = pending
                .get_receipt()
                .await
                .map_err(|e| chain_err(format!("addFeed {} receipt", feed.pair))(e.to_string()))?;
            if !receipt.status() {
                return Err(chain_err(format!("addFeed {}", feed.pair))(
                    "the transaction reverted".into(),
                ));
            }
        }
        let mut adapters = Vec::with_capacity(chunk.len());
        for feed in chunk {
            let pending =
                FeedAdapter::deploy_builder(&provider, *hub.address(), feed.pair.feed_id())
                    .send()
                    .await
                    .map_err(|e| {
                        chain_err(format!("deploying FeedAdapter for {}", feed.pair))(e.to_string())
                    })?;
            adapters.push((feed, pending));
        }
        for (feed, pending) in adapters {
            let receipt = pending.get_receipt().await.map_err(|e| {
                chain_err(format!("deploying FeedAdapter for {}", feed.pair))(e.to_string())
            })?;
            let adapter = receipt
                .contract_address
                .filter(|_| receipt.status())
                .ok_or_else(|| {
                    chain_err(format!("deploying FeedAdapter for {}", feed.pair))(
                        "no contract created".into(),
                    )
                })?;
            let index = hub
                .feedIndex(feed.pair.feed_id())
                .call()
                .await
                .map_err(|e| chain_err(format!("feedIndex {}", feed.pair))(e.to_string()))?;
            feeds.push(DeployedFeed {
                pair: feed.pair.to_string(),
                feed_id: feed.pair.feed_id(),
                index,
                adapter,
            });
        }
    }

    let pending_owner = match config.deploy.owner {
        Some(owner) if owner != deployer_address => {
            hub.transferOwnership(owner)
                .send()
                .await
                .map_err(|e| chain_err("transferOwnership")(e.to_string()))?
                .get_receipt()
                .await
                .map_err(|e| chain_err("transferOwnership receipt")(e.to_string()))?;
            Some(owner)
        }
        _ => None,
    };
    Ok(Deployment {
        chain_id,
        hub: *hub.address(),
        owner: deployer_address,
        pending_owner,
        signers,
        threshold,
        feeds,
    })
}
