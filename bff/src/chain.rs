//! Reading feeds from the hub: the latest block first, then the feed's value
//! at exactly that block, so every answer carries the block that proves it.

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::transports::http::reqwest::Url;
use oracle_common::Pair;
use oracle_common::chain::OracleHub;

/// A feed's value as read at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRead {
    /// Scaled price.
    pub price: i128,
    /// Decimals of the scaled price.
    pub decimals: u8,
    /// Round.
    pub round: u32,
    /// Observation time, Unix seconds.
    pub observed_at: u64,
    /// Time of the block that stored it, Unix seconds.
    pub updated_at: u64,
    /// The block read at.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: B256,
}

/// Reads the hub over JSON-RPC.
#[derive(Debug, Clone)]
pub struct ChainReader {
    provider: DynProvider,
    hub: OracleHub::OracleHubInstance<DynProvider>,
    chain_id: u64,
}

/// A failed read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The RPC failed.
    #[error("{0}")]
    Rpc(String),
    /// The hub does not know the feed.
    #[error("feed not registered on the hub")]
    UnknownFeed,
}

impl ChainReader {
    /// A reader for `hub` over `rpc_url`; `chain_id` is what the RPC reported.
    pub fn new(rpc_url: Url, hub: Address, chain_id: u64) -> Self {
        let provider = ProviderBuilder::new().connect_http(rpc_url).erased();
        Self {
            hub: OracleHub::new(hub, provider.clone()),
            provider,
            chain_id,
        }
    }

    /// Asks the RPC for its chain id.
    pub async fn fetch_chain_id(rpc_url: Url) -> Result<u64, ReadError> {
        ProviderBuilder::new()
            .connect_http(rpc_url)
            .get_chain_id()
            .await
            .map_err(|e| ReadError::Rpc(e.to_string()))
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The hub's address.
    pub fn hub(&self) -> Address {
        *self.hub.address()
    }

    /// The feed's latest value at the latest block.
    pub async fn latest(&self, pair: &Pair) -> Result<FeedRead, ReadError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ReadError::Rpc(e.to_string()))?
            .ok_or_else(|| ReadError::Rpc("no latest block".into()))?;
        let block_hash = block.header.hash;
        let block_number = block.header.number;
        let r = self
            .hub
            .latest(pair.feed_id())
            .block(BlockId::hash(block_hash))
            .call()
            .await
            .map_err(
                |e| match e.as_decoded_interface_error::<OracleHub::OracleHubErrors>() {
                    Some(OracleHub::OracleHubErrors::UnknownFeed(_)) => ReadError::UnknownFeed,
                    _ => ReadError::Rpc(e.to_string()),
                },
            )?;
        Ok(FeedRead {
            price: r.price,
            decimals: r.decimals,
            round: r.roundId,
            observed_at: u64::from(r.observedAt),
            updated_at: u64::from(r.updatedAt),
            block_number,
            block_hash,
        })
    }
}
