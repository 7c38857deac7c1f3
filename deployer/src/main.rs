//! `oracle-deploy`: deploys OracleHub and one FeedAdapter per configured feed,
//! then prints the addresses as JSON.

use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use clap::Parser;
use oracle_common::config::{ConfigArg, Secret};
use serde::Deserialize;

/// Deploys the hub (signers, threshold, skew from `[deploy]`), registers every
/// `[[feeds]]` entry and deploys its Chainlink-compatible adapter. Prints the
/// result as JSON on stdout.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// The `[[chains]]` entry to deploy on (its name); defaults to the first.
    #[arg(long)]
    chain: Option<String>,
    /// JSON-RPC endpoint; defaults to the chain's first `rpc_urls` entry.
    #[arg(long)]
    rpc_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args.config.load()?;
    // The deployer key comes from the environment (or a file: ORACLE_DEPLOYER_KEY=file:/path),
    // never from the command line where other users could read it.
    let raw = std::env::var("ORACLE_DEPLOYER_KEY")
        .context("set ORACLE_DEPLOYER_KEY to the deployer's private key (or file:/path)")?;
    let secret = Secret::deserialize(serde_json::Value::String(raw))
        .context("reading ORACLE_DEPLOYER_KEY")?;
    let deployer: PrivateKeySigner = secret
        .expose()
        .trim()
        .parse()
        .context("ORACLE_DEPLOYER_KEY is not a hex private key")?;
    let chain = match &args.chain {
        Some(name) => config
            .chain(name)
            .with_context(|| format!("{name} is not a configured chain"))?,
        None => config
            .chains
            .first()
            .context("no [[chains]] entry configured")?,
    };
    let rpc_url = match args.rpc_url {
        Some(url) => url,
        None => chain.rpc_urls[0].clone(),
    };
    eprintln!("deploying on chain {} ({})", chain.name, chain.chain_id);
    let deployment = oracle_deploy::deploy(&config, &rpc_url, deployer).await?;
    println!("{}", serde_json::to_string_pretty(&deployment)?);
    Ok(())
}
