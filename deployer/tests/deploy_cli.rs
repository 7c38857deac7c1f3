//! `oracle-deploy` as an operator runs it: against a real anvil, with a config
//! file and the key in the environment; it must print the deployment as JSON,
//! and what it printed must be what is on chain.

#![allow(clippy::unwrap_used)] // a panic is the failure report

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::chain::{FeedAdapter, OracleHub};

/// anvil on a free port, killed on drop.
struct Anvil(Child, String);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn anvil() -> Anvil {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/anvil");
    assert!(
        bin.exists(),
        "anvil not found at {}: run scripts/bootstrap.sh",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Anvil(child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn deploys_hub_and_adapters_and_prints_them() {
    let anvil = anvil();
    let provider = ProviderBuilder::new().connect_http(anvil.1.parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while provider.get_chain_id().await.is_err() {
        assert!(Instant::now() < deadline, "anvil did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The signers are the nodes' addresses (anvil accounts 1-4), given as an
    // operator would: no key, only addresses.
    const NODES: [&str; 4] = [
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    ];
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/dev.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_oracle-deploy"))
        .args(["--config", config.to_str().unwrap(), "--rpc-url", &anvil.1])
        .env(
            "ORACLE_DEPLOYER_KEY",
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        )
        .env(
            "ORACLE__DEPLOY__SIGNERS",
            format!("[\"{}\"]", NODES.join("\", \"")),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let hub = OracleHub::new(printed["hub"].as_str().unwrap().parse().unwrap(), &provider);
    assert_eq!(printed["chain_id"], 31337);
    // dev.toml: 3 of the 4.
    assert_eq!(printed["threshold"], 3);
    assert_eq!(hub.threshold().call().await.unwrap(), 3);
    assert_eq!(printed["signers"].as_array().unwrap().len(), 4);
    let mut expected: Vec<alloy::primitives::Address> =
        NODES.iter().map(|a| a.parse().unwrap()).collect();
    expected.sort();
    assert_eq!(hub.signers().call().await.unwrap(), expected);
    for s in printed["signers"].as_array().unwrap() {
        assert!(
            hub.isSigner(s.as_str().unwrap().parse().unwrap())
                .call()
                .await
                .unwrap()
        );
    }
    let feeds = printed["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 2);
    for (i, f) in feeds.iter().enumerate() {
        let pair = f["pair"].as_str().unwrap();
        let id = alloy::primitives::keccak256(pair.as_bytes());
        assert_eq!(
            f["feed_id"]
                .as_str()
                .unwrap()
                .parse::<alloy::primitives::B256>()
                .unwrap(),
            id
        );
        assert_eq!(f["index"].as_u64().unwrap(), i as u64);
        let info = hub.feedInfo(id).call().await.unwrap();
        assert_eq!(info.decimals, 8);
        // dev.toml leaves max_report_age at its default.
        assert_eq!(info.maxReportAge, 120);
        let adapter = FeedAdapter::new(f["adapter"].as_str().unwrap().parse().unwrap(), &provider);
        assert_eq!(adapter.feedId().call().await.unwrap(), id);
        assert_eq!(
            adapter.description().call().await.unwrap(),
            pair.replace('/', " / ")
        );
    }
    // BTC/USD bounds from dev.toml: 1000 .. 10000000 with 8 decimals.
    let btc = hub
        .feedInfo(alloy::primitives::keccak256(b"BTC/USD"))
        .call()
        .await
        .unwrap();
    assert_eq!(
        btc.minPrice,
        alloy::primitives::I256::try_from(100_000_000_000i128).unwrap()
    );
    assert_eq!(
        btc.maxPrice,
        alloy::primitives::I256::try_from(1_000_000_000_000_000i128).unwrap()
    );
}

#[test]
fn refuses_to_run_without_a_key() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/dev.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_oracle-deploy"))
        .args(["--config", config.to_str().unwrap()])
        .env_remove("ORACLE_DEPLOYER_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ORACLE_DEPLOYER_KEY"));
}
