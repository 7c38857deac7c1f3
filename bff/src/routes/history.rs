//! `GET /v1/prices/{pair}/history?from=&to=&limit=&cursor=`: the rounds a feed
//! took on chain, from the hub's `PriceUpdated` events, newest first.
//! `from`/`to` are block numbers (inclusive; default: the last
//! [`DEFAULT_SPAN`] blocks up to the head).
//!
//! The work a request causes is bounded: blocks are read in chunks aligned to
//! [`CHUNK`] blocks, each chunk read from the node once and kept in a bounded
//! [`HistoryCache`] (dropped on a reorg), and one page covers at most
//! [`MAX_SPAN`] blocks. A longer range, or a page that filled up, ends with a
//! `next_cursor`; the next page starts below it and reuses the chunks already
//! read, so paging never scans a range twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use oracle_common::{Pair, price};
use serde::Serialize;

use super::prices::{bounded, chain_error, pin_at};
use crate::AppState;
use crate::chain::{HistoryEntry, ReadError};
use crate::chains::ChainView;
use crate::error::ApiError;
use crate::params::Params;

/// Blocks covered when `from` is not given.
pub const DEFAULT_SPAN: u64 = 10_000;
/// Most blocks one page covers.
pub const MAX_SPAN: u64 = 100_000;
/// Blocks per chunk read from the node (aligned to multiples of it).
pub const CHUNK: u64 = 10_000;
/// Chunks kept.
const CACHED_CHUNKS: usize = 1024;
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
    /// The chain the rounds are on (its name here, `?chain=`).
    pub chain: String,
    /// Decimals of `price_raw`.
    pub decimals: u8,
    /// The lowest block this page covers.
    pub from_block: u64,
    /// The highest block this page covers.
    pub to_block: u64,
    /// Newest first.
    pub rounds: Vec<Round>,
    /// Pass as `cursor` (with the same `from`) for the next page.
    pub next_cursor: Option<String>,
}

/// `{block}-{log_index}`: the page holds entries strictly before it.
fn parse_cursor(raw: &str) -> Result<(u64, u64), ApiError> {
    let digits = |s: &str| (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    raw.split_once('-')
        .filter(|(b, i)| digits(b) && digits(i))
        .and_then(|(b, i)| Some((b.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| ApiError::InvalidParameter("`cursor` is not one this API returned".into()))
}

type ChunkKey = (u16, u64);

#[derive(Debug)]
struct Chunk {
    hi: u64,
    generation: u64,
    entries: Arc<Vec<HistoryEntry>>,
}

/// The chunks by key, and their keys in insertion order.
type Chunks = (HashMap<ChunkKey, Chunk>, VecDeque<ChunkKey>);

/// Chunks of `PriceUpdated` logs already read, per feed index and first
/// block; at most [`CACHED_CHUNKS`], the oldest inserted dropped first.
#[derive(Debug, Clone, Default)]
pub struct HistoryCache {
    inner: Arc<Mutex<Chunks>>,
    /// `oracle_bff_history_chunks_total{result}` when registered.
    counters: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
}

impl HistoryCache {
    /// A cache counting chunk reads in `registry`.
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let chunks = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "oracle_bff_history_chunks_total",
                "History chunks served from the cache (hit) or read from the node (miss)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(chunks.clone()))?;
        Ok(Self {
            inner: Arc::default(),
            counters: Some((
                chunks.with_label_values(&["hit"]),
                chunks.with_label_values(&["miss"]),
            )),
        })
    }

    /// An empty cache (another chain's) counting in the same series.
    pub fn sharing_counters(&self) -> Self {
        Self {
            inner: Arc::default(),
            counters: self.counters.clone(),
        }
    }

    fn get(&self, key: ChunkKey, hi: u64, generation: u64) -> Option<Arc<Vec<HistoryEntry>>> {
        let inner = self.inner.lock().ok()?;
        let chunk = inner.0.get(&key)?;
        (chunk.generation == generation && chunk.hi >= hi).then(|| chunk.entries.clone())
    }

    fn put(&self, key: ChunkKey, hi: u64, generation: u64, entries: Arc<Vec<HistoryEntry>>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *inner;
        if map
            .insert(
                key,
                Chunk {
                    hi,
                    generation,
                    entries,
                },
            )
            .is_none()
        {
            order.push_back(key);
        }
        while map.len() > CACHED_CHUNKS {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// The feed's entries in `lo..=hi` (a part of one aligned chunk).
    async fn chunk(
        &self,
        state: &AppState,
        chain: &ChainView,
        index: u16,
        lo: u64,
        hi: u64,
    ) -> Result<Arc<Vec<HistoryEntry>>, ApiError> {
        let generation = chain.cache.generation();
        if let Some(entries) = self.get((index, lo), hi, generation) {
            if let Some((hit, _)) = &self.counters {
                hit.inc();
            }
            return Ok(entries);
        }
        if let Some((_, miss)) = &self.counters {
            miss.inc();
        }
        let entries = bounded(state, async {
            chain
                .reader
                .history(index, lo, hi)
                .await
                .map_err(chain_error)
        })
        .await?;
        let entries = Arc::new(entries);
        self.put((index, lo), hi, generation, entries.clone());
        Ok(entries)
    }
}

/// `GET /v1/prices/{pair}/history`.
pub async fn history(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<HistoryPage>, ApiError> {
    let pair: Pair = raw.parse()?;
    let p = Params::parse(
        query.as_deref(),
        &["from", "to", "limit", "cursor", "chain"],
    )?;
    let chain = state.chains.get(p.str("chain"))?;
    let limit = p.u64("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidParameter(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    let cursor = p.str("cursor").map(parse_cursor).transpose()?;
    let (from, to) = (p.u64("from")?, p.u64("to")?);
    let feed = chain
        .feeds
        .get(&pair)
        .ok_or_else(|| ApiError::UnknownPair(pair.to_string()))?;
    let decimals = feed.decimals;
    let page = |from_block, to_block, rounds: Vec<Round>, next_cursor| HistoryPage {
        pair: pair.to_string(),
        chain: chain.name.to_string(),
        decimals,
        from_block,
        to_block,
        rounds,
        next_cursor,
    };
    // Below the cursor, never above `to` (the head when not given).
    let head = pin_at(&state, chain, None).await?.number;
    let top = to.unwrap_or(head).min(head);
    // The default range hangs from `to`, not from the cursor, so that every
    // page of one walk reads the same aligned chunks.
    let from = from.unwrap_or(top.saturating_sub(DEFAULT_SPAN - 1));
    let upper = cursor.map_or(top, |(block, _)| top.min(block));
    if from > upper {
        // An empty range (past the head, or `from` after `to`): no rounds.
        return Ok(Json(page(from, upper, vec![], None)));
    }
    let index = match chain.reader.feed_index(&pair).await {
        Ok(i) => i,
        Err(ReadError::UnknownFeed) => return Err(ApiError::NoData(pair.to_string())),
        Err(e) => return Err(chain_error(e)),
    };
    let lowest = from.max(upper.saturating_sub(MAX_SPAN - 1));
    let mut found: Vec<HistoryEntry> = Vec::new();
    let mut hi = upper;
    let mut covered_down_to;
    loop {
        let lo = (hi - hi % CHUNK).max(lowest);
        let entries = chain.history.chunk(&state, chain, index, lo, hi).await?;
        found.extend(
            entries
                .iter()
                .filter(|e| e.block_number >= lo && e.block_number <= hi)
                .filter(|e| cursor.is_none_or(|c| (e.block_number, e.log_index) < c))
                .cloned(),
        );
        covered_down_to = lo;
        if found.len() > limit as usize || lo == lowest {
            break;
        }
        hi = lo - 1;
    }
    found.sort_by_key(|e| std::cmp::Reverse((e.block_number, e.log_index)));
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found
            .last()
            .map(|e| format!("{}-{}", e.block_number, e.log_index))
    } else if covered_down_to > from {
        // The page's span ran out before `from`: continue below it.
        Some(format!("{covered_down_to}-0"))
    } else {
        None
    };
    let from_block = match found.last() {
        Some(e) if next_cursor.is_some() && found.len() == limit as usize => e.block_number,
        _ => covered_down_to,
    };
    Ok(Json(page(
        from_block,
        upper,
        found.iter().map(|e| round(e, decimals)).collect(),
        next_cursor,
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_two_plain_numbers() {
        assert_eq!(parse_cursor("12-3").unwrap(), (12, 3));
        for bad in [
            "",
            "12",
            "-3",
            "12-",
            "+1-2",
            "1-+2",
            "a-1",
            "99999999999999999999-1",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
