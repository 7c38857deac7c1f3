//! The backend-for-frontend: the client API. Every price it returns is read
//! from the `OracleHub` contract at a definite block and carries the chain
//! reference that proves it.
//!
//! Layout:
//! - [`routes`]: one handler per file; the router is [`router`].
//! - [`cache`]: latest values kept in step with the chain by its events.
//! - [`chain`]: pins a block and reads feeds at it.
//! - [`params`]: strict query-string parsing.
//! - [`follow`]: following a JetStream stream into an in-memory index.
//! - [`reports`]: confidence and sources of rounds, from `ORACLE_REPORTS`.
//! - [`submissions`]: transaction records rebuilt from `ORACLE_SUBMISSIONS`.
//! - [`guard`]: API keys, rate limits, deadlines, CORS.
//! - [`error`]: [`ApiError`], JSON errors with stable codes.
//! - [`metrics`]: request metrics and their middleware.
#![forbid(unsafe_code)]

pub mod cache;
pub mod chain;
pub mod error;
pub mod follow;
pub mod guard;
pub mod metrics;
pub mod params;
pub mod reports;
pub mod routes;
pub mod submissions;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use oracle_common::Pair;
use oracle_common::config::{Config, FeedConfig};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::ApiError;

/// Shared state of the handlers: one `Arc`, so that the middleware and the
/// handlers each take it for one atomic increment (cloning two dozen fields
/// per layer cost a measurable share of the latest-price throughput).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the handlers' state.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Changing a field (tests, set-up) copies the state if it is shared.
impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The served chain's configured name.
    pub chain_name: Arc<str>,
    /// The chain reader.
    pub reader: chain::ChainReader,
    /// Served feeds.
    pub feeds: Arc<BTreeMap<Pair, FeedConfig>>,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// NATS, for on-demand refreshes; `None` when not configured (tests).
    pub nats: Option<async_nats::Client>,
    /// The `nats` readiness check, kept by [`oracle_common::bus::watch`]
    /// probing the broker; `None` without NATS.
    pub nats_ready: Option<oracle_common::telemetry::Readiness>,
    /// How long a refresh waits for inclusion before answering 202.
    pub refresh_wait: std::time::Duration,
    /// Transaction records.
    pub submissions: submissions::Submissions,
    /// Bearer token of the admin endpoints; `None` disables them.
    pub admin_token: Option<Arc<str>>,
    /// Latest values, fed by the hub's events.
    pub cache: cache::PriceCache,
    /// Confidence and sources of rounds.
    pub reports: reports::Reports,
    /// Serialized latest-price bodies.
    pub bodies: routes::prices::Bodies,
    /// Accepted API keys (none: open).
    pub api_keys: guard::ApiKeys,
    /// Per-client rate limit.
    pub limiter: Option<guard::Limiter>,
    /// Per-address rate limit of the admin endpoints.
    pub admin_limiter: guard::Limiter,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: guard::TrustedProxies,
    /// Concurrent stream slots.
    pub streams: guard::StreamSlots,
    /// Longest wait for the chain node on a client request.
    pub chain_timeout: std::time::Duration,
    /// Chunks of history already read.
    pub history: routes::history::HistoryCache,
    /// The last `/v1/status` answer.
    pub status: routes::status::StatusCache,
    /// CORS origins.
    pub cors_origins: Arc<Vec<String>>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Deadline of a response.
    pub request_timeout: std::time::Duration,
}

impl Shared {
    /// Whether NATS answers: the probe's verdict, or the connection state
    /// where nothing probes.
    pub fn nats_answers(&self) -> bool {
        match (&self.nats, &self.nats_ready) {
            (None, _) => false,
            (Some(_), Some(ready)) => ready.get("nats"),
            (Some(c), None) => c.connection_state() == async_nats::connection::State::Connected,
        }
    }

    /// NATS, when configured and answering.
    pub fn bus(&self) -> Result<&async_nats::Client, ApiError> {
        let nats = self
            .nats
            .as_ref()
            .ok_or_else(|| ApiError::Bus("NATS is not configured".into()))?;
        if !self.nats_answers() {
            return Err(ApiError::Bus("NATS does not answer".into()));
        }
        Ok(nats)
    }
}

/// What a request to the aggregators came to: their answer, `None` when
/// none came within the wait, or the error to send the client.
pub fn aggregator_answer(
    answer: Result<async_nats::Message, async_nats::RequestError>,
) -> Result<Option<async_nats::Message>, ApiError> {
    use async_nats::RequestErrorKind;
    match answer {
        Ok(msg) => Ok(Some(msg)),
        Err(e) => match e.kind() {
            RequestErrorKind::NoResponders => Err(ApiError::NoAggregator),
            RequestErrorKind::TimedOut => Ok(None),
            _ => Err(ApiError::Bus(e.to_string())),
        },
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration does not fit this service.
    #[error("config: {0}")]
    Config(String),
    /// The chain could not be reached.
    #[error("chain: {0}")]
    Chain(String),
    /// The listener could not be bound.
    #[error("listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The API router.
pub fn router(state: AppState) -> Router {
    use axum::routing::post;
    let deadline = || axum::middleware::from_fn_with_state(state.clone(), guard::deadline);
    // The client endpoints: API keys and rate limits apply. Those that may
    // wait on the chain or NATS run under the response deadline; the latest
    // price is served from memory and bounds its own chain read (a timer per
    // request would cost a third of its throughput, see BENCHMARKS.md).
    let waiting = Router::new()
        .route("/v1/feeds", get(routes::feeds::list_feeds))
        .route("/v1/prices", get(routes::prices::list_prices))
        .route("/v1/prices/{pair}/history", get(routes::history::history))
        .route("/v1/prices/{pair}/refresh", post(routes::refresh::refresh))
        .route(
            "/v1/submissions",
            get(routes::submissions::list_submissions),
        )
        .route(
            "/v1/submissions/{id}",
            get(routes::submissions::get_submission),
        )
        .route_layer(deadline());
    let client = Router::new()
        .merge(waiting)
        .route("/v1/stream", get(routes::stream::stream))
        .route(
            "/v1/reports/{pair}/latest",
            get(routes::reports::latest_report),
        )
        .route("/v1/status", get(routes::status::status))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::client_guard,
        ));
    let admin = Router::new()
        .route(
            "/v1/admin/submissions/{id}/retry",
            post(routes::admin::retry),
        )
        .route_layer(deadline())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::admin_guard,
        ));
    // `/metrics` is not here: it is served on `bff.metrics_addr` only, so the
    // public listener does not expose the service's internals.
    let router = Router::new()
        .merge(client)
        .merge(admin)
        .route("/readyz", get(routes::health::readyz))
        .route("/healthz", get(routes::health::healthz))
        .route("/openapi.json", get(routes::openapi::openapi))
        .route("/", get(routes::page::index))
        .route("/assets/{file}", get(routes::page::assets))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(state.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ));
    // The latest price: guard and metrics inline (see `get_price_guarded`).
    let hot = Router::new().route(
        routes::prices::PRICE_ROUTE,
        get(routes::prices::get_price_guarded),
    );
    let router = hot.merge(router);
    let router = match guard::cors(&state.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// Builds the handler state: checks the chain section and asks the RPC for
/// its chain id (and checks it against `chain.chain_id` when set).
pub async fn state(
    config: &Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<AppState, StartError> {
    let chains = config
        .require_chains()
        .map_err(|e| StartError::Config(e.to_string()))?;
    // The default chain (the first); serving the others is per-chain state.
    let served = &chains[0];
    let hub = served
        .require_hub()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let rpc = served.rpc_urls[0].as_str();
    let url: alloy::transports::http::reqwest::Url = rpc.parse().map_err(|_| {
        StartError::Config(format!(
            "chains.{}.rpc_urls: {rpc} is not a URL",
            served.name
        ))
    })?;
    let chain_id = chain::ChainReader::fetch_chain_id(url.clone())
        .await
        .map_err(|e| StartError::Chain(format!("eth_chainId at {rpc}: {e}")))?;
    if served.chain_id != chain_id {
        return Err(StartError::Config(format!(
            "chains.{}.chain_id: expected {}, {rpc} serves chain {chain_id}",
            served.name, served.chain_id
        )));
    }
    // Retrying in the background: the API serves chain reads while NATS is
    // down, and `/readyz` says so.
    let nats = oracle_common::bus::connect(
        &config.nats,
        "oracle-bff",
        oracle_common::bus::Initial::Background,
    )
    .await
    .map_err(|e| StartError::Config(format!("nats.urls: {e}")))?;
    let nats_ready = oracle_common::telemetry::Readiness::register(registry, &["nats"])?;
    tokio::spawn(oracle_common::bus::watch(
        nats.clone(),
        nats_ready.clone(),
        shutdown.clone(),
    ));
    Ok(AppState::new(Shared {
        chain_name: served.name.as_str().into(),
        reader: chain::ChainReader::new(url, hub, chain_id),
        nats: Some(nats),
        nats_ready: Some(nats_ready),
        refresh_wait: config.bff.refresh_wait,
        submissions: submissions::Submissions::new(config.bff.max_submissions),
        admin_token: config
            .bff
            .admin_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(t.expose())),
        cache: cache::PriceCache::new(config.bff.chain_poll, shutdown),
        reports: reports::Reports::for_chain(chain_id, true),
        bodies: routes::prices::Bodies::default(),
        api_keys: guard::ApiKeys::new(config.bff.api_keys.iter().map(|k| k.expose())),
        limiter: config.bff.rate_limit.map(guard::Limiter::new),
        admin_limiter: guard::Limiter::new(config.bff.admin_rate_limit),
        trusted_proxies: guard::TrustedProxies::new(
            config.bff.trusted_proxies.iter().map(String::as_str),
        ),
        streams: guard::StreamSlots::new(config.bff.max_streams, config.bff.max_streams_per_client),
        chain_timeout: config.bff.chain_timeout,
        history: routes::history::HistoryCache::register(registry)?,
        status: routes::status::StatusCache::default(),
        cors_origins: Arc::new(config.bff.cors_origins.clone()),
        max_body_bytes: config.bff.max_body_bytes,
        request_timeout: config.bff.request_timeout,
        feeds: Arc::new(
            config
                .feeds
                .iter()
                .map(|f| (f.pair.clone(), f.clone()))
                .collect(),
        ),
        metrics: metrics::Metrics::register(registry)?,
    }))
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Binds `bff.listen` and serves the API until `shutdown`.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let state = state(&config, registry, shutdown.child_token()).await?;
    tokio::spawn(state.cache.clone().follow(
        state.reader.clone(),
        state.feeds.clone(),
        config.bff.chain_poll,
        state.metrics.reorgs.clone(),
    ));
    if let Some(nats) = &state.nats {
        tokio::spawn(
            state
                .submissions
                .clone()
                .follow(nats.clone(), shutdown.child_token()),
        );
        let reports = state.reports.clone();
        let applied = state.reports.clone();
        tokio::spawn(follow::follow(
            nats.clone(),
            oracle_common::wire::REPORTS_STREAM,
            shutdown.child_token(),
            move || reports.last_seq(),
            move |seq, payload| applied.apply(seq, payload),
        ));
    }
    let listener = TcpListener::bind(config.bff.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bff.listen,
            source,
        })?;
    info!(addr = %config.bff.listen, chain_id = state.reader.chain_id(), hub = %state.reader.hub(), "bff listening");
    serve(listener, state, shutdown)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bff.listen,
            source,
        })
}
