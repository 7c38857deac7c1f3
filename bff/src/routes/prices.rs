//! `GET /v1/prices/{pair}`: the latest on-chain value of a feed with the chain
//! reference that proves it (chain id, contract, block number and hash).

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use oracle_common::{Pair, now_ms, price};
use serde::Serialize;

use crate::AppState;
use crate::chain::{FeedRead, ReadError};
use crate::error::ApiError;

/// Where a value was read: enough to verify it independently.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainRef {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The OracleHub contract.
    pub contract: String,
    /// The block the value was read at.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: String,
}

/// A feed's latest on-chain value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PriceResponse {
    /// The pair, `BTC/USD`.
    pub pair: String,
    /// The price as an exact decimal string.
    pub price: String,
    /// The on-chain integer (price × 10^decimals), as a string.
    pub price_raw: String,
    /// Decimals of `price_raw`.
    pub decimals: u8,
    /// On-chain round.
    pub round: u32,
    /// When the observations behind it were made, Unix seconds.
    pub observed_at: u64,
    /// When the chain stored it (block time), Unix seconds.
    pub updated_at: u64,
    /// True when older than the feed's heartbeat.
    pub stale: bool,
    /// The chain reference.
    pub chain: ChainRef,
}

fn to_response(pair: &Pair, read: &FeedRead, heartbeat_s: u64, state: &AppState) -> PriceResponse {
    let decimal = price::from_scaled(read.price, u32::from(read.decimals))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| read.price.to_string());
    let now_s = now_ms() / 1000;
    PriceResponse {
        pair: pair.to_string(),
        price: decimal,
        price_raw: read.price.to_string(),
        decimals: read.decimals,
        round: read.round,
        observed_at: read.observed_at,
        updated_at: read.updated_at,
        stale: now_s.saturating_sub(read.updated_at) > heartbeat_s,
        chain: ChainRef {
            chain_id: state.reader.chain_id(),
            contract: state.reader.hub().to_checksum(None),
            block_number: read.block_number,
            block_hash: read.block_hash.to_string(),
        },
    }
}

/// `GET /v1/prices/{pair}` with `pair` as `BTC-USD`.
pub async fn get_price(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<PriceResponse>, ApiError> {
    let pair: Pair = raw
        .parse()
        .map_err(|e: oracle_common::pair::PairError| ApiError::InvalidPair(e.to_string()))?;
    let feed = state
        .feeds
        .get(&pair)
        .ok_or_else(|| ApiError::UnknownPair(pair.to_string()))?;
    let started = Instant::now();
    let read = state.reader.latest(&pair).await;
    state
        .metrics
        .chain_read
        .observe(started.elapsed().as_secs_f64());
    let read = read.map_err(|e| match e {
        ReadError::UnknownFeed => ApiError::NoData(pair.to_string()),
        ReadError::Rpc(msg) => {
            tracing::warn!(pair = %pair, error = %msg, "chain read failed");
            ApiError::Chain("the chain node did not answer".into())
        }
    })?;
    if read.round == 0 {
        return Err(ApiError::NoData(pair.to_string()));
    }
    Ok(Json(to_response(
        &pair,
        &read,
        feed.heartbeat.as_secs(),
        &state,
    )))
}
