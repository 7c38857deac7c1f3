//! The ingest loop: the node's main task. It consumes `ORACLE_OBS` with the
//! node's durable pull consumer, puts each observation in its feed's window,
//! and evaluates the feeds an observation touched as soon as no further
//! message is waiting (at least every [`EVAL_EVERY`] messages, and every feed
//! on each `tick` for heartbeats). Observations are acknowledged right after
//! the evaluation that follows them. One aggregate per feed serves every
//! chain; each chain (lane) decides with its own policy against what it
//! holds. As leader, it hands each chain's due feeds to that chain's
//! pipeline as one batch at a time and never waits for it: ingest, and the
//! other chains, go on while a transaction is pending. It also serves
//! refreshes and operator retries (leader only, routed by chain) and applies
//! what the chain watchers report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use oracle_common::config::{AggregatorConfig, ChainConfig, FeedConfig};
use oracle_common::wire::{
    ErrorCode, FetchRequest, Observation, RefreshReply, RefreshRequest, RetryReply, RetryRequest,
    WireMessage, fetch_subject,
};
use oracle_common::{Pair, SourceId, now_ms, price};
use rust_decimal::prelude::ToPrimitive;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::RunError;
use crate::chain_watch::ChainUpdate;
use crate::evaluate::{Candidate, Decision, decide};
use crate::feeds::{FeedHealth, FeedSpec, FeedState, Specs, Views};
use crate::lane::{Chain, LaneEvent, Up};
use crate::leader::LeaseState;
use crate::metrics::Metrics;
use crate::pipeline::{Batch, BatchDone, Command, Done};
use crate::policy::{self, OnChain};
use crate::refresh::Refreshes;
use crate::retry::{self, Retries};
use crate::window::{Aggregate, NoQuorum, Refused, Rules};

/// Messages ingested at most before an evaluation (and their acknowledgement).
pub const EVAL_EVERY: usize = 1_000;
/// The leader asks the fetchers for more sources at most this often per feed.
const FETCH_REQUEST_EVERY_MS: u64 = 1_000;
/// Repeated warnings about one feed or source are logged at most this often.
const WARN_EVERY_MS: u64 = 60_000;
/// Backoff after a proposal without signer quorum: first and longest.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where a chain's lane stands in leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Standby,
    /// Leader, waiting for the lane's pipeline to settle what was left.
    TakingOver,
    Leading,
}

/// A connected lane's handles.
#[derive(Debug)]
struct Connected {
    chain: Arc<Chain>,
    pipeline: mpsc::Sender<Command>,
}

/// The loop's state of one chain.
#[derive(Debug)]
struct Lane {
    name: String,
    up: Option<Connected>,
    states: BTreeMap<Pair, FeedState>,
    phase: Phase,
    batch_in_flight: Option<u64>,
    next_proposal_ms: u64,
    backoff: Duration,
    refreshes: Refreshes,
    retries: Retries,
}

impl Lane {
    fn new(name: String) -> Self {
        Self {
            name,
            up: None,
            states: BTreeMap::new(),
            phase: Phase::Standby,
            batch_in_flight: None,
            next_proposal_ms: 0,
            backoff: BACKOFF_MIN,
            refreshes: Refreshes::default(),
            retries: Retries::default(),
        }
    }

    fn specs(&self) -> Option<&Specs> {
        self.up.as_ref().map(|u| &u.chain.specs)
    }

    async fn take_over(&mut self) -> Result<(), RunError> {
        let Some(up) = &self.up else { return Ok(()) };
        self.phase = Phase::TakingOver;
        up.pipeline
            .send(Command::TakeOver)
            .await
            .map_err(|_| RunError::Task(format!("the {} pipeline stopped", self.name)))
    }

    fn stand_by(&mut self) {
        self.phase = Phase::Standby;
        self.refreshes.clear();
        self.retries.clear();
    }
}

/// The loop's state.
#[derive(Debug)]
pub struct Ingest {
    node: String,
    config: AggregatorConfig,
    feeds: BTreeMap<Pair, FeedConfig>,
    views: Arc<Views>,
    health: BTreeMap<Pair, FeedHealth>,
    lanes: Vec<Lane>,
    rules: Rules,
    metrics: Metrics,
    nats: async_nats::Client,
    leading: bool,
    lease_revision: u64,
    next_batch: u64,
    dirty: BTreeSet<Pair>,
    unacked: Vec<jetstream::Message>,
    refresh_requests: Option<async_nats::Subscriber>,
    retry_requests: Option<async_nats::Subscriber>,
    warned: HashMap<(Pair, SourceId), u64>,
}

/// What the loop listens to besides the observations.
#[derive(Debug)]
pub struct Inputs {
    /// Lanes coming up, and their pipelines' reports.
    pub lanes: mpsc::Receiver<LaneEvent>,
    /// The lease task's state.
    pub lease: watch::Receiver<LeaseState>,
    /// Feeds updated on chain, from the chain watchers.
    pub chain: mpsc::Receiver<ChainUpdate>,
}

impl Ingest {
    /// The loop's initial state: `feeds` and the names of `chains` (in
    /// configuration order), none connected yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: String,
        config: AggregatorConfig,
        feeds: &[FeedConfig],
        chains: &[ChainConfig],
        views: Arc<Views>,
        metrics: Metrics,
        nats: async_nats::Client,
    ) -> Self {
        let now = now_ms();
        let health = feeds
            .iter()
            .map(|f| {
                let h = FeedHealth {
                    last_quorum_ms: now,
                    ..FeedHealth::default()
                };
                (f.pair.clone(), h)
            })
            .collect();
        Self {
            node,
            rules: Rules::from_config(&config),
            config,
            feeds: feeds.iter().map(|f| (f.pair.clone(), f.clone())).collect(),
            views,
            health,
            lanes: chains.iter().map(|c| Lane::new(c.name.clone())).collect(),
            metrics,
            nats,
            leading: false,
            lease_revision: 0,
            next_batch: 1,
            dirty: BTreeSet::new(),
            unacked: Vec::new(),
            refresh_requests: None,
            retry_requests: None,
            warned: HashMap::new(),
        }
    }

    /// Runs until `shutdown`; an `Err` when an input it cannot do without ends.
    pub async fn run<S>(
        mut self,
        mut messages: S,
        mut inputs: Inputs,
        shutdown: CancellationToken,
    ) -> Result<(), RunError>
    where
        S: futures::Stream<
                Item = Result<jetstream::Message, jetstream::consumer::pull::MessagesError>,
            > + Unpin,
    {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.unacked.len() >= EVAL_EVERY {
                self.evaluate(false).await?;
            }
            let pending = !self.dirty.is_empty() || !self.unacked.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = inputs.lanes.recv() => match event {
                    Some(LaneEvent::Up(up)) => self.on_up(*up).await?,
                    Some(LaneEvent::Done(lane, done)) => self.on_done(lane, done).await,
                    None => return Err(RunError::Task("the chain lanes stopped".into())),
                },
                changed = inputs.lease.changed() => {
                    if changed.is_err() {
                        return Err(RunError::Task("the lease task stopped".into()));
                    }
                    let state = inputs.lease.borrow_and_update().clone();
                    self.on_lease(state).await?;
                }
                update = inputs.chain.recv() => match update {
                    Some(u) => self.on_chain(u),
                    None => return Err(RunError::Task("the chain watchers stopped".into())),
                },
                Some(msg) = next(&mut self.refresh_requests) => self.on_refresh(msg).await,
                Some(msg) = next(&mut self.retry_requests) => self.on_retry(msg).await,
                _ = tick.tick() => {
                    self.evaluate(true).await?;
                    let feeds = &self.feeds;
                    for lane in &mut self.lanes {
                        lane.refreshes.expire(&self.nats, |p| feeds.get(p).map_or(0, |f| f.min_sources)).await;
                        lane.retries.expire(&self.nats).await;
                    }
                }
                next = messages.next() => match next {
                    Some(Ok(msg)) => self.on_message(msg).await,
                    Some(Err(e)) => warn!(error = %e, "consumer error"),
                    None => return Err(RunError::Nats("observation stream ended".into())),
                },
                // Nothing else is ready: evaluate what the observations touched.
                _ = std::future::ready(()), if pending => self.evaluate(false).await?,
            }
        }
        info!(
            unacked = self.unacked.len(),
            "ingest stopped; unacknowledged observations will be redelivered"
        );
        Ok(())
    }

    async fn on_message(&mut self, msg: jetstream::Message) {
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        match Observation::decode(&msg.payload) {
            Ok(obs) => {
                let (pair, source) = (obs.pair.clone(), obs.source.clone());
                self.metrics
                    .consumed
                    .with_label_values(&[pair.to_string().as_str(), source.as_str()])
                    .inc();
                let now = now_ms();
                let skew = self.config.max_clock_skew.as_millis() as u64;
                match self.views.insert(seq, obs, now, skew) {
                    Some(Ok(())) => {
                        self.dirty.insert(pair);
                    }
                    Some(Err(Refused::Future { ahead_ms })) => {
                        self.metrics
                            .future
                            .with_label_values(&[pair.to_string().as_str(), source.as_str()])
                            .inc();
                        let last = self
                            .warned
                            .entry((pair.clone(), source.clone()))
                            .or_insert(0);
                        if now.saturating_sub(*last) >= WARN_EVERY_MS {
                            *last = now;
                            warn!(pair = %pair, source = %source, ahead_ms, "observation dated in the future: rejected");
                        }
                    }
                    Some(Err(Refused::NotNewer)) | None => {}
                }
                self.unacked.push(msg);
            }
            Err(e) => {
                self.metrics.invalid.inc();
                warn!(subject = %msg.subject, error = %e, "unreadable observation terminated");
                if let Err(e) = msg.ack_with(jetstream::AckKind::Term).await {
                    warn!(error = %e, "term failed");
                }
            }
        }
    }

    /// Evaluates the touched feeds (every feed when `all`): one aggregate per
    /// feed, then each chain's policy against what that chain holds. Hands a
    /// batch of due feeds to each chain's pipeline that is free when leading,
    /// and acknowledges the observations ingested so far.
    async fn evaluate(&mut self, all: bool) -> Result<(), RunError> {
        let now = now_ms();
        let pairs: Vec<Pair> = if all {
            self.dirty.clear();
            self.feeds.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        let mut due: Vec<Vec<Candidate>> = vec![Vec::new(); self.lanes.len()];
        let mut ready: Vec<BTreeSet<Pair>> = vec![BTreeSet::new(); self.lanes.len()];
        let mut fetch_requests: Vec<(Pair, FetchRequest)> = Vec::new();
        let started = std::time::Instant::now();
        {
            let mut windows = self.views.lock();
            // Per lane: the operator's retries (which also unpark), and the
            // refreshes whose observations are in.
            let mut retried: Vec<BTreeSet<Pair>> = Vec::with_capacity(self.lanes.len());
            for (i, lane) in self.lanes.iter().enumerate() {
                let leading = lane.phase == Phase::Leading;
                match (leading, lane.specs()) {
                    (true, Some(specs)) => {
                        ready[i] = lane.refreshes.ready(&windows, specs);
                        retried.push(lane.retries.forced());
                    }
                    _ => retried.push(BTreeSet::new()),
                }
            }
            for pair in pairs {
                let (Some(feed), Some(health), Some(window)) = (
                    self.feeds.get(&pair),
                    self.health.get_mut(&pair),
                    windows.get_mut(&pair),
                ) else {
                    continue;
                };
                window.prune(feed, now);
                let agg = match window.aggregate(feed, now, &self.rules) {
                    Ok(agg) => agg,
                    Err(e) => {
                        record_no_quorum(&self.metrics, &pair, feed, health, &e, now);
                        if self.leading
                            && (!e.rejected.is_empty() || !e.missing.is_empty())
                            && now.saturating_sub(health.last_fetch_request_ms)
                                >= FETCH_REQUEST_EVERY_MS
                        {
                            // Fallbacks must cover outliers too: ask for the feed's
                            // other sources, not counting the rejected or silent ones.
                            health.last_fetch_request_ms = now;
                            let mut request = FetchRequest::new(now);
                            request.exclude =
                                e.rejected.iter().chain(&e.missing).cloned().collect();
                            fetch_requests.push((pair.clone(), request));
                        }
                        continue;
                    }
                };
                record_aggregate(&self.metrics, &pair, health, &agg, now);
                for (i, lane) in self.lanes.iter_mut().enumerate() {
                    let Some(up) = &lane.up else { continue };
                    let (Some(spec), Some(state)) =
                        (up.chain.specs.get(&pair), lane.states.get_mut(&pair))
                    else {
                        continue;
                    };
                    let retry = retried[i].contains(&pair);
                    let force = retry || ready[i].contains(&pair);
                    let decision = decide(spec, agg.clone(), &state.chain, now, force);
                    record_decision(
                        &self.metrics,
                        &lane.name,
                        &pair,
                        spec,
                        state,
                        &decision,
                        now,
                    );
                    if let Decision::Due(c) = decision
                        && lane.phase == Phase::Leading
                        && state.in_flight.is_none()
                        && (state.parked.is_none() || retry)
                    {
                        due[i].push(*c);
                    }
                }
            }
        }
        self.metrics
            .evaluation
            .with_label_values(&[if all { "all" } else { "touched" }])
            .observe(started.elapsed().as_secs_f64());
        for (pair, request) in fetch_requests {
            debug!(pair = %pair, exclude = ?request.exclude, "asking the fetchers for more sources");
            self.metrics
                .fetch_requests
                .with_label_values(&[&pair.to_string()])
                .inc();
            if let Err(e) = self
                .nats
                .publish(fetch_subject(&pair), request.encode().into())
                .await
            {
                warn!(pair = %pair, error = %e, "cannot ask the fetchers for more sources");
            }
        }
        for (i, (due, ready)) in due.into_iter().zip(ready).enumerate() {
            let lane = &self.lanes[i];
            if lane.phase == Phase::Leading
                && lane.batch_in_flight.is_none()
                && !due.is_empty()
                && now >= lane.next_proposal_ms
            {
                self.send_batch(i, due, &ready).await?;
            }
        }
        for msg in self.unacked.drain(..) {
            if let Err(e) = msg.ack().await {
                warn!(error = %e, "ack failed; the observation will be redelivered");
            }
        }
        Ok(())
    }

    async fn send_batch(
        &mut self,
        i: usize,
        mut due: Vec<Candidate>,
        refresh_ready: &BTreeSet<Pair>,
    ) -> Result<(), RunError> {
        due.sort_by_key(|c| std::cmp::Reverse(c.urgency));
        due.truncate(self.config.max_batch);
        let id = self.next_batch;
        self.next_batch += 1;
        let revision = self.lease_revision;
        let lane = &mut self.lanes[i];
        let Some(up) = &lane.up else { return Ok(()) };
        let pairs: BTreeSet<Pair> = due.iter().map(|c| c.report.pair.clone()).collect();
        for pair in &pairs {
            if let Some(state) = lane.states.get_mut(pair) {
                state.in_flight = Some(id);
            }
        }
        lane.refreshes.assign(refresh_ready, &pairs, id);
        let retry_of = lane.retries.assign(&pairs, id);
        lane.batch_in_flight = Some(id);
        debug!(chain = %lane.name, batch = id, feeds = ?pairs, "proposing a batch");
        up.pipeline
            .send(Command::Batch(Batch {
                id,
                candidates: due,
                retry_of,
                lease_revision: revision,
            }))
            .await
            .map_err(|_| RunError::Task(format!("the {} pipeline stopped", lane.name)))
    }

    /// A lane connected: its states as the chain holds them; it takes over
    /// at once when this node leads.
    async fn on_up(&mut self, up: Up) -> Result<(), RunError> {
        let i = up.chain.lane;
        let lane = &mut self.lanes[i];
        lane.states = up
            .states
            .iter()
            .map(|(pair, c)| {
                let state = FeedState {
                    chain: *c,
                    ..FeedState::default()
                };
                (pair.clone(), state)
            })
            .collect();
        for (pair, state) in &lane.states {
            if let Some(spec) = up.chain.specs.get(pair) {
                record_chain(&self.metrics, &lane.name, pair, spec, &state.chain);
            }
        }
        lane.up = Some(Connected {
            chain: up.chain,
            pipeline: up.commands,
        });
        info!(chain = %lane.name, feeds = lane.states.len(), "chain connected");
        if self.leading {
            lane.take_over().await?;
        }
        self.dirty.extend(self.feeds.keys().cloned());
        Ok(())
    }

    async fn on_done(&mut self, i: usize, done: Done) {
        let Some(lane) = self.lanes.get_mut(i) else {
            return;
        };
        let Some(up) = &lane.up else { return };
        let specs = Arc::clone(&up.chain.specs);
        let chain = Arc::clone(&up.chain);
        match done {
            Done::TookOver(chain) => {
                for (pair, c) in chain {
                    if let (Some(state), Some(spec)) =
                        (lane.states.get_mut(&pair), specs.get(&pair))
                    {
                        state.chain = c;
                        record_chain(&self.metrics, &lane.name, &pair, spec, &c);
                    }
                }
                if lane.phase == Phase::TakingOver {
                    lane.phase = Phase::Leading;
                    info!(node = %self.node, chain = %lane.name, "leading: proposing updates");
                }
            }
            Done::Batch(done) => {
                on_batch_done(
                    lane,
                    &chain,
                    &specs,
                    &self.config,
                    &self.metrics,
                    &self.nats,
                    *done,
                )
                .await;
            }
        }
        self.dirty.extend(self.feeds.keys().cloned());
    }

    async fn on_lease(&mut self, lease: LeaseState) -> Result<(), RunError> {
        self.lease_revision = lease.revision;
        match (lease.leader, self.leading) {
            (true, false) => {
                self.leading = true;
                for lane in &mut self.lanes {
                    lane.take_over().await?;
                }
                let subscribe = |subject: &'static str| {
                    let nats = self.nats.clone();
                    async move {
                        nats.queue_subscribe(subject, "aggregators".to_owned())
                            .await
                            .map_err(|e| RunError::Nats(format!("subscribe {subject}: {e}")))
                    }
                };
                self.refresh_requests =
                    Some(subscribe(oracle_common::wire::REFRESH_SUBJECT).await?);
                self.retry_requests = Some(subscribe(oracle_common::wire::RETRY_SUBJECT).await?);
                info!(node = %self.node, "leader lease held: taking over");
            }
            (false, true) => {
                self.leading = false;
                self.refresh_requests = None;
                self.retry_requests = None;
                for lane in &mut self.lanes {
                    lane.stand_by();
                }
                info!(node = %self.node, "standing by");
            }
            _ => {}
        }
        Ok(())
    }

    /// A feed another writer (or this node, seen on chain) updated.
    fn on_chain(&mut self, update: ChainUpdate) {
        let Some(lane) = self.lanes.get_mut(update.lane) else {
            return;
        };
        let (Some(state), Some(spec)) = (
            lane.states.get_mut(&update.pair),
            lane.up
                .as_ref()
                .and_then(|u| u.chain.specs.get(&update.pair)),
        ) else {
            return;
        };
        // Rounds only move forward; a lower one is a stale read racing a
        // batch this node just landed.
        if update.state.round >= state.chain.round {
            state.chain = update.state;
            record_chain(&self.metrics, &lane.name, &update.pair, spec, &update.state);
            self.dirty.insert(update.pair);
        }
    }

    /// The lane a request names (empty: the first chain), or the error to
    /// answer.
    fn lane_of(&self, chain: &str) -> Result<usize, (ErrorCode, String)> {
        let i = if chain.is_empty() {
            0 // the first chain
        } else {
            self.lanes
                .iter()
                .position(|l| l.name == chain)
                .ok_or_else(|| {
                    (
                        ErrorCode::BadRequest,
                        format!("{chain} is not a configured chain"),
                    )
                })?
        };
        if self.lanes[i].up.is_none() {
            return Err((
                ErrorCode::ChainError,
                format!("chain {} is not connected", self.lanes[i].name),
            ));
        }
        Ok(i)
    }

    async fn on_refresh(&mut self, msg: async_nats::Message) {
        // Unreadable: the lane's own reading answers `bad_request`.
        let request = RefreshRequest::decode(&msg.payload).ok();
        let chain = request.as_ref().map_or("", |r| r.chain.as_str());
        let i = match self.lane_of(chain) {
            Ok(i) => i,
            Err((code, message)) => {
                let pair = request.map(|r| r.pair.to_string()).unwrap_or_default();
                return crate::refresh::answer(
                    &self.nats,
                    msg.reply,
                    &RefreshReply::error(pair, code, message),
                )
                .await;
            }
        };
        let timeout = self.config.refresh_timeout;
        let lane = &mut self.lanes[i];
        let Some(up) = &lane.up else { return };
        lane.refreshes
            .start(&self.nats, msg, &up.chain.specs, timeout)
            .await;
    }

    async fn on_retry(&mut self, msg: async_nats::Message) {
        let wait_ms = self.config.refresh_timeout.as_millis() as u64;
        let request = RetryRequest::decode(&msg.payload).ok();
        let chain = request.as_ref().map_or("", |r| r.chain.as_str());
        let i = match self.lane_of(chain) {
            Ok(i) => i,
            Err((code, message)) => {
                let retry_of = request.map(|r| r.retry_of).unwrap_or_default();
                return retry::answer(
                    &self.nats,
                    msg.reply,
                    &RetryReply::error(retry_of, code, message),
                )
                .await;
            }
        };
        let lane = &mut self.lanes[i];
        let Some(up) = &lane.up else { return };
        let specs = Arc::clone(&up.chain.specs);
        match retry::accept(
            &msg.payload,
            msg.reply.clone(),
            |p| specs.contains_key(p),
            wait_ms,
        ) {
            Ok(r) => {
                for pair in &r.pairs {
                    if let Some(state) = lane.states.get_mut(pair) {
                        state.parked = None;
                        state.failures = 0;
                        self.metrics
                            .parked
                            .with_label_values(&[&lane.name, &pair.to_string()])
                            .set(0);
                    }
                }
                self.dirty.extend(r.pairs.iter().cloned());
                lane.retries.push(r);
            }
            Err(reply) => retry::answer(&self.nats, msg.reply, &reply).await,
        }
    }
}

/// What a finished batch changes of its lane.
async fn on_batch_done(
    lane: &mut Lane,
    chain: &Chain,
    specs: &Specs,
    config: &AggregatorConfig,
    metrics: &Metrics,
    nats: &async_nats::Client,
    done: BatchDone,
) {
    if lane.batch_in_flight == Some(done.id) {
        lane.batch_in_flight = None;
    }
    for (pair, c) in &done.chain {
        if let (Some(state), Some(spec)) = (lane.states.get_mut(pair), specs.get(pair)) {
            state.chain = *c;
            record_chain(metrics, &lane.name, pair, spec, c);
        }
    }
    for pair in &done.pairs {
        let Some(state) = lane.states.get_mut(pair) else {
            continue;
        };
        if state.in_flight == Some(done.id) {
            state.in_flight = None;
        }
        let Some(event) = &done.event else { continue };
        if !event.reports.iter().any(|r| &r.pair == pair) {
            continue; // refused by the signers and dropped from the batch
        }
        if event.included(pair) {
            state.failures = 0;
        } else if event.status == oracle_common::wire::SubmissionStatus::Failed {
            state.failures += 1;
            let limit = crate::lane::effective(config, &chain.config).retry_limit;
            if state.failures > limit {
                warn!(chain = %lane.name, pair = %pair, failures = state.failures, submission = %event.id,
                      "repeated failed submissions: feed parked until an operator retries it");
                metrics
                    .parked
                    .with_label_values(&[&lane.name, &pair.to_string()])
                    .set(1);
                state.parked = Some(event.id.clone());
            }
        }
    }
    match &done.event {
        Some(_) => lane.backoff = BACKOFF_MIN,
        None => {
            // Nothing sent (no signer quorum, or the chain's node did not
            // answer): do not hammer the nodes.
            lane.next_proposal_ms = now_ms() + lane.backoff.as_millis() as u64;
            lane.backoff = (lane.backoff * 2).min(BACKOFF_MAX);
        }
    }
    lane.refreshes.settle(nats, &done).await;
    lane.retries.settle(nats, &done).await;
}

/// The next message of an optional subscription (pending when there is none).
async fn next(sub: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match sub.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Exports what `chain` holds for a feed.
pub fn record_chain(metrics: &Metrics, chain: &str, pair: &Pair, spec: &FeedSpec, state: &OnChain) {
    let label = pair.to_string();
    let l = [chain, label.as_str()];
    if state.round > 0
        && let Ok(price) = price::from_scaled(state.price, u32::from(spec.config.decimals))
    {
        metrics
            .onchain_price
            .with_label_values(&l)
            .set(price.to_f64().unwrap_or(f64::NAN));
    }
    metrics
        .round
        .with_label_values(&l)
        .set(i64::from(state.round));
    metrics
        .updated_at
        .with_label_values(&l)
        .set(i64::try_from(state.updated_at).unwrap_or(i64::MAX));
}

/// Metrics and the log of a feed without quorum (once per loss, after a
/// grace of `max_age`: start-up, a late poll).
fn record_no_quorum(
    metrics: &Metrics,
    pair: &Pair,
    feed: &FeedConfig,
    health: &mut FeedHealth,
    e: &NoQuorum,
    now: u64,
) {
    let label = pair.to_string();
    metrics.no_quorum.with_label_values(&[&label]).inc();
    metrics
        .sources
        .with_label_values(&[&label])
        .set(e.have as i64);
    let grace = feed.max_age.as_millis() as u64;
    if !health.quorum_warned && now.saturating_sub(health.last_quorum_ms) > grace {
        let missing: Vec<&str> = e.missing.iter().map(|s| s.as_str()).collect();
        let rejected: Vec<&str> = e.rejected.iter().map(|s| s.as_str()).collect();
        warn!(pair = %pair, have = e.have, need = e.need, missing = %missing.join(","),
              outliers = %rejected.join(","), "no quorum, feed not updated");
        health.quorum_warned = true;
    }
}

/// Metrics of a feed's aggregate, whatever the chains decide.
fn record_aggregate(
    metrics: &Metrics,
    pair: &Pair,
    health: &mut FeedHealth,
    agg: &Aggregate,
    now: u64,
) {
    let label = pair.to_string();
    if health.quorum_warned {
        info!(pair = %pair, sources = agg.used.len(), "quorum restored");
    }
    health.quorum_warned = false;
    health.last_quorum_ms = now;
    metrics
        .sources
        .with_label_values(&[&label])
        .set(agg.used.len() as i64);
    metrics
        .aggregate_price
        .with_label_values(&[&label])
        .set(agg.price.to_f64().unwrap_or(f64::NAN));
    record_outliers(metrics, &label, health, agg.rejected.iter().map(|(e, _)| e));
}

/// Metrics and logs of one chain's decision.
fn record_decision(
    metrics: &Metrics,
    chain: &str,
    pair: &Pair,
    spec: &FeedSpec,
    state: &mut FeedState,
    decision: &Decision,
    now: u64,
) {
    let label = pair.to_string();
    let price = match decision {
        Decision::NoQuorum(_) => return,
        Decision::NotDue(agg) | Decision::Withheld(agg, _) => agg.price,
        Decision::Due(c) => c.report.price,
    };
    if state.chain.round > 0
        && let Ok(scaled) = price::to_scaled(price, u32::from(spec.config.decimals))
    {
        metrics
            .deviation
            .with_label_values(&[chain, &label])
            .set(policy::deviation_bps(state.chain.price, scaled).min(1_000_000) as f64);
    }
    if let Decision::Withheld(_, why) = decision {
        metrics
            .rejected
            .with_label_values(&[chain, &label, "OutOfBounds"])
            .inc();
        if now.saturating_sub(state.last_withheld_warn_ms) >= WARN_EVERY_MS {
            state.last_withheld_warn_ms = now;
            warn!(chain = %chain, pair = %pair, reason = %why, "update due but not submitted: the hub would skip it");
        }
    }
}

/// Counts each rejected observation once, however often it is evaluated.
fn record_outliers<'a>(
    metrics: &Metrics,
    label: &str,
    state: &mut FeedHealth,
    rejected: impl Iterator<Item = &'a crate::window::Entry>,
) {
    for e in rejected {
        let counted = state
            .outliers_counted
            .entry(e.obs.source.clone())
            .or_insert(0);
        if *counted != e.seq {
            *counted = e.seq;
            metrics
                .outliers
                .with_label_values(&[label, e.obs.source.as_str()])
                .inc();
        }
    }
}
