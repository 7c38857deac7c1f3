//! The feeds a node serves: what the hub says about each ([`FeedSpec`]),
//! the windows of observations the ingest loop writes and the verifier reads
//! ([`Views`]), and the ingest loop's own state per feed and chain
//! ([`FeedState`]) and per feed ([`FeedHealth`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use oracle_common::Pair;
use oracle_common::config::FeedConfig;
use oracle_common::wire::Observation;

use crate::policy::OnChain;
use crate::submitter::FeedOnHub;
use crate::window::{Refused, Window};

/// A feed as configured and as registered on the hub (fixed while running).
#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// The configuration.
    pub config: FeedConfig,
    /// Index, decimals, bounds and report age on the hub.
    pub hub: FeedOnHub,
}

/// Every feed's spec, shared read-only by the tasks of a node.
pub type Specs = Arc<BTreeMap<Pair, FeedSpec>>;

/// The pair of each feed index.
pub fn by_index(specs: &Specs) -> BTreeMap<u16, Pair> {
    specs
        .iter()
        .map(|(pair, spec)| (spec.hub.index, pair.clone()))
        .collect()
}

/// The windows of every feed: written by the ingest loop, read (cloned) by
/// the verifier, each access a short critical section.
#[derive(Debug, Default)]
pub struct Views {
    windows: Mutex<BTreeMap<Pair, Window>>,
}

impl Views {
    /// Empty windows for `pairs`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = &'a Pair>) -> Self {
        Self {
            windows: Mutex::new(
                pairs
                    .into_iter()
                    .map(|p| (p.clone(), Window::default()))
                    .collect(),
            ),
        }
    }

    /// The windows, locked (a poisoned lock only means a panic elsewhere: the
    /// windows themselves are always consistent).
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<Pair, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts an observation into its feed's window; `None` when this node does
    /// not serve the pair.
    pub fn insert(
        &self,
        seq: u64,
        obs: Observation,
        now_ms: u64,
        skew_ms: u64,
    ) -> Option<Result<(), Refused>> {
        let mut windows = self.lock();
        let window = windows.get_mut(&obs.pair)?;
        Some(window.insert(seq, obs, now_ms, skew_ms))
    }

    /// A copy of one feed's window.
    pub fn window(&self, pair: &Pair) -> Option<Window> {
        self.lock().get(pair).cloned()
    }
}

/// What the ingest loop tracks per feed and chain.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    /// What the chain holds (as last read, or written by this node).
    pub chain: OnChain,
    /// The batch carrying this feed's next round, while one is in flight.
    pub in_flight: Option<u64>,
    /// Failed submissions in a row that carried this feed.
    pub failures: u32,
    /// Set after `retry_limit` failures: the feed waits for an operator
    /// (the last failed submission's id).
    pub parked: Option<String>,
    /// When a withheld update was last logged, Unix ms.
    pub last_withheld_warn_ms: u64,
}

/// What the ingest loop tracks per feed, whatever the chain: the health of
/// its aggregate.
#[derive(Debug, Clone, Default)]
pub struct FeedHealth {
    /// Last time (Unix ms) the feed had quorum, or the start time.
    pub last_quorum_ms: u64,
    /// Whether the current quorum loss was logged.
    pub quorum_warned: bool,
    /// When this node last asked the fetchers for more sources, Unix ms.
    pub last_fetch_request_ms: u64,
    /// The sequence of the last outlier counted per source (each once).
    pub outliers_counted: std::collections::BTreeMap<oracle_common::SourceId, u64>,
}
