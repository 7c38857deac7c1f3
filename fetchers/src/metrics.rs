//! The fetchers' Prometheus metrics, registered once in the process registry.

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

/// Every metric the fetchers export.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `oracle_fetchers_requests_total{source,outcome}`: HTTP requests by result
    /// (`ok` or the error kind).
    pub requests: IntCounterVec,
    /// `oracle_fetchers_request_duration_seconds{source}`.
    pub latency: HistogramVec,
    /// `oracle_fetchers_retries_total{source}`.
    pub retries: IntCounterVec,
    /// `oracle_fetchers_observations_published_total{pair,source}`.
    pub published: IntCounterVec,
    /// `oracle_fetchers_publish_duplicates_total`: PubAcks that said "duplicate".
    pub duplicates: IntCounter,
    /// `oracle_fetchers_publish_failures_total`: publish attempts that failed.
    pub publish_failures: IntCounter,
    /// `oracle_fetchers_dropped_total{reason}`: observations never published.
    pub dropped: IntCounterVec,
    /// `oracle_fetchers_buffer_depth`: observations waiting to be published.
    pub buffer_depth: IntGauge,
    /// `oracle_fetchers_publish_seconds`: from an observation's turn in the
    /// buffer to its PubAck, retries included (the cost of a broker failover).
    pub publish_seconds: prometheus::Histogram,
    /// `oracle_fetchers_publishes_in_flight`: publishes awaiting their PubAck.
    pub publishes_in_flight: IntGauge,
    /// `oracle_fetchers_rate_limit_wait_seconds_total{source}`: time spent waiting for budget.
    pub rate_limit_wait: CounterVec,
    /// `oracle_fetchers_circuit_state{source}`: 0 closed, 1 open, 2 half-open.
    pub circuit_state: IntGaugeVec,
    /// `oracle_fetchers_fallback_polls_total{pair,source}`: fallback sources that answered.
    pub fallback_polls: IntCounterVec,
    /// `oracle_fetchers_triggers_total{pair}`: on-demand fetch requests.
    pub triggers: IntCounterVec,
    /// `oracle_fetchers_cycles_total{pair,outcome}`: cycles that reached quorum or not.
    pub cycles: IntCounterVec,
    /// `oracle_fetchers_missing_symbols_total{source}`: markets asked in a
    /// many-markets request that its answer did not hold (delisted or
    /// misconfigured symbols).
    pub missing_symbols: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_requests_total",
                    "HTTP requests to sources by outcome",
                ),
                &["source", "outcome"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_fetchers_request_duration_seconds",
                    "Latency of one HTTP request to a source",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["source"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_retries_total",
                    "Retried requests to sources",
                ),
                &["source"],
            )?,
            published: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_observations_published_total",
                    "Observations acknowledged by JetStream",
                ),
                &["pair", "source"],
            )?,
            duplicates: IntCounter::new(
                "oracle_fetchers_publish_duplicates_total",
                "Publishes the stream dropped as duplicates (Nats-Msg-Id seen before)",
            )?,
            publish_failures: IntCounter::new(
                "oracle_fetchers_publish_failures_total",
                "Publish attempts that got no PubAck",
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_dropped_total",
                    "Observations never published",
                ),
                &["reason"],
            )?,
            buffer_depth: IntGauge::new(
                "oracle_fetchers_buffer_depth",
                "Observations waiting to be published",
            )?,
            publish_seconds: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_fetchers_publish_seconds",
                    "Time from an observation's turn to its PubAck, retries included",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0,
                    5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0,
                ]),
            )?,
            publishes_in_flight: IntGauge::new(
                "oracle_fetchers_publishes_in_flight",
                "Publishes awaiting their PubAck",
            )?,
            rate_limit_wait: CounterVec::new(
                Opts::new(
                    "oracle_fetchers_rate_limit_wait_seconds_total",
                    "Time spent waiting for a source's request budget",
                ),
                &["source"],
            )?,
            circuit_state: IntGaugeVec::new(
                Opts::new(
                    "oracle_fetchers_circuit_state",
                    "Circuit breaker: 0 closed, 1 open, 2 half-open",
                ),
                &["source"],
            )?,
            fallback_polls: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_fallback_polls_total",
                    "Fallback sources that answered",
                ),
                &["pair", "source"],
            )?,
            triggers: IntCounterVec::new(
                Opts::new("oracle_fetchers_triggers_total", "On-demand fetch requests"),
                &["pair"],
            )?,
            cycles: IntCounterVec::new(
                Opts::new("oracle_fetchers_cycles_total", "Polling cycles by outcome"),
                &["pair", "outcome"],
            )?,
            missing_symbols: IntCounterVec::new(
                Opts::new(
                    "oracle_fetchers_missing_symbols_total",
                    "Markets missing from a many-markets answer",
                ),
                &["source"],
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.missing_symbols.clone()))?;
        registry.register(Box::new(m.rate_limit_wait.clone()))?;
        registry.register(Box::new(m.circuit_state.clone()))?;
        registry.register(Box::new(m.fallback_polls.clone()))?;
        registry.register(Box::new(m.triggers.clone()))?;
        registry.register(Box::new(m.cycles.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.published.clone()))?;
        registry.register(Box::new(m.duplicates.clone()))?;
        registry.register(Box::new(m.publish_failures.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.buffer_depth.clone()))?;
        registry.register(Box::new(m.publish_seconds.clone()))?;
        registry.register(Box::new(m.publishes_in_flight.clone()))?;
        // Every drop reason from the first scrape, before anything was dropped.
        for reason in ["buffer_full", "publish_failed", "shutdown"] {
            m.dropped.with_label_values(&[reason]);
        }
        Ok(m)
    }

    /// Starts a source's series at zero (and its circuit closed), so that
    /// dashboards and alerts see every configured source from the first
    /// scrape, including fallbacks never polled yet.
    pub fn init_source(&self, source: &str) {
        // `ok` and the outcome alerts and dashboards single out.
        for outcome in ["ok", "future_timestamp"] {
            self.requests.with_label_values(&[source, outcome]);
        }
        self.latency.with_label_values(&[source]);
        self.retries.with_label_values(&[source]);
        self.missing_symbols.with_label_values(&[source]);
        self.rate_limit_wait.with_label_values(&[source]);
        self.circuit_state.with_label_values(&[source]).set(0);
    }

    /// Starts a feed's cycle and trigger counters at zero.
    pub fn init_feed(&self, pair: &str) {
        for outcome in ["quorum", "no_quorum"] {
            self.cycles.with_label_values(&[pair, outcome]);
        }
        self.triggers.with_label_values(&[pair]);
    }
}
