//! The update policy on the real stack, driven through the simulator's
//! faults: a heartbeat with frozen prices, a deviation when the market moves,
//! an outlier venue that does not move the on-chain price, and no update (with
//! a metric) when the quorum is lost.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

mod rig;

use alloy::providers::ProviderBuilder;
use oracle_common::chain::OracleHub;
use oracle_common::wire::{REPORTS_STREAM, ReportMessage};
use oracle_common::{Pair, SourceId};
use oracle_devstack::simulator::Faults;
use oracle_devstack::{Stack, eventually};
use rig::StackSpec;
use rust_decimal::Decimal;

async fn reports(js: &async_nats::jetstream::Context) -> Vec<ReportMessage> {
    oracle_devstack::read_stream(js, REPORTS_STREAM)
        .await
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect()
}

fn all_venues(stack: &Stack, faults: Faults) {
    for id in stack.config.sources.keys() {
        stack.simulator.set_faults(id, faults.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_deviation_outliers_and_quorum_loss() {
    let stack = rig::stack("policy", StackSpec::default(), |config, _| {
        for feed in config.feeds.iter_mut() {
            feed.heartbeat = Duration::from_secs(4);
            feed.deviation_bps = 20;
        }
    })
    .await;
    let nats = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let pair: Pair = "BTC/USD".parse().unwrap();
    let btc = |rs: Vec<ReportMessage>| {
        rs.into_iter()
            .filter(|r| r.pair == pair)
            .collect::<Vec<_>>()
    };

    // Heartbeat: with every price frozen nothing deviates, yet a round comes
    // every heartbeat.
    all_venues(
        &stack,
        Faults {
            freeze: true,
            ..Faults::default()
        },
    );
    let start = btc(reports(&js).await).len();
    let beats = eventually(Duration::from_secs(20), "two heartbeat rounds", || async {
        let hb: Vec<ReportMessage> = btc(reports(&js).await)
            .into_iter()
            .skip(start)
            .filter(|r| r.reason == oracle_common::wire::UpdateReason::Heartbeat)
            .collect();
        (hb.len() >= 2).then_some(hb)
    })
    .await
    .unwrap();
    let gap = beats[1].computed_at_ms - beats[0].computed_at_ms;
    assert!(
        (3_500..6_000).contains(&gap),
        "heartbeat rounds {gap} ms apart (heartbeat 4 s)"
    );

    // Deviation: the whole market moves 200 bps (far beyond the random walk
    // since the freeze); an update follows at once.
    let moved_at = oracle_common::now_ms();
    all_venues(
        &stack,
        Faults {
            freeze: true,
            outlier_bps: 200,
            ..Faults::default()
        },
    );
    let dev = eventually(Duration::from_secs(10), "a deviation round", || async {
        btc(reports(&js).await).into_iter().find(|r| {
            r.reason == oracle_common::wire::UpdateReason::Deviation && r.computed_at_ms > moved_at
        })
    })
    .await
    .unwrap();
    assert!(
        dev.computed_at_ms - moved_at < 3_000,
        "deviation noticed after {} ms",
        dev.computed_at_ms - moved_at
    );

    // One venue far off: rejected as an outlier, the price stays with the others.
    let kraken: SourceId = "kraken".parse().unwrap();
    all_venues(
        &stack,
        Faults {
            freeze: true,
            ..Faults::default()
        },
    );
    stack.simulator.set_faults(
        &kraken,
        Faults {
            freeze: true,
            outlier_bps: 1_000,
            ..Faults::default()
        },
    );
    let off_at = oracle_common::now_ms();
    let with_outlier = eventually(
        Duration::from_secs(15),
        "a round with kraken rejected",
        || async {
            btc(reports(&js).await).into_iter().find(|r| {
                r.computed_at_ms > off_at
                    && r.rejected.iter().any(|x| x.observation.source == kraken)
            })
        },
    )
    .await
    .unwrap();
    let honest: Vec<Decimal> = with_outlier
        .used
        .iter()
        .map(|u| u.observation.price)
        .collect();
    let (lo, hi) = (*honest.iter().min().unwrap(), *honest.iter().max().unwrap());
    assert!(
        with_outlier
            .used
            .iter()
            .all(|u| u.observation.source != kraken)
    );
    assert!(lo <= with_outlier.price && with_outlier.price <= hi);
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let hub = OracleHub::new(stack.deployment.hub, &provider);
    let onchain = eventually(Duration::from_secs(10), "the round on chain", || async {
        let l = hub.latest(pair.feed_id()).call().await.ok()?;
        (l.roundId >= with_outlier.round).then_some(l)
    })
    .await
    .unwrap();
    let scaled = |d: Decimal| oracle_common::price::to_scaled(d, 8).unwrap();
    assert!(
        scaled(lo) <= onchain.price && onchain.price <= scaled(hi),
        "the outlier moved the chain"
    );

    // Quorum lost: every venue down, no update (not even the heartbeat), and
    // the metric counts the evaluations without quorum.
    let quorum_failures = || {
        oracle_devstack::metric_value(
            &stack.registries.aggregators["node-1"],
            "oracle_aggregator_quorum_failures_total",
            None,
        )
    };
    all_venues(
        &stack,
        Faults {
            status: Some(503),
            ..Faults::default()
        },
    );
    // Observations already in the window stay usable for max_age (5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before_round = hub.latest(pair.feed_id()).call().await.unwrap().roundId;
    let before_failures = quorum_failures();
    tokio::time::sleep(Duration::from_secs(5)).await; // longer than the heartbeat
    assert_eq!(
        hub.latest(pair.feed_id()).call().await.unwrap().roundId,
        before_round,
        "updated without quorum"
    );
    assert!(
        quorum_failures() > before_failures,
        "no quorum failure counted"
    );
    stack.stop().await;
}
