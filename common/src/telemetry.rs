//! Logging set-up, the `/metrics` + `/healthz` + `/readyz` endpoint every
//! service exposes, the readiness checks behind `/readyz`, and the shutdown
//! signal (SIGINT/SIGTERM) as a cancellation token.

use std::io::IsTerminal;
use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, TelemetryConfig};

/// Installs the global tracing subscriber: JSON lines when stderr is not a
/// terminal (or when asked), text otherwise. `RUST_LOG` overrides the level.
/// Calling it twice is harmless (the second call does nothing).
pub fn init_tracing(config: &TelemetryConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// One JSON object per line with every field at the top level: `timestamp`,
/// `level`, `target`, `message`, then the fields of the enclosing spans
/// (outermost first) and of the event, the innermost winning. So `pair`,
/// `source`, `round`, `tx_hash` or `submission` can be filtered on directly,
/// whether a span or the event carries them.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = serde_json::Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // With `JsonFields`, a span's fields are stored as a JSON object.
                if let Ok(serde_json::Value::Object(map)) =
                    serde_json::from_str::<serde_json::Value>(stored)
                {
                    fields.extend(map);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let message = fields.remove("message").unwrap_or_default();
        // The fixed keys first, in this order, then the fields by name.
        let head = [
            ("timestamp", serde_json::Value::from(timestamp)),
            ("level", meta.level().as_str().into()),
            ("target", meta.target().into()),
            ("message", message),
        ];
        write!(writer, "{{")?;
        for (i, (key, value)) in head.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(writer, "{sep}{}:{}", json(key)?, json(value)?)?;
        }
        for (key, value) in &fields {
            write!(writer, ",{}:{}", json(key)?, json(value)?)?;
        }
        writeln!(writer, "}}")
    }
}

/// `value` as JSON text, for the log line writer.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, std::fmt::Error> {
    serde_json::to_string(value).map_err(|_| std::fmt::Error)
}

/// Records an event's fields as JSON values.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// A cancellation token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metric families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The name of the readiness gauge: `oracle_ready{check}`, 1 when the check
/// passes.
pub const READY_METRIC: &str = "oracle_ready";

/// A service's readiness checks (`nats`, `chain`, ...), kept as the gauge
/// `oracle_ready{check}` in its registry: `/readyz` on the metrics endpoint
/// answers from it, and Prometheus sees the same thing the probes see.
#[derive(Debug, Clone)]
pub struct Readiness {
    gauge: IntGaugeVec,
}

impl Readiness {
    /// Registers the gauge with every check in `checks` failing until set.
    pub fn register(registry: &Registry, checks: &[&str]) -> Result<Self, prometheus::Error> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                READY_METRIC,
                "Readiness checks of the service (1 = passing), as served on /readyz",
            ),
            &["check"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        for check in checks {
            gauge.with_label_values(&[check]).set(0);
        }
        Ok(Self { gauge })
    }

    /// Records the outcome of `check`.
    pub fn set(&self, check: &str, ok: bool) {
        self.gauge.with_label_values(&[check]).set(i64::from(ok));
    }

    /// Whether `check` passes now.
    pub fn get(&self, check: &str) -> bool {
        self.gauge.with_label_values(&[check]).get() >= 1
    }
}

/// The readiness checks registered in `registry` and whether each passes;
/// `None` while the service has not registered them (still starting).
pub fn readiness_checks(registry: &Registry) -> Option<Vec<(String, bool)>> {
    let family = registry
        .gather()
        .into_iter()
        .find(|f| f.name() == READY_METRIC)?;
    Some(
        family
            .get_metric()
            .iter()
            .map(|m| {
                let check = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "check")
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                (check, m.get_gauge().get_value() >= 1.0)
            })
            .collect(),
    )
}

/// `/readyz` from the registry's checks: 200 `{"status":"ready","checks":…}`,
/// or 503 `{"code":"not_ready"|"starting","message":…,"checks":…}`.
pub fn readyz(registry: &Registry) -> axum::response::Response {
    use serde_json::json;
    let Some(checks) = readiness_checks(registry) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "code": "starting", "message": "the service is starting" })),
        )
            .into_response();
    };
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(c, _)| c.as_str())
        .collect();
    let map: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(c, ok)| (c.clone(), json!({ "ok": ok })))
        .collect();
    if failed.is_empty() {
        axum::Json(json!({ "status": "ready", "checks": map })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "code": "not_ready",
                "message": format!("failing: {}", failed.join(", ")),
                "checks": map,
            })),
        )
            .into_response()
    }
}

/// Binds `addr` and serves `/metrics` (from `registry`), `/healthz` (the
/// process is alive) and `/readyz` (its [`Readiness`] checks pass) until
/// `shutdown`. Returns the bound address (useful with port 0).
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let ready_registry = registry.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = render(&registry);
                async move {
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        body,
                    )
                        .into_response()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let response = readyz(&ready_registry);
                async move { response }
            }),
        );
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok((local, handle))
}

/// A service that could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError<E: std::error::Error + 'static> {
    /// The metrics endpoint could not listen.
    #[error("binding metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The service itself failed.
    #[error(transparent)]
    Run(E),
}

/// What every service binary does around its `run`: logging, one metrics
/// registry, SIGINT/SIGTERM as a cancellation token, `/metrics` and `/healthz`
/// on `metrics_addr`; then `run(registry, shutdown)`, and a clean stop.
pub async fn serve_service<F, Fut, E>(
    telemetry: &TelemetryConfig,
    metrics_addr: SocketAddr,
    run: F,
) -> Result<(), ServiceError<E>>
where
    F: FnOnce(Registry, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    init_tracing(telemetry);
    let registry = Registry::new();
    let shutdown = shutdown_on_signals();
    let (addr, metrics_server) = serve_metrics(metrics_addr, registry.clone(), shutdown.clone())
        .await
        .map_err(|source| ServiceError::Metrics {
            addr: metrics_addr,
            source,
        })?;
    tracing::info!(%addr, "metrics listening");
    let result = run(registry, shutdown.clone()).await;
    shutdown.cancel();
    let _ = metrics_server.await;
    result.map_err(ServiceError::Run)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Runs `f` under a FlatJson subscriber; returns what it wrote.
    fn capture_text(f: impl FnOnce()) -> String {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(Arc::clone(&sink)))
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.lock().unwrap().clone()).unwrap()
    }

    /// The lines `f` wrote, parsed.
    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        capture_text(f)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_and_event_fields_are_top_level() {
        let lines = capture(|| {
            let outer = tracing::info_span!(
                "submission",
                submission = "s1",
                tx_hash = tracing::field::Empty
            );
            let _o = outer.enter();
            outer.record("tx_hash", "0xabc");
            let inner = tracing::info_span!(
                "poll",
                pair = "BTC/USD",
                source = "kraken",
                submission = "s2"
            );
            let _i = inner.enter();
            tracing::warn!(round = 7u32, ok = false, error = "boom", "fetch failed");
        });
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["message"], "fetch failed");
        assert_eq!(l["pair"], "BTC/USD");
        assert_eq!(l["source"], "kraken");
        assert_eq!(l["round"], 7);
        assert_eq!(l["ok"], false);
        assert_eq!(
            l["tx_hash"], "0xabc",
            "a field recorded after the span began"
        );
        assert_eq!(l["submission"], "s2", "the inner span wins");
        assert!(l["timestamp"].as_str().is_some_and(|t| t.contains('T')));
        assert!(l.get("span").is_none() && l.get("fields").is_none());
    }

    #[test]
    fn fixed_keys_come_first() {
        let text = capture_text(|| tracing::info!(aaa = 1, "hello \"quoted\""));
        assert!(text.starts_with("{\"timestamp\":\""), "{text}");
        assert!(
            text.contains(r#","level":"INFO","target":"oracle_common::telemetry::tests","message":"hello \"quoted\"","aaa":1}"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn readyz_follows_the_checks() {
        use axum::body::to_bytes;
        let registry = Registry::new();
        let status = |r: axum::response::Response| r.status().as_u16();
        assert_eq!(status(readyz(&registry)), 503, "starting: no checks yet");
        let ready = Readiness::register(&registry, &["nats", "chain"]).unwrap();
        assert_eq!(status(readyz(&registry)), 503, "checks start failing");
        ready.set("nats", true);
        let r = readyz(&registry);
        assert_eq!(r.status().as_u16(), 503);
        let body = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "not_ready");
        assert_eq!(v["message"], "failing: chain");
        assert_eq!(v["checks"]["nats"]["ok"], true);
        ready.set("chain", true);
        assert_eq!(status(readyz(&registry)), 200);
        ready.set("nats", false);
        assert_eq!(status(readyz(&registry)), 503);
    }

    #[test]
    fn event_fields_override_span_fields() {
        let lines = capture(|| {
            let span = tracing::info_span!("s", pair = "ETH/USD");
            let _e = span.enter();
            tracing::info!(pair = "BTC/USD", "x");
            tracing::info!("y");
        });
        assert_eq!(lines[0]["pair"], "BTC/USD");
        assert_eq!(lines[1]["pair"], "ETH/USD");
    }
}
