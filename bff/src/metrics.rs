//! The bff's Prometheus metrics and the middleware that records every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::AppState;

/// Every metric the bff exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `oracle_bff_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `oracle_bff_request_duration_seconds{route}`.
    pub latency: HistogramVec,
    /// `oracle_bff_chain_read_seconds`.
    pub chain_read: Histogram,
    /// `oracle_bff_sse_clients`.
    pub sse_clients: IntGauge,
    /// `oracle_bff_sse_events_total`.
    pub sse_events: IntCounter,
    /// `oracle_bff_cache_requests_total{result="hit"}`.
    pub cache_hit: IntCounter,
    /// `oracle_bff_cache_requests_total{result="miss"}`.
    pub cache_miss: IntCounter,
    /// `oracle_bff_cache_requests_total{result="unreachable"}`: the last
    /// verified value served while the node does not answer.
    pub served_unreachable: IntCounter,
    /// `oracle_bff_sse_refused_total{reason}`: streams refused by the caps.
    pub sse_refused: IntCounterVec,
    /// `oracle_bff_reorgs_total{chain}`.
    pub reorgs: IntCounterVec,
    /// `oracle_bff_head_subscription{chain}`: 1 while new heads come over the
    /// chain's websocket subscription (0: polling only).
    pub head_subscription: prometheus::IntGaugeVec,
    /// The registry these live in (served on `bff.metrics_addr`).
    pub registry: Registry,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let cache = IntCounterVec::new(
            Opts::new(
                "oracle_bff_cache_requests_total",
                "Latest-price reads served from the event-fed cache (hit), the node (miss), or the last verified value while the node does not answer (unreachable)",
            ),
            &["result"],
        )?;
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "oracle_bff_requests_total",
                    "HTTP requests by route and status",
                ),
                &["route", "status"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_bff_request_duration_seconds",
                    "HTTP request latency",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
                &["route"],
            )?,
            chain_read: Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_bff_chain_read_seconds",
                    "Latency of reading a feed from the chain",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )?,
            sse_clients: IntGauge::new("oracle_bff_sse_clients", "Connected stream clients")?,
            sse_events: IntCounter::new(
                "oracle_bff_sse_events_total",
                "Price events sent to stream clients",
            )?,
            cache_hit: cache.with_label_values(&["hit"]),
            cache_miss: cache.with_label_values(&["miss"]),
            served_unreachable: cache.with_label_values(&["unreachable"]),
            sse_refused: IntCounterVec::new(
                Opts::new(
                    "oracle_bff_sse_refused_total",
                    "Stream requests refused by the stream caps, by reason",
                ),
                &["reason"],
            )?,
            reorgs: IntCounterVec::new(
                Opts::new(
                    "oracle_bff_reorgs_total",
                    "Reorgs seen by the price cache (every feed re-read), per chain",
                ),
                &["chain"],
            )?,
            head_subscription: prometheus::IntGaugeVec::new(
                Opts::new(
                    "oracle_bff_head_subscription",
                    "1 while the chain's new heads come over its websocket subscription (0: polling)",
                ),
                &["chain"],
            )?,
            registry: registry.clone(),
        };
        registry.register(Box::new(m.sse_clients.clone()))?;
        registry.register(Box::new(m.sse_events.clone()))?;
        registry.register(Box::new(cache))?;
        registry.register(Box::new(m.reorgs.clone()))?;
        registry.register(Box::new(m.head_subscription.clone()))?;
        registry.register(Box::new(m.sse_refused.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.chain_read.clone()))?;
        Ok(m)
    }
}

/// Records route (the matched pattern, never the raw path), status and latency.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // `MatchedPath` holds an `Arc<str>`: cloned, not copied into a String.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(route, started, response.status());
    response
}

impl Metrics {
    /// Records one request to `route` that started at `started`.
    pub fn record(&self, route: &str, started: Instant, status: axum::http::StatusCode) {
        self.latency
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .with_label_values(&[route, status.as_str()])
            .inc();
    }
}
