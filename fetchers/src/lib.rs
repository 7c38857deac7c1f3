//! The source fetching service: polls public exchange APIs and publishes
//! observations onto the JetStream stream `ORACLE_OBS`.
//!
//! Layout:
//! - [`sources`]: one connector per exchange (request URL, wire format, error bodies, limits).
//! - [`error`]: [`FetchError`] and which failures are worth a retry.
//! - [`limiter`], [`breaker`]: a source's request budget and circuit breaker.
//! - [`source`]: one poll of one market: breaker, budget, request, retries.
//! - [`engine`]: per-feed cycles with fallbacks, wall-clock slots, on-demand triggers.
//! - [`publisher`]: the bounded buffer and PubAck-awaiting publisher.
//! - [`metrics`]: the Prometheus metrics.
//!
//! [`run`] is the entry point the binary and the tests call; [`probe`] is the
//! one-shot fetch behind `oracle-fetchers probe`.
#![forbid(unsafe_code)]

pub mod breaker;
pub mod engine;
pub mod error;
pub mod limiter;
pub mod metrics;
pub mod publisher;
pub mod source;
pub mod sources;

use std::collections::BTreeMap;
use std::sync::Arc;

use oracle_common::config::{Config, SourceConfig};
use oracle_common::wire::{Observation, SCHEMA_VERSION};
use oracle_common::{Pair, SourceId, now_ms};
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use engine::{Engine, FeedPlan, Leg};
pub use error::FetchError;
use source::Source;
use sources::{Market, Venue, valid_symbol};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration does not fit this service.
    #[error("config key {key}: {message}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// NATS could not be reached or the stream not created.
    #[error("nats: {0}")]
    Nats(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(String),
}

fn config_err(key: String, message: String) -> StartError {
    StartError::Config { key, message }
}

/// The connector of a configured source.
pub fn venue_of(id: &SourceId, source: &SourceConfig) -> Result<Venue, StartError> {
    let kind = source.kind_or(id);
    Venue::from_kind(kind).ok_or_else(|| {
        config_err(
            format!("sources.{id}.kind"),
            format!(
                "unknown connector {kind:?}; known: {}",
                Venue::ALL.map(|v| v.name()).join(", ")
            ),
        )
    })
}

fn build_source(
    id: &SourceId,
    sc: &SourceConfig,
    config: &Config,
) -> Result<Arc<Source>, StartError> {
    let venue = venue_of(id, sc)?;
    let budget = sc
        .rate_limit
        .map(|l| (l.requests, l.per))
        .unwrap_or_else(|| venue.default_rate_limit());
    Ok(Arc::new(Source::new(
        id.clone(),
        venue,
        sc.base_url.clone(),
        sc.timeout,
        budget,
        &config.fetchers,
    )))
}

fn leg(pair: &Pair, source: &Arc<Source>, sc: &SourceConfig, rank: u32) -> Result<Leg, StartError> {
    let Some(spec) = sc.symbols.get(pair) else {
        return Err(config_err(
            format!("sources.{}.symbols", source.id),
            format!("no symbol for {pair}"),
        ));
    };
    if !valid_symbol(spec.symbol()) {
        return Err(config_err(
            format!("sources.{}.symbols", source.id),
            format!(
                "symbol {:?} has characters not allowed in a URL",
                spec.symbol()
            ),
        ));
    }
    Ok(Leg {
        source: Arc::clone(source),
        symbol: spec.symbol().to_owned(),
        quote: spec.proxy_quote().unwrap_or(pair.quote()).to_owned(),
        proxy_quote: spec.proxy_quote().map(str::to_owned),
        rank,
    })
}

/// Builds the polling plan: one [`Source`] per source a feed uses (with its
/// budget and breaker), and per feed its primary and fallback legs.
pub fn plan(config: &Config) -> Result<BTreeMap<Pair, FeedPlan>, StartError> {
    let mut sources: BTreeMap<SourceId, Arc<Source>> = BTreeMap::new();
    let mut feeds = BTreeMap::new();
    for feed in &config.feeds {
        let mut legs = |ids: &[SourceId], first_rank: u32| -> Result<Vec<Leg>, StartError> {
            let mut out = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                let sc = config.sources.get(id).ok_or_else(|| {
                    config_err("feeds".into(), format!("source {id} is not configured"))
                })?;
                let source = match sources.get(id) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let s = build_source(id, sc, config)?;
                        sources.insert(id.clone(), Arc::clone(&s));
                        s
                    }
                };
                let rank = if first_rank == 0 {
                    0
                } else {
                    first_rank + i as u32
                };
                out.push(leg(&feed.pair, &source, sc, rank)?);
            }
            Ok(out)
        };
        let primaries = legs(&feed.sources, 0)?;
        let fallbacks = legs(&feed.fallbacks, 1)?;
        feeds.insert(
            feed.pair.clone(),
            FeedPlan {
                config: feed.clone(),
                primaries,
                fallbacks,
            },
        );
    }
    Ok(feeds)
}

/// Runs the fetchers until `shutdown` is cancelled: connects to NATS, makes
/// sure `ORACLE_OBS` exists, polls every feed on its schedule, serves
/// on-demand requests, and publishes.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let feeds = plan(&config)?;
    let metrics = metrics::Metrics::register(registry)?;
    for id in config.sources.keys() {
        metrics.init_source(id.as_str());
    }
    for feed in &config.feeds {
        metrics.init_feed(&feed.pair.to_string());
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("oracle-fetchers/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartError::Http(e.to_string()))?;
    let nats = oracle_common::bus::connect(
        &config.nats,
        &format!("oracle-fetchers {}", config.fetchers.id),
        oracle_common::bus::Initial::Required,
    )
    .await
    .map_err(|e| StartError::Nats(e.to_string()))?;
    let js = async_nats::jetstream::new(nats.clone());
    oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;
    let readiness = oracle_common::telemetry::Readiness::register(registry, &["nats"])?;
    let probe_stop = CancellationToken::new();
    let probe = tokio::spawn(oracle_common::bus::watch(
        nats.clone(),
        readiness,
        probe_stop.clone(),
    ));

    let (tx, rx) = mpsc::channel(config.fetchers.publish_buffer);
    let publisher_stop = CancellationToken::new();
    let publisher = tokio::spawn(publisher::run(
        js,
        rx,
        metrics.clone(),
        publisher_stop.clone(),
    ));
    let engine = Arc::new(Engine::new(
        client,
        config.fetchers.clone(),
        feeds,
        tx,
        metrics,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for pair in engine.pairs().cloned().collect::<Vec<_>>() {
        info!(pair = %pair, "polling feed");
        tasks.spawn(Arc::clone(&engine).run_schedule(pair, shutdown.clone()));
    }
    let triggers = tokio::spawn(Arc::clone(&engine).run_triggers(nats, shutdown.clone()));
    while tasks.join_next().await.is_some() {}
    let _ = triggers.await;
    // Every sender lives in the engine: dropping it lets the publisher drain.
    drop(engine);
    publisher_stop.cancel();
    let _ = publisher.await;
    probe_stop.cancel();
    let _ = probe.await;
    info!("fetchers stopped");
    Ok(())
}

/// One fetch of one source for one pair, as `oracle-fetchers probe` does:
/// the observation it would publish, or the error. `base_url` overrides the
/// configured one.
pub async fn probe(
    config: &Config,
    source_id: &SourceId,
    pair: &Pair,
    base_url: Option<&str>,
) -> Result<Observation, StartError> {
    let mut sc =
        config.sources.get(source_id).cloned().ok_or_else(|| {
            config_err(format!("sources.{source_id}"), "is not configured".into())
        })?;
    if let Some(url) = base_url {
        sc.base_url = url.to_owned();
    }
    let source = build_source(source_id, &sc, config)?;
    let leg = leg(pair, &source, &sc, 0)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("oracle-fetchers/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartError::Http(e.to_string()))?;
    let metrics = metrics::Metrics::register(&Registry::new())?;
    let market = Market {
        symbol: &leg.symbol,
        quote: &leg.quote,
    };
    let deadline = tokio::time::Instant::now()
        + sc.timeout * config.fetchers.max_attempts as u32
        + config.fetchers.retry_max_delay;
    let quote = source
        .fetch(&client, &market, &config.fetchers, &metrics, deadline)
        .await
        .map_err(|e| StartError::Http(format!("{source_id} {pair}: {e} ({})", e.kind())))?;
    let now = now_ms();
    Ok(Observation {
        v: SCHEMA_VERSION,
        pair: pair.clone(),
        source: source_id.clone(),
        price: quote.price,
        bid: quote.bid,
        ask: quote.ask,
        observed_at_ms: quote.observed_at_ms.unwrap_or(now),
        fetched_at_ms: now,
        fetcher: config.fetchers.id.clone(),
        fallback_rank: 0,
        trigger: Some("probe".into()),
        market_quote: leg.proxy_quote,
    })
}
