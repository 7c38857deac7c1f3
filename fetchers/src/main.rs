//! `oracle-fetchers`: polls exchanges and publishes observations to NATS;
//! `oracle-fetchers probe` checks one source for one pair.

use anyhow::Context;
use clap::{Parser, Subcommand};
use oracle_common::config::ConfigArg;
use oracle_common::telemetry;
use oracle_common::{Pair, SourceId};

/// Polls public exchange APIs and publishes price observations to NATS JetStream.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll and publish until stopped (the default).
    Run,
    /// Fetch one source for one pair once and print the observation as JSON
    /// (exit code 1 and the error on stderr if it fails). Nothing is published.
    Probe {
        /// The source, as configured under [sources].
        #[arg(long)]
        source: SourceId,
        /// The pair, `BTC/USD` or `BTC-USD`.
        #[arg(long)]
        pair: Pair,
        /// Ask this host instead of the configured base URL.
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args.config.load()?;
    match args.command.unwrap_or(Command::Run) {
        Command::Probe {
            source,
            pair,
            base_url,
        } => {
            let obs = oracle_fetchers::probe(&config, &source, &pair, base_url.as_deref()).await?;
            println!("{}", serde_json::to_string_pretty(&obs)?);
            Ok(())
        }
        Command::Run => {
            let addr = config.fetchers.metrics_addr;
            telemetry::serve_service(
                &config.telemetry.clone(),
                addr,
                |registry, shutdown| async move {
                    oracle_fetchers::run(config, &registry, shutdown).await
                },
            )
            .await
            .context("fetchers failed")
        }
    }
}
