//! The ingest loop: the node's main task. It consumes `ORACLE_OBS` with the
//! node's durable pull consumer, puts each observation in its feed's window,
//! and evaluates the feeds an observation touched as soon as no further
//! message is waiting (at least every [`EVAL_EVERY`] messages, and every feed
//! on each `tick` for heartbeats). Observations are acknowledged right after
//! the evaluation that follows them. As leader, it hands due feeds to the
//! pipeline as one batch at a time and never waits for it: ingest goes on
//! while a transaction is pending. It also serves refreshes and operator
//! retries (leader only) and applies what the chain watcher reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use oracle_common::config::AggregatorConfig;
use oracle_common::wire::{FetchRequest, Observation, WireMessage, fetch_subject};
use oracle_common::{Pair, SourceId, now_ms, price};
use rust_decimal::prelude::ToPrimitive;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::RunError;
use crate::evaluate::{Candidate, Decision, evaluate};
use crate::feeds::{FeedSpec, FeedState, Specs, Views};
use crate::leader::LeaseState;
use crate::metrics::Metrics;
use crate::pipeline::{Batch, BatchDone, Command, Done};
use crate::policy::{self, OnChain};
use crate::refresh::Refreshes;
use crate::retry::{self, Retries};
use crate::window::{Refused, Rules};

/// Messages ingested at most before an evaluation (and their acknowledgement).
pub const EVAL_EVERY: usize = 1_000;
/// The leader asks the fetchers for more sources at most this often per feed.
const FETCH_REQUEST_EVERY_MS: u64 = 1_000;
/// Repeated warnings about one feed or source are logged at most this often.
const WARN_EVERY_MS: u64 = 60_000;
/// Backoff after a proposal without signer quorum: first and longest.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where this node stands in leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Standby,
    /// Leader, waiting for the pipeline to settle what was left.
    TakingOver,
    Leading,
}

/// The loop's state.
#[derive(Debug)]
pub struct Ingest {
    node: String,
    config: AggregatorConfig,
    specs: Specs,
    views: Arc<Views>,
    states: BTreeMap<Pair, FeedState>,
    rules: Rules,
    metrics: Metrics,
    nats: async_nats::Client,
    pipeline: mpsc::Sender<Command>,
    phase: Phase,
    lease_revision: u64,
    batch_in_flight: Option<u64>,
    next_batch: u64,
    next_proposal_ms: u64,
    backoff: Duration,
    dirty: BTreeSet<Pair>,
    unacked: Vec<jetstream::Message>,
    refreshes: Refreshes,
    retries: Retries,
    refresh_requests: Option<async_nats::Subscriber>,
    retry_requests: Option<async_nats::Subscriber>,
    warned: HashMap<(Pair, SourceId), u64>,
}

/// What the loop listens to besides the observations.
#[derive(Debug)]
pub struct Inputs {
    /// The pipeline's reports.
    pub done: mpsc::Receiver<Done>,
    /// The lease task's state.
    pub lease: watch::Receiver<LeaseState>,
    /// Feeds updated on chain, from the chain watcher.
    pub chain: mpsc::Receiver<(Pair, OnChain)>,
}

impl Ingest {
    /// The loop's initial state, with what the chain held at start-up.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: String,
        config: AggregatorConfig,
        specs: Specs,
        views: Arc<Views>,
        chain: BTreeMap<Pair, OnChain>,
        metrics: Metrics,
        nats: async_nats::Client,
        pipeline: mpsc::Sender<Command>,
    ) -> Self {
        let now = now_ms();
        let states = specs
            .keys()
            .map(|pair| {
                let state = FeedState {
                    chain: chain.get(pair).copied().unwrap_or_default(),
                    last_quorum_ms: now,
                    ..FeedState::default()
                };
                (pair.clone(), state)
            })
            .collect();
        Self {
            node,
            rules: Rules::from_config(&config),
            config,
            specs,
            views,
            states,
            metrics,
            nats,
            pipeline,
            phase: Phase::Standby,
            lease_revision: 0,
            batch_in_flight: None,
            next_batch: 1,
            next_proposal_ms: 0,
            backoff: BACKOFF_MIN,
            dirty: BTreeSet::new(),
            unacked: Vec::new(),
            refreshes: Refreshes::default(),
            retries: Retries::default(),
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
        for (pair, state) in &self.states {
            record_chain(&self.metrics, pair, &self.specs[pair], &state.chain);
        }
        loop {
            if self.unacked.len() >= EVAL_EVERY {
                self.evaluate(false).await?;
            }
            let pending = !self.dirty.is_empty() || !self.unacked.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                done = inputs.done.recv() => match done {
                    Some(done) => self.on_done(done).await,
                    None => return Err(RunError::Task("the pipeline stopped".into())),
                },
                changed = inputs.lease.changed() => {
                    if changed.is_err() {
                        return Err(RunError::Task("the lease task stopped".into()));
                    }
                    let state = inputs.lease.borrow_and_update().clone();
                    self.on_lease(state).await?;
                }
                update = inputs.chain.recv() => match update {
                    Some((pair, chain)) => self.on_chain(pair, chain),
                    None => return Err(RunError::Task("the chain watcher stopped".into())),
                },
                Some(msg) = next(&mut self.refresh_requests) => {
                    let timeout = self.config.refresh_timeout;
                    self.refreshes.start(&self.nats, msg, &self.specs, timeout).await;
                }
                Some(msg) = next(&mut self.retry_requests) => self.on_retry(msg).await,
                _ = tick.tick() => {
                    self.evaluate(true).await?;
                    let specs = Arc::clone(&self.specs);
                    self.refreshes.expire(&self.nats, |p| specs.get(p).map_or(0, |s| s.config.min_sources)).await;
                    self.retries.expire(&self.nats).await;
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

    /// Evaluates the touched feeds (every feed when `all`), hands a batch of
    /// due ones to the pipeline when leading and it is free, and acknowledges
    /// the observations ingested so far.
    async fn evaluate(&mut self, all: bool) -> Result<(), RunError> {
        let now = now_ms();
        let leading = self.phase == Phase::Leading;
        let pairs: Vec<Pair> = if all {
            self.dirty.clear();
            self.specs.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        let mut due: Vec<Candidate> = Vec::new();
        let mut fetch_requests: Vec<(Pair, FetchRequest)> = Vec::new();
        let started = std::time::Instant::now();
        let refresh_ready = {
            let mut windows = self.views.lock();
            let refresh_ready = if leading {
                self.refreshes.ready(&windows, &self.specs)
            } else {
                BTreeSet::new()
            };
            let retry_forced = if leading {
                self.retries.forced()
            } else {
                BTreeSet::new()
            };
            for pair in pairs {
                let (Some(spec), Some(state), Some(window)) = (
                    self.specs.get(&pair),
                    self.states.get_mut(&pair),
                    windows.get_mut(&pair),
                ) else {
                    continue;
                };
                window.prune(&spec.config, now);
                let forced = refresh_ready.contains(&pair) || retry_forced.contains(&pair);
                let decision = evaluate(spec, window, &state.chain, now, &self.rules, forced);
                record_decision(&self.metrics, &pair, spec, state, &decision, now);
                match decision {
                    Decision::Due(c)
                        if leading
                            && state.in_flight.is_none()
                            && (state.parked.is_none() || retry_forced.contains(&pair)) =>
                    {
                        due.push(*c);
                    }
                    Decision::NoQuorum(e)
                        if leading
                            && (!e.rejected.is_empty() || !e.missing.is_empty())
                            && now.saturating_sub(state.last_fetch_request_ms)
                                >= FETCH_REQUEST_EVERY_MS =>
                    {
                        // Fallbacks must cover outliers too: ask for the feed's
                        // other sources, not counting the rejected or silent ones.
                        state.last_fetch_request_ms = now;
                        let mut request = FetchRequest::new(now);
                        request.exclude = e.rejected.iter().chain(&e.missing).cloned().collect();
                        fetch_requests.push((pair.clone(), request));
                    }
                    _ => {}
                }
            }
            refresh_ready
        };
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
        if leading
            && self.batch_in_flight.is_none()
            && !due.is_empty()
            && now >= self.next_proposal_ms
        {
            self.send_batch(due, &refresh_ready).await?;
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
        mut due: Vec<Candidate>,
        refresh_ready: &BTreeSet<Pair>,
    ) -> Result<(), RunError> {
        due.sort_by_key(|c| std::cmp::Reverse(c.urgency));
        due.truncate(self.config.max_batch);
        let id = self.next_batch;
        self.next_batch += 1;
        let pairs: BTreeSet<Pair> = due.iter().map(|c| c.report.pair.clone()).collect();
        for pair in &pairs {
            if let Some(state) = self.states.get_mut(pair) {
                state.in_flight = Some(id);
            }
        }
        self.refreshes.assign(refresh_ready, &pairs, id);
        let retry_of = self.retries.assign(&pairs, id);
        self.batch_in_flight = Some(id);
        debug!(batch = id, feeds = ?pairs, "proposing a batch");
        self.pipeline
            .send(Command::Batch(Batch {
                id,
                candidates: due,
                retry_of,
                lease_revision: self.lease_revision,
            }))
            .await
            .map_err(|_| RunError::Task("the pipeline stopped".into()))
    }

    async fn on_done(&mut self, done: Done) {
        match done {
            Done::TookOver(chain) => {
                for (pair, c) in chain {
                    if let (Some(state), Some(spec)) =
                        (self.states.get_mut(&pair), self.specs.get(&pair))
                    {
                        state.chain = c;
                        record_chain(&self.metrics, &pair, spec, &c);
                    }
                }
                if self.phase == Phase::TakingOver {
                    self.phase = Phase::Leading;
                    info!(node = %self.node, "leading: proposing updates");
                }
            }
            Done::Batch(done) => self.on_batch_done(*done).await,
        }
        self.dirty.extend(self.specs.keys().cloned());
    }

    async fn on_batch_done(&mut self, done: BatchDone) {
        if self.batch_in_flight == Some(done.id) {
            self.batch_in_flight = None;
        }
        for (pair, c) in &done.chain {
            if let (Some(state), Some(spec)) = (self.states.get_mut(pair), self.specs.get(pair)) {
                state.chain = *c;
                record_chain(&self.metrics, pair, spec, c);
            }
        }
        for pair in &done.pairs {
            let Some(state) = self.states.get_mut(pair) else {
                continue;
            };
            if state.in_flight == Some(done.id) {
                state.in_flight = None;
            }
            let Some(event) = &done.event else { continue };
            if !event.reports.iter().any(|r| &r.pair == pair) {
                continue; // refused by the signers and dropped from the batch
            }
            if event.applied(pair) {
                state.failures = 0;
            } else if event.status == oracle_common::wire::SubmissionStatus::Failed {
                state.failures += 1;
                if state.failures > self.config.retry_limit {
                    warn!(pair = %pair, failures = state.failures, submission = %event.id,
                          "repeated failed submissions: feed parked until an operator retries it");
                    self.metrics
                        .parked
                        .with_label_values(&[&pair.to_string()])
                        .set(1);
                    state.parked = Some(event.id.clone());
                }
            }
        }
        match &done.event {
            Some(_) => self.backoff = BACKOFF_MIN,
            None => {
                // No signer quorum: do not hammer the nodes.
                self.next_proposal_ms = now_ms() + self.backoff.as_millis() as u64;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
        self.refreshes.settle(&self.nats, &done).await;
        self.retries.settle(&self.nats, &done).await;
    }

    async fn on_lease(&mut self, lease: LeaseState) -> Result<(), RunError> {
        self.lease_revision = lease.revision;
        match (lease.leader, self.phase) {
            (true, Phase::Standby) => {
                self.phase = Phase::TakingOver;
                self.pipeline
                    .send(Command::TakeOver)
                    .await
                    .map_err(|_| RunError::Task("the pipeline stopped".into()))?;
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
            (false, Phase::TakingOver | Phase::Leading) => {
                self.phase = Phase::Standby;
                self.refresh_requests = None;
                self.retry_requests = None;
                self.refreshes.clear();
                self.retries.clear();
                info!(node = %self.node, "standing by");
            }
            _ => {}
        }
        Ok(())
    }

    /// A feed another writer (or this node, seen on chain) updated.
    fn on_chain(&mut self, pair: Pair, chain: OnChain) {
        let (Some(state), Some(spec)) = (self.states.get_mut(&pair), self.specs.get(&pair)) else {
            return;
        };
        // Rounds only move forward; a lower one is a stale read racing a
        // batch this node just landed.
        if chain.round >= state.chain.round {
            state.chain = chain;
            record_chain(&self.metrics, &pair, spec, &chain);
            self.dirty.insert(pair);
        }
    }

    async fn on_retry(&mut self, msg: async_nats::Message) {
        let wait_ms = self.config.refresh_timeout.as_millis() as u64;
        let specs = Arc::clone(&self.specs);
        match retry::accept(
            &msg.payload,
            msg.reply.clone(),
            |p| specs.contains_key(p),
            wait_ms,
        ) {
            Ok(r) => {
                for pair in &r.pairs {
                    if let Some(state) = self.states.get_mut(pair) {
                        state.parked = None;
                        state.failures = 0;
                        self.metrics
                            .parked
                            .with_label_values(&[&pair.to_string()])
                            .set(0);
                    }
                }
                self.dirty.extend(r.pairs.iter().cloned());
                self.retries.push(r);
            }
            Err(reply) => retry::answer(&self.nats, msg.reply, &reply).await,
        }
    }
}

/// The next message of an optional subscription (pending when there is none).
async fn next(sub: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match sub.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Exports what the chain holds for a feed.
pub fn record_chain(metrics: &Metrics, pair: &Pair, spec: &FeedSpec, chain: &OnChain) {
    let label = pair.to_string();
    if chain.round > 0
        && let Ok(price) = price::from_scaled(chain.price, u32::from(spec.config.decimals))
    {
        metrics
            .onchain_price
            .with_label_values(&[&label])
            .set(price.to_f64().unwrap_or(f64::NAN));
    }
    metrics
        .round
        .with_label_values(&[&label])
        .set(i64::from(chain.round));
    metrics
        .updated_at
        .with_label_values(&[&label])
        .set(i64::try_from(chain.updated_at).unwrap_or(i64::MAX));
}

/// Metrics and logs of one evaluation.
fn record_decision(
    metrics: &Metrics,
    pair: &Pair,
    spec: &FeedSpec,
    state: &mut FeedState,
    decision: &Decision,
    now: u64,
) {
    let label = pair.to_string();
    // What an aggregate says, whether or not an update is due.
    let (used, price, rejected): (usize, rust_decimal::Decimal, Vec<&crate::window::Entry>) =
        match decision {
            Decision::NoQuorum(e) => {
                metrics.no_quorum.with_label_values(&[&label]).inc();
                metrics
                    .sources
                    .with_label_values(&[&label])
                    .set(e.have as i64);
                // Warn once per loss, after a grace of max_age (start-up, a late poll).
                let grace = spec.config.max_age.as_millis() as u64;
                if !state.quorum_warned && now.saturating_sub(state.last_quorum_ms) > grace {
                    let missing: Vec<&str> = e.missing.iter().map(|s| s.as_str()).collect();
                    let rejected: Vec<&str> = e.rejected.iter().map(|s| s.as_str()).collect();
                    warn!(pair = %pair, have = e.have, need = e.need, missing = %missing.join(","),
                          outliers = %rejected.join(","), "no quorum, feed not updated");
                    state.quorum_warned = true;
                }
                return;
            }
            Decision::NotDue(agg) | Decision::Withheld(agg, _) => (
                agg.used.len(),
                agg.price,
                agg.rejected.iter().map(|(e, _)| e).collect(),
            ),
            Decision::Due(c) => (
                c.used.len(),
                c.report.price,
                c.rejected.iter().map(|(e, _)| e).collect(),
            ),
        };
    if state.quorum_warned {
        info!(pair = %pair, sources = used, "quorum restored");
    }
    state.quorum_warned = false;
    state.last_quorum_ms = now;
    metrics
        .sources
        .with_label_values(&[&label])
        .set(used as i64);
    metrics
        .aggregate_price
        .with_label_values(&[&label])
        .set(price.to_f64().unwrap_or(f64::NAN));
    record_outliers(metrics, &label, state, rejected.into_iter());
    if state.chain.round > 0
        && let Ok(scaled) = price::to_scaled(price, u32::from(spec.config.decimals))
    {
        metrics
            .deviation
            .with_label_values(&[&label])
            .set(policy::deviation_bps(state.chain.price, scaled).min(1_000_000) as f64);
    }
    if let Decision::Withheld(_, why) = decision {
        metrics
            .rejected
            .with_label_values(&[&label, "OutOfBounds"])
            .inc();
        if now.saturating_sub(state.last_withheld_warn_ms) >= WARN_EVERY_MS {
            state.last_withheld_warn_ms = now;
            warn!(pair = %pair, reason = %why, "update due but not submitted: the hub would skip it");
        }
    }
}

/// Counts each rejected observation once, however often it is evaluated.
fn record_outliers<'a>(
    metrics: &Metrics,
    label: &str,
    state: &mut FeedState,
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
