//! The quorum on a chain with a real block time (`anvil --block-time 12`):
//! four `oracle-aggregator` node processes run for a few minutes while every
//! transaction waits up to a block for its receipt. Leadership must not
//! change in steady state (the lease is renewed beside the pending
//! transaction), no two transactions may carry the same round, ingest must go
//! on while a transaction is pending, and every round lands exactly once.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod rig;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::wire::SubmissionStatus;
use oracle_devstack::eventually;
use rig::{applied_rounds, assert_contiguous, events, scrape};

/// How long the steady state is watched after the first update.
const WATCH: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_holds_and_no_round_is_sent_twice_on_12_second_blocks() {
    let stack = rig::process_stack("quorum-block-time", Some(12)).await;
    let provider = ProviderBuilder::new()
        .connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap())
        .erased();
    let js =
        async_nats::jetstream::new(async_nats::connect(&stack.config.nats.urls).await.unwrap());
    eventually(Duration::from_secs(90), "a first update", || async {
        events(&js)
            .await
            .iter()
            .any(|e| e.status == SubmissionStatus::Success)
            .then_some(())
    })
    .await
    .unwrap();

    // Watch the nodes every two seconds: who leads, and whether the leader
    // keeps ingesting while its transaction waits for a block.
    let started = Instant::now();
    let mut pending_intervals = 0;
    let mut previous: Option<(f64, f64)> = None; // (pending_since, consumed) of the leader
    let mut leaders_seen = BTreeMap::<String, usize>::new();
    while started.elapsed() < WATCH {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut leading = Vec::new();
        for node in &stack.nodes {
            if scrape(node.metrics_addr, "oracle_aggregator_leader", None).await == Some(1.0) {
                leading.push(node.clone());
            }
        }
        assert!(
            leading.len() <= 1,
            "several leaders: {:?}",
            leading.iter().map(|n| &n.name).collect::<Vec<_>>()
        );
        let Some(leader) = leading.pop() else {
            previous = None;
            continue;
        };
        *leaders_seen.entry(leader.name.clone()).or_default() += 1;
        let pending = scrape(
            leader.metrics_addr,
            "oracle_aggregator_pending_since_timestamp_seconds",
            None,
        )
        .await
        .unwrap_or(0.0);
        let consumed = scrape(
            leader.metrics_addr,
            "oracle_aggregator_observations_consumed_total",
            None,
        )
        .await
        .unwrap_or(0.0);
        if let Some((was_pending, was_consumed)) = previous
            && was_pending > 0.0
            && pending == was_pending
        {
            // The same transaction pending at both samples: ingest went on.
            pending_intervals += 1;
            assert!(
                consumed > was_consumed,
                "ingest stopped while a transaction was pending"
            );
        }
        previous = Some((pending, consumed));
    }

    // One leader from start to end, which took the lease once.
    assert_eq!(
        leaders_seen.len(),
        1,
        "leadership changed: {leaders_seen:?}"
    );
    let mut changes = BTreeMap::new();
    for node in &stack.nodes {
        changes.insert(
            node.name.clone(),
            scrape(
                node.metrics_addr,
                "oracle_aggregator_leader_changes_total",
                None,
            )
            .await
            .unwrap(),
        );
    }
    assert_eq!(
        changes.values().sum::<f64>(),
        1.0,
        "lease taken {changes:?}"
    );
    assert!(
        pending_intervals >= 3,
        "only {pending_intervals} samples with a pending transaction"
    );

    // Every transaction from the leader; no two carry a round of the same
    // feed; every round lands once, in order.
    let all = events(&js).await;
    let mut last = BTreeMap::new();
    for e in &all {
        last.insert(e.id.clone(), e.clone());
    }
    let sent: Vec<_> = last.values().filter(|e| !e.tx_hashes.is_empty()).collect();
    assert!(
        sent.len() >= 5,
        "only {} transactions in {WATCH:?}",
        sent.len()
    );
    let senders: std::collections::BTreeSet<&str> =
        sent.iter().map(|e| e.aggregator.as_str()).collect();
    assert_eq!(senders.len(), 1, "transactions from {senders:?}");
    let mut carried = BTreeMap::new();
    for e in &sent {
        for r in &e.reports {
            if let Some(other) = carried.insert((r.pair.clone(), r.round), e.id.clone()) {
                panic!("{} round {} sent by {other} and {}", r.pair, r.round, e.id);
            }
        }
        if e.status == SubmissionStatus::Success {
            assert!(
                e.skipped.is_empty(),
                "the hub skipped {:?} of {}",
                e.skipped,
                e.id
            );
        }
    }
    for pair in ["BTC/USD", "ETH/USD"] {
        let rounds = applied_rounds(&provider, stack.deployment.hub, pair).await;
        assert_contiguous(pair, &rounds);
    }
    let replacements: f64 = {
        let mut sum = 0.0;
        for node in &stack.nodes {
            sum += scrape(
                node.metrics_addr,
                "oracle_aggregator_replacements_total",
                None,
            )
            .await
            .unwrap_or(0.0);
        }
        sum
    };
    println!(
        "{} transactions in {WATCH:?} on 12 s blocks, {} samples with one pending, {replacements} fee replacements, leader {leaders_seen:?}",
        sent.len(),
        pending_intervals
    );
    let _ = provider.get_block_number().await;
    stack.stop().await;
}
