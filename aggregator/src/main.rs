//! `oracle-aggregator`: aggregates observations and submits signed reports on chain.

use anyhow::Context;
use clap::Parser;
use oracle_common::config::ConfigArg;
use oracle_common::telemetry;

/// Consumes observations from NATS, aggregates them and updates the on-chain feeds.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Aggregate and submit until stopped (the default).
    Run,
    /// Check the reports of a time range against ORACLE_OBS and the chain;
    /// prints one JSON line per report and exits 1 if any disagrees.
    Replay {
        /// Start, RFC 3339 (`2026-11-21T20:00:00Z`) or Unix ms.
        #[arg(long)]
        from: String,
        /// End, RFC 3339 or Unix ms; default now.
        #[arg(long)]
        to: Option<String>,
    },
}

fn parse_time(text: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("{text:?} is not RFC 3339 or Unix ms"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args.config.load()?;
    if let Some(Command::Replay { from, to }) = args.command {
        let from = parse_time(&from)?;
        let to = to
            .as_deref()
            .map(parse_time)
            .transpose()?
            .unwrap_or_else(oracle_common::now_ms);
        let lines = oracle_aggregator::replay::replay(&config, from, to).await?;
        let bad = lines.iter().filter(|l| !l.ok).count();
        for line in &lines {
            println!("{}", serde_json::to_string(line)?);
        }
        eprintln!("{} reports replayed, {} disagree", lines.len(), bad);
        if bad > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    let addr = config.aggregator.metrics_addr;
    telemetry::serve_service(&config.telemetry.clone(), addr, |registry, shutdown| async move {
        oracle_aggregator::run(config, &registry, shutdown).await
    })
    .await
    .context("aggregator failed")
}
