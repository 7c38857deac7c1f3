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
pub mod chains;
pub mod error;
pub mod follow;
pub mod guard;
pub mod metrics;
pub mod params;
pub mod reports;
pub mod routes;
pub mod submissions;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use oracle_common::config::Config;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

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
    /// The served chains (`?chain=`; the first is the default).
    pub chains: chains::Chains,
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
    /// How long past its heartbeat the freshest feed keeps `/readyz` ready.
    pub readiness_grace: std::time::Duration,
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
        .route("/v1/chains", get(routes::chains::list_chains))
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
    // The hot route's own 405 (a POST to it) is the API's JSON error too.
    let router = hot
        .merge(router)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
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
    let history = routes::history::HistoryCache::register(registry)?;
    let mut views = Vec::with_capacity(chains.len());
    for (i, c) in chains.iter().enumerate() {
        let hub = c
            .require_hub()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let rpc = c.rpc_urls[0].as_str();
        let url: alloy::transports::http::reqwest::Url = rpc.parse().map_err(|_| {
            StartError::Config(format!("chains[{i}].rpc_urls[0]: {rpc} is not a URL"))
        })?;
        // A node that answers must serve the configured chain; one that does
        // not answer yet is followed in the background (the other chains are
        // served meanwhile, and `/readyz` says which is behind).
        match tokio::time::timeout(
            config.bff.chain_timeout * 4,
            chain::ChainReader::fetch_chain_id(url.clone()),
        )
        .await
        {
            Ok(Ok(id)) if id != c.chain_id => {
                return Err(StartError::Config(format!(
                    "chains[{i}].chain_id: expected {}, {rpc} serves chain {id}",
                    c.chain_id
                )));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(chain = %c.name, error = %e, "the chain's node does not answer yet")
            }
            Err(_) => warn!(chain = %c.name, "the chain's node does not answer yet"),
        }
        views.push(chains::ChainView {
            name: c.name.as_str().into(),
            reader: chain::ChainReader::new(url, hub, c.chain_id),
            cache: cache::PriceCache::new(config.bff.chain_poll, shutdown.clone()),
            reports: reports::Reports::for_chain(c.chain_id, i == 0),
            bodies: routes::prices::Bodies::default(),
            history: history.sharing_counters(),
            feeds: Arc::new(
                config
                    .feeds
                    .iter()
                    .map(|f| (f.pair.clone(), c.feed(f)))
                    .collect(),
            ),
            block_time: c.block_time,
            confirmations: c.confirmations,
            ws_url: c.ws_url.clone(),
        });
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
        chains: chains::Chains::new(views),
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
        api_keys: guard::ApiKeys::new(config.bff.api_keys.iter().map(|k| k.expose())),
        limiter: config.bff.rate_limit.map(guard::Limiter::new),
        admin_limiter: guard::Limiter::new(config.bff.admin_rate_limit),
        trusted_proxies: guard::TrustedProxies::new(
            config.bff.trusted_proxies.iter().map(String::as_str),
        ),
        streams: guard::StreamSlots::new(config.bff.max_streams, config.bff.max_streams_per_client),
        chain_timeout: config.bff.chain_timeout,
        readiness_grace: config.bff.readiness_grace,
        status: routes::status::StatusCache::default(),
        cors_origins: Arc::new(config.bff.cors_origins.clone()),
        max_body_bytes: config.bff.max_body_bytes,
        request_timeout: config.bff.request_timeout,
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
    for view in state.chains.iter() {
        tokio::spawn(
            view.cache
                .clone()
                .follow(view.clone(), config.bff.chain_poll, state.metrics.clone())
                .instrument(tracing::info_span!("chain", chain = %view.name)),
        );
    }
    if let Some(nats) = &state.nats {
        tokio::spawn(
            state
                .submissions
                .clone()
                .follow(nats.clone(), shutdown.child_token()),
        );
        // One follower of ORACLE_REPORTS feeds every chain's index.
        let indexes: Vec<reports::Reports> =
            state.chains.iter().map(|c| c.reports.clone()).collect();
        let applied = indexes.clone();
        tokio::spawn(follow::follow(
            nats.clone(),
            oracle_common::wire::REPORTS_STREAM,
            shutdown.child_token(),
            move || indexes.iter().map(|r| r.last_seq()).min().unwrap_or(0),
            move |seq, payload| {
                for r in &applied {
                    r.apply(seq, payload);
                }
            },
        ));
    }
    let listener = TcpListener::bind(config.bff.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bff.listen,
            source,
        })?;
    for view in state.chains.iter() {
        info!(chain = %view.name, chain_id = view.reader.chain_id(), hub = %view.reader.hub(), "serving chain");
    }
    info!(addr = %config.bff.listen, chains = %state.chains.names().join(","), "bff listening");
    serve(listener, state, shutdown)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bff.listen,
            source,
        })
}
