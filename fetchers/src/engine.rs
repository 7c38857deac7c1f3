//! The polling engine. Each feed runs cycles on wall-clock slots (every
//! `poll_interval`, aligned so that redundant fetchers poll the same slot):
//! its primary sources are polled concurrently and each answer is published
//! at once; when fewer than `min_sources` primaries have answered by
//! `fallback_after`, the feed's fallbacks are polled in priority order within
//! the same cycle until the quorum is reached or the list ends. A request on
//! `oracle.fetch.{PAIR}` runs a cycle at once; concurrent requests for the same
//! pair (and the same exclusions) share one cycle. A request may name sources
//! to exclude (an aggregator's outliers or silent primaries): those are not
//! polled nor counted, and the fallbacks are polled until `min_sources` of the
//! others answered, so that fallbacks stand in for sources that lie, not only
//! for those that are down.
//!
//! Observation time: the source's own data time when it gives one, otherwise
//! the cycle's slot (or the request's `requested_at_ms`), so that every
//! fetcher process polling the same slot publishes the same `Nats-Msg-Id` and
//! the stream keeps one copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Subject;
use futures::StreamExt;
use oracle_common::config::{FeedConfig, FetchersConfig};
use oracle_common::wire::{FetchReply, FetchRequest, Observation, SCHEMA_VERSION, WireMessage};
use oracle_common::{Pair, SourceId, now_ms};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::metrics::Metrics;
use crate::source::Source;
use crate::sources::Market;

/// One source's market for one feed.
#[derive(Debug, Clone)]
pub struct Leg {
    /// The source.
    pub source: Arc<Source>,
    /// The source's symbol.
    pub symbol: String,
    /// The market's quote currency.
    pub quote: String,
    /// Set when the market is quoted in another currency than the pair.
    pub proxy_quote: Option<String>,
    /// 0 for primaries, n for the n-th fallback.
    pub rank: u32,
}

/// What a feed polls.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    /// The feed's configuration.
    pub config: FeedConfig,
    /// Primary sources.
    pub primaries: Vec<Leg>,
    /// Fallbacks in priority order.
    pub fallbacks: Vec<Leg>,
}

/// The result of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Sources that answered (primaries and fallbacks).
    pub sources: Vec<SourceId>,
    /// Whether `min_sources` answered.
    pub quorum: bool,
}

/// A running on-demand cycle: the pair and the sources it excludes.
type TriggerKey = (Pair, Vec<SourceId>);

/// Shared state of the polling tasks.
#[derive(Debug)]
pub struct Engine {
    client: reqwest::Client,
    config: FetchersConfig,
    feeds: BTreeMap<Pair, FeedPlan>,
    tx: mpsc::Sender<Observation>,
    metrics: Metrics,
    pending_triggers: Mutex<HashMap<TriggerKey, Vec<Option<Subject>>>>,
}

impl Engine {
    /// An engine over the planned feeds, handing observations to `tx`.
    pub fn new(
        client: reqwest::Client,
        config: FetchersConfig,
        feeds: BTreeMap<Pair, FeedPlan>,
        tx: mpsc::Sender<Observation>,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            config,
            feeds,
            tx,
            metrics,
            pending_triggers: Mutex::new(HashMap::new()),
        }
    }

    /// The feeds polled.
    pub fn pairs(&self) -> impl Iterator<Item = &Pair> {
        self.feeds.keys()
    }

    fn fallback_after(&self) -> Duration {
        self.config
            .fallback_after
            .unwrap_or(self.config.poll_interval / 2)
    }

    /// Polls one leg; publishes on success. Returns whether it answered.
    async fn poll_leg(
        self: Arc<Self>,
        pair: Pair,
        leg: Leg,
        slot_ms: u64,
        trigger: Option<&'static str>,
        deadline: Instant,
    ) -> bool {
        let Some(_in_flight) = leg.source.begin(&leg.symbol) else {
            debug!(source = %leg.source.id, "previous request still running; not polled this cycle");
            return false;
        };
        let market = Market {
            symbol: &leg.symbol,
            quote: &leg.quote,
        };
        match leg
            .source
            .fetch(&self.client, &market, &self.config, &self.metrics, deadline)
            .await
        {
            Ok(quote) => {
                let fetched_at_ms = now_ms();
                let obs = Observation {
                    v: SCHEMA_VERSION,
                    pair: pair.clone(),
                    source: leg.source.id.clone(),
                    price: quote.price,
                    bid: quote.bid,
                    ask: quote.ask,
                    observed_at_ms: quote.observed_at_ms.unwrap_or(slot_ms),
                    fetched_at_ms,
                    fetcher: self.config.id.clone(),
                    fallback_rank: leg.rank,
                    trigger: trigger.map(str::to_owned),
                    market_quote: leg.proxy_quote.clone(),
                };
                if leg.rank > 0 {
                    self.metrics
                        .fallback_polls
                        .with_label_values(&[&pair.to_string(), leg.source.id.as_str()])
                        .inc();
                }
                debug!(price = %obs.price, rank = leg.rank, "observed");
                crate::publisher::enqueue(&self.tx, obs, &self.metrics);
                true
            }
            Err(e @ (crate::FetchError::Throttled(_) | crate::FetchError::CircuitOpen)) => {
                debug!(error = %e, "not polled");
                false
            }
            Err(e) => {
                warn!(error = %e, kind = e.kind(), "fetch failed");
                false
            }
        }
    }

    /// Spawns the polls of `legs`; they keep running (and publish) after the
    /// cycle moves on, guarded against overlapping with the next cycle.
    fn spawn_legs(
        self: &Arc<Self>,
        set: &mut JoinSet<(SourceId, bool)>,
        pair: &Pair,
        legs: &[Leg],
        slot_ms: u64,
        trigger: Option<&'static str>,
        deadline: Instant,
    ) {
        for leg in legs {
            let engine = Arc::clone(self);
            let span =
                info_span!("poll", pair = %pair, source = %leg.source.id, symbol = %leg.symbol);
            let (pair, leg) = (pair.clone(), leg.clone());
            set.spawn(
                async move {
                    let id = leg.source.id.clone();
                    (
                        id,
                        engine.poll_leg(pair, leg, slot_ms, trigger, deadline).await,
                    )
                }
                .instrument(span),
            );
        }
    }

    /// Runs one cycle for `pair` (see the module docs), not polling `exclude`.
    pub async fn cycle(
        self: &Arc<Self>,
        pair: &Pair,
        slot_ms: u64,
        trigger: Option<&'static str>,
        exclude: &[SourceId],
    ) -> CycleReport {
        let Some(plan) = self.feeds.get(pair) else {
            return CycleReport::default();
        };
        let started = Instant::now();
        let deadline = started + self.config.poll_interval;
        let decide_at = started + self.fallback_after();
        let min = plan.config.min_sources;
        let mut answered = Vec::new();
        let wanted = |leg: &&Leg| !exclude.contains(&leg.source.id);
        let primaries: Vec<Leg> = plan.primaries.iter().filter(wanted).cloned().collect();
        let fallbacks: Vec<Leg> = plan.fallbacks.iter().filter(wanted).cloned().collect();

        let mut set = JoinSet::new();
        self.spawn_legs(&mut set, pair, &primaries, slot_ms, trigger, deadline);
        // Stop waiting once the quorum answered: slower primaries still publish.
        collect(&mut set, &mut answered, decide_at, min).await;

        let mut next = 0;
        while answered.len() < min && next < fallbacks.len() && Instant::now() < deadline {
            let take = (min - answered.len()).min(fallbacks.len() - next);
            let batch = &fallbacks[next..next + take];
            next += take;
            debug!(pair = %pair, have = answered.len(), need = min, fallbacks = take, "polling fallbacks");
            let mut fallback_set = JoinSet::new();
            self.spawn_legs(&mut fallback_set, pair, batch, slot_ms, trigger, deadline);
            collect(&mut fallback_set, &mut answered, deadline, min).await;
        }
        // Late primaries that answered while fallbacks ran still count.
        collect(&mut set, &mut answered, Instant::now(), usize::MAX).await;
        set.detach_all();

        let quorum = answered.len() >= min;
        self.metrics
            .cycles
            .with_label_values(&[
                pair.to_string().as_str(),
                if quorum { "quorum" } else { "no_quorum" },
            ])
            .inc();
        CycleReport {
            sources: answered,
            quorum,
        }
    }

    /// Runs scheduled cycles for `pair` on wall-clock slots until `shutdown`.
    pub async fn run_schedule(self: Arc<Self>, pair: Pair, shutdown: CancellationToken) {
        let interval_ms = self.config.poll_interval.as_millis().max(1) as u64;
        loop {
            let now = now_ms();
            let slot = (now / interval_ms + 1) * interval_ms;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(slot - now)) => {}
            }
            let report = self.cycle(&pair, slot, None, &[]).await;
            if !report.quorum {
                debug!(pair = %pair, answered = report.sources.len(), "cycle without quorum");
            }
        }
    }

    /// Serves `oracle.fetch.*` until `shutdown`.
    pub async fn run_triggers(
        self: Arc<Self>,
        nats: async_nats::Client,
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::SubscribeError> {
        let mut sub = nats.subscribe("oracle.fetch.*").await?;
        info!("listening for on-demand fetch requests on oracle.fetch.*");
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                msg = sub.next() => match msg { Some(m) => m, None => return Ok(()) },
            };
            let token = msg.subject.as_str().rsplit('.').next().unwrap_or_default();
            let pair = match Pair::from_subject_token(token) {
                Ok(p) if self.feeds.contains_key(&p) => p,
                other => {
                    let error = match other {
                        Ok(p) => format!("pair {p} is not configured here"),
                        Err(e) => e.to_string(),
                    };
                    if let Some(reply) = msg.reply {
                        let body = FetchReply {
                            v: SCHEMA_VERSION,
                            pair: token.to_owned(),
                            sources: vec![],
                            quorum: false,
                            error: Some(error),
                        };
                        let _ = nats
                            .publish(reply, serde_json::to_vec(&body).unwrap_or_default().into())
                            .await;
                    }
                    continue;
                }
            };
            self.metrics
                .triggers
                .with_label_values(&[&pair.to_string()])
                .inc();
            // An empty body is a plain trigger asked for now.
            let request =
                FetchRequest::decode(&msg.payload).unwrap_or_else(|_| FetchRequest::new(now_ms()));
            let requested_at_ms = request.requested_at_ms;
            let mut exclude = request.exclude;
            exclude.sort();
            exclude.dedup();
            let key = (pair.clone(), exclude.clone());
            {
                let mut pending = self
                    .pending_triggers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(waiting) = pending.get_mut(&key) {
                    // The same cycle is running: share its result.
                    waiting.push(msg.reply);
                    continue;
                }
                pending.insert(key.clone(), vec![msg.reply]);
            }
            if !exclude.is_empty() {
                debug!(pair = %pair, exclude = ?exclude, "polling other sources than the excluded ones");
            }
            let engine = Arc::clone(&self);
            let nats = nats.clone();
            tokio::spawn(async move {
                let report = engine
                    .cycle(&pair, requested_at_ms, Some("on-demand"), &exclude)
                    .await;
                let replies = engine
                    .pending_triggers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key)
                    .unwrap_or_default();
                let body = FetchReply {
                    v: SCHEMA_VERSION,
                    pair: pair.subject_token(),
                    sources: report.sources,
                    quorum: report.quorum,
                    error: None,
                };
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                for reply in replies.into_iter().flatten() {
                    let _ = nats.publish(reply, bytes.clone().into()).await;
                }
            });
        }
    }
}

/// Collects finished polls until all are done, `until`, or `enough` answered.
async fn collect(
    set: &mut JoinSet<(SourceId, bool)>,
    answered: &mut Vec<SourceId>,
    until: Instant,
    enough: usize,
) {
    while answered.len() < enough {
        match tokio::time::timeout_at(until, set.join_next()).await {
            Ok(Some(Ok((id, true)))) => answered.push(id),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}
