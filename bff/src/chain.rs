//! Reading feeds from the hub: a block first (the latest, or one the client
//! names), then the feeds' values at exactly that block hash, so every answer
//! carries the block that proves it and a multi-feed answer is one snapshot.

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

/// A block pinned for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedBlock {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
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
    /// The hub had no code at the block read (before its deployment).
    #[error("the hub is not deployed at block {0}")]
    NotDeployed(u64),
    /// The requested block does not exist (yet).
    #[error("block {0} does not exist")]
    NoSuchBlock(u64),
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

    /// Pins `at`, or the latest block when `None`.
    pub async fn pin(&self, at: Option<u64>) -> Result<PinnedBlock, ReadError> {
        let tag = at.map_or(BlockNumberOrTag::Latest, BlockNumberOrTag::Number);
        let block = self
            .provider
            .get_block_by_number(tag)
            .await
            .map_err(|e| ReadError::Rpc(e.to_string()))?;
        match (block, at) {
            (Some(b), _) => Ok(PinnedBlock {
                number: b.header.number,
                hash: b.header.hash,
            }),
            (None, Some(n)) => Err(ReadError::NoSuchBlock(n)),
            (None, None) => Err(ReadError::Rpc("no latest block".into())),
        }
    }

    /// The feed's latest value at the latest block.
    pub async fn latest(&self, pair: &Pair) -> Result<FeedRead, ReadError> {
        let block = self.pin(None).await?;
        self.read_at(pair, block).await
    }

    /// The feed's latest value as of `block` (read by hash, so a reorg
    /// between pinning and reading fails the read instead of mixing blocks).
    pub async fn read_at(&self, pair: &Pair, block: PinnedBlock) -> Result<FeedRead, ReadError> {
        let r = self
            .hub
            .latest(pair.feed_id())
            .block(BlockId::hash(block.hash))
            .call()
            .await
            .map_err(|e| {
                if matches!(e, alloy::contract::Error::ZeroData(..)) {
                    return ReadError::NotDeployed(block.number);
                }
                match e.as_decoded_interface_error::<OracleHub::OracleHubErrors>() {
                    Some(OracleHub::OracleHubErrors::UnknownFeed(_)) => ReadError::UnknownFeed,
                    _ => ReadError::Rpc(e.to_string()),
                }
            })?;
        Ok(FeedRead {
            price: r.price,
            decimals: r.decimals,
            round: r.roundId,
            observed_at: u64::from(r.observedAt),
            updated_at: u64::from(r.updatedAt),
            block_number: block.number,
            block_hash: block.hash,
        })
    }
}
