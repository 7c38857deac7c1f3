//! The aggregator service: consumes observations from `ORACLE_OBS` with a
//! durable pull consumer, keeps a window per feed, computes the exact median of
//! the surviving sources (outliers rejected), decides when a feed must be
//! updated (deviation, heartbeat), publishes each report with all its inputs on
//! `ORACLE_REPORTS`, and submits the batch to `OracleHub`, following the
//! transaction to a final status recorded on `ORACLE_SUBMISSIONS`.
//!
//! Layout:
//! - [`window`]: newest observation per source, outliers, quorum, median, confidence.
//! - [`policy`]: deviation and heartbeat rules.
//! - [`submitter`]: on-chain reads, signing, transactions.
//! - [`lifecycle`]: submission events, nonces, replacements, restart reconciliation.
//! - [`leader`]: the leader lease among redundant aggregators.
//! - [`replay`]: recomputing recorded reports from the observation stream.
//! - [`signing`]: who signs reports ([`signing::ReportSigner`]; local keys today).
//! - [`metrics`]: the Prometheus metrics.
//!
//! Observations are acknowledged only after the evaluation that follows
//! them has finished (submission included), so a crash before that leaves
//! them to be redelivered; re-applying one is harmless (newest-per-source).
#![forbid(unsafe_code)]

pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod policy;
pub mod replay;
pub mod retry;
pub mod signing;
pub mod submitter;
pub mod window;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use oracle_common::chain::Report;
use oracle_common::config::{Config, FeedConfig};
use oracle_common::wire::{
    FetchRequest, Observation, REFRESH_SUBJECT, RETRY_SUBJECT, RefreshReply, RefreshRequest,
    RejectedInput, ReportMessage, SCHEMA_VERSION, fetch_subject, report_subject,
};
use oracle_common::{Pair, now_ms, price};
use prometheus::Registry;
use rust_decimal::prelude::ToPrimitive;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use lifecycle::{Lifecycle, Planned};
use policy::OnChain;
use submitter::{SubmitError, Submitter};
use window::{Rules, Window};

/// Messages requested per pull from `ORACLE_OBS`.
pub const PULL_BATCH: usize = 1_000;

/// Reads one observation message into the window of its feed: the per-message
/// work of the consumer loop (the benchmark measures this same function).
pub fn ingest<'a>(
    payload: &[u8],
    metrics: &metrics::Metrics,
    window_of: impl FnOnce(&Pair) -> Option<&'a mut Window>,
) -> Result<(), oracle_common::wire::WireError> {
    let obs = Observation::decode(payload)?;
    metrics
        .consumed
        .with_label_values(&[obs.pair.to_string().as_str(), obs.source.as_str()])
        .inc();
    if let Some(window) = window_of(&obs.pair) {
        window.insert(obs);
    }
    Ok(())
}

/// Why the service could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Chain set-up failed.
    #[error(transparent)]
    Chain(#[from] SubmitError),
    /// NATS failed.
    #[error("nats: {0}")]
    Nats(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

#[derive(Debug)]
struct FeedState {
    config: FeedConfig,
    hub: submitter::FeedOnHub,
    window: Window,
    chain: OnChain,
    /// Last time (Unix ms) the feed had quorum, or the start time.
    last_quorum_ms: u64,
    /// Whether the current quorum loss was logged.
    quorum_warned: bool,
    /// Failed submissions in a row that carried this feed.
    failures: u32,
    /// Set after `retry_limit` failures: the feed waits for an operator
    /// (the last failed submission's id).
    parked: Option<String>,
}

/// Runs the aggregator until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let metrics = metrics::Metrics::register(registry)?;
    let submitter = Submitter::connect(&config).await?;
    let mut feeds: BTreeMap<Pair, FeedState> = BTreeMap::new();
    for feed in &config.feeds {
        let not_usable = |e: SubmitError| match e {
            SubmitError::Reverted(r) => SubmitError::Config {
                key: "feeds",
                message: format!("feed {} is not usable on the hub: {r}", feed.pair),
            },
            other => other,
        };
        let on_hub = submitter.feed(&feed.pair).await.map_err(not_usable)?;
        if on_hub.decimals != feed.decimals {
            return Err(RunError::Chain(SubmitError::Config {
                key: "feeds",
                message: format!(
                    "feed {} has {} decimals in the config and {} on the hub",
                    feed.pair, feed.decimals, on_hub.decimals
                ),
            }));
        }
        let chain = submitter.read(&feed.pair).await.map_err(not_usable)?;
        info!(pair = %feed.pair, index = on_hub.index, round = chain.round, "feed state read from chain");
        metrics.init_feed(feed);
        record_chain(&metrics, &feed.pair, feed.decimals, &chain);
        feeds.insert(
            feed.pair.clone(),
            FeedState {
                config: feed.clone(),
                hub: on_hub,
                window: Window::default(),
                chain,
                last_quorum_ms: now_ms(),
                quorum_warned: false,
                failures: 0,
                parked: None,
            },
        );
    }

    let nats = async_nats::connect(&config.nats.url)
        .await
        .map_err(|e| RunError::Nats(format!("connect {}: {e}", config.nats.url)))?;
    let js = jetstream::new(nats.clone());
    let stream = oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    oracle_common::streams::ensure_reports_stream(&js, &config.nats)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    oracle_common::streams::ensure_submissions_stream(&js, &config.nats)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;

    let lifecycle = Lifecycle::new(
        js.clone(),
        submitter.clone(),
        config.aggregator.consumer.clone(),
        config.aggregator.clone(),
        metrics.clone(),
    );
    let mut lease = leader::Lease::open(
        &js,
        config.aggregator.consumer.clone(),
        config.aggregator.lease_ttl,
    )
    .await
    .map_err(RunError::Nats)?;
    let indexes: BTreeMap<Pair, u16> = feeds
        .iter()
        .map(|(p, s)| (p.clone(), s.hub.index))
        .collect();

    // A new durable starts at the oldest observation any feed could still use.
    let lookback = config
        .feeds
        .iter()
        .map(|f| f.max_age)
        .max()
        .unwrap_or(Duration::from_secs(60));
    let start = time::OffsetDateTime::now_utc() - lookback;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &config.aggregator.consumer,
            consumer::pull::Config {
                durable_name: Some(config.aggregator.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.aggregator.receipt_timeout * 4 + Duration::from_secs(30),
                max_ack_pending: 100_000,
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
                ..Default::default()
            },
        )
        .await
        .map_err(|e| RunError::Nats(format!("consumer {}: {e}", config.aggregator.consumer)))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .map_err(|e| RunError::Nats(format!("pull: {e}")))?;
    info!(consumer = %config.aggregator.consumer, feeds = feeds.len(), "consuming observations");

    let mut ctx = Context {
        js: &js,
        lifecycle: &lifecycle,
        metrics: &metrics,
        rules: Rules::from_config(&config.aggregator),
        max_batch: config.aggregator.max_batch,
        leader: false,
        retry_limit: config.aggregator.retry_limit,
    };
    // Only the leader answers refreshes: it is the one that can submit.
    let mut refresh_requests: Option<async_nats::Subscriber> = None;
    let mut retry_requests: Option<async_nats::Subscriber> = None;
    let mut retries: Vec<retry::PendingRetry> = Vec::new();
    let mut lease_tick = tokio::time::interval(leader::Lease::period(config.aggregator.lease_ttl));
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<PendingRefresh>(256);
    let mut refreshes: Vec<PendingRefresh> = Vec::new();
    let mut tick = tokio::time::interval(config.aggregator.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut balance_check = tokio::time::interval(Duration::from_secs(30));
    let mut unacked: Vec<jetstream::Message> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(msg) = async {
                match refresh_requests.as_mut() {
                    Some(sub) => sub.next().await,
                    None => std::future::pending().await,
                }
            } => {
                start_refresh(&nats, &feeds, msg, &config, ready_tx.clone()).await;
            }
            Some(msg) = async {
                match retry_requests.as_mut() {
                    Some(sub) => sub.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let wait_ms = config.aggregator.refresh_timeout.as_millis() as u64;
                match retry::accept(&msg.payload, msg.reply.clone(), |p| feeds.contains_key(p), wait_ms) {
                    Ok(r) => {
                        for pair in &r.pairs {
                            if let Some(state) = feeds.get_mut(pair) {
                                state.parked = None;
                                state.failures = 0;
                                metrics.parked.with_label_values(&[&pair.to_string()]).set(0);
                            }
                        }
                        retries.push(r);
                    }
                    Err(reply) => retry::answer(&nats, msg.reply, &reply).await,
                }
            }
            _ = lease_tick.tick() => {
                let was = ctx.leader;
                let now_leader = lease.tick().await;
                metrics.leader.set(i64::from(now_leader));
                if now_leader && !was {
                    // Take over: finish what the previous leader (or run) left
                    // pending, then start from what the chain holds.
                    lifecycle.reconcile(|r| resign(&indexes, r)).await?;
                    for (pair, state) in feeds.iter_mut() {
                        state.chain = submitter.read(pair).await?;
                        record_chain(&metrics, pair, state.config.decimals, &state.chain);
                    }
                    refresh_requests = Some(
                        nats.queue_subscribe(REFRESH_SUBJECT, "aggregators".to_owned())
                            .await
                            .map_err(|e| RunError::Nats(format!("subscribe {REFRESH_SUBJECT}: {e}")))?,
                    );
                    retry_requests = Some(
                        nats.queue_subscribe(RETRY_SUBJECT, "aggregators".to_owned())
                            .await
                            .map_err(|e| RunError::Nats(format!("subscribe {RETRY_SUBJECT}: {e}")))?,
                    );
                    info!(id = %config.aggregator.consumer, "leading: submitting updates");
                } else if !now_leader {
                    if was {
                        refresh_requests = None;
                        retry_requests = None;
                        info!(id = %config.aggregator.consumer, "standing by");
                    }
                    // A standby follows the chain the leader writes.
                    for (pair, state) in feeds.iter_mut() {
                        if let Ok(chain) = submitter.read(pair).await {
                            state.chain = chain;
                            record_chain(&metrics, pair, state.config.decimals, &chain);
                        }
                    }
                }
                ctx.leader = now_leader;
            }
            Some(pending) = ready_rx.recv() => refreshes.push(pending),
            next = messages.next() => match next {
                Some(Ok(msg)) => match ingest(&msg.payload, &metrics, |pair| feeds.get_mut(pair).map(|s| &mut s.window)) {
                    Ok(()) => unacked.push(msg),
                    Err(e) => {
                        metrics.invalid.inc();
                        warn!(subject = %msg.subject, error = %e, "unreadable observation terminated");
                        if let Err(e) = msg.ack_with(jetstream::AckKind::Term).await {
                            warn!(error = %e, "term failed");
                        }
                    }
                },
                Some(Err(e)) => warn!(error = %e, "consumer error"),
                None => return Err(RunError::Nats("observation stream ended".into())),
            },
            _ = tick.tick() => {
                let mut forced = ready_refreshes(&feeds, &mut refreshes, &nats).await;
                forced.extend(retry::forced(&retries));
                let event = evaluate(&mut feeds, &ctx, &forced, &retries).await;
                answer_refreshes(&nats, &mut refreshes, &forced, event.as_ref()).await;
                retry::settle(&nats, &mut retries, event.as_ref()).await;
                for msg in unacked.drain(..) {
                    if let Err(e) = msg.ack().await {
                        warn!(error = %e, "ack failed; the observation will be redelivered");
                    }
                }
            }
            _ = balance_check.tick() => {
                if let Ok(balance) = submitter.balance().await {
                    metrics.sender_balance.set(f64::from(balance));
                }
            }
        }
    }
    lease.release().await;
    info!(
        unacked = unacked.len(),
        "aggregator stopped; unacknowledged observations will be redelivered"
    );
    Ok(())
}

/// The on-chain reports of a recorded submission (to sign a replacement).
fn resign(
    indexes: &BTreeMap<Pair, u16>,
    reports: &[oracle_common::wire::SubmittedReport],
) -> Option<Vec<Report>> {
    reports
        .iter()
        .map(|r| {
            Some(Report {
                feedIndex: *indexes.get(&r.pair)?,
                roundId: r.round,
                price: r.price_scaled.parse().ok()?,
                observedAt: u32::try_from(r.observed_at).ok()?,
            })
        })
        .collect()
}

fn record_chain(metrics: &metrics::Metrics, pair: &Pair, decimals: u8, chain: &OnChain) {
    let label = pair.to_string();
    if chain.round > 0
        && let Ok(price) = price::from_scaled(chain.price, u32::from(decimals))
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

/// What an evaluation needs besides the feeds.
struct Context<'a> {
    js: &'a jetstream::Context,
    lifecycle: &'a Lifecycle,
    metrics: &'a metrics::Metrics,
    rules: Rules,
    max_batch: usize,
    /// Only the leader submits; a standby evaluates (metrics) and waits.
    leader: bool,
    /// Failed submissions of a feed retried automatically before parking it.
    retry_limit: u32,
}

/// One feed that is due, with its report and how urgent it is.
struct Due {
    planned: Planned,
    message: ReportMessage,
    chain_after: OnChain,
    urgency: u128,
}

/// Evaluates every feed; submits the most urgent due ones (at most
/// `max_batch`) in one transaction. The others stay due for the next tick.
async fn evaluate(
    feeds: &mut BTreeMap<Pair, FeedState>,
    ctx: &Context<'_>,
    forced: &std::collections::BTreeSet<Pair>,
    retries: &[retry::PendingRetry],
) -> Option<oracle_common::wire::SubmissionEvent> {
    let now = now_ms();
    let metrics = ctx.metrics;
    let mut due: Vec<Due> = Vec::new();
    for (pair, state) in feeds.iter_mut() {
        let label = pair.to_string();
        state.window.prune(&state.config, now);
        let agg = match state.window.aggregate(&state.config, now, &ctx.rules) {
            Ok(agg) => {
                if state.quorum_warned {
                    info!(pair = %pair, sources = agg.used.len(), "quorum restored");
                }
                state.quorum_warned = false;
                state.last_quorum_ms = now;
                agg
            }
            Err(e) => {
                metrics.no_quorum.with_label_values(&[&label]).inc();
                metrics
                    .sources
                    .with_label_values(&[&label])
                    .set(e.have as i64);
                // Warn once per loss, after a grace of max_age (start-up, a late poll).
                let grace = state.config.max_age.as_millis() as u64;
                if !state.quorum_warned && now.saturating_sub(state.last_quorum_ms) > grace {
                    let missing: Vec<&str> = e.missing.iter().map(|s| s.as_str()).collect();
                    warn!(pair = %pair, have = e.have, need = e.need, missing = %missing.join(","), "no quorum, feed not updated");
                    state.quorum_warned = true;
                }
                continue;
            }
        };
        metrics
            .sources
            .with_label_values(&[&label])
            .set(agg.used.len() as i64);
        metrics
            .aggregate_price
            .with_label_values(&[&label])
            .set(agg.price.to_f64().unwrap_or(f64::NAN));
        for (o, _) in &agg.rejected {
            metrics
                .outliers
                .with_label_values(&[&label, o.source.as_str()])
                .inc();
        }
        let decimals = u32::from(state.config.decimals);
        let scaled = match price::to_scaled(agg.price, decimals) {
            Ok(v) => v,
            Err(e) => {
                error!(pair = %pair, error = %e, "aggregate cannot be represented on chain");
                continue;
            }
        };
        let deviation = policy::deviation_bps(state.chain.price, scaled);
        if state.chain.round > 0 {
            metrics
                .deviation
                .with_label_values(&[&label])
                .set(deviation.min(1_000_000) as f64);
        }
        if state.parked.is_some() {
            // Left for an operator after repeated failures (see retry_limit).
            continue;
        }
        let decided = policy::decide(&state.config, &state.chain, scaled, now / 1000);
        let Some(reason) = decided.or(forced.contains(pair).then_some(policy::Reason::OnDemand))
        else {
            continue;
        };
        // The hub skips out-of-bounds reports (never clamps): do not pay for one.
        if scaled <= state.hub.min_price || scaled >= state.hub.max_price {
            metrics
                .rejected
                .with_label_values(&[&label, "OutOfBounds"])
                .inc();
            warn!(pair = %pair, price = %agg.price, min = state.hub.min_price, max = state.hub.max_price,
                  "aggregate outside the feed's sanity bounds, not submitted");
            continue;
        }
        let observed_at = (agg.observed_at_ms / 1000).max(state.chain.observed_at);
        let round = state.chain.round.saturating_add(1);
        debug!(pair = %pair, price = %agg.price, round, reason = reason.as_str(), "update due");
        let urgency = match reason {
            policy::Reason::First => u128::MAX,
            policy::Reason::Heartbeat => u128::MAX - 1,
            policy::Reason::OnDemand => u128::MAX - 2,
            policy::Reason::Deviation => deviation,
        };
        due.push(Due {
            planned: Planned {
                pair: pair.clone(),
                report: Report {
                    feedIndex: state.hub.index,
                    roundId: round,
                    price: scaled,
                    observedAt: u32::try_from(observed_at).unwrap_or(u32::MAX),
                },
            },
            message: ReportMessage {
                v: SCHEMA_VERSION,
                pair: pair.clone(),
                round,
                price: agg.price,
                price_scaled: scaled.to_string(),
                decimals: state.config.decimals,
                confidence: agg.confidence,
                observed_at,
                computed_at_ms: now,
                reason: reason.as_str().to_owned(),
                submission_id: String::new(),
                used: agg.used.clone(),
                rejected: agg
                    .rejected
                    .iter()
                    .map(|(o, why)| RejectedInput {
                        observation: o.clone(),
                        reason: why.clone(),
                    })
                    .collect(),
            },
            chain_after: OnChain {
                price: scaled,
                round,
                observed_at,
                updated_at: now / 1000,
            },
            urgency,
        });
    }
    if due.is_empty() || !ctx.leader {
        return None;
    }
    due.sort_by_key(|d| std::cmp::Reverse(d.urgency));
    due.truncate(ctx.max_batch);
    let retry_of = retry::retry_of(retries, due.iter().map(|d| &d.planned.pair));
    Some(submit_due(feeds, ctx, due, retry_of).await)
}

/// Publishes the reports, submits them, and updates what the feeds believe the
/// chain holds.
async fn submit_due(
    feeds: &mut BTreeMap<Pair, FeedState>,
    ctx: &Context<'_>,
    mut due: Vec<Due>,
    retry_of: Option<String>,
) -> oracle_common::wire::SubmissionEvent {
    let id = lifecycle::new_id();
    for d in due.iter_mut() {
        d.message.submission_id = id.clone();
        let body = serde_json::to_vec(&d.message).unwrap_or_default();
        match ctx
            .js
            .publish(report_subject(&d.message.pair), body.into())
            .await
        {
            Ok(ack) => {
                if let Err(e) = ack.await {
                    warn!(pair = %d.message.pair, error = %e, "report not acknowledged by ORACLE_REPORTS");
                }
            }
            Err(e) => warn!(pair = %d.message.pair, error = %e, "cannot publish the report"),
        }
        ctx.metrics
            .reports
            .with_label_values(&[&d.message.pair.to_string(), &d.message.reason])
            .inc();
    }
    let planned: Vec<Planned> = due.iter().map(|d| d.planned.clone()).collect();
    let outcome = ctx.lifecycle.submit(id, &planned, retry_of).await;
    let event = outcome.event;
    let skipped: Vec<&str> = event
        .skipped
        .iter()
        .filter_map(|s| s.split(':').next())
        .collect();
    for d in due {
        let pair = d.planned.pair;
        let applied = event.status == oracle_common::wire::SubmissionStatus::Success
            && !skipped.contains(&pair.to_string().as_str());
        if let Some(state) = feeds.get_mut(&pair) {
            if applied {
                state.failures = 0;
            } else if event.status == oracle_common::wire::SubmissionStatus::Failed {
                state.failures += 1;
                if state.failures > ctx.retry_limit {
                    warn!(pair = %pair, failures = state.failures, submission = %event.id,
                          "repeated failed submissions: feed parked until an operator retries it");
                    ctx.metrics
                        .parked
                        .with_label_values(&[&pair.to_string()])
                        .set(1);
                    state.parked = Some(event.id.clone());
                }
            }
        }
        if applied {
            info!(pair = %pair, round = d.chain_after.round, price = %d.message.price, reason = %d.message.reason,
                  tx_hash = event.tx_hash.as_deref().unwrap_or_default(), block = event.block.unwrap_or_default(),
                  submission = %event.id, "feed updated");
            if let Some(state) = feeds.get_mut(&pair) {
                record_chain(ctx.metrics, &pair, state.config.decimals, &d.chain_after);
                state.chain = d.chain_after;
            }
            continue;
        }
        if event.status == oracle_common::wire::SubmissionStatus::Success {
            ctx.metrics
                .rejected
                .with_label_values(&[&pair.to_string(), "skipped"])
                .inc();
        }
        // Re-seed the baseline from the chain: whatever happened, the next
        // decision starts from what the hub really holds.
        match ctx.lifecycle.submitter().read(&pair).await {
            Ok(chain) => {
                if let Some(state) = feeds.get_mut(&pair) {
                    record_chain(ctx.metrics, &pair, state.config.decimals, &chain);
                    state.chain = chain;
                }
            }
            Err(e) => warn!(pair = %pair, error = %e, "cannot re-read feed state"),
        }
    }
    event
}

/// An on-demand refresh waiting for fresh observations.
#[derive(Debug)]
struct PendingRefresh {
    pair: Pair,
    requested_at_ms: u64,
    deadline_ms: u64,
    reply: Option<async_nats::Subject>,
}

async fn reply(nats: &async_nats::Client, to: Option<async_nats::Subject>, body: &RefreshReply) {
    if let Some(to) = to {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        if let Err(e) = nats.publish(to, bytes.into()).await {
            warn!(error = %e, "cannot answer a refresh request");
        }
    }
}

fn refresh_error(pair: String, code: &str, message: String) -> RefreshReply {
    RefreshReply {
        v: SCHEMA_VERSION,
        pair,
        submission_id: None,
        round: None,
        price_scaled: None,
        tx_hash: None,
        block: None,
        error: Some(code.to_owned()),
        message: Some(message),
    }
}

/// Handles a request on `oracle.refresh`: asks every fetcher to poll the pair
/// now (`oracle.fetch.{PAIR}`), then waits (in the main loop) for fresh
/// observations from a quorum.
async fn start_refresh(
    nats: &async_nats::Client,
    feeds: &BTreeMap<Pair, FeedState>,
    msg: async_nats::Message,
    config: &Config,
    ready: tokio::sync::mpsc::Sender<PendingRefresh>,
) {
    let request = match serde_json::from_slice::<RefreshRequest>(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            reply(
                nats,
                msg.reply,
                &refresh_error(String::new(), "bad_request", e.to_string()),
            )
            .await;
            return;
        }
    };
    if !feeds.contains_key(&request.pair) {
        let message = format!("{} is not a configured feed", request.pair);
        reply(
            nats,
            msg.reply,
            &refresh_error(request.pair.to_string(), "unknown_pair", message),
        )
        .await;
        return;
    }
    let requested_at_ms = now_ms();
    let fetch = FetchRequest {
        v: SCHEMA_VERSION,
        requested_at_ms,
    };
    let subject = fetch_subject(&request.pair);
    let body = serde_json::to_vec(&fetch).unwrap_or_default();
    // Fire the fetch; the fetchers' replies are not needed, their observations are.
    if let Err(e) = nats.publish(subject, body.into()).await {
        warn!(error = %e, "cannot ask the fetchers for a refresh");
    }
    let pending = PendingRefresh {
        pair: request.pair,
        requested_at_ms,
        deadline_ms: requested_at_ms + config.aggregator.refresh_timeout.as_millis() as u64,
        reply: msg.reply,
    };
    let _ = ready.send(pending).await;
}

/// Refreshes whose pair now has fresh observations from a quorum (forced into
/// this evaluation); answers the ones past their deadline.
async fn ready_refreshes(
    feeds: &BTreeMap<Pair, FeedState>,
    refreshes: &mut Vec<PendingRefresh>,
    nats: &async_nats::Client,
) -> std::collections::BTreeSet<Pair> {
    let now = now_ms();
    let mut forced = std::collections::BTreeSet::new();
    let mut keep = Vec::with_capacity(refreshes.len());
    for r in refreshes.drain(..) {
        let Some(state) = feeds.get(&r.pair) else {
            continue;
        };
        let fresh = state.window.fetched_since(&state.config, r.requested_at_ms);
        if fresh >= state.config.min_sources {
            forced.insert(r.pair.clone());
            keep.push(r);
        } else if now > r.deadline_ms {
            let message = format!(
                "{fresh} of {} sources answered within the refresh timeout",
                state.config.min_sources
            );
            reply(
                nats,
                r.reply,
                &refresh_error(r.pair.to_string(), "no_quorum", message),
            )
            .await;
        } else {
            keep.push(r);
        }
    }
    *refreshes = keep;
    forced
}

/// Answers the refreshes of `forced` pairs with the submission's outcome.
async fn answer_refreshes(
    nats: &async_nats::Client,
    refreshes: &mut Vec<PendingRefresh>,
    forced: &std::collections::BTreeSet<Pair>,
    event: Option<&oracle_common::wire::SubmissionEvent>,
) {
    let mut keep = Vec::with_capacity(refreshes.len());
    for r in refreshes.drain(..) {
        if !forced.contains(&r.pair) {
            keep.push(r);
            continue;
        }
        let report = event.and_then(|e| e.reports.iter().find(|x| x.pair == r.pair));
        let body = match (event, report) {
            (Some(e), Some(rep))
                if e.status == oracle_common::wire::SubmissionStatus::Success
                    && !e.skipped.iter().any(|s| s.starts_with(&r.pair.to_string())) =>
            {
                RefreshReply {
                    v: SCHEMA_VERSION,
                    pair: r.pair.to_string(),
                    submission_id: Some(e.id.clone()),
                    round: Some(rep.round),
                    price_scaled: Some(rep.price_scaled.clone()),
                    tx_hash: e.tx_hash.clone(),
                    block: e.block,
                    error: None,
                    message: None,
                }
            }
            (Some(e), _) => RefreshReply {
                submission_id: Some(e.id.clone()),
                ..refresh_error(
                    r.pair.to_string(),
                    "chain_error",
                    e.error
                        .clone()
                        .unwrap_or_else(|| format!("the hub skipped the report: {:?}", e.skipped)),
                )
            },
            (None, _) => refresh_error(
                r.pair.to_string(),
                "no_quorum",
                "no aggregate could be formed (outliers or bounds)".into(),
            ),
        };
        reply(nats, r.reply, &body).await;
    }
    *refreshes = keep;
}
