//! `oracle-bff`: the client API serving chain-verified prices.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use oracle_common::config::Config;
use oracle_common::telemetry;

/// Serves chain-verified prices to clients over REST.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML); keys can be overridden by ORACLE__… variables.
    #[arg(long, env = "ORACLE_CONFIG", default_value = "config/default.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config =
        Config::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    telemetry::init_tracing(&config.telemetry);
    let registry = prometheus::Registry::new();
    let shutdown = telemetry::shutdown_on_signals();
    let (addr, metrics_server) =
        telemetry::serve_metrics(config.bff.metrics_addr, registry.clone(), shutdown.clone())
            .await
            .with_context(|| format!("binding metrics on {}", config.bff.metrics_addr))?;
    tracing::info!(%addr, "metrics listening");
    let result = oracle_bff::run(config, &registry, shutdown.clone()).await;
    shutdown.cancel();
    let _ = metrics_server.await;
    result.context("bff failed")
}
