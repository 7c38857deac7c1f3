//! The price cache of one chain, kept in step with it by the hub's events. A
//! follower reads the head at each new head the node announces over a
//! websocket subscription (when the chain has a `ws_url`) and every
//! `chain_poll` in any case; new blocks' `PriceUpdated` logs update the cached
//! values and are broadcast to stream clients. A changed hash at a block
//! already followed is a reorg: everything is re-read at the new head (a
//! superset of what the reorg touched) and changed values are broadcast.
//! Detection compares the hash of the last followed block with the node's.
//! Reads are served from the cache only while it is in step; otherwise the
//! handlers read the chain directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use oracle_common::Pair;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::chain::{ChainReader, FeedRead, PinnedBlock, ReadError};
use crate::chains::ChainView;

/// Updates a slow stream client may fall behind before it gets a `lag` event.
const BROADCAST_CAPACITY: usize = 4096;
/// Beyond this many new blocks, reload instead of scanning logs.
const MAX_CATCH_UP: u64 = 5_000;

/// A new on-chain round of one feed, at the block that stored it.
#[derive(Debug, Clone)]
pub struct Update {
    /// The feed.
    pub pair: Pair,
    /// Its value; `block_*` is the block of the event (or of the reload).
    pub read: FeedRead,
    /// When this service saw it, Unix ms.
    pub seen_at_ms: u64,
    /// Its stream event, encoded once and shared by every client.
    pub body: Arc<std::sync::OnceLock<axum::body::Bytes>>,
}

impl Update {
    /// A round seen now, shared by every receiver.
    fn new(pair: Pair, read: FeedRead) -> Arc<Self> {
        Arc::new(Self {
            pair,
            read,
            seen_at_ms: oracle_common::now_ms(),
            body: Arc::default(),
        })
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    head: Option<PinnedBlock>,
    values: BTreeMap<Pair, FeedRead>,
    indexes: HashMap<u16, Pair>,
    synced_at: Option<Instant>,
}

/// What the cache knows of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// In step with the node: the value at the head (`None`: no value yet).
    InStep(Option<FeedRead>),
    /// The node stopped answering `since` ago: the last value verified, at
    /// the last head verified.
    Behind {
        /// The value.
        value: Option<FeedRead>,
        /// How long since the last successful poll.
        since: Duration,
    },
    /// Never in step since the start.
    Never,
}

/// Longest a poll of the follower may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// What stream clients receive from the cache.
#[derive(Debug, Clone)]
pub enum Broadcast {
    /// A new round.
    Round(Arc<Update>),
    /// The service is stopping: streams end. Sent through the same channel
    /// so that a stream waits on one thing (a separate shutdown future
    /// polled at every wake-up takes a lock shared by every client).
    Closing,
}

/// The cache shared by the handlers.
#[derive(Debug, Clone)]
pub struct PriceCache {
    inner: Arc<RwLock<Snapshot>>,
    /// Shared, so that thousands of stream clients receive a pointer each.
    updates: broadcast::Sender<Broadcast>,
    /// How long since the last successful poll the cache still counts as in step.
    fresh_for: Duration,
    /// Cancelled when the service stops (ends the streams).
    shutdown: CancellationToken,
    /// Reorgs seen so far: whatever was cached from logs before a reorg is
    /// stale once it changes.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl PriceCache {
    /// An empty cache whose follower polls every `poll`.
    pub fn new(poll: Duration, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Snapshot::default())),
            updates: broadcast::channel(BROADCAST_CAPACITY).0,
            fresh_for: poll * 4 + Duration::from_secs(1),
            shutdown,
            generation: Arc::default(),
        }
    }

    /// Subscribes to new rounds.
    pub fn subscribe(&self) -> broadcast::Receiver<Broadcast> {
        self.updates.subscribe()
    }

    /// Ends every stream (the service is stopping).
    pub fn close_streams(&self) {
        let _ = self.updates.send(Broadcast::Closing);
    }

    /// Sends new rounds to the streams (called with no lock held: waking
    /// thousands of clients must not keep readers of the cache waiting).
    fn broadcast(&self, rounds: Vec<Arc<Update>>) {
        for u in rounds {
            let _ = self.updates.send(Broadcast::Round(u));
        }
    }

    /// How the cache stands for `pair`: in step, or behind a node that stopped
    /// answering (with the last value it verified).
    pub fn view(&self, pair: &Pair) -> View {
        let Ok(s) = self.inner.read() else {
            return View::Never;
        };
        let (Some(head), Some(synced)) = (s.head, s.synced_at) else {
            return View::Never;
        };
        let value = s.values.get(pair).map(|v| FeedRead {
            block_number: head.number,
            block_hash: head.hash,
            ..v.clone()
        });
        let since = synced.elapsed();
        if since > self.fresh_for {
            View::Behind { value, since }
        } else {
            View::InStep(value)
        }
    }

    /// How long the follower has been out of step with the node, when it is
    /// (`None`: in step, or not started yet).
    pub fn behind_for(&self) -> Option<Duration> {
        let s = self.inner.read().ok()?;
        let elapsed = s.synced_at?.elapsed();
        (elapsed > self.fresh_for).then_some(elapsed)
    }

    /// Reorgs seen so far (changes whenever logs read before may be stale).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The head the cache last verified.
    pub fn head(&self) -> Option<PinnedBlock> {
        self.inner.read().ok()?.head
    }

    /// The last value of each of `pairs` as stored (block of its event).
    pub fn current(&self, pairs: &[Pair]) -> Vec<Arc<Update>> {
        let Ok(s) = self.inner.read() else {
            return vec![];
        };
        pairs
            .iter()
            .filter_map(|p| s.values.get(p).map(|r| Update::new(p.clone(), r.clone())))
            .collect()
    }

    /// Applies the state at `head` read in full (start, reorg, long gap) and
    /// broadcasts what changed.
    fn reload(
        &self,
        head: PinnedBlock,
        values: BTreeMap<Pair, FeedRead>,
        indexes: HashMap<u16, Pair>,
    ) {
        let mut rounds = Vec::new();
        {
            let Ok(mut s) = self.inner.write() else {
                return;
            };
            for (pair, v) in &values {
                let changed = s
                    .values
                    .get(pair)
                    .is_none_or(|old| (old.round, old.price) != (v.round, v.price));
                if changed && s.head.is_some() {
                    rounds.push(Update::new(pair.clone(), v.clone()));
                }
            }
            s.values = values;
            s.indexes = indexes;
            s.head = Some(head);
            s.synced_at = Some(Instant::now());
        }
        self.broadcast(rounds);
    }

    /// Follows `chain` until the cache's shutdown token is cancelled: a step
    /// at every new head its node announces over the websocket subscription
    /// (`ws_url`), and every `poll` whatever happens (the fallback when the
    /// node offers no subscription or it broke, and the liveness check).
    pub async fn follow(self, chain: ChainView, poll: Duration, metrics: crate::metrics::Metrics) {
        let heads = Arc::new(tokio::sync::Notify::new());
        if let Some(ws) = chain.ws_url.clone() {
            let live = metrics.head_subscription.with_label_values(&[&chain.name]);
            tokio::spawn(subscribe_heads(
                ws,
                Arc::clone(&heads),
                live,
                self.shutdown.clone(),
            ));
        }
        let reorgs = metrics.reorgs.with_label_values(&[&chain.name]);
        // Every chain's series from the first scrape.
        metrics
            .head_subscription
            .with_label_values(&[&chain.name])
            .set(0);
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.close_streams();
                    return;
                }
                _ = interval.tick() => {}
                _ = heads.notified() => {}
            }
            let step = tokio::time::timeout(
                STEP_TIMEOUT,
                self.step(&chain.reader, &chain.feeds, &reorgs),
            )
            .await
            .unwrap_or_else(|_| Err(ReadError::Rpc(format!("no answer within {STEP_TIMEOUT:?}"))));
            match step {
                Ok(()) => {
                    if failing {
                        info!("price cache back in step with the chain");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "price cache cannot follow the chain; reads go to the node");
                    }
                    failing = true;
                }
            }
        }
    }

    async fn step(
        &self,
        reader: &ChainReader,
        feeds: &BTreeMap<Pair, oracle_common::config::FeedConfig>,
        reorgs: &prometheus::IntCounter,
    ) -> Result<(), ReadError> {
        let head = reader.pin(None).await?;
        let (last, known) = {
            let s = self
                .inner
                .read()
                .map_err(|_| ReadError::Rpc("poisoned".into()))?;
            (s.head, s.indexes.clone())
        };
        let Some(last) = last else {
            return self.full_reload(reader, feeds, head).await;
        };
        if head == last {
            if let Ok(mut s) = self.inner.write() {
                s.synced_at = Some(Instant::now());
            }
            return Ok(());
        }
        // Is the block we stopped at still on the chain?
        let still = reader.pin(Some(last.number)).await;
        if !matches!(still, Ok(b) if b.hash == last.hash) || head.number < last.number {
            reorgs.inc();
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            warn!(
                at = last.number,
                "reorg: re-reading every feed at the new head"
            );
            return self.full_reload(reader, feeds, head).await;
        }
        if head.number - last.number > MAX_CATCH_UP || known.len() < feeds.len() {
            return self.full_reload(reader, feeds, head).await;
        }
        let mut logs = reader.updates(last.number + 1, head.number).await?;
        logs.sort_by_key(|(_, e)| (e.block_number, e.log_index));
        // A log from a block other than the one pinned at head's height means
        // the chain moved under us: try again next poll.
        if logs
            .iter()
            .any(|(_, e)| e.block_number == head.number && e.block_hash != head.hash)
        {
            return Ok(());
        }
        let mut rounds = Vec::new();
        let Ok(mut s) = self.inner.write() else {
            return Ok(());
        };
        for (index, e) in logs {
            let Some(pair) = known.get(&index) else {
                continue;
            };
            let Some(feed) = feeds.get(pair) else {
                continue;
            };
            let read = FeedRead {
                price: e.price,
                decimals: feed.decimals,
                round: e.round,
                observed_at: e.observed_at,
                updated_at: e.updated_at.unwrap_or(0),
                block_number: e.block_number,
                block_hash: e.block_hash,
            };
            s.values.insert(pair.clone(), read.clone());
            rounds.push(Update::new(pair.clone(), read));
        }
        s.head = Some(head);
        s.synced_at = Some(Instant::now());
        drop(s);
        self.broadcast(rounds);
        Ok(())
    }

    async fn full_reload(
        &self,
        reader: &ChainReader,
        feeds: &BTreeMap<Pair, oracle_common::config::FeedConfig>,
        head: PinnedBlock,
    ) -> Result<(), ReadError> {
        let mut values = BTreeMap::new();
        let mut indexes = HashMap::new();
        for pair in feeds.keys() {
            match reader.feed_index(pair).await {
                Ok(i) => {
                    indexes.insert(i, pair.clone());
                }
                Err(ReadError::UnknownFeed) => continue,
                Err(e) => return Err(e),
            }
            match reader.read_at(pair, head).await {
                Ok(r) if r.round > 0 => {
                    values.insert(pair.clone(), r);
                }
                Ok(_) | Err(ReadError::UnknownFeed) => {}
                Err(e) => return Err(e),
            }
        }
        // Values read at `head` carry `head` as their block; the event block
        // is what a stream client wants, but a reload only knows the head.
        self.reload(head, values, indexes);
        Ok(())
    }
}

/// First and longest pause before subscribing again after the subscription
/// failed or ended.
const RESUBSCRIBE_MIN: Duration = Duration::from_secs(1);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(30);

/// Subscribes to new heads at `url` (`eth_subscribe newHeads`) and wakes the
/// follower at each; subscribes again (with back-off) when it breaks. `live`
/// is 1 while the subscription runs.
async fn subscribe_heads(
    url: String,
    heads: Arc<tokio::sync::Notify>,
    live: prometheus::IntGauge,
    shutdown: CancellationToken,
) {
    use alloy::providers::{Provider, ProviderBuilder, WsConnect};
    let mut pause = RESUBSCRIBE_MIN;
    loop {
        let run = async {
            let provider = ProviderBuilder::new()
                .connect_ws(WsConnect::new(url.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let mut sub = provider
                .subscribe_blocks()
                .await
                .map_err(|e| e.to_string())?;
            live.set(1);
            info!(url = %url, "following new heads over the websocket subscription");
            loop {
                match sub.recv().await {
                    Ok(_) => heads.notify_one(),
                    // Fell behind the subscription's buffer: a step reads the head anyway.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => heads.notify_one(),
                    Err(e) => return Err::<(), String>(e.to_string()),
                }
            }
        };
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = run => r,
        };
        live.set(0);
        if let Err(e) = outcome {
            warn!(url = %url, error = %e, retry_in = ?pause, "head subscription unavailable; polling meanwhile");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RESUBSCRIBE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn block(n: u64) -> PinnedBlock {
        PinnedBlock {
            number: n,
            hash: B256::with_last_byte(n as u8),
        }
    }

    fn read(round: u32, price: i128, at: u64) -> FeedRead {
        FeedRead {
            price,
            decimals: 8,
            round,
            observed_at: 1,
            updated_at: 1,
            block_number: at,
            block_hash: block(at).hash,
        }
    }

    /// The in-step value, as the handlers see it: `None` when not in step.
    fn in_step(cache: &PriceCache, pair: &Pair) -> Option<Option<FeedRead>> {
        match cache.view(pair) {
            View::InStep(v) => Some(v),
            View::Behind { .. } | View::Never => None,
        }
    }

    #[test]
    fn serves_values_at_the_head_and_broadcasts_only_changes() {
        let cache = PriceCache::new(Duration::from_millis(100), CancellationToken::new());
        let btc: Pair = "BTC/USD".parse().unwrap();
        let eth: Pair = "ETH/USD".parse().unwrap();
        assert_eq!(
            in_step(&cache, &btc),
            None,
            "not in step before the first load"
        );
        let mut rx = cache.subscribe();
        cache.reload(
            block(5),
            BTreeMap::from([(btc.clone(), read(1, 100, 5))]),
            HashMap::new(),
        );
        assert!(rx.try_recv().is_err(), "the first load is not news");
        let served = in_step(&cache, &btc).unwrap().unwrap();
        assert_eq!((served.round, served.block_number), (1, 5));
        assert_eq!(in_step(&cache, &eth), Some(None));
        // A reload at a later head with the same BTC value and a new ETH one.
        cache.reload(
            block(9),
            BTreeMap::from([(btc.clone(), read(1, 100, 9)), (eth.clone(), read(1, 7, 9))]),
            HashMap::new(),
        );
        let Ok(Broadcast::Round(u)) = rx.try_recv() else {
            panic!("no round broadcast")
        };
        assert_eq!(u.pair, eth);
        assert!(rx.try_recv().is_err());
        assert_eq!(in_step(&cache, &btc).unwrap().unwrap().block_number, 9);
        // Stopping is one more message on the same channel.
        cache.close_streams();
        assert!(matches!(rx.try_recv(), Ok(Broadcast::Closing)));
    }
}
