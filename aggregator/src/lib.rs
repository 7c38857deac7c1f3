//! The aggregator service: consumes observations from `ORACLE_OBS` with a
//! durable pull consumer, keeps a window per feed, computes the exact median
//! with a quorum of sources, decides when a feed must be updated (deviation,
//! heartbeat), signs the batch (EIP-712) and submits it to `OracleHub`.
//!
//! Layout:
//! - [`window`]: newest observation per source, quorum, exact median.
//! - [`policy`]: deviation and heartbeat rules.
//! - [`submitter`]: on-chain reads, signing, sending, receipts.
//! - [`metrics`]: the Prometheus metrics.
//!
//! Observations are acknowledged only after the evaluation that follows
//! them has finished (submission included), so a crash before that leaves
//! them to be redelivered; re-applying one is harmless (newest-per-source).
#![forbid(unsafe_code)]

pub mod metrics;
pub mod policy;
pub mod submitter;
pub mod window;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use oracle_common::chain::Report;
use oracle_common::config::{Config, FeedConfig};
use oracle_common::wire::Observation;
use oracle_common::{Pair, now_ms, price};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use policy::OnChain;
use submitter::{SubmitError, Submitter};
use window::Window;

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
        record_chain(&metrics, &feed.pair, &chain);
        feeds.insert(
            feed.pair.clone(),
            FeedState {
                config: feed.clone(),
                hub: on_hub,
                window: Window::default(),
                chain,
                last_quorum_ms: now_ms(),
                quorum_warned: false,
            },
        );
    }

    let nats = async_nats::connect(&config.nats.url)
        .await
        .map_err(|e| RunError::Nats(format!("connect {}: {e}", config.nats.url)))?;
    let js = jetstream::new(nats);
    let stream = oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
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
                ack_wait: config.aggregator.receipt_timeout + Duration::from_secs(30),
                max_ack_pending: 100_000,
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
                ..Default::default()
            },
        )
        .await
        .map_err(|e| RunError::Nats(format!("consumer {}: {e}", config.aggregator.consumer)))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| RunError::Nats(format!("pull: {e}")))?;
    info!(consumer = %config.aggregator.consumer, feeds = feeds.len(), "consuming observations");

    let mut tick = tokio::time::interval(config.aggregator.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unacked: Vec<jetstream::Message> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            next = messages.next() => match next {
                Some(Ok(msg)) => match Observation::decode(&msg.payload) {
                    Ok(obs) => {
                        metrics.consumed.with_label_values(&[&obs.pair.to_string(), obs.source.as_str()]).inc();
                        if let Some(state) = feeds.get_mut(&obs.pair) {
                            state.window.insert(obs);
                        }
                        unacked.push(msg);
                    }
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
                evaluate(&mut feeds, &submitter, &metrics).await;
                for msg in unacked.drain(..) {
                    if let Err(e) = msg.ack().await {
                        warn!(error = %e, "ack failed; the observation will be redelivered");
                    }
                }
            }
        }
    }
    info!(
        unacked = unacked.len(),
        "aggregator stopped; unacknowledged observations will be redelivered"
    );
    Ok(())
}

fn record_chain(metrics: &metrics::Metrics, pair: &Pair, chain: &OnChain) {
    let label = pair.to_string();
    metrics
        .round
        .with_label_values(&[&label])
        .set(i64::from(chain.round));
    metrics
        .updated_at
        .with_label_values(&[&label])
        .set(i64::try_from(chain.updated_at).unwrap_or(i64::MAX));
}

/// Evaluates every feed and submits one batch with all that are due.
async fn evaluate(
    feeds: &mut BTreeMap<Pair, FeedState>,
    submitter: &Submitter,
    metrics: &metrics::Metrics,
) {
    let now = now_ms();
    let mut reports = Vec::new();
    let mut due = Vec::new();
    for (pair, state) in feeds.iter_mut() {
        let label = pair.to_string();
        state.window.prune(&state.config, now);
        let agg = match state.window.aggregate(&state.config, now) {
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
        let scaled = match price::to_scaled(agg.price, u32::from(state.config.decimals)) {
            Ok(v) => v,
            Err(e) => {
                error!(pair = %pair, error = %e, "aggregate cannot be represented on chain");
                continue;
            }
        };
        let Some(reason) = policy::decide(&state.config, &state.chain, scaled, now / 1000) else {
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
        metrics
            .reports
            .with_label_values(&[&label, reason.as_str()])
            .inc();
        reports.push(Report {
            feedIndex: state.hub.index,
            roundId: round,
            price: scaled,
            observedAt: u32::try_from(observed_at).unwrap_or(u32::MAX),
        });
        due.push((
            pair.clone(),
            OnChain {
                price: scaled,
                round,
                observed_at,
                updated_at: now / 1000,
            },
            agg.price,
            reason,
        ));
    }
    if reports.is_empty() {
        return;
    }
    match submitter.submit(reports).await {
        Ok(included) => {
            metrics.submissions.with_label_values(&["success"]).inc();
            metrics.confirmation.observe(included.elapsed.as_secs_f64());
            metrics.gas_used.observe(included.gas_used as f64);
            for (pair, chain, value, reason) in due {
                let index = feeds.get(&pair).map(|s| s.hub.index);
                if let Some((_, _, why)) = included
                    .rejected
                    .iter()
                    .find(|(i, r, _)| Some(*i) == index && *r == chain.round)
                {
                    metrics
                        .rejected
                        .with_label_values(&[&pair.to_string(), why])
                        .inc();
                    warn!(pair = %pair, round = chain.round, reason = %why, tx = %included.tx,
                          "hub skipped the report; re-reading feed state");
                    if let Ok(fresh) = submitter.read(&pair).await {
                        record_chain(metrics, &pair, &fresh);
                        if let Some(state) = feeds.get_mut(&pair) {
                            state.chain = fresh;
                        }
                    }
                    continue;
                }
                info!(pair = %pair, round = chain.round, price = %value, reason = reason.as_str(),
                      tx = %included.tx, block = included.block, "feed updated");
                record_chain(metrics, &pair, &chain);
                if let Some(state) = feeds.get_mut(&pair) {
                    state.chain = chain;
                }
            }
        }
        Err(e) => {
            metrics.submissions.with_label_values(&["failed"]).inc();
            error!(error = %e, feeds = due.len(), "batch submission failed; re-reading chain state");
            for (pair, _, _, _) in due {
                match submitter.read(&pair).await {
                    Ok(chain) => {
                        record_chain(metrics, &pair, &chain);
                        if let Some(state) = feeds.get_mut(&pair) {
                            state.chain = chain;
                        }
                    }
                    Err(e) => warn!(pair = %pair, error = %e, "cannot re-read feed state"),
                }
            }
        }
    }
}
