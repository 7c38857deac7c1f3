//! Finality on a chain with confirmations: a submission is `success` only
//! once its block has the configured blocks on top; a reorg (anvil's
//! `evm_snapshot`/`evm_revert`) that drops the included transaction returns
//! the submission to `pending`, and the same signed transaction, same nonce,
//! is broadcast again and lands.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

mod rig;

use alloy::providers::Provider;
use oracle_common::wire::SubmissionStatus;
use rig::{Rig, RigOptions, assert_contiguous};

const CONFIRMATIONS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_waits_for_confirmations_and_a_reorg_sends_the_same_nonce_again() {
    let options = RigOptions {
        block_time: Some(1),
        ..RigOptions::fetchers()
    };
    let rig = Rig::start_with("confirmations", options, |c| {
        c.chains[0].confirmations = CONFIRMATIONS;
        c.chains[0].block_time = Duration::from_secs(1);
        c.aggregator.receipt_timeout = Duration::from_secs(20);
    })
    .await;
    let registry = rig.run_node(0);

    // A first submission: included, then final only `CONFIRMATIONS` blocks later.
    let first = rig
        .wait_event(Duration::from_secs(60), "a first success", |e| {
            e.status == SubmissionStatus::Success
        })
        .await;
    let events = rig.events().await;
    let included = events
        .iter()
        .find(|e| e.id == first.id && e.status == SubmissionStatus::Pending && e.block.is_some())
        .expect("the inclusion is recorded before the success");
    assert_eq!(included.block, first.block);
    let final_at = eventually_head(&rig, first.block.unwrap() + CONFIRMATIONS).await;
    assert!(final_at >= first.block.unwrap() + CONFIRMATIONS);
    // Recorded only once the confirmations were there.
    let head_when_success = first.block.unwrap();
    assert!(
        first.at_ms >= included.at_ms + 1_000 * (CONFIRMATIONS - 1),
        "success {} ms after the inclusion, with {CONFIRMATIONS} blocks of 1 s to wait (block {head_when_success})",
        first.at_ms - included.at_ms
    );

    // The next submission: with mining held, snapshot while it waits to be
    // mined, mine again, let it be included, then revert under it.
    let interval_mining = |secs: u64| {
        let provider = rig.provider.clone();
        async move {
            provider
                .raw_request::<_, ()>("evm_setIntervalMining".into(), (secs,))
                .await
                .unwrap();
        }
    };
    interval_mining(0).await;
    let broadcast = oracle_devstack::eventually(
        Duration::from_secs(60),
        "a submission broadcast and not yet included",
        || async {
            // The latest event of each submission.
            let mut latest = std::collections::BTreeMap::new();
            for e in rig.events().await {
                latest.insert(e.id.clone(), e);
            }
            latest
                .into_values()
                .find(|e| e.status == SubmissionStatus::Pending && e.block.is_none())
        },
    )
    .await
    .unwrap();
    let snapshot: alloy::primitives::U256 = rig
        .provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    interval_mining(1).await;
    let included = rig
        .wait_event(Duration::from_secs(30), "its inclusion", |e| {
            e.id == broadcast.id && e.status == SubmissionStatus::Pending && e.block.is_some()
        })
        .await;
    let reverted: bool = rig
        .provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    assert!(
        !rig.events()
            .await
            .iter()
            .any(|e| e.id == broadcast.id && e.status == SubmissionStatus::Success),
        "final before the reorg (the revert came too late to test anything)"
    );

    // Back to pending, then included again with the same nonce, and final.
    let dropped = rig
        .wait_event(
            Duration::from_secs(30),
            "pending again after the reorg",
            |e| {
                e.id == broadcast.id
                    && e.status == SubmissionStatus::Pending
                    && e.block.is_none()
                    && e.error
                        .as_deref()
                        .is_some_and(|m| m.contains("reorged out of block"))
            },
        )
        .await;
    assert_eq!(dropped.nonce, broadcast.nonce);
    let settled = rig
        .wait_event(
            Duration::from_secs(60),
            "the success after the reorg",
            |e| e.id == broadcast.id && e.status == SubmissionStatus::Success,
        )
        .await;
    assert_eq!(
        settled.nonce, broadcast.nonce,
        "the same nonce was sent again"
    );
    assert!(
        settled
            .tx_hashes
            .contains(&settled.tx_hash.clone().unwrap()),
        "{settled:?}"
    );
    assert!(settled.block.is_some());
    assert!(included.block.is_some());
    assert_eq!(
        oracle_devstack::metric_value(&registry, "oracle_aggregator_reorged_total", None),
        1.0
    );

    // And nothing was applied twice or skipped.
    rig.wait_event(Duration::from_secs(60), "a later success", |e| {
        e.status == SubmissionStatus::Success && e.at_ms > settled.at_ms
    })
    .await;
    rig.assert_nothing_skipped().await;
    for feed in &rig.config.feeds {
        let pair = feed.pair.to_string();
        assert_contiguous(&pair, &rig.applied_rounds(&pair).await);
    }
}

/// Waits until the chain's head reaches `at_least`; the head then.
async fn eventually_head(rig: &Rig, at_least: u64) -> u64 {
    oracle_devstack::eventually(Duration::from_secs(30), "the head", || async {
        let head = rig.provider.get_block_number().await.ok()?;
        (head >= at_least).then_some(head)
    })
    .await
    .unwrap()
}
