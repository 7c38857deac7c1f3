//! Logging set-up, the `/metrics` + `/healthz` endpoint every service exposes,
//! and the shutdown signal (SIGINT/SIGTERM) as a cancellation token.

use std::io::IsTerminal;
use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

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
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
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

/// Binds `addr` and serves `/metrics` (from `registry`) and `/healthz` until
/// `shutdown`. Returns the bound address (useful with port 0).
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
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
        .route("/healthz", get(|| async { "ok" }));
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
