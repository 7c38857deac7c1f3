//! `GET /v1/feeds`: the feeds this oracle serves, with their update policy and
//! where to read them on chain (hub contract and the feed's id there).

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;

/// One served feed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedResponse {
    /// The pair, `BTC/USD`.
    pub pair: String,
    /// The path form used by the other endpoints, `BTC-USD`.
    pub path: String,
    /// `keccak256("BTC/USD")`: the feed's key on the hub.
    pub feed_id: String,
    /// Decimals of the on-chain integer.
    pub decimals: u8,
    /// Primary sources, in priority order.
    pub sources: Vec<String>,
    /// Fallback sources, used when primaries fail.
    pub fallbacks: Vec<String>,
    /// Distinct sources an update needs.
    pub min_sources: usize,
    /// Change from the on-chain value that triggers an update, basis points.
    pub deviation_bps: u32,
    /// Longest time between updates; older values are served as `stale`.
    pub heartbeat_s: u64,
    /// Bounds outside which a value is refused, as decimal strings.
    pub min_price: String,
    /// Upper bound.
    pub max_price: String,
    /// The feed's Chainlink-compatible adapter, when configured.
    pub adapter: Option<String>,
}

/// All feeds and the chain they live on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedsResponse {
    /// The chain (its name here, `?chain=`).
    pub chain: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The OracleHub contract.
    pub contract: String,
    /// Feeds in pair order.
    pub feeds: Vec<FeedResponse>,
}

/// `GET /v1/feeds`.
pub async fn list_feeds(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<FeedsResponse>, ApiError> {
    let p = Params::parse(query.as_deref(), &["chain"])?;
    let chain = state.chains.get(p.str("chain"))?;
    let feeds = chain
        .feeds
        .values()
        .map(|f| FeedResponse {
            pair: f.pair.to_string(),
            path: f.pair.to_string().replace('/', "-"),
            feed_id: f.pair.feed_id().to_string(),
            decimals: f.decimals,
            sources: f.sources.iter().map(ToString::to_string).collect(),
            fallbacks: f.fallbacks.iter().map(ToString::to_string).collect(),
            min_sources: f.min_sources,
            deviation_bps: f.deviation_bps,
            heartbeat_s: f.heartbeat.as_secs(),
            min_price: f.min_price.to_string(),
            max_price: f.max_price.to_string(),
            adapter: f.adapter.map(|a| a.to_checksum(None)),
        })
        .collect();
    Ok(Json(FeedsResponse {
        chain: chain.name.to_string(),
        chain_id: chain.reader.chain_id(),
        contract: chain.reader.hub_checksum().to_owned(),
        feeds,
    }))
}
