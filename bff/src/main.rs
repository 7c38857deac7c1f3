//! `oracle-bff`: the client API serving chain-verified prices.

use anyhow::Context;
use clap::Parser;
use oracle_common::config::ConfigArg;
use oracle_common::telemetry;

/// Serves chain-verified prices to clients over REST.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args.config.load()?;
    let addr = config.bff.metrics_addr;
    telemetry::serve_service(
        &config.telemetry.clone(),
        addr,
        |registry, shutdown| async move { oracle_bff::run(config, &registry, shutdown).await },
    )
    .await
    .context("bff failed")
}
