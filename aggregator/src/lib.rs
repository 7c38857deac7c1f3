//! The aggregator service: one node of the signer quorum. Each node is run by
//! its own operator with exactly one signer key and its own sender key. It
//! consumes observations from `ORACLE_OBS`, keeps a window per feed, verifies
//! and signs the leader's proposals against its own view, and, while it holds
//! the leader lease, proposes the due feeds to the other nodes and submits
//! each batch that gathered the hub's threshold of signatures, following the
//! transaction to a final status on `ORACLE_SUBMISSIONS`.
//!
//! [`run`] wires these tasks together:
//! - [`ingest`]: the main loop: observations in, evaluation, acknowledgement;
//!   hands due feeds to the pipeline; refreshes and operator retries.
//! - [`leader`]: the leader lease, renewed in its own task.
//! - [`verify`]: answers proposals on `oracle.proposal` (sign or refuse).
//! - [`pipeline`]: per chain, the leader's proposals ([`proposal`]) and
//!   transactions ([`lifecycle`]), one batch at a time, beside the ingest loop.
//! - [`chain_watch`]: per chain, feeds updated on chain by others, the signer
//!   set, the sender's balance.
//!
//! And the pieces they use: [`window`] (newest observation per source,
//! outliers, median, confidence), [`policy`] (deviation, heartbeat),
//! [`evaluate`] (one feed to one report), [`feeds`], [`submitter`] (chain
//! access), [`signing`] (the node's key), [`refresh`], [`retry`], [`replay`],
//! [`metrics`].
//!
//! Each chain of `[[chains]]` is a [`lane`]: its own connection, feeds (with
//! the chain's policy), signer set, pipeline and watcher; one aggregation
//! feeds them all, and a chain that is slow or down holds up only its lane.
//!
//! A node starts by reading the last `max_age` of `ORACLE_OBS` into its
//! windows, so it never depends on redelivery: observations a crashed node
//! held unacknowledged are seen at once, and acknowledged within [`ACK_WAIT`].
#![forbid(unsafe_code)]

pub mod chain_watch;
pub mod evaluate;
pub mod feeds;
pub mod ingest;
pub mod lane;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod proposal;
pub mod refresh;
pub mod replay;
pub mod retry;
pub mod signing;
pub mod submitter;
pub mod verify;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use oracle_common::config::Config;
use oracle_common::now_ms;
use oracle_common::wire::{Observation, WireMessage};
use prometheus::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use feeds::Views;
use submitter::SubmitError;

/// Messages requested per pull from `ORACLE_OBS`.
pub const PULL_BATCH: usize = 1_000;
/// How long an observation delivered to a node may stay unacknowledged before
/// it is delivered again. A node acknowledges right after evaluating, so this
/// only matters when a node dies holding some.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long the background tasks get to finish when the node stops.
const GRACE: Duration = Duration::from_secs(10);

/// Why the service could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Chain set-up failed, or the configuration does not allow running.
    #[error(transparent)]
    Chain(#[from] SubmitError),
    /// NATS failed.
    #[error("nats: {0}")]
    Nats(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A task the node cannot do without stopped.
    #[error("{0}")]
    Task(String),
}

/// Runs one node until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let metrics = metrics::Metrics::register(registry)?;
    let chains = config
        .require_chains()
        .map_err(|e| {
            RunError::Chain(SubmitError::Config {
                key: "chains",
                message: e.to_string(),
            })
        })?
        .to_vec();
    let mut checks = vec!["nats".to_owned()];
    checks.extend(chains.iter().map(|c| chain_watch::readiness_check(&c.name)));
    let check_names: Vec<&str> = checks.iter().map(String::as_str).collect();
    let readiness = oracle_common::telemetry::Readiness::register(registry, &check_names)?;
    let a = config.aggregator.clone();
    let node = a.consumer.clone();
    if a.signer_key.is_empty() {
        return Err(RunError::Chain(SubmitError::Config {
            key: "aggregator.signer_key",
            message:
                "is required: this node's one report signer key (an authorized signer of the hub)"
                    .into(),
        }));
    }
    if a.sender_key.is_empty() {
        return Err(RunError::Chain(SubmitError::Config {
            key: "aggregator.sender_key",
            message: "is required (the account that sends this node's transactions)".into(),
        }));
    }
    let key = submitter::parse_key(a.signer_key.expose(), "aggregator.signer_key")?;
    submitter::parse_key(a.sender_key.expose(), "aggregator.sender_key")?;
    let signer: Arc<dyn signing::ReportSigner> = Arc::new(signing::LocalSigner::new(key));
    for feed in &config.feeds {
        metrics.init_feed(feed);
    }
    for chain in &chains {
        metrics.init_chain(chain);
    }

    let nats = oracle_common::bus::connect(
        &config.nats,
        &format!("oracle-aggregator {node}"),
        oracle_common::bus::Initial::Required,
    )
    .await
    .map_err(|e| RunError::Nats(e.to_string()))?;
    let js = jetstream::new(nats.clone());
    let nats_err = |e: oracle_common::streams::StreamError| RunError::Nats(e.to_string());
    let obs_stream = oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(nats_err)?;
    oracle_common::streams::ensure_reports_stream(&js, &config.nats)
        .await
        .map_err(nats_err)?;
    oracle_common::streams::ensure_submissions_stream(&js, &config.nats)
        .await
        .map_err(nats_err)?;

    // The windows, as of the last `max_age` of the stream.
    let views = Arc::new(Views::new(config.feeds.iter().map(|f| &f.pair)));
    let lookback = config
        .feeds
        .iter()
        .map(|f| f.max_age)
        .max()
        .unwrap_or(Duration::from_secs(60));
    let seeded = seed(&obs_stream, &views, lookback, a.max_clock_skew).await?;
    info!(node = %node, observations = seeded, "windows seeded from ORACLE_OBS");

    // Stopped only once the ingest loop has returned: a task that ends before
    // it (on its own) is a failure, never the shutdown racing it.
    let tasks_shutdown = CancellationToken::new();
    let mut tasks: JoinSet<(String, Result<(), String>)> = JoinSet::new();
    tasks.spawn({
        let (n, r, s) = (nats.clone(), readiness.clone(), tasks_shutdown.clone());
        async move {
            oracle_common::bus::watch(n, r, s).await;
            ("NATS probe".to_owned(), Ok(()))
        }
    });

    let lease = leader::Lease::open(&js, node.clone(), a.lease_ttl, config.nats.replicas)
        .await
        .map_err(RunError::Nats)?;
    let (lease_tx, lease_rx) = watch::channel(leader::LeaseState::default());
    let lease_view = leader::LeaseView::new(lease_rx.clone(), lease.store());
    tasks.spawn({
        let (m, s) = (metrics.clone(), tasks_shutdown.clone());
        async move {
            leader::run(lease, leader::Lease::period(a.lease_ttl), lease_tx, m, s).await;
            ("lease".to_owned(), Ok(()))
        }
    });

    let connected = Arc::new(lane::Connected::default());
    let verifier = Arc::new(verify::Verifier {
        node: node.clone(),
        signer: Arc::clone(&signer),
        chains: Arc::clone(&connected),
        views: Arc::clone(&views),
        obs_stream: obs_stream.clone(),
        rules: window::Rules::from_config(&a),
        max_clock_skew: a.max_clock_skew,
        max_disagreement_bps: a.max_disagreement_bps,
        lease: lease_view,
        metrics: metrics.clone(),
        nats: nats.clone(),
        js: js.clone(),
    });
    tasks.spawn({
        let s = tasks_shutdown.clone();
        async move { ("verifier".to_owned(), verifier.serve(s).await) }
    });

    // One lane per chain, each connecting on its own.
    let (lanes_tx, lanes_rx) = mpsc::channel(64);
    let (chain_tx, chain_rx) = mpsc::channel(1024);
    let shared = lane::Shared {
        config: Arc::new(config.clone()),
        node: node.clone(),
        signer,
        nats: nats.clone(),
        js: js.clone(),
        metrics: metrics.clone(),
        readiness,
        connected,
        events: lanes_tx,
        updates: chain_tx,
    };
    for (i, chain) in chains.iter().enumerate() {
        let (shared, s, name) = (shared.clone(), tasks_shutdown.clone(), chain.name.clone());
        tasks.spawn(async move { (format!("chain {name}"), lane::run(i, shared, s).await) });
    }
    drop(shared);

    let messages = consume(&obs_stream, &node, lookback).await?;
    info!(node = %node, feeds = config.feeds.len(), chains = chains.len(), "consuming observations");
    let ingest = ingest::Ingest::new(node, a, &config.feeds, &chains, views, metrics, nats);
    let inputs = ingest::Inputs {
        lanes: lanes_rx,
        lease: lease_rx,
        chain: chain_rx,
    };
    let result = tokio::select! {
        r = ingest.run(messages, inputs, shutdown.clone()) => r,
        Some(joined) = tasks.join_next() => Err(match joined {
            Ok((name, Ok(()))) => RunError::Task(format!("the {name} task stopped")),
            Ok((name, Err(e))) if name.starts_with("chain ") => RunError::Chain(SubmitError::Config {
                key: "chains",
                message: e,
            }),
            Ok((name, Err(e))) => RunError::Task(format!("the {name} task failed: {e}")),
            Err(e) => RunError::Task(format!("a task panicked: {e}")),
        }),
    };
    tasks_shutdown.cancel();
    if tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!(
            "background tasks did not stop in time; pending submissions are settled at the next start"
        );
        tasks.abort_all();
    }
    result
}

/// Reads the observations of the last `lookback` into the windows.
async fn seed(
    stream: &jetstream::stream::Stream,
    views: &Views,
    lookback: Duration,
    skew: Duration,
) -> Result<usize, RunError> {
    let start = time::OffsetDateTime::now_utc() - lookback;
    // Read-only and from a fresh consumer each time: any failure is worth
    // another try while the cluster settles.
    let messages = oracle_common::streams::retrying(
        "reading recent observations",
        || async {
            let reader: consumer::PullConsumer = stream
                .create_consumer(consumer::pull::Config {
                    deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
                    ack_policy: consumer::AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            oracle_common::streams::drain(&reader).await
        },
        |_| true,
    )
    .await
    .map_err(|e| RunError::Nats(format!("reading recent observations: {e}")))?;
    let (now, skew) = (now_ms(), skew.as_millis() as u64);
    let mut kept = 0;
    for msg in messages {
        let (Ok(info), Ok(obs)) = (msg.info(), Observation::decode(&msg.payload)) else {
            continue;
        };
        if let Some(Ok(())) = views.insert(info.stream_sequence, obs, now, skew) {
            kept += 1;
        }
    }
    Ok(kept)
}

/// The node's durable consumer of `ORACLE_OBS` (explicit acks); a new one
/// starts at the oldest observation any feed could still use.
async fn consume(
    stream: &jetstream::stream::Stream,
    node: &str,
    lookback: Duration,
) -> Result<consumer::pull::Stream, RunError> {
    let start = time::OffsetDateTime::now_utc() - lookback;
    let config = consumer::pull::Config {
        durable_name: Some(node.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: 100_000,
        deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
        ..Default::default()
    };
    let mut consumer: consumer::PullConsumer = oracle_common::streams::retrying(
        node,
        || stream.get_or_create_consumer(node, config.clone()),
        |e: &jetstream::stream::ConsumerError| match e.kind() {
            jetstream::stream::ConsumerErrorKind::TimedOut
            | jetstream::stream::ConsumerErrorKind::Request => true,
            jetstream::stream::ConsumerErrorKind::JetStream(j) => {
                oracle_common::streams::is_transient_code(j.error_code().0)
            }
            _ => false,
        },
    )
    .await
    .map_err(|e| RunError::Nats(format!("consumer {node}: {e}")))?;
    let current = consumer.cached_info().config.clone();
    if current.ack_wait != ACK_WAIT {
        // A durable made by an older version: same position, current ack wait.
        let mut updated = consumer::pull::Config {
            ack_wait: ACK_WAIT,
            ..consumer::pull::Config::default()
        };
        updated.durable_name = current.durable_name.clone();
        updated.deliver_policy = current.deliver_policy;
        updated.ack_policy = current.ack_policy;
        updated.max_ack_pending = current.max_ack_pending;
        consumer = stream
            .update_consumer(updated)
            .await
            .map_err(|e| RunError::Nats(format!("updating consumer {node}: {e}")))?;
    }
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .map_err(|e| RunError::Nats(format!("pull: {e}")))
}
