//! The contract and the Rust side together on a real anvil: the aggregator's
//! signing code produces signatures the hub accepts, batches built in Rust land
//! with the expected values, the Rust digest equals the contract's, the skip
//! policy is what the Rust side reads from receipts, adapters answer like
//! Chainlink feeds, and the gas targets hold for real transactions signed by 3
//! of 4 independent signers (receipts: base cost and calldata included).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use oracle_common::chain::{
    FeedAdapter, OracleHub, PriceUpdate, Report, batch_digest, pack_reports, pack_signatures,
    sign_digest,
};
use oracle_common::config::{Config, FeedConfig};
use oracle_deploy::{self as deploy, Deployment};
use oracle_devstack::{start_anvil, tools};
use rust_decimal::Decimal;

/// The hub's four signers (one per node); batches carry three signatures.
const SIGNER_KEYS: [&str; 4] = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];
const OWNER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil account 5: relays batches (any account may).
const RELAYER_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

fn feed(i: usize) -> FeedConfig {
    FeedConfig {
        pair: format!("F{i}/USD").parse().unwrap(),
        decimals: 8,
        min_price: Decimal::from(1),
        max_price: Decimal::from(10_000_000),
        sources: vec!["sim".parse().unwrap()],
        fallbacks: vec![],
        min_sources: 1,
        max_age: Duration::from_secs(10),
        deviation_bps: 50,
        heartbeat: Duration::from_secs(3600),
        max_report_age: Duration::from_secs(120),
        adapter: None,
    }
}

struct Chain {
    _anvil: oracle_devstack::process::ChildProcess,
    provider: DynProvider,
    deployment: Deployment,
    keys: Vec<PrivateKeySigner>,
}

async fn chain(feeds: usize) -> Chain {
    let port = tools::free_port().unwrap();
    let rpc = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!(
        "oracle-anvil-contract-{}-{port}.log",
        std::process::id()
    ));
    let anvil = start_anvil(&rpc, 31337, &log)
        .await
        .expect("anvil starts (run scripts/bootstrap.sh)");
    let mut config = Config {
        feeds: (0..feeds).map(feed).collect(),
        ..Default::default()
    };
    config.deploy.signers = SIGNER_KEYS
        .iter()
        .map(|k| k.parse::<PrivateKeySigner>().unwrap().address())
        .collect();
    config.deploy.threshold = Some(3);
    let deployment = deploy::deploy(&config, &rpc, OWNER_KEY.parse().unwrap())
        .await
        .unwrap();
    let relayer: PrivateKeySigner = RELAYER_KEY.parse().unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(relayer))
        .connect_http(rpc.parse().unwrap())
        .erased();
    Chain {
        _anvil: anvil,
        provider,
        deployment,
        // Three of the four sign (the fourth node is down, say).
        keys: SIGNER_KEYS[..3]
            .iter()
            .map(|k| k.parse().unwrap())
            .collect(),
    }
}

impl Chain {
    fn hub(&self) -> OracleHub::OracleHubInstance<DynProvider> {
        OracleHub::new(self.deployment.hub, self.provider.clone())
    }

    /// Signs with the aggregator's code and relays; returns the receipt.
    async fn submit(&self, reports: Vec<Report>) -> alloy::rpc::types::TransactionReceipt {
        let digest = batch_digest(&reports, self.deployment.chain_id, self.deployment.hub);
        let sigs = sign_digest(digest, &self.keys).unwrap();
        let receipt = self
            .hub()
            .submit(pack_reports(&reports), pack_signatures(&sigs))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "submit reverted");
        receipt
    }
}

fn report(index: u16, round: u32, price: i128, at: u64) -> Report {
    Report {
        feedIndex: index,
        roundId: round,
        price,
        observedAt: at as u32,
    }
}

async fn block_time(provider: &DynProvider) -> u64 {
    provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_signed_batches_land_and_meet_the_gas_targets() {
    let c = chain(32).await;
    let hub = c.hub();
    let now = block_time(&c.provider).await;

    // The Rust digest is the contract's digest.
    let sample = vec![report(0, 1, 9_712_345_678_901, now), report(31, 7, 1, now)];
    let on_chain = hub.batchDigest(pack_reports(&sample)).call().await.unwrap();
    assert_eq!(
        on_chain,
        batch_digest(&sample, c.deployment.chain_id, c.deployment.hub)
    );

    // A 32-feed batch signed by the 3 signers.
    let prices: Vec<i128> = (0..32).map(|i| 9_712_345_678_901 + i * 1_234_567).collect();
    let batch: Vec<Report> = (0..32u16)
        .map(|i| report(i, 1, prices[usize::from(i)], now))
        .collect();
    let receipt = c.submit(batch).await;
    // The events carry every update; the Rust decoder reads them back exactly.
    let updates: Vec<PriceUpdate> = receipt
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<OracleHub::PriceUpdated>().ok())
        .map(|l| PriceUpdate::from_event(&l.inner.data))
        .collect();
    assert_eq!(updates.len(), 32);
    for (i, u) in updates.iter().enumerate() {
        assert_eq!(
            (
                u.feed_index as usize,
                u.round,
                u64::from(u.observed_at),
                u.price
            ),
            (i, 1, now, prices[i])
        );
    }
    let per_feed = receipt.gas_used / 32;
    println!(
        "32-feed batch signed by 3 of 4 signers, receipt gasUsed: {} for the transaction, {per_feed} per feed",
        receipt.gas_used
    );
    assert!(per_feed <= 11_000, "{per_feed} gas per feed");
    for (i, f) in c.deployment.feeds.iter().enumerate() {
        let latest = hub.latest(f.feed_id).call().await.unwrap();
        assert_eq!(latest.price, prices[i], "{}", f.pair);
        assert_eq!(latest.roundId, 1);
        assert_eq!(u64::from(latest.observedAt), now);
    }

    // A single feed signed by the 3 signers.
    let receipt = c.submit(vec![report(0, 2, 9_700_000_000_000, now)]).await;
    println!(
        "single feed signed by 3 of 4 signers, receipt gasUsed: {} for the transaction",
        receipt.gas_used
    );
    assert!(receipt.gas_used <= 62_000, "{} gas", receipt.gas_used);

    // The adapter reads what the hub holds, with Chainlink's field meanings.
    let adapter = FeedAdapter::new(c.deployment.feeds[0].adapter, c.provider.clone());
    let data = adapter.latestRoundData().call().await.unwrap();
    assert_eq!(data.roundId, alloy::primitives::aliases::U80::from(2));
    assert_eq!(
        data.answer,
        alloy::primitives::I256::try_from(9_700_000_000_000i128).unwrap()
    );
    assert_eq!(data.startedAt, U256::from(now));
    assert_eq!(data.answeredInRound, data.roundId);
    assert_eq!(adapter.decimals().call().await.unwrap(), 8);
    assert_eq!(adapter.description().call().await.unwrap(), "F0 / USD");
    // Gas of latestRoundData as a transaction of its own: cold everything.
    let call = FeedAdapter::latestRoundDataCall {}.abi_encode();
    let estimate = c
        .provider
        .estimate_gas(
            alloy::rpc::types::TransactionRequest::default()
                .to(c.deployment.feeds[0].adapter)
                .input(call.clone().into()),
        )
        .await
        .unwrap();
    let execution = estimate - 21_000 - 16 * call.len() as u64;
    println!(
        "latestRoundData via adapter, an estimate (eth_estimateGas, not a receipt): {estimate} gas as a transaction, {execution} of execution"
    );
    assert!(execution <= 10_000, "{execution} gas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_report_is_skipped_others_apply_and_rust_reads_why() {
    let c = chain(2).await;
    let hub = c.hub();
    let now = block_time(&c.provider).await;
    // Feed 0 out of bounds (max is 10,000,000 with 8 decimals), feed 1 fine.
    let receipt = c
        .submit(vec![
            report(0, 1, 10_000_000 * 100_000_000, now),
            report(1, 1, 3_000 * 100_000_000, now),
        ])
        .await;
    let rejected: Vec<_> = receipt
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<OracleHub::ReportRejected>().ok())
        .map(|l| {
            (
                l.inner.data.feedIndex,
                l.inner.data.roundId,
                l.inner.data.reason,
            )
        })
        .collect();
    use alloy::sol_types::SolError;
    assert_eq!(
        rejected,
        vec![(0, 1, OracleHub::OutOfBounds::SELECTOR.into())]
    );
    assert_eq!(
        hub.latest(c.deployment.feeds[0].feed_id)
            .call()
            .await
            .unwrap()
            .roundId,
        0
    );
    assert_eq!(
        hub.latest(c.deployment.feeds[1].feed_id)
            .call()
            .await
            .unwrap()
            .roundId,
        1
    );

    // A signature from a key that is not a signer makes the whole batch revert.
    let intruder: PrivateKeySigner = OWNER_KEY.parse().unwrap();
    let reports = vec![report(1, 2, 3_001 * 100_000_000, now)];
    let digest = batch_digest(&reports, c.deployment.chain_id, c.deployment.hub);
    let mut keys = c.keys.clone();
    keys[0] = intruder.clone();
    let sigs = sign_digest(digest, &keys).unwrap();
    let err = hub
        .submit(pack_reports(&reports), pack_signatures(&sigs))
        .send()
        .await
        .unwrap_err();
    let decoded = err.as_decoded_interface_error::<OracleHub::OracleHubErrors>();
    assert!(
        matches!(decoded, Some(OracleHub::OracleHubErrors::UnauthorizedSigner(ref e)) if e.signer == intruder.address()),
        "{err}"
    );
    let _: Address = c.deployment.hub;
}
