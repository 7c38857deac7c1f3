//! One source as the engine uses it: its connector, its request budget, its
//! circuit breaker, and the markets it has a request in flight for. A poll of
//! one market goes through all of them, with retries of transient failures
//! (exponential backoff with jitter, honouring `Retry-After`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use oracle_common::config::FetchersConfig;
use oracle_common::{SourceId, now_ms};
use tokio::time::Instant;
use tracing::debug;

use crate::breaker::Breaker;
use crate::error::FetchError;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::sources::{Market, Quote, Response, Venue};

/// Largest `Retry-After` retried within one poll; longer waits end the poll
/// (the pause still holds back later polls).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A configured source.
#[derive(Debug)]
pub struct Source {
    /// The source id (config key).
    pub id: SourceId,
    /// Its connector.
    pub venue: Venue,
    /// API base URL.
    pub base_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    limiter: Limiter,
    breaker: Breaker,
    in_flight: Mutex<HashSet<String>>,
}

/// Marks a market's request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight {
    source: Arc<Source>,
    symbol: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = self
            .source
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        set.remove(&self.symbol);
    }
}

impl Source {
    /// A source with a budget of `requests` per `per`.
    pub fn new(
        id: SourceId,
        venue: Venue,
        base_url: String,
        timeout: Duration,
        (requests, per): (u32, Duration),
        config: &FetchersConfig,
    ) -> Self {
        Self {
            id,
            venue,
            base_url,
            timeout,
            limiter: Limiter::new(requests, per),
            breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// Claims `symbol` for one request; `None` while an earlier one is still
    /// running (a slow source is not asked twice for the same thing).
    pub fn begin(self: &Arc<Self>, symbol: &str) -> Option<InFlight> {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(symbol.to_owned()).then(|| InFlight {
            source: Arc::clone(self),
            symbol: symbol.to_owned(),
        })
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> crate::breaker::State {
        self.breaker.state()
    }

    /// One HTTP request, classified; updates the budget from the answer's
    /// `Retry-After` and limit headers.
    async fn request(
        &self,
        client: &reqwest::Client,
        market: &Market<'_>,
    ) -> Result<Quote, FetchError> {
        let url = self.venue.ticker_url(&self.base_url, market);
        let response = client
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| classify(&e, self.timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if let Some(wait) = retry_after.filter(|_| status == 429 || status == 418 || status == 503)
        {
            self.limiter.pause_until(Instant::now() + wait);
        }
        if let Some(wait) = self.venue.limit_pause(headers, now_ms()) {
            self.limiter.pause_until(Instant::now() + wait);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| classify(&e, self.timeout))?;
        self.venue.parse(
            market,
            &Response {
                status,
                body: &body,
                retry_after,
            },
        )
    }

    /// Polls one market: breaker, budget (waiting at most until `deadline`),
    /// request, retries. Records metrics and the breaker's verdict.
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        market: &Market<'_>,
        config: &FetchersConfig,
        metrics: &Metrics,
        deadline: Instant,
    ) -> Result<Quote, FetchError> {
        let source = self.id.as_str();
        if !self.breaker.allow() {
            metrics
                .requests
                .with_label_values(&[source, "circuit_open"])
                .inc();
            return Err(FetchError::CircuitOpen);
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.retry_min_delay)
            .with_max_delay(config.retry_max_delay)
            .with_max_times(config.max_attempts.saturating_sub(1))
            .with_jitter();
        let result = (|| async {
            let waited = self.limiter.acquire(deadline).await.map_err(|t| {
                metrics
                    .requests
                    .with_label_values(&[source, "throttled"])
                    .inc();
                FetchError::Throttled(t.until.saturating_duration_since(Instant::now()))
            })?;
            if !waited.is_zero() {
                metrics
                    .rate_limit_wait
                    .with_label_values(&[source])
                    .inc_by(waited.as_secs_f64());
            }
            let started = Instant::now();
            let skew = config.max_clock_skew.as_millis() as u64;
            let result = self.request(client, market).await.and_then(|quote| {
                let now = now_ms();
                match quote.observed_at_ms {
                    Some(at) if at > now + skew => {
                        Err(FetchError::FutureTimestamp { ahead_ms: at - now })
                    }
                    _ => Ok(quote),
                }
            });
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
        .when(|e: &FetchError| {
            e.is_transient() && e.retry_after().is_none_or(|d| d <= MAX_RETRY_AFTER)
        })
        // `delay` is None when the attempts are used up: keep it None (a
        // Retry-After never adds attempts), otherwise wait at least as asked.
        .adjust(|e: &FetchError, delay| {
            delay.map(|d| e.retry_after().map_or(d, |asked| asked.max(d)))
        })
        .notify(|e: &FetchError, delay: Duration| {
            metrics.retries.with_label_values(&[source]).inc();
            debug!(source, error = %e, ?delay, "retrying");
        })
        .await;
        match &result {
            Ok(_) => self.breaker.record(true),
            // Not sent at all: says nothing about the source; lets a half-open
            // breaker probe again.
            Err(FetchError::Throttled(_)) => self.breaker.release(),
            Err(e) => self.breaker.record(!e.source_is_down()),
        }
        metrics
            .circuit_state
            .with_label_values(&[source])
            .set(self.breaker.state().as_gauge());
        result
    }
}

fn classify(e: &reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        FetchError::Connect(error_chain(e))
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
