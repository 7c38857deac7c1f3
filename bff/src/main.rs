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
    let addr = config.bff.metrics_addr;
    telemetry::serve_service(
        &config.telemetry.clone(),
        addr,
        |registry, shutdown| async move { oracle_bff::run(config, &registry, shutdown).await },
    )
    .await
    .context("bff failed")
}
