//! Restart safety and failover of aggregator nodes on real nats-server and
//! anvil: a node stopped abruptly after broadcasting a transaction and before
//! its receipt settles that submission from the chain when it comes back and
//! carries on with nothing applied twice; a standby takes over within the
//! lease TTL; repeated failures park a feed; a nonce taken by another
//! transaction is noticed while waiting; and a restart never broadcasts again
//! reports the hub would refuse as too old.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod rig;

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::wire::{SubmissionEvent, SubmissionStatus, WireMessage};
use oracle_devstack::eventually;
use prometheus::Registry;
use rig::{Rig, RigOptions, assert_contiguous, successes};
use tokio_util::sync::CancellationToken;

/// Waits until a restarted node settles `pending` as a success, through one of
/// the transactions it had broadcast.
async fn settled_after_restart(rig: &Rig, pending: &SubmissionEvent) {
    let settled = rig
        .wait_event(
            Duration::from_secs(20),
            "the pending submission settled after restart",
            |e| e.id == pending.id && e.status == SubmissionStatus::Success,
        )
        .await;
    assert!(
        pending
            .tx_hashes
            .iter()
            .any(|h| Some(h) == settled.tx_hash.as_ref())
    );
}

/// Waits for a successful submission that takes a pair of `after` to a later
/// round, then checks that the hub never skipped a report. Returns it.
async fn carries_on_after(rig: &Rig, after: &SubmissionEvent) -> SubmissionEvent {
    let later = rig
        .wait_event(Duration::from_secs(60), "a later submission", |e| {
            e.status == SubmissionStatus::Success
                && e.id != after.id
                && e.reports.iter().any(|r| {
                    after
                        .reports
                        .iter()
                        .any(|p| p.pair == r.pair && r.round > p.round)
                })
        })
        .await;
    rig.assert_nothing_skipped().await;
    later
}

/// Every feed's applied rounds run 1, 2, 3… on chain.
async fn assert_all_contiguous(rig: &Rig) {
    for feed in &rig.config.feeds {
        let pair = feed.pair.to_string();
        let rounds = rig.applied_rounds(&pair).await;
        assert!(!rounds.is_empty(), "{pair}: nothing applied");
        assert_contiguous(&pair, &rounds);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_broadcast_and_receipt_then_restarted() {
    let rig = Rig::start("restart", RigOptions::fetchers()).await;
    rig.set_automine(false).await; // hold transactions in the mempool
    let stop = CancellationToken::new();
    let (_, first) = rig.run_node_with(rig.node_config(0), &stop);
    let pending = rig
        .wait_event(Duration::from_secs(30), "a pending submission", |e| {
            e.status == SubmissionStatus::Pending
        })
        .await;
    // The crash: the task stops where it is, between broadcast and receipt.
    first.abort();
    let _ = first.await;
    assert!(
        !rig.events()
            .await
            .iter()
            .any(|e| e.id == pending.id && e.status == SubmissionStatus::Success),
        "settled before the crash?"
    );
    // The transaction is mined while no node runs.
    rig.mine_held().await;
    rig.run_node(0);
    settled_after_restart(&rig, &pending).await;
    let later = carries_on_after(&rig, &pending).await;
    for r in &later.reports {
        let onchain = rig.hub().latest(r.pair.feed_id()).call().await.unwrap();
        assert!(onchain.roundId >= r.round);
    }
    assert_all_contiguous(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_dies() {
    // Three nodes, two signatures per batch: one may die.
    let options = RigOptions {
        fetchers: true,
        nodes: 3,
        threshold: Some(2),
        block_time: None,
    };
    let rig = Rig::start_with("failover", options, |c| {
        c.aggregator.lease_ttl = Duration::from_secs(2);
    })
    .await;
    let mut running = Vec::new();
    for i in 0..3 {
        let stop = CancellationToken::new();
        let (registry, task) = rig.run_node_with(rig.node_config(i), &stop);
        running.push((rig.nodes[i].name.clone(), registry, task, stop));
    }
    let first = rig
        .wait_event(Duration::from_secs(30), "a first submission", |e| {
            e.status == SubmissionStatus::Success
        })
        .await;
    let leader = first.aggregator.clone();
    let gauge = |r: &Registry| oracle_devstack::metric_value(r, "oracle_aggregator_leader", None);
    let leaders: f64 = running.iter().map(|(_, r, _, _)| gauge(r)).sum();
    assert_eq!(leaders, 1.0, "exactly one leader");
    // Only the leader submits; the others signed.
    assert!(rig.events().await.iter().all(|e| e.aggregator == leader));
    assert_eq!(first.signers.len(), 2);

    let dead = running.iter().position(|(n, ..)| *n == leader).unwrap();
    let (_, _, task, _) = running.remove(dead);
    task.abort(); // no clean release: the lease must expire
    let killed = std::time::Instant::now();
    let standby = eventually(
        Duration::from_secs(10),
        "a standby taking the lease",
        || async {
            running
                .iter()
                .find(|(_, r, _, _)| gauge(r) == 1.0)
                .map(|(n, ..)| n.clone())
        },
    )
    .await
    .unwrap();
    let takeover = killed.elapsed();
    println!("{standby} leading {takeover:?} after the leader died (lease TTL 2 s)");
    assert!(
        takeover < Duration::from_secs(2),
        "takeover took {takeover:?}"
    );
    let taken = rig
        .wait_event(
            Duration::from_secs(40),
            "a submission by the new leader",
            |e| e.aggregator == standby && e.status == SubmissionStatus::Success,
        )
        .await;
    println!(
        "the new leader submitted {:?} after the leader died",
        killed.elapsed()
    );
    rig.assert_nothing_skipped().await;
    for r in &taken.reports {
        assert!(
            rig.hub()
                .latest(r.pair.feed_id())
                .call()
                .await
                .unwrap()
                .roundId
                >= r.round
        );
    }
    assert_all_contiguous(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_park_the_feed_for_an_operator() {
    let rig = Rig::start_with("parked", RigOptions::fetchers(), |c| {
        c.aggregator.retry_limit = 2;
    })
    .await;
    // A sender with no ether: every submission fails (insufficient funds).
    let mut config = rig.node_config(0);
    config.aggregator.sender_key = oracle_common::config::Secret::new(
        "0x1111111111111111111111111111111111111111111111111111111111111111",
    );
    let (registry, _task) = rig.run_node_with(config, &rig.shutdown.child_token());
    let parked = |r: &Registry, pair: &str| {
        oracle_devstack::metric_value(r, "oracle_aggregator_parked", Some(pair))
    };
    eventually(Duration::from_secs(30), "BTC/USD parked", || async {
        (parked(&registry, "BTC/USD") == 1.0).then_some(())
    })
    .await
    .unwrap();
    let failed_with_btc = |events: &[SubmissionEvent]| {
        events
            .iter()
            .filter(|e| {
                e.status == SubmissionStatus::Failed
                    && e.reports.iter().any(|r| r.pair.to_string() == "BTC/USD")
            })
            .count()
    };
    let all = rig.events().await;
    let failures = failed_with_btc(&all);
    assert_eq!(failures, 3, "retry_limit 2: the first try and two retries");
    assert!(
        all.iter()
            .filter(|e| e.status == SubmissionStatus::Failed)
            .all(|e| e.error.is_some())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        failed_with_btc(&rig.events().await),
        failures,
        "a parked feed is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_left_queued_is_marked_failed_on_start() {
    let rig = Rig::start("queued", RigOptions::fetchers()).await;
    // What a crash right after recording `queued` (before sending) leaves behind.
    oracle_common::streams::ensure_submissions_stream(&rig.js, &rig.config.nats)
        .await
        .unwrap();
    let left = SubmissionEvent::queued(
        "1763700000000-deadbeef".into(),
        (
            rig.config.chains[0].name.clone(),
            rig.config.chains[0].chain_id,
        ),
        "node-1".into(),
        "0x0000000000000000000000000000000000000001".into(),
        vec![oracle_common::wire::SubmittedReport {
            pair: "BTC/USD".parse().unwrap(),
            feed_index: 0,
            round: 1,
            price_scaled: "9700000000000".into(),
            observed_at: oracle_common::now_ms() / 1000,
        }],
        None,
    );
    rig.js
        .publish(
            oracle_common::wire::submission_subject(&left.id),
            left.encode().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    rig.run_node(0);
    let failed = rig
        .wait_event(
            Duration::from_secs(20),
            "the queued submission marked failed",
            |e| e.id == left.id && e.status == SubmissionStatus::Failed,
        )
        .await;
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("abandoned"),
        "{failed:?}"
    );
    // And the feed is updated normally afterwards, from round 1.
    rig.wait_event(Duration::from_secs(30), "a successful first round", |e| {
        e.status == SubmissionStatus::Success
            && e.reports
                .iter()
                .any(|r| r.pair.to_string() == "BTC/USD" && r.round == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_arbitrary_moments_nothing_applied_twice_nothing_lost() {
    let rig = Rig::start_with("chaos", RigOptions::fetchers(), |c| {
        c.aggregator.lease_ttl = Duration::from_secs(1);
        for feed in c.feeds.iter_mut() {
            feed.heartbeat = Duration::from_secs(2); // plenty of submissions to interrupt
        }
    })
    .await;
    // Kill and restart five times at arbitrary points of the cycle.
    for i in 0..5u64 {
        let stop = CancellationToken::new();
        let (_, task) = rig.run_node_with(rig.node_config(0), &stop);
        tokio::time::sleep(Duration::from_millis(2_300 + 370 * i)).await;
        task.abort();
        let _ = task.await;
    }
    rig.run_node(0);
    // Let the last run settle what the kills left and make progress.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut last: std::collections::BTreeMap<String, SubmissionEvent> = Default::default();
    for e in rig.events().await {
        last.insert(e.id.clone(), e);
    }
    let unfinished: Vec<_> = last
        .values()
        .filter(|e| {
            matches!(
                e.status,
                SubmissionStatus::Queued | SubmissionStatus::Pending
            )
        })
        .map(|e| (&e.id, e.status))
        .collect();
    // At most the one in flight right now.
    assert!(
        unfinished.len() <= 1,
        "unfinished submissions left: {unfinished:?}"
    );
    for feed in &rig.config.feeds {
        let pair = feed.pair.to_string();
        let mut rounds: Vec<u32> = last
            .values()
            .filter(|e| e.status == SubmissionStatus::Success)
            .inspect(|e| {
                assert!(
                    e.skipped.is_empty(),
                    "the hub skipped {:?} in {}",
                    e.skipped,
                    e.id
                )
            })
            .flat_map(|e| {
                e.reports
                    .iter()
                    .filter(|r| r.pair == feed.pair)
                    .map(|r| r.round)
            })
            .collect();
        rounds.sort();
        assert!(
            rounds.len() >= 3,
            "{pair}: only {} successful rounds",
            rounds.len()
        );
        // Contiguous from 1: every round applied exactly once, none skipped,
        // in the record and on chain.
        assert_contiguous(&pair, &rounds);
        let applied = rig.applied_rounds(&pair).await;
        assert_contiguous(&pair, &applied);
        assert!(
            applied.len() >= rounds.len(),
            "{pair}: chain {applied:?}, recorded {rounds:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_aggregator_process_between_broadcast_and_receipt() {
    let rig = Rig::start("sigkill", RigOptions::fetchers()).await;
    rig.set_automine(false).await;
    let mut first = rig.spawn_node(0, 1, &[]);
    let pending = rig
        .wait_event(Duration::from_secs(30), "a pending submission", |e| {
            e.status == SubmissionStatus::Pending
        })
        .await;
    first.kill_now().await; // SIGKILL: no cleanup, no lease release
    rig.mine_held().await;
    let mut second = rig.spawn_node(0, 2, &[]);
    settled_after_restart(&rig, &pending).await;
    carries_on_after(&rig, &pending).await;
    second.stop(Duration::from_secs(5)).await;
    assert_all_contiguous(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_receipt_before_the_acks_loses_nothing() {
    let rig = Rig::start("sigkill-ack", RigOptions::fetchers()).await;
    let mut first = rig.spawn_node(0, 1, &[]);
    // Killed just after a success is recorded: the observations delivered to
    // it since its last evaluation are not acknowledged.
    let done = rig
        .wait_event(Duration::from_secs(30), "a successful submission", |e| {
            e.status == SubmissionStatus::Success
        })
        .await;
    first.kill_now().await;
    let mut stream = rig
        .js
        .get_stream(oracle_common::wire::OBS_STREAM)
        .await
        .unwrap();
    let published_before_kill = stream.info().await.unwrap().state.last_sequence;

    let mut second = rig.spawn_node(0, 2, &[]);
    // Nothing lost: every observation published before the kill gets
    // acknowledged by the new process, at the latest when the ones the dead
    // process held are delivered again (ack wait 10 s).
    let name = rig.nodes[0].name.clone();
    eventually(
        oracle_aggregator::ACK_WAIT + Duration::from_secs(10),
        "every earlier observation acknowledged",
        || async {
            let stream = rig
                .js
                .get_stream(oracle_common::wire::OBS_STREAM)
                .await
                .ok()?;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer(&name).await.ok()?;
            let info = consumer.info().await.ok()?;
            (info.ack_floor.stream_sequence >= published_before_kill).then_some(())
        },
    )
    .await
    .unwrap();
    // Nothing applied twice: rounds keep going up by one, none skipped.
    carries_on_after(&rig, &done).await;
    second.stop(Duration::from_secs(5)).await;
    assert_all_contiguous(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_taken_by_another_transaction_is_noticed_while_waiting() {
    // A long receipt timeout: noticing must not wait for it.
    let rig = Rig::start_with("nonce-taken", RigOptions::fetchers(), |c| {
        c.aggregator.receipt_timeout = Duration::from_secs(60);
    })
    .await;
    rig.set_automine(false).await;
    rig.run_node(0);
    let pending = rig
        .wait_event(Duration::from_secs(30), "a pending submission", |e| {
            e.status == SubmissionStatus::Pending
        })
        .await;
    let nonce = pending.nonce.unwrap();
    // Someone else with the node's sender key takes that nonce (a plain
    // transfer paying far more), and it is mined.
    let sender: alloy::signers::local::PrivateKeySigner =
        rig.nodes[0].sender_key.expose().parse().unwrap();
    let me = sender.address();
    let wallet = ProviderBuilder::new()
        .wallet(EthereumWallet::from(sender))
        .connect_http(rig.config.chains[0].rpc_urls[0].parse().unwrap());
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_to(me)
        .with_nonce(nonce)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(200_000_000_000)
        .with_max_priority_fee_per_gas(100_000_000_000);
    let other = wallet.send_transaction(tx).await.unwrap();
    let other_hash = *other.tx_hash();
    rig.mine_held().await;
    let mined = std::time::Instant::now();
    let failed = rig
        .wait_event(
            Duration::from_secs(15),
            "the submission marked failed",
            |e| e.id == pending.id && e.status == SubmissionStatus::Failed,
        )
        .await;
    println!(
        "marked failed {:?} after the other transaction was mined",
        mined.elapsed()
    );
    assert!(
        mined.elapsed() < Duration::from_secs(15),
        "noticed only after {:?}",
        mined.elapsed()
    );
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("used by another transaction"),
        "{failed:?}"
    );
    assert!(
        rig.provider
            .get_transaction_receipt(other_hash)
            .await
            .unwrap()
            .is_some(),
        "the other transaction is the one mined"
    );
    // The node carries on with the next nonce.
    let later = rig
        .wait_event(Duration::from_secs(30), "a later success", |e| {
            e.status == SubmissionStatus::Success && e.nonce.is_some_and(|n| n > nonce)
        })
        .await;
    assert!(later.skipped.is_empty(), "{later:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_broadcasts_again_reports_older_than_the_hub_allows() {
    let rig = Rig::start_with("stale-reconcile", RigOptions::fetchers(), |c| {
        for feed in c.feeds.iter_mut() {
            feed.max_report_age = Duration::from_secs(5);
        }
    })
    .await;
    rig.set_automine(false).await;
    let stop = CancellationToken::new();
    let (_, first) = rig.run_node_with(rig.node_config(0), &stop);
    let pending = rig
        .wait_event(Duration::from_secs(30), "a pending submission", |e| {
            e.status == SubmissionStatus::Pending
        })
        .await;
    first.abort(); // the crash
    let _ = first.await;
    // The node forgets the transaction (so a re-broadcast would show), and
    // the reports grow older than the hub's 5 s bound.
    rig.provider
        .raw_request::<_, ()>("anvil_dropAllTransactions".into(), ())
        .await
        .unwrap();
    let newest = pending.reports.iter().map(|r| r.observed_at).max().unwrap();
    eventually(Duration::from_secs(20), "the reports to age", || async {
        (oracle_common::now_ms() / 1000 > newest + 6).then_some(())
    })
    .await
    .unwrap();
    rig.set_automine(true).await;
    rig.run_node(0);
    let abandoned = rig
        .wait_event(
            Duration::from_secs(20),
            "the stale submission abandoned",
            |e| e.id == pending.id && e.status == SubmissionStatus::Failed,
        )
        .await;
    assert!(
        abandoned
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("max report age"),
        "{abandoned:?}"
    );
    // Fresh reports follow, with the abandoned nonce.
    let fresh = rig
        .wait_event(Duration::from_secs(30), "a fresh submission", |e| {
            e.status == SubmissionStatus::Success && e.id != pending.id
        })
        .await;
    assert_eq!(fresh.nonce, pending.nonce, "the abandoned nonce is reused");
    assert!(fresh.skipped.is_empty(), "{fresh:?}");
    // The stale transaction was never broadcast again.
    for hash in &pending.tx_hashes {
        let receipt = rig
            .provider
            .get_transaction_receipt(hash.parse().unwrap())
            .await
            .unwrap();
        assert!(receipt.is_none(), "{hash} was broadcast again and mined");
    }
    assert!(
        successes(&rig.events().await)
            .iter()
            .all(|e| e.id != pending.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_cleanly_returns_ok_and_hands_the_lease_over_at_once() {
    let options = RigOptions {
        fetchers: true,
        nodes: 2,
        threshold: Some(1),
        block_time: None,
    };
    let rig = Rig::start("clean-stop", options).await;
    let leading =
        |r: &Registry| oracle_devstack::metric_value(r, "oracle_aggregator_leader", None) == 1.0;
    // Over and over (the background tasks once raced the stop).
    for i in 0..5 {
        let node = i % 2;
        let stop = CancellationToken::new();
        let (registry, task) = rig.run_node_with(rig.node_config(node), &stop);
        let started = std::time::Instant::now();
        eventually(Duration::from_secs(10), "leading", || async {
            leading(&registry).then_some(())
        })
        .await
        .unwrap();
        if i > 0 {
            // The previous node released the lease: no wait for it to expire
            // (entries live 3 s with the default 6 s TTL).
            assert!(
                started.elapsed() < Duration::from_millis(2_500),
                "took the lease {:?} after start",
                started.elapsed()
            );
        }
        stop.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("stops within its grace")
            .unwrap();
        assert_eq!(stopped, Ok(()), "run {i} of {}", rig.nodes[node].name);
    }
}
