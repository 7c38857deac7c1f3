//! What the chain does not store about a round: its confidence and the
//! sources behind it, from the reports on `ORACLE_REPORTS`. Indexed by
//! (pair, round), at most [`PER_FEED`] rounds per feed; a report is attached
//! to a served value only when its scaled price is the one on chain. The
//! newest report of each feed is kept whole for `/v1/reports/{pair}/latest`.
//! Each chain has its own reports (its own rounds); an index keeps one chain's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use oracle_common::Pair;
use oracle_common::wire::{ReportMessage, WireMessage};
use rust_decimal::Decimal;

/// Rounds remembered per feed.
pub const PER_FEED: usize = 4096;

/// A round's off-chain details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The scaled price the report carried, as text.
    pub price_scaled: String,
    /// Half-width of the interval around the median.
    pub confidence: Decimal,
    /// Distinct sources used.
    pub sources: usize,
}

#[derive(Debug, Default)]
struct Inner {
    rounds: HashMap<Pair, BTreeMap<u32, Detail>>,
    /// The newest report of each feed (highest round), whole.
    latest: HashMap<Pair, Arc<ReportMessage>>,
    last_seq: u64,
}

/// The shared index of one chain's reports.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    inner: Arc<RwLock<Inner>>,
    /// The chain id kept, and whether it is the first configured chain (which
    /// owns the records that name none); every report when `None`.
    chain: Option<(u64, bool)>,
}

impl Reports {
    /// An index of the reports of chain `chain_id` (the first configured
    /// chain when `first`).
    pub fn for_chain(chain_id: u64, first: bool) -> Self {
        Self {
            inner: Arc::default(),
            chain: Some((chain_id, first)),
        }
    }

    /// Applies one message of `ORACLE_REPORTS`.
    pub fn apply(&self, seq: u64, payload: &[u8]) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        inner.last_seq = inner.last_seq.max(seq);
        // Refusals share the stream; they are not reports.
        let Ok(r) = ReportMessage::decode(payload) else {
            return;
        };
        if let Some((chain_id, first)) = self.chain
            && !r.is_on(chain_id, first)
        {
            return; // another chain's
        }
        let mut sources: Vec<&str> = r
            .used
            .iter()
            .map(|u| u.observation.source.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let rounds = inner.rounds.entry(r.pair.clone()).or_default();
        rounds.insert(
            r.round,
            Detail {
                price_scaled: r.price_scaled.clone(),
                confidence: r.confidence,
                sources: sources.len(),
            },
        );
        while rounds.len() > PER_FEED {
            rounds.pop_first();
        }
        let newer = inner
            .latest
            .get(&r.pair)
            .is_none_or(|old| old.round <= r.round);
        if newer {
            inner.latest.insert(r.pair.clone(), Arc::new(r));
        }
    }

    /// The newest report of `pair` signed by the quorum.
    pub fn latest(&self, pair: &Pair) -> Option<Arc<ReportMessage>> {
        self.inner.read().ok()?.latest.get(pair).cloned()
    }

    /// The last sequence applied.
    pub fn last_seq(&self) -> u64 {
        self.inner.read().map(|i| i.last_seq).unwrap_or(0)
    }

    /// The details of `pair`'s `round`, if its report carried `price_scaled`.
    pub fn get(&self, pair: &Pair, round: u32, price_scaled: &str) -> Option<Detail> {
        let inner = self.inner.read().ok()?;
        inner
            .rounds
            .get(pair)?
            .get(&round)
            .filter(|d| d.price_scaled == price_scaled)
            .cloned()
    }
}
