//! The source fetching service: polls public exchange APIs and publishes
//! observations onto the JetStream stream `ORACLE_OBS`.
//!
//! Layout:
//! - [`sources`]: one connector per exchange (request URL, wire format, error bodies).
//! - [`error`]: [`FetchError`] and which failures are worth a retry.
//! - [`poller`]: the per-source polling loop with backoff and jitter.
//! - [`publisher`]: the bounded buffer and PubAck-awaiting publisher.
//! - [`metrics`]: the Prometheus metrics.
//!
//! [`run`] is the entry point the binary and the tests call.
#![forbid(unsafe_code)]

pub mod error;
pub mod metrics;
pub mod poller;
pub mod publisher;
pub mod sources;

use std::collections::BTreeMap;

use oracle_common::config::Config;
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::FetchError;
use poller::SourcePlan;
use sources::{Venue, valid_symbol};

/// How many observations may wait for NATS before new ones are dropped.
const PUBLISH_BUFFER: usize = 10_000;

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

/// Builds the polling plan: for every configured source used by a feed, its
/// connector and the symbols to poll, checked against the connectors.
pub fn plan(config: &Config) -> Result<Vec<SourcePlan>, StartError> {
    let mut plans: BTreeMap<_, SourcePlan> = BTreeMap::new();
    for feed in &config.feeds {
        for source_id in &feed.sources {
            // Config::validate guarantees the source and its symbol exist.
            let Some(source) = config.sources.get(source_id) else {
                continue;
            };
            let kind = source.kind_or(source_id);
            let venue = Venue::from_kind(kind).ok_or_else(|| StartError::Config {
                key: format!("sources.{source_id}.kind"),
                message: format!(
                    "unknown connector {kind:?}; known: {}",
                    Venue::ALL.map(|v| v.name()).join(", ")
                ),
            })?;
            let Some(symbol) = source.symbols.get(&feed.pair) else {
                continue;
            };
            if !valid_symbol(symbol) {
                return Err(StartError::Config {
                    key: format!("sources.{source_id}.symbols"),
                    message: format!("symbol {symbol:?} has characters not allowed in a URL"),
                });
            }
            let plan = plans
                .entry(source_id.clone())
                .or_insert_with(|| SourcePlan {
                    id: source_id.clone(),
                    venue,
                    base_url: source.base_url.clone(),
                    timeout: source.timeout,
                    symbols: Vec::new(),
                });
            plan.symbols.push((feed.pair.clone(), symbol.clone(), 0));
        }
    }
    Ok(plans.into_values().collect())
}

/// Runs the fetchers until `shutdown` is cancelled: connects to NATS, makes
/// sure `ORACLE_OBS` exists, polls every source and publishes.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let plans = plan(&config)?;
    let metrics = metrics::Metrics::register(registry)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("oracle-fetchers/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartError::Http(e.to_string()))?;
    let nats = async_nats::connect(&config.nats.url)
        .await
        .map_err(|e| StartError::Nats(format!("connect {}: {e}", config.nats.url)))?;
    let js = async_nats::jetstream::new(nats);
    oracle_common::streams::ensure_obs_stream(&js, &config.nats)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;

    let (tx, rx) = mpsc::channel(PUBLISH_BUFFER);
    let publisher_stop = CancellationToken::new();
    let publisher = tokio::spawn(publisher::run(
        js,
        rx,
        metrics.clone(),
        publisher_stop.clone(),
    ));
    let mut pollers = tokio::task::JoinSet::new();
    for plan in plans {
        info!(source = %plan.id, venue = plan.venue.name(), symbols = plan.symbols.len(), "polling source");
        pollers.spawn(poller::run_source(
            client.clone(),
            plan,
            config.fetchers.clone(),
            tx.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    drop(tx);
    while pollers.join_next().await.is_some() {}
    // Pollers are done: let the publisher flush what they produced.
    publisher_stop.cancel();
    let _ = publisher.await;
    info!("fetchers stopped");
    Ok(())
}
