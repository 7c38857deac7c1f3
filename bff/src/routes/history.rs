//! `GET /v1/prices/{pair}/history?from=&to=&limit=&cursor=`: the rounds a feed
//! took on chain, from the hub's `PriceUpdated` events, newest first.
//! `from`/`to` are block numbers (inclusive; default: the last
//! [`DEFAULT_SPAN`] blocks); one request scans at most [`MAX_SPAN`] blocks so
//! a client cannot make the node scan the whole chain.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use oracle_common::{Pair, price};
use serde::Serialize;

use super::prices::{chain_error, pin_at};
use crate::AppState;
use crate::chain::{HistoryEntry, ReadError};
use crate::error::ApiError;
use crate::params::Params;

/// Blocks scanned when `from` is not given.
pub const DEFAULT_SPAN: u64 = 10_000;
/// Most blocks one request may scan.
pub const MAX_SPAN: u64 = 100_000;
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1_000;

/// One round.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Round {
    /// Round id.
    pub round: u32,
    /// Exact decimal price.
    pub price: String,
    /// The on-chain integer, as text.
    pub price_raw: String,
    /// Observation time, Unix seconds.
    pub observed_at: u64,
    /// Block time, Unix seconds, when the node reports it.
    pub updated_at: Option<u64>,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: String,
    /// The transaction that stored it.
    pub tx_hash: String,
    /// The log's index in the block.
    pub log_index: u64,
}

/// A page of rounds.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    /// The pair.
    pub pair: String,
    /// Decimals of `price_raw`.
    pub decimals: u8,
    /// The block range scanned.
    pub from_block: u64,
    /// Its end.
    pub to_block: u64,
    /// Newest first.
    pub rounds: Vec<Round>,
    /// Pass as `cursor` (with the same `from`/`to`) for the next page.
    pub next_cursor: Option<String>,
}

/// `{block}-{log_index}` of the last entry of a page.
fn parse_cursor(raw: &str) -> Result<(u64, u64), ApiError> {
    raw.split_once('-')
        .and_then(|(b, i)| Some((b.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| ApiError::InvalidParameter("`cursor` is not one this API returned".into()))
}

/// `GET /v1/prices/{pair}/history`.
pub async fn history(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<HistoryPage>, ApiError> {
    let pair: Pair = raw.parse()?;
    let p = Params::parse(query.as_deref(), &["from", "to", "limit", "cursor"])?;
    let limit = p.u64("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidParameter(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    let cursor = p.str("cursor").map(parse_cursor).transpose()?;
    let (from, to) = (p.u64("from")?, p.u64("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::InvalidParameter("`from` is after `to`".into()));
    }
    let feed = state
        .feeds
        .get(&pair)
        .ok_or_else(|| ApiError::UnknownPair(pair.to_string()))?;
    let decimals = feed.decimals;
    let to = pin_at(&state, to).await?.number;
    let from = from.unwrap_or(to.saturating_sub(DEFAULT_SPAN - 1));
    if to - from >= MAX_SPAN {
        return Err(ApiError::InvalidParameter(format!(
            "at most {MAX_SPAN} blocks per request; page through longer ranges"
        )));
    }
    let index = match state.reader.feed_index(&pair).await {
        Ok(i) => i,
        Err(ReadError::UnknownFeed) => return Err(ApiError::NoData(pair.to_string())),
        Err(e) => return Err(chain_error(e)),
    };
    let mut entries = state
        .reader
        .history(index, from, to)
        .await
        .map_err(chain_error)?;
    entries.sort_by_key(|e| std::cmp::Reverse((e.block_number, e.log_index)));
    if let Some(c) = cursor {
        entries.retain(|e| (e.block_number, e.log_index) < c);
    }
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            entries
                .last()
                .map(|e| format!("{}-{}", e.block_number, e.log_index))
        })
        .flatten();
    Ok(Json(HistoryPage {
        pair: pair.to_string(),
        decimals,
        from_block: from,
        to_block: to,
        rounds: entries.iter().map(|e| round(e, decimals)).collect(),
        next_cursor,
    }))
}

fn round(e: &HistoryEntry, decimals: u8) -> Round {
    Round {
        round: e.round,
        price: price::from_scaled(e.price, u32::from(decimals))
            .map(|d| d.to_string())
            .unwrap_or_else(|_| e.price.to_string()),
        price_raw: e.price.to_string(),
        observed_at: e.observed_at,
        updated_at: e.updated_at,
        block_number: e.block_number,
        block_hash: e.block_hash.to_string(),
        tx_hash: e.tx_hash.to_string(),
        log_index: e.log_index,
    }
}
