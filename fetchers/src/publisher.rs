//! Publishing observations to JetStream: each message carries the
//! `Nats-Msg-Id` dedup header and is retried until the server's PubAck arrives
//! (an observation counts as published only then). Polling never waits on
//! NATS: observations go through a bounded buffer, and what does not fit is
//! dropped and counted. PubAcks are awaited concurrently (at most
//! [`MAX_IN_FLIGHT`]), so a broker failover delays the publishes it catches
//! without stopping the rest.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use oracle_common::now_ms;
use oracle_common::wire::{MSG_ID_HEADER, Observation, WireMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// Observations older than this are not worth publishing any more.
const MAX_PUBLISH_AGE: Duration = Duration::from_secs(60);

/// Hands an observation to the publisher without waiting; drops it (counted)
/// when the buffer is full.
pub fn enqueue(tx: &mpsc::Sender<Observation>, obs: Observation, metrics: &Metrics) {
    match tx.try_send(obs) {
        Ok(()) => metrics.buffer_depth.inc(),
        Err(mpsc::error::TrySendError::Full(obs)) => {
            metrics.dropped.with_label_values(&["buffer_full"]).inc();
            warn!(pair = %obs.pair, source = %obs.source, "publish buffer full, observation dropped");
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            metrics.dropped.with_label_values(&["shutdown"]).inc();
        }
    }
}

/// How many publishes may await their PubAck at once: acknowledgements are
/// pipelined, so one slow ack (a stream leader election) does not hold back
/// the others, and the broker's round trip does not bound the throughput.
pub const MAX_IN_FLIGHT: usize = 512;

/// JetStream's "duplicate message id is in process": another fetcher replica
/// published the same `Nats-Msg-Id` a moment ago and the clustered stream has
/// not stored it yet. Retried quietly: the retry gets the duplicate PubAck.
const DUPLICATE_IN_PROCESS: u64 = 10158;

/// Why a publish got no PubAck.
#[derive(Debug)]
pub enum PublishFailure {
    /// The same observation is being stored from another replica's publish.
    InProcessElsewhere,
    /// Anything else: no stream leader, timeout, disconnected.
    Failed(String),
}

impl std::fmt::Display for PublishFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InProcessElsewhere => write!(f, "the same message id is being stored"),
            Self::Failed(e) => write!(f, "{e}"),
        }
    }
}

fn failure(e: &jetstream::context::PublishError) -> PublishFailure {
    let in_process = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|j| j.error_code().0 == DUPLICATE_IN_PROCESS);
    if in_process {
        PublishFailure::InProcessElsewhere
    } else {
        PublishFailure::Failed(e.to_string())
    }
}

/// What the stream said about a published observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// The stream sequence of the (first) copy.
    pub seq: u64,
    /// Whether the stream had it already (another replica, or a retry).
    pub duplicate: bool,
}

/// Publishes one observation and waits for its PubAck.
pub async fn publish(js: &jetstream::Context, obs: &Observation) -> Result<Acked, PublishFailure> {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, obs.msg_id().as_str());
    let ack = js
        .publish_with_headers(obs.subject(), headers, obs.encode().into())
        .await
        .map_err(|e| failure(&e))?
        .await
        .map_err(|e| failure(&e))?;
    Ok(Acked {
        seq: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// Publishes `obs` until its PubAck arrives, retrying with backoff while it
/// is worth publishing; records the outcome.
async fn publish_until_acked(js: &jetstream::Context, obs: Observation, metrics: &Metrics) {
    let started = std::time::Instant::now();
    let failures = std::sync::atomic::AtomicU32::new(0);
    let attempt = || publish(js, &obs);
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(12)
                .with_jitter(),
        )
        .when(|_| now_ms().saturating_sub(obs.fetched_at_ms) < MAX_PUBLISH_AGE.as_millis() as u64)
        .notify(|e, _| match e {
            PublishFailure::InProcessElsewhere => {
                debug!(pair = %obs.pair, source = %obs.source, "same observation being stored from another replica; retrying");
            }
            PublishFailure::Failed(e) => {
                metrics.publish_failures.inc();
                let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                // Once per observation at warn: a leader election fails every
                // publish for seconds, and each retries several times.
                if n == 1 {
                    warn!(error = %e, pair = %obs.pair, source = %obs.source, "publish failed, retrying");
                } else {
                    debug!(error = %e, pair = %obs.pair, source = %obs.source, attempt = n + 1, "publish failed again, retrying");
                }
            }
        })
        .await;
    metrics
        .publish_seconds
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(acked) => {
            if acked.duplicate {
                metrics.duplicates.inc();
            }
            metrics
                .published
                .with_label_values(&[&obs.pair.to_string(), obs.source.as_str()])
                .inc();
            // One line per acknowledged observation (debug): what a failover
            // test checks against the stream.
            debug!(
                msg_id = %obs.msg_id(),
                seq = acked.seq,
                duplicate = acked.duplicate,
                pair = %obs.pair,
                source = %obs.source,
                "published"
            );
        }
        Err(e) => {
            metrics.publish_failures.inc();
            metrics.dropped.with_label_values(&["publish_failed"]).inc();
            warn!(error = %e, pair = %obs.pair, source = %obs.source, "observation dropped after retries");
        }
    }
}

/// Drains the buffer into JetStream until `shutdown`, with up to
/// [`MAX_IN_FLIGHT`] publishes awaiting their PubAck at once; then publishes
/// what is left (bounded by the retry policy) and returns.
pub async fn run(
    js: jetstream::Context,
    mut rx: mpsc::Receiver<Observation>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut closed = false;
    loop {
        tokio::select! {
            biased;
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {
                metrics.publishes_in_flight.dec();
            }
            obs = rx.recv(), if in_flight.len() < MAX_IN_FLIGHT => match obs {
                Some(obs) => {
                    metrics.buffer_depth.dec();
                    metrics.publishes_in_flight.inc();
                    in_flight.push(publish_until_acked(&js, obs, &metrics));
                }
                None => break,
            },
            () = shutdown.cancelled(), if !closed => {
                // Take nothing new; what is buffered is still published.
                rx.close();
                closed = true;
            }
        }
    }
    while in_flight.next().await.is_some() {
        metrics.publishes_in_flight.dec();
    }
}
