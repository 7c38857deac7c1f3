//! Publishing observations to JetStream: each message carries the
//! `Nats-Msg-Id` dedup header and is retried until the server's PubAck arrives.
//! Polling never waits on NATS: observations go through a bounded buffer, and
//! what does not fit is dropped and counted.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use backon::{ExponentialBuilder, Retryable};
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

/// Publishes one observation and waits for its PubAck. Returns whether the
/// stream reported it as a duplicate.
pub async fn publish(js: &jetstream::Context, obs: &Observation) -> Result<bool, String> {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, obs.msg_id().as_str());
    let ack = js
        .publish_with_headers(obs.subject(), headers, obs.encode().into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(ack.duplicate)
}

/// Drains the buffer into JetStream until `shutdown`, then publishes what is
/// left (bounded by the retry policy) and returns.
pub async fn run(
    js: jetstream::Context,
    mut rx: mpsc::Receiver<Observation>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        let obs = tokio::select! {
            biased;
            obs = rx.recv() => match obs { Some(o) => o, None => return },
            _ = shutdown.cancelled() => {
                rx.close();
                continue;
            }
        };
        metrics.buffer_depth.dec();
        let attempt = || publish(&js, &obs);
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(8)
                    .with_jitter(),
            )
            .when(|_| now_ms().saturating_sub(obs.fetched_at_ms) < MAX_PUBLISH_AGE.as_millis() as u64)
            .notify(|e, _| {
                metrics.publish_failures.inc();
                warn!(error = %e, pair = %obs.pair, source = %obs.source, "publish failed, retrying");
            })
            .await;
        match result {
            Ok(duplicate) => {
                if duplicate {
                    metrics.duplicates.inc();
                }
                metrics
                    .published
                    .with_label_values(&[&obs.pair.to_string(), obs.source.as_str()])
                    .inc();
                debug!(pair = %obs.pair, source = %obs.source, duplicate, "published");
            }
            Err(e) => {
                metrics.publish_failures.inc();
                metrics.dropped.with_label_values(&["publish_failed"]).inc();
                warn!(error = %e, pair = %obs.pair, source = %obs.source, "observation dropped after retries");
            }
        }
    }
}
