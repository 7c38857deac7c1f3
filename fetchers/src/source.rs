//! One source as the engine uses it: its connector, its request budget, its
//! circuit breaker, the markets it has a request in flight for, and the
//! batches it is gathering.
//!
//! Coalescing: every feed asks for its own market ([`Source::quote`]), and
//! the asks of one wave of one slot (the scheduled primaries of a slot, its
//! n-th fallbacks, an on-demand cycle) are gathered under a [`BatchKey`]. The
//! batch goes out as soon as every expected ask has joined, or [`GATHER`]
//! after the first one: as the venue's many-markets requests
//! ([`Venue::requests`]: one per-symbol request for a single market, named
//! lists of at most the venue's cap, or one every-market request), sent
//! concurrently. Each request goes through the breaker, the budget (its cost
//! in the venue's units), and retries of transient failures (exponential
//! backoff with jitter, honouring `Retry-After`); each ask then gets its own
//! quote, or its own error (a market missing from an answer fails alone).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use oracle_common::config::FetchersConfig;
use oracle_common::{SourceId, now_ms};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::breaker::Breaker;
use crate::error::FetchError;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::sources::{Batch, Market, Quote, Response, Shape, Venue};

/// Largest `Retry-After` retried within one poll; longer waits end the poll
/// (the pause still holds back later polls).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How long a batch of unknown size (fallbacks) waits for more asks after its
/// first one.
pub const GATHER: Duration = Duration::from_millis(25);

/// How long a batch of known size waits at most for its last asks (the feeds
/// of a slot wake together, but on a busy host their tasks may take a while
/// to run; a feed whose market is still in flight declines rather than asks,
/// so the count completes without it).
pub const GATHER_MAX: Duration = Duration::from_millis(250);

/// What a request needs besides the source: the HTTP client, the settings and
/// the metrics.
#[derive(Debug, Clone)]
pub struct FetchContext {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The fetchers' settings.
    pub config: FetchersConfig,
    /// The metrics.
    pub metrics: Metrics,
}

/// The asks that share one batch: one wave of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// The slot (or an on-demand request's time), Unix ms.
    pub slot_ms: u64,
    /// 0 for primaries, n for the n-th fallbacks.
    pub wave: u32,
    /// An on-demand cycle rather than a scheduled one.
    pub on_demand: bool,
}

/// A batch being gathered.
#[derive(Debug)]
struct Gathering {
    /// The distinct markets asked: symbol and quote currency.
    markets: Vec<(String, String)>,
    /// Who waits for which market.
    waiters: Vec<(usize, oneshot::Sender<Result<Quote, FetchError>>)>,
    /// Asks expected (0: unknown, wait for [`GATHER`]).
    expect: usize,
    /// Asks and declines so far.
    arrived: usize,
    /// Woken when every expected ask has joined.
    complete: Arc<Notify>,
}

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
    gathering: Mutex<HashMap<BatchKey, Gathering>>,
    /// Set once the venue refused a named list for one unknown symbol: from
    /// then on lists are asked as every-market requests, where an unknown
    /// symbol is only missing.
    every: AtomicBool,
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
    /// A source with a budget of `units` per `per` (requests, or request
    /// weight where the venue weighs its endpoints).
    pub fn new(
        id: SourceId,
        venue: Venue,
        base_url: String,
        timeout: Duration,
        (units, per): (u32, Duration),
        config: &FetchersConfig,
    ) -> Self {
        Self {
            id,
            venue,
            base_url,
            timeout,
            limiter: Limiter::new(units, per),
            breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            in_flight: Mutex::new(HashSet::new()),
            gathering: Mutex::new(HashMap::new()),
            every: AtomicBool::new(false),
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

    /// Asks for one market as part of the batch `key` (see the module docs);
    /// `expect` is how many asks the batch should gather (0: unknown). The
    /// first ask of a batch fixes its `deadline`.
    pub async fn quote(
        self: &Arc<Self>,
        ctx: &Arc<FetchContext>,
        key: BatchKey,
        market: &Market<'_>,
        expect: usize,
        deadline: Instant,
    ) -> Result<Quote, FetchError> {
        let (tx, rx) = oneshot::channel();
        self.join(ctx, key, expect, deadline, Some((market, tx)));
        rx.await.unwrap_or_else(|_| {
            Err(FetchError::Connect(
                "the batch request ended without an answer".into(),
            ))
        })
    }

    /// Counts a leg of the batch `key` that will not ask (its market is still
    /// in flight), so that the batch does not wait for it.
    pub fn decline(
        self: &Arc<Self>,
        ctx: &Arc<FetchContext>,
        key: BatchKey,
        expect: usize,
        deadline: Instant,
    ) {
        self.join(ctx, key, expect, deadline, None);
    }

    /// Adds an ask (or a decline) to the batch `key`, starting the batch and
    /// the task that sends it when it is the first.
    fn join(
        self: &Arc<Self>,
        ctx: &Arc<FetchContext>,
        key: BatchKey,
        expect: usize,
        deadline: Instant,
        ask: Option<(&Market<'_>, oneshot::Sender<Result<Quote, FetchError>>)>,
    ) {
        let first = {
            let mut gathering = self.gathering.lock().unwrap_or_else(|p| p.into_inner());
            let first = !gathering.contains_key(&key);
            let batch = gathering.entry(key).or_insert_with(|| Gathering {
                markets: Vec::new(),
                waiters: Vec::new(),
                expect,
                arrived: 0,
                complete: Arc::new(Notify::new()),
            });
            batch.arrived += 1;
            if let Some((market, tx)) = ask {
                let index = match batch
                    .markets
                    .iter()
                    .position(|(s, q)| s == market.symbol && q == market.quote)
                {
                    Some(i) => i,
                    None => {
                        batch
                            .markets
                            .push((market.symbol.to_owned(), market.quote.to_owned()));
                        batch.markets.len() - 1
                    }
                };
                batch.waiters.push((index, tx));
            }
            if batch.expect > 0 && batch.arrived >= batch.expect {
                batch.complete.notify_one();
            }
            first.then(|| (Arc::clone(&batch.complete), batch.expect))
        };
        if let Some((complete, expect)) = first {
            let (source, ctx) = (Arc::clone(self), Arc::clone(ctx));
            let wait = if expect > 0 { GATHER_MAX } else { GATHER };
            tokio::spawn(async move {
                let _ = tokio::time::timeout(wait, complete.notified()).await;
                let batch = source
                    .gathering
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                if let Some(batch) = batch.filter(|b| !b.waiters.is_empty()) {
                    source.send_batch(&ctx, batch, deadline).await;
                }
            });
        }
    }

    /// Sends a gathered batch and hands each waiter its market's result.
    async fn send_batch(&self, ctx: &FetchContext, batch: Gathering, deadline: Instant) {
        let markets: Vec<Market<'_>> = batch
            .markets
            .iter()
            .map(|(symbol, quote)| Market { symbol, quote })
            .collect();
        let results = self
            .fetch_many(&ctx.client, &markets, &ctx.config, &ctx.metrics, deadline)
            .await;
        for (index, tx) in batch.waiters {
            let result = results
                .get(index)
                .cloned()
                .unwrap_or_else(|| Err(FetchError::Malformed("no result for the market".into())));
            let _ = tx.send(result);
        }
    }

    /// Asks for `markets` in as few requests as the venue allows (see the
    /// module docs), concurrently; one result per market, in order.
    pub async fn fetch_many(
        &self,
        client: &reqwest::Client,
        markets: &[Market<'_>],
        config: &FetchersConfig,
        metrics: &Metrics,
        deadline: Instant,
    ) -> Vec<Result<Quote, FetchError>> {
        let plan = self
            .venue
            .requests(markets.len(), self.every.load(Ordering::Relaxed));
        let chunks = plan.into_iter().map(|(shape, range)| {
            let part = &markets[range.clone()];
            async move {
                (
                    range,
                    self.fetch_chunk(client, shape, part, config, metrics, deadline)
                        .await,
                )
            }
        });
        let mut out: Vec<Result<Quote, FetchError>> = (0..markets.len())
            .map(|_| Err(FetchError::Malformed("not asked".into())))
            .collect();
        for (range, results) in futures::future::join_all(chunks).await {
            for (slot, result) in out[range].iter_mut().zip(results) {
                *slot = result;
            }
        }
        out
    }

    /// One request's markets: its results, or its error for each market. A
    /// named list refused as a whole for one unknown symbol is asked again as
    /// an every-market request (and lists are from then on), where only the
    /// unknown market fails.
    async fn fetch_chunk(
        &self,
        client: &reqwest::Client,
        shape: Shape,
        markets: &[Market<'_>],
        config: &FetchersConfig,
        metrics: &Metrics,
        deadline: Instant,
    ) -> Vec<Result<Quote, FetchError>> {
        let each = |e: FetchError| -> Vec<Result<Quote, FetchError>> {
            markets.iter().map(|_| Err(e.clone())).collect()
        };
        match self
            .send(client, shape, markets, config, metrics, deadline)
            .await
        {
            Ok(results) => results,
            Err(e @ FetchError::UnknownSymbol { .. })
                if shape == Shape::Named
                    && matches!(self.venue.batch(), Batch::Named { every: true, .. }) =>
            {
                warn!(source = %self.id, error = %e, "a list was refused for an unknown symbol; asking for every market from now on");
                self.every.store(true, Ordering::Relaxed);
                self.send(client, Shape::Every, markets, config, metrics, deadline)
                    .await
                    .unwrap_or_else(each)
            }
            Err(e) => each(e),
        }
    }

    /// Polls one market on its own (the per-symbol ticker), as
    /// `oracle-fetchers probe` does.
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        market: &Market<'_>,
        config: &FetchersConfig,
        metrics: &Metrics,
        deadline: Instant,
    ) -> Result<Quote, FetchError> {
        let results = self
            .send(
                client,
                Shape::Single,
                std::slice::from_ref(market),
                config,
                metrics,
                deadline,
            )
            .await?;
        results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(FetchError::Malformed("empty answer".into())))
    }

    /// One HTTP request, classified; updates the budget from the answer's
    /// `Retry-After` and limit headers.
    async fn request(
        &self,
        client: &reqwest::Client,
        shape: Shape,
        markets: &[Market<'_>],
    ) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
        let url = self.venue.request_url(&self.base_url, shape, markets);
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
        self.venue.parse_many(
            shape,
            markets,
            &Response {
                status,
                body: &body,
                retry_after,
            },
        )
    }

    /// One request of `shape` for `markets`: breaker, budget (waiting at most
    /// until `deadline`), request, retries. Records metrics and the breaker's
    /// verdict. A market dated beyond `max_clock_skew` ahead is refused alone
    /// (and the request counted as `future_timestamp`: the venue's clock runs
    /// ahead).
    async fn send(
        &self,
        client: &reqwest::Client,
        shape: Shape,
        markets: &[Market<'_>],
        config: &FetchersConfig,
        metrics: &Metrics,
        deadline: Instant,
    ) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
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
        let cost = self.venue.cost(shape);
        let result = (|| async {
            let waited = self.limiter.acquire(cost, deadline).await.map_err(|t| {
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
            let result = self.request(client, shape, markets).await.map(|quotes| {
                let now = now_ms();
                quotes
                    .into_iter()
                    .map(|q| match q {
                        Ok(Quote {
                            observed_at_ms: Some(at),
                            ..
                        }) if at > now + skew => {
                            Err(FetchError::FutureTimestamp { ahead_ms: at - now })
                        }
                        other => other,
                    })
                    .collect::<Vec<_>>()
            });
            metrics
                .latency
                .with_label_values(&[source])
                .observe(started.elapsed().as_secs_f64());
            let outcome = match &result {
                Ok(quotes)
                    if quotes
                        .iter()
                        .any(|q| matches!(q, Err(FetchError::FutureTimestamp { .. }))) =>
                {
                    "future_timestamp"
                }
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            metrics.requests.with_label_values(&[source, outcome]).inc();
            if let Ok(quotes) = &result {
                let missing = quotes
                    .iter()
                    .filter(|q| matches!(q, Err(FetchError::UnknownSymbol { .. })))
                    .count();
                if missing > 0 && shape != Shape::Single {
                    metrics
                        .missing_symbols
                        .with_label_values(&[source])
                        .inc_by(missing as u64);
                }
            }
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
