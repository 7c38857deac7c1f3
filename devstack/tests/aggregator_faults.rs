//! The aggregator on its worst days, on real nats-server and anvil: an
//! exchange whose clock runs an hour ahead, a feed paused on the hub in the
//! middle of a batch, primaries that fail or lie while fallbacks stand by,
//! and a node killed while it holds observations it had not acknowledged.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod rig;

use std::time::Duration;

use oracle_common::wire::{OBS_STREAM, SkipReason, SkippedReport, SubmissionStatus, WireMessage};
use oracle_devstack::metric_value;
use oracle_devstack::simulator::Faults;
use rig::{Rig, RigOptions, assert_contiguous, observation, publish};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_dated_an_hour_ahead_does_not_freeze_the_feed() {
    let rig = Rig::start("future", RigOptions::fetchers()).await;
    let node = rig.run_node(0);
    let before = rig.wait_round("BTC/USD", 1, Duration::from_secs(30)).await;
    // Bitstamp (a primary that stamps its data, in its every-market answer
    // too) now says it is an hour later; and an observation dated an hour
    // ahead reaches the stream directly.
    rig.simulator.set_faults(
        &"bitstamp".parse().unwrap(),
        Faults {
            clock_offset_ms: 3_600_000,
            ..Faults::default()
        },
    );
    let ahead = observation(
        "BTC/USD",
        "kraken",
        9_700_000,
        oracle_common::now_ms() + 3_600_000,
    );
    publish(&rig.js, &ahead).await;
    // The feed keeps moving: three more rounds (dev: 10 bps deviation, 30 s heartbeat).
    rig.wait_round("BTC/USD", before + 3, Duration::from_secs(60))
        .await;
    // The fetchers refuse the lying clock; the window refuses the future.
    assert!(
        metric_value(
            &rig.fetchers,
            "oracle_fetchers_requests_total",
            Some("future_timestamp")
        ) > 0.0,
        "the fetchers published bitstamp's future-dated quotes"
    );
    assert!(
        metric_value(
            &node,
            "oracle_aggregator_future_observations_total",
            Some("kraken")
        ) >= 1.0,
        "the node did not count the future observation"
    );
    let now_s = oracle_common::now_ms() / 1000;
    let onchain = rig
        .hub()
        .latest("BTC/USD".parse::<oracle_common::Pair>().unwrap().feed_id())
        .call()
        .await
        .unwrap();
    assert!(
        u64::from(onchain.observedAt) <= now_s + 2,
        "the chain holds a future observation time"
    );
    assert_contiguous("BTC/USD", &rig.applied_rounds("BTC/USD").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_skipped_by_the_hub_is_blamed_on_its_own_feed() {
    let rig = Rig::start("skipped", RigOptions::fetchers()).await;
    // BTC/USD is paused on the hub before the first batch: its round 1 is
    // skipped while ETH/USD's round 1 in the same batch applies.
    let owner: alloy::signers::local::PrivateKeySigner =
        oracle_devstack::deploy::DEV_OWNER_KEY.parse().unwrap();
    let owned = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(owner))
        .connect_http(rig.config.chains[0].rpc_urls[0].parse().unwrap());
    let hub = oracle_common::chain::OracleHub::new(rig.deployment.hub, &owned);
    let btc: oracle_common::Pair = "BTC/USD".parse().unwrap();
    hub.setFeedPaused(btc.feed_id(), true)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let metrics = rig.run_node(0);
    let both = rig
        .wait_event(Duration::from_secs(30), "a batch of both feeds", |e| {
            e.status == SubmissionStatus::Success && e.reports.len() == 2
        })
        .await;
    assert_eq!(
        both.skipped,
        vec![SkippedReport {
            feed_index: 0,
            pair: btc.clone(),
            round: 1,
            reason: SkipReason::FeedPaused
        }],
        "{both:?}"
    );
    assert!(both.applied(&"ETH/USD".parse().unwrap()));
    assert!(!both.applied(&btc));
    rig.wait_round("ETH/USD", 1, Duration::from_secs(30)).await;
    let believed =
        |pair: &str| metric_value(&metrics, "oracle_aggregator_onchain_round", Some(pair));
    assert_eq!(rig.round("BTC/USD").await, 0, "BTC/USD is paused");
    assert_eq!(believed("BTC/USD"), 0.0, "the node believes BTC/USD landed");
    assert!(believed("ETH/USD") >= 1.0, "ETH/USD landed");
    assert!(
        metric_value(
            &metrics,
            "oracle_aggregator_rejected_total",
            Some("FeedPaused")
        ) >= 1.0,
        "the skip is counted with its reason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_stand_in_for_primaries_that_fail_or_lie() {
    let rig = Rig::start("fallback-outlier", RigOptions::fetchers()).await;
    let metrics = rig.run_node(0);
    let before = rig.wait_round("BTC/USD", 1, Duration::from_secs(30)).await;
    // Two of BTC/USD's four primaries answer 500, a third quotes 5% off; eight
    // healthy fallbacks stand by.
    for (source, faults) in [
        (
            "kraken",
            Faults {
                status: Some(500),
                ..Faults::default()
            },
        ),
        (
            "binance",
            Faults {
                status: Some(500),
                ..Faults::default()
            },
        ),
        (
            "bitstamp",
            Faults {
                outlier_bps: 500,
                ..Faults::default()
            },
        ),
    ] {
        rig.simulator.set_faults(&source.parse().unwrap(), faults);
    }
    // The feed keeps updating (dev heartbeat 30 s, deviation 10 bps), on three
    // or more sources, the outlier never among the used ones.
    let after = rig
        .wait_round("BTC/USD", before + 1, Duration::from_secs(20))
        .await;
    rig.wait_round("BTC/USD", after + 3, Duration::from_secs(60))
        .await;
    assert!(
        metric_value(&metrics, "oracle_aggregator_sources", Some("BTC/USD")) >= 3.0,
        "the feed runs below its quorum"
    );
    assert!(
        metric_value(
            &metrics,
            "oracle_aggregator_fetch_requests_total",
            Some("BTC/USD")
        ) >= 1.0
    );
    let reports: Vec<oracle_common::wire::ReportMessage> =
        oracle_devstack::read_stream(&rig.js, oracle_common::wire::REPORTS_STREAM)
            .await
            .iter()
            .filter_map(|b| oracle_common::wire::ReportMessage::decode(b).ok())
            .filter(|r| r.pair.to_string() == "BTC/USD" && r.round > after)
            .collect();
    assert!(!reports.is_empty());
    for r in &reports {
        assert!(
            r.used.len() >= 3,
            "round {} used {} sources",
            r.round,
            r.used.len()
        );
        assert!(
            r.used
                .iter()
                .all(|u| u.observation.source.as_str() != "bitstamp")
        );
    }
    assert_contiguous("BTC/USD", &rig.applied_rounds("BTC/USD").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_a_dead_node_held_unacknowledged_reach_its_successor() {
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt;

    // No fetchers: the only observations are the ones published here.
    let rig = Rig::start("held", RigOptions::default()).await;
    let config = rig.node_config(0);
    // A first run creates the node's durable consumer, then stops cleanly.
    let first = tokio_util::sync::CancellationToken::new();
    let (_, task) = rig.run_node_with(config.clone(), &first);
    let stream = oracle_devstack::eventually(Duration::from_secs(20), "the consumer", || async {
        let stream = rig.js.get_stream(OBS_STREAM).await.ok()?;
        stream
            .get_consumer::<pull::Config>(&config.aggregator.consumer)
            .await
            .ok()
            .map(|_| stream)
    })
    .await
    .unwrap();
    first.cancel();
    task.await.unwrap().unwrap();

    // A quorum of BTC/USD observations at a price nobody else quotes…
    let now = oracle_common::now_ms();
    let feed = &config.feeds[0];
    for source in feed.sources.iter().take(feed.min_sources) {
        publish(
            &rig.js,
            &observation("BTC/USD", source.as_str(), 9_123_456, now),
        )
        .await;
    }
    // …delivered to the node's consumer and never acknowledged: what a node
    // killed between delivery and acknowledgement leaves behind.
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&config.aggregator.consumer)
        .await
        .unwrap();
    let mut held = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut count = 0;
    while let Some(m) = held.next().await {
        m.unwrap();
        count += 1;
    }
    assert_eq!(count, feed.min_sources, "the held observations");

    // Its successor aggregates them at once.
    let started = std::time::Instant::now();
    rig.run_node(0);
    rig.wait_round("BTC/USD", 1, Duration::from_secs(8)).await;
    println!(
        "round 1 from the held observations {:?} after the restart",
        started.elapsed()
    );
    let stored = rig
        .hub()
        .latest(feed.pair.feed_id())
        .call()
        .await
        .unwrap()
        .price;
    assert_eq!(stored, 9_123_456_000_000, "the held observations' median");
}
