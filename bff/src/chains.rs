//! The chains the bff serves, one [`ChainView`] per `[[chains]]` entry: its
//! reader, its event-fed price cache (following new heads over a websocket
//! subscription where the node offers one, polling otherwise), its reports,
//! its serialized bodies and history chunks, and the feeds with that chain's
//! policy. Requests pick one with `?chain=NAME`; the first is the default.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use oracle_common::Pair;
use oracle_common::config::FeedConfig;

use crate::cache::PriceCache;
use crate::chain::ChainReader;
use crate::error::ApiError;
use crate::reports::Reports;
use crate::routes::history::HistoryCache;
use crate::routes::prices::Bodies;

/// Everything the handlers read of one chain.
#[derive(Debug, Clone)]
pub struct ChainView {
    /// The configured name (`?chain=`).
    pub name: Arc<str>,
    /// Its reader (the hub's address and the chain id included).
    pub reader: ChainReader,
    /// Latest values, fed by the hub's events on this chain.
    pub cache: PriceCache,
    /// Confidence and sources of this chain's rounds.
    pub reports: Reports,
    /// Serialized latest-price bodies.
    pub bodies: Bodies,
    /// Chunks of history already read.
    pub history: HistoryCache,
    /// The feeds with this chain's policy (heartbeat, deviation, adapter).
    pub feeds: Arc<BTreeMap<Pair, FeedConfig>>,
    /// The chain's expected block time.
    pub block_time: Duration,
    /// Blocks on top before a submission is final there.
    pub confirmations: u64,
    /// Where new heads are subscribed to, when the node offers websockets.
    pub ws_url: Option<String>,
}

/// The served chains, in configuration order (the first is the default).
#[derive(Debug, Clone)]
pub struct Chains(Arc<Vec<ChainView>>);

impl Chains {
    /// The chains; `views` must not be empty.
    pub fn new(views: Vec<ChainView>) -> Self {
        assert!(!views.is_empty(), "at least one chain is served");
        Self(Arc::new(views))
    }

    /// The default chain (the first configured).
    pub fn default_chain(&self) -> &ChainView {
        &self.0[0]
    }

    /// The chain named `name`, or the default one when `None`.
    pub fn get(&self, name: Option<&str>) -> Result<&ChainView, ApiError> {
        match name {
            None => Ok(self.default_chain()),
            Some(name) => self.0.iter().find(|c| &*c.name == name).ok_or_else(|| {
                ApiError::UnknownChain(format!(
                    "chain `{name}` is not served (served: {})",
                    self.names().join(", ")
                ))
            }),
        }
    }

    /// Whether `view` is the default chain (which owns the records that
    /// name no chain).
    pub fn is_default(&self, view: &ChainView) -> bool {
        std::ptr::eq(view, self.default_chain())
    }

    /// Every chain, default first.
    pub fn iter(&self) -> impl Iterator<Item = &ChainView> {
        self.0.iter()
    }

    /// Their names.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|c| &*c.name).collect()
    }
}
