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
    /// JSON-RPC endpoint; defaults to chain.rpc_url of the config.
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
    let rpc_url = args.rpc_url.unwrap_or_else(|| config.chain.rpc_url.clone());
    let deployment = oracle_deploy::deploy(&config, &rpc_url, deployer).await?;
    println!("{}", serde_json::to_string_pretty(&deployment)?);
    Ok(())
}
