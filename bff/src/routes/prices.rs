//! `GET /v1/prices/{pair}` and `GET /v1/prices`: the latest on-chain value of
//! a feed (or of every feed, all read at one block) with the chain reference
//! that proves it (chain name and id, contract, block number and hash).
//! `?block=N` reads as of a past block, `?chain=NAME` on another served chain
//! than the default (first) one.

use std::time::Instant;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use oracle_common::{Pair, now_ms, price};
use serde::Serialize;

use crate::AppState;
use crate::cache::View;
use crate::chain::{FeedRead, PinnedBlock, ReadError};
use crate::chains::ChainView;
use crate::error::ApiError;
use crate::params::Params;

/// Parameters both price endpoints accept.
const PRICE_PARAMS: &[&str] = &["block", "chain"];

/// Where a value was read: enough to verify it independently.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainRef {
    /// The chain's name in this service (`?chain=`).
    pub name: String,
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
    /// False when the chain node stopped answering: the value is the last
    /// one verified, at the block in `chain` (see `stale` for its age).
    pub node_reachable: bool,
    /// Half-width of the interval around the median, as a decimal string,
    /// from the round's report (`null` when the report is not known here).
    pub confidence: Option<String>,
    /// Distinct sources behind the round, from its report.
    pub num_sources: Option<usize>,
    /// The chain reference.
    pub chain: ChainRef,
}

pub(crate) fn to_response(
    pair: &Pair,
    read: &FeedRead,
    heartbeat_s: u64,
    chain: &ChainView,
) -> PriceResponse {
    let decimal = price::from_scaled(read.price, u32::from(read.decimals))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| read.price.to_string());
    let now_s = now_ms() / 1000;
    let price_raw = read.price.to_string();
    let detail = chain.reports.get(pair, read.round, &price_raw);
    PriceResponse {
        pair: pair.to_string(),
        price: decimal,
        confidence: detail.as_ref().map(|d| d.confidence.to_string()),
        num_sources: detail.map(|d| d.sources),
        price_raw,
        decimals: read.decimals,
        round: read.round,
        observed_at: read.observed_at,
        updated_at: read.updated_at,
        stale: now_s.saturating_sub(read.updated_at) > heartbeat_s,
        node_reachable: true,
        chain: chain_ref(chain, read.block_number, read.block_hash),
    }
}

fn chain_ref(
    chain: &ChainView,
    block_number: u64,
    block_hash: alloy::primitives::B256,
) -> ChainRef {
    ChainRef {
        name: chain.name.to_string(),
        chain_id: chain.reader.chain_id(),
        contract: chain.reader.hub_checksum().to_owned(),
        block_number,
        block_hash: block_hash.to_string(),
    }
}

/// Every served feed, read at one block.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PricesResponse {
    /// The chain reference shared by every entry.
    pub chain: ChainRef,
    /// Feeds with an on-chain value, in pair order.
    pub prices: Vec<PriceResponse>,
    /// Served feeds without an on-chain value at that block.
    pub no_data: Vec<String>,
}

pub(crate) fn chain_error(e: ReadError) -> ApiError {
    match e {
        ReadError::NoSuchBlock(n) => ApiError::NoSuchBlock(n),
        ReadError::NotDeployed(n) => ApiError::NotDeployed(n),
        ReadError::UnknownFeed => ApiError::Chain("feed missing on the hub".into()),
        ReadError::Rpc(msg) => {
            tracing::warn!(error = %msg, "chain read failed");
            ApiError::Chain("the chain node did not answer".into())
        }
    }
}

/// Waits at most `bff.chain_timeout` for a chain read: a node that does not
/// answer is `chain_unavailable`, not a hanging request.
pub(crate) async fn bounded<T>(
    state: &AppState,
    read: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(state.chain_timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Chain(format!(
                "the chain node did not answer within {} ms",
                state.chain_timeout.as_millis()
            )))
        })
}

/// Pins block `at` (the latest when `None`), timing the read.
pub(crate) async fn pin_at(
    state: &AppState,
    chain: &ChainView,
    at: Option<u64>,
) -> Result<PinnedBlock, ApiError> {
    let started = Instant::now();
    let pinned = bounded(state, async {
        chain.reader.pin(at).await.map_err(chain_error)
    })
    .await;
    state
        .metrics
        .chain_read
        .observe(started.elapsed().as_secs_f64());
    pinned
}

/// One feed at a pinned block: `None` when it has no value there yet.
pub(crate) async fn read(
    state: &AppState,
    chain: &ChainView,
    pair: &Pair,
    block: PinnedBlock,
) -> Result<Option<FeedRead>, ApiError> {
    let started = Instant::now();
    let read = bounded(state, async {
        match chain.reader.read_at(pair, block).await {
            Ok(r) if r.round == 0 => Ok(None),
            Ok(r) => Ok(Some(r)),
            Err(ReadError::UnknownFeed) => Ok(None),
            Err(e) => Err(chain_error(e)),
        }
    })
    .await;
    state
        .metrics
        .chain_read
        .observe(started.elapsed().as_secs_f64());
    read
}

/// The route of [`get_price`].
pub const PRICE_ROUTE: &str = "/v1/prices/{pair}";

/// `GET /v1/prices/{pair}`, the hottest route: served without middleware
/// layers (each `from_fn` layer clones and boxes the inner service per
/// request); the client guard and the request metrics run inline, exactly as
/// the layers do for the other routes.
pub async fn get_price_guarded(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let response = match crate::guard::admit(&state, &request) {
        Ok(_) => get_price(State(state.clone()), Path(raw), RawQuery(query))
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(refused) => refused,
    };
    state
        .metrics
        .record(PRICE_ROUTE, started, response.status());
    response
}

/// `GET /v1/prices/{pair}` with `pair` as `BTC-USD`; optional `?block=N`
/// and `?chain=NAME`.
pub async fn get_price(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pair: Pair = raw.parse()?;
    if !state.chains.default_chain().feeds.contains_key(&pair) {
        return Err(ApiError::UnknownPair(pair.to_string()));
    }
    let params = Params::parse(query.as_deref(), PRICE_PARAMS)?;
    let chain = state.chains.get(params.str("chain"))?;
    let feed = chain
        .feeds
        .get(&pair)
        .ok_or_else(|| ApiError::UnknownPair(pair.to_string()))?;
    let at = params.u64("block")?;
    let heartbeat = feed.heartbeat.as_secs();
    if let Some(block) = at {
        state.metrics.cache_miss.inc();
        let read = read(
            &state,
            chain,
            &pair,
            pin_at(&state, chain, Some(block)).await?,
        )
        .await?
        .ok_or_else(|| ApiError::NoDataAt {
            pair: pair.to_string(),
            block,
        })?;
        return Ok(Json(to_response(&pair, &read, heartbeat, chain)).into_response());
    }
    // The latest value: from the event-fed cache while it is in step; the
    // last verified value, marked, while the node does not answer; the node
    // itself (bounded) before the cache ever was in step.
    let read = match chain.cache.view(&pair) {
        View::InStep(value) => {
            state.metrics.cache_hit.inc();
            value.ok_or_else(|| ApiError::NoData(pair.to_string()))?
        }
        View::Behind { value, since } => {
            state.metrics.served_unreachable.inc();
            let value = value.ok_or_else(|| {
                ApiError::Chain(format!(
                    "the chain node has not answered for {} s and no value of {pair} was verified before",
                    since.as_secs()
                ))
            })?;
            let mut body = to_response(&pair, &value, heartbeat, chain);
            body.node_reachable = false;
            return Ok(Json(body).into_response());
        }
        View::Never => {
            state.metrics.cache_miss.inc();
            read(&state, chain, &pair, pin_at(&state, chain, None).await?)
                .await?
                .ok_or_else(|| ApiError::NoData(pair.to_string()))?
        }
    };
    // The same head, round, report index and staleness give the same body:
    // serialize it once per change, not once per request.
    let stale = (now_ms() / 1000).saturating_sub(read.updated_at) > heartbeat;
    let key = (
        read.block_number,
        read.block_hash,
        read.round,
        chain.reports.last_seq(),
        stale,
    );
    if let Some(body) = chain.bodies.get(&pair, key) {
        return Ok(json_bytes(body));
    }
    let body: Bytes = serde_json::to_vec(&to_response(&pair, &read, heartbeat, chain))
        .map_err(|e| ApiError::Chain(e.to_string()))?
        .into();
    chain.bodies.put(&pair, key, body.clone());
    Ok(json_bytes(body))
}

fn json_bytes(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Serialized latest-price bodies, one per feed, keyed by what they depend on.
#[derive(Debug, Clone, Default)]
pub struct Bodies(Arc<RwLock<HashMap<Pair, (BodyKey, Bytes)>>>);

/// Head block and hash, round, report-index sequence, staleness.
type BodyKey = (u64, alloy::primitives::B256, u32, u64, bool);

impl Bodies {
    fn get(&self, pair: &Pair, key: BodyKey) -> Option<Bytes> {
        let map = self.0.read().ok()?;
        map.get(pair)
            .filter(|(k, _)| *k == key)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, pair: &Pair, key: BodyKey, body: Bytes) {
        if let Ok(mut map) = self.0.write() {
            map.insert(pair.clone(), (key, body));
        }
    }
}

/// `GET /v1/prices`: every served feed at one block; optional `?block=N`
/// and `?chain=NAME`.
pub async fn list_prices(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<PricesResponse>, ApiError> {
    let params = Params::parse(query.as_deref(), PRICE_PARAMS)?;
    let chain = state.chains.get(params.str("chain"))?;
    let block = pin_at(&state, chain, params.u64("block")?).await?;
    let reads = futures::future::join_all(
        chain
            .feeds
            .keys()
            .map(|pair| read(&state, chain, pair, block)),
    )
    .await;
    let mut prices = Vec::new();
    let mut no_data = Vec::new();
    for ((pair, feed), read) in chain.feeds.iter().zip(reads) {
        match read? {
            Some(r) => prices.push(to_response(pair, &r, feed.heartbeat.as_secs(), chain)),
            None => no_data.push(pair.to_string()),
        }
    }
    Ok(Json(PricesResponse {
        chain: chain_ref(chain, block.number, block.hash),
        prices,
        no_data,
    }))
}
