//! One set of fetchers and aggregator nodes serving two chains (the dev
//! config's `local`, automining, and `slow`, a block every 2 s): each chain
//! gets its own rounds, submissions, reports and per-chain metrics, and a
//! chain whose node stalls (SIGSTOP) or stops never delays the other.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

mod rig;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use oracle_common::chain::OracleHub;
use oracle_common::wire::{REPORTS_STREAM, ReportMessage, SubmissionStatus};
use oracle_devstack::{Stack, eventually};
use rig::StackSpec;

fn provider(stack: &Stack, i: usize) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(stack.config.chains[i].rpc_urls[0].parse().unwrap())
        .erased()
}

fn hub(stack: &Stack, i: usize) -> OracleHub::OracleHubInstance<DynProvider> {
    OracleHub::new(stack.deployments[i].hub, provider(stack, i))
}

async fn round(stack: &Stack, i: usize, pair: &str) -> u32 {
    let pair: oracle_common::Pair = pair.parse().unwrap();
    hub(stack, i)
        .latest(pair.feed_id())
        .call()
        .await
        .map(|l| l.roundId)
        .unwrap_or(0)
}

async fn wait_round(stack: &Stack, i: usize, at_least: u32, timeout: Duration) -> u32 {
    let what = format!(
        "round {at_least} of BTC/USD on {}",
        stack.config.chains[i].name
    );
    eventually(timeout, &what, || async {
        let r = round(stack, i, "BTC/USD").await;
        (r >= at_least).then_some(r)
    })
    .await
    .unwrap()
}

/// The value of `name` with labels `labels` in the first node's registry.
fn gauge(stack: &Stack, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let registry = stack.registries.aggregators.values().next()?;
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .find(|m| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(|m| m.get_gauge().get_value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_each_current_and_one_stalled_chain_never_delays_the_other() {
    let mut stack = rig::stack(
        "multichain",
        StackSpec {
            chains: 2,
            ..StackSpec::default()
        },
        |_, _| {},
    )
    .await;
    assert_eq!(stack.config.chains.len(), 2);
    let (local, slow) = (&stack.config.chains[0], &stack.config.chains[1]);
    assert_ne!(local.chain_id, slow.chain_id);
    // (The same deployer's first contract: the same hub address on both.)
    let (local, slow) = (local.name.clone(), slow.name.clone());

    // Both chains get their rounds from the one aggregation.
    wait_round(&stack, 0, 2, Duration::from_secs(60)).await;
    wait_round(&stack, 1, 2, Duration::from_secs(60)).await;

    // Each submission and each report names its chain; each chain's rounds
    // are its own and contiguous.
    let js =
        async_nats::jetstream::new(async_nats::connect(&stack.config.nats.urls).await.unwrap());
    let events = rig::events(&js).await;
    for (i, name) in [&local, &slow].into_iter().enumerate() {
        let chain_id = stack.config.chains[i].chain_id;
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.status == SubmissionStatus::Success && &e.chain == name)
            .collect();
        assert!(!mine.is_empty(), "no successful submission on {name}");
        assert!(mine.iter().all(|e| e.chain_id == chain_id));
        let rounds =
            rig::applied_rounds(&provider(&stack, i), stack.deployments[i].hub, "BTC/USD").await;
        rig::assert_contiguous("BTC/USD", &rounds);
    }
    let reports: Vec<ReportMessage> = oracle_devstack::read_stream(&js, REPORTS_STREAM)
        .await
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect();
    for name in [&local, &slow] {
        assert!(
            reports.iter().any(|r| &r.chain == name),
            "no report recorded for {name}"
        );
    }

    // Each chain's policy: the dev config gives ETH/USD a 20 bps trigger on
    // the slow chain, the feed's own 10 bps on the local one.
    let threshold = |chain: &str| {
        gauge(
            &stack,
            "oracle_aggregator_deviation_threshold_bps",
            &[("chain", chain), ("pair", "ETH/USD")],
        )
    };
    assert_eq!(threshold(&local), Some(10.0));
    assert_eq!(threshold(&slow), Some(20.0));

    // The slow chain's node stalls: the local chain keeps getting rounds at
    // its usual pace (each within a few seconds: deviation on a moving
    // market, or the 30 s heartbeat at worst).
    let paused_at = round(&stack, 1, "BTC/USD").await;
    stack.pause_chain(1);
    let r = round(&stack, 0, "BTC/USD").await;
    wait_round(&stack, 0, r + 3, Duration::from_secs(90)).await;

    // It comes back: its lane catches up.
    stack.resume_chain(1);
    wait_round(&stack, 1, paused_at + 1, Duration::from_secs(90)).await;

    // It stops for good: the local chain still updates, and the node says
    // which chain it cannot reach.
    stack.stop_chain(1).await;
    let r = round(&stack, 0, "BTC/USD").await;
    wait_round(&stack, 0, r + 3, Duration::from_secs(90)).await;
    eventually(Duration::from_secs(30), "chain_up{slow} = 0", || async {
        (gauge(&stack, "oracle_aggregator_chain_up", &[("chain", &slow)]) == Some(0.0))
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        gauge(&stack, "oracle_aggregator_chain_up", &[("chain", &local)]),
        Some(1.0)
    );
    stack.stop().await;
}
