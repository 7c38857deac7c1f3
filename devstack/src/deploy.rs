//! Deploying `OracleHub` for the local stack: the signer set is the
//! addresses of the aggregator's configured signer keys, and every configured
//! feed is registered.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use oracle_common::chain::OracleHub;
use oracle_common::config::Config;

/// anvil's account 0, the owner of the dev deployment. A well-known test key:
/// never use it anywhere else.
pub const DEV_OWNER_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Seconds a report's observation time may run ahead of the block in dev.
pub const DEV_MAX_FUTURE_SKEW: u64 = 60;

/// A deployed hub.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The hub's address.
    pub hub: Address,
    /// Its owner.
    pub owner: Address,
    /// Authorized signers.
    pub signers: Vec<Address>,
    /// Signatures needed per batch.
    pub threshold: usize,
}

/// Deployment failed.
#[derive(Debug, thiserror::Error)]
#[error("deploy: {0}")]
pub struct DeployError(pub String);

/// Deploys the hub on `rpc_url` with the aggregator's signer keys from
/// `config` and a threshold of `min(2, signers)`, then registers every feed.
pub async fn deploy(
    rpc_url: &str,
    owner_key: &str,
    config: &Config,
) -> Result<Deployment, DeployError> {
    let owner: PrivateKeySigner = owner_key
        .parse()
        .map_err(|_| DeployError("owner key is not a private key".into()))?;
    let owner_address = owner.address();
    let mut signers = Vec::new();
    for key in &config.aggregator.signer_keys {
        let signer: PrivateKeySigner = key.expose().trim().parse().map_err(|_| {
            DeployError("aggregator.signer_keys holds a value that is not a private key".into())
        })?;
        signers.push(signer.address());
    }
    if signers.is_empty() {
        return Err(DeployError(
            "aggregator.signer_keys is empty: nobody could sign".into(),
        ));
    }
    let threshold = signers.len().min(2);
    let url = rpc_url
        .parse()
        .map_err(|_| DeployError(format!("bad RPC URL {rpc_url}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner))
        .connect_http(url);
    let hub = OracleHub::deploy(
        &provider,
        signers.clone(),
        U256::from(threshold),
        U256::from(DEV_MAX_FUTURE_SKEW),
    )
    .await
    .map_err(|e| DeployError(format!("OracleHub: {e}")))?;
    for feed in &config.feeds {
        hub.addFeed(feed.pair.feed_id(), feed.decimals, feed.pair.to_string())
            .send()
            .await
            .map_err(|e| DeployError(format!("addFeed {}: {e}", feed.pair)))?
            .get_receipt()
            .await
            .map_err(|e| DeployError(format!("addFeed {} receipt: {e}", feed.pair)))?;
    }
    Ok(Deployment {
        hub: *hub.address(),
        owner: owner_address,
        signers,
        threshold,
    })
}
