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

/// One on-chain round from a `PriceUpdated` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Round.
    pub round: u32,
    /// Scaled price.
    pub price: i128,
    /// Observation time, Unix seconds.
    pub observed_at: u64,
    /// Block time, Unix seconds (when the node reports it).
    pub updated_at: Option<u64>,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Position of the log in its block.
    pub log_index: u64,
}

/// Unpacks `PriceUpdated.update`: bits 224..255 round, 192..223 observedAt,
/// 0..127 price (two's complement).
pub fn unpack_update(update: alloy::primitives::U256) -> (u32, u64, i128) {
    let round = (update >> 224usize).to::<u32>();
    let observed_at = ((update >> 192usize) & alloy::primitives::U256::from(u32::MAX)).to::<u64>();
    let low = (update & alloy::primitives::U256::from(u128::MAX)).to::<u128>();
    (round, observed_at, low as i128)
}

/// A failed hub call at `block`: no code there, the hub's `UnknownFeed`, or the RPC.
fn call_error(e: alloy::contract::Error, block: u64) -> ReadError {
    if matches!(e, alloy::contract::Error::ZeroData(..)) {
        return ReadError::NotDeployed(block);
    }
    match e.as_decoded_interface_error::<OracleHub::OracleHubErrors>() {
        Some(OracleHub::OracleHubErrors::UnknownFeed(_)) => ReadError::UnknownFeed,
        _ => ReadError::Rpc(e.to_string()),
    }
}

/// Reads the hub over JSON-RPC.
#[derive(Debug, Clone)]
pub struct ChainReader {
    provider: DynProvider,
    hub: OracleHub::OracleHubInstance<DynProvider>,
    hub_checksum: std::sync::Arc<str>,
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
            hub_checksum: hub.to_checksum(None).into(),
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

    /// The hub's address in EIP-55 form (computed once: it hashes).
    pub fn hub_checksum(&self) -> &str {
        &self.hub_checksum
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
            .map_err(|e| call_error(e, block.number))?;
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

    /// The hub's index of `pair`'s feed.
    pub async fn feed_index(&self, pair: &Pair) -> Result<u16, ReadError> {
        self.hub
            .feedIndex(pair.feed_id())
            .call()
            .await
            .map_err(|e| call_error(e, 0))
    }

    /// The rounds feed `index` took in blocks `from..=to`.
    pub async fn history(
        &self,
        index: u16,
        from: u64,
        to: u64,
    ) -> Result<Vec<HistoryEntry>, ReadError> {
        Ok(self
            .logs(Some(index), from, to)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// Every feed's rounds in blocks `from..=to`, with the feed index.
    pub async fn updates(&self, from: u64, to: u64) -> Result<Vec<(u16, HistoryEntry)>, ReadError> {
        self.logs(None, from, to).await
    }

    async fn logs(
        &self,
        index: Option<u16>,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u16, HistoryEntry)>, ReadError> {
        use alloy::sol_types::SolEvent;
        let mut filter = alloy::rpc::types::Filter::new()
            .address(self.hub())
            .event_signature(OracleHub::PriceUpdated::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        if let Some(index) = index {
            filter = filter.topic1(B256::from(alloy::primitives::U256::from(index)));
        }
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| ReadError::Rpc(e.to_string()))?;
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            let Ok(decoded) = log.log_decode::<OracleHub::PriceUpdated>() else {
                continue;
            };
            let (round, observed_at, price) = unpack_update(decoded.inner.data.update);
            let (Some(block_number), Some(block_hash), Some(tx_hash), Some(log_index)) = (
                log.block_number,
                log.block_hash,
                log.transaction_hash,
                log.log_index,
            ) else {
                continue; // pending logs carry no position
            };
            out.push((
                decoded.inner.data.feedIndex,
                HistoryEntry {
                    round,
                    price,
                    observed_at,
                    updated_at: log.block_timestamp,
                    block_number,
                    block_hash,
                    tx_hash,
                    log_index,
                },
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::U256;

    use super::unpack_update;

    #[test]
    fn unpacks_round_time_and_negative_prices() {
        let pack = |round: u32, observed: u32, price: i128| {
            (U256::from(round) << 224) | (U256::from(observed) << 192) | U256::from(price as u128)
        };
        assert_eq!(
            unpack_update(pack(7, 1_795_000_000, 9_664_153_000_000)),
            (7, 1_795_000_000, 9_664_153_000_000)
        );
        assert_eq!(
            unpack_update(pack(u32::MAX, u32::MAX, -5)),
            (u32::MAX, u64::from(u32::MAX), -5)
        );
        assert_eq!(unpack_update(pack(1, 0, i128::MIN)), (1, 0, i128::MIN));
    }
}
