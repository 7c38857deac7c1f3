//! Polling one source: a request per symbol with a timeout, transient failures
//! retried with exponential backoff and jitter (honouring `Retry-After`), and
//! each quote turned into an [`Observation`] for the publisher.

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use oracle_common::config::FetchersConfig;
use oracle_common::wire::{Observation, SCHEMA_VERSION};
use oracle_common::{Pair, SourceId, now_ms};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::error::FetchError;
use crate::metrics::Metrics;
use crate::sources::{Quote, Response, Venue};

/// Largest `Retry-After` honoured inside one poll; longer waits end the poll.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One source and the symbols to poll there.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// The source id (config key).
    pub id: SourceId,
    /// Its connector.
    pub venue: Venue,
    /// API base URL.
    pub base_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// `(pair, the source's symbol, fallback rank)`.
    pub symbols: Vec<(Pair, String, u32)>,
}

/// Fetches one symbol once: one HTTP request, classified.
pub async fn fetch_once(
    client: &reqwest::Client,
    venue: Venue,
    url: &str,
    symbol: &str,
    timeout: Duration,
) -> Result<Quote, FetchError> {
    let response = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify(e, timeout))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(|e| classify(e, timeout))?;
    venue.parse(
        symbol,
        &Response {
            status,
            body: &body,
            retry_after,
        },
    )
}

fn classify(e: reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        // Connection refused/reset, DNS, TLS, or the body stream broke.
        FetchError::Connect(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Fetches one symbol with retries; records metrics.
pub async fn fetch_with_retry(
    client: &reqwest::Client,
    plan: &SourcePlan,
    symbol: &str,
    config: &FetchersConfig,
    metrics: &Metrics,
) -> Result<Quote, FetchError> {
    let url = plan.venue.ticker_url(&plan.base_url, symbol);
    let source = plan.id.as_str();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(config.retry_min_delay)
        .with_max_delay(config.retry_max_delay)
        .with_max_times(config.max_attempts.saturating_sub(1))
        .with_jitter();
    (|| async {
        let started = Instant::now();
        let result = fetch_once(client, plan.venue, &url, symbol, plan.timeout).await;
        metrics
            .latency
            .with_label_values(&[source])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        metrics.requests.with_label_values(&[source, outcome]).inc();
        result
    })
    .retry(backoff)
    .when(|e: &FetchError| e.is_transient() && e.retry_after().is_none_or(|d| d <= MAX_RETRY_AFTER))
    .adjust(|e: &FetchError, delay| e.retry_after().or(delay))
    .notify(|e: &FetchError, delay: Duration| {
        metrics.retries.with_label_values(&[source]).inc();
        debug!(error = %e, ?delay, "retrying");
    })
    .await
}

/// Polls every symbol of one source each `poll_interval` until `shutdown`.
pub async fn run_source(
    client: reqwest::Client,
    plan: SourcePlan,
    config: FetchersConfig,
    tx: mpsc::Sender<Observation>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(config.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let polls = plan.symbols.iter().map(|(pair, symbol, rank)| {
            let span = info_span!("poll", source = %plan.id, pair = %pair, symbol = %symbol);
            poll_symbol(&client, &plan, pair, symbol, *rank, &config, &tx, &metrics)
                .instrument(span)
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = futures::future::join_all(polls) => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn poll_symbol(
    client: &reqwest::Client,
    plan: &SourcePlan,
    pair: &Pair,
    symbol: &str,
    rank: u32,
    config: &FetchersConfig,
    tx: &mpsc::Sender<Observation>,
    metrics: &Metrics,
) {
    match fetch_with_retry(client, plan, symbol, config, metrics).await {
        Ok(quote) => {
            let fetched_at_ms = now_ms();
            let obs = Observation {
                v: SCHEMA_VERSION,
                pair: pair.clone(),
                source: plan.id.clone(),
                price: quote.price,
                bid: quote.bid,
                ask: quote.ask,
                observed_at_ms: quote.observed_at_ms.unwrap_or(fetched_at_ms),
                fetched_at_ms,
                fetcher: config.id.clone(),
                fallback_rank: rank,
                trigger: None,
            };
            debug!(price = %obs.price, "observed");
            crate::publisher::enqueue(tx, obs, metrics);
        }
        Err(e) => warn!(error = %e, kind = e.kind(), "fetch failed"),
    }
}
