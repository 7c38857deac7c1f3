//! The fetchers against the exchange simulator and a real nats-server: rate
//! limits under a 429 storm, a dead source, fallbacks, redundant replicas,
//! on-demand triggers, and the probe. Each test asserts on what the simulator
//! received and what landed in the `ORACLE_OBS` stream.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

mod rig;

use oracle_common::config::RateLimit;
use oracle_common::wire::{FetchReply, FetchRequest, Observation, WireMessage};
use oracle_common::{SourceId, now_ms};
use oracle_devstack::eventually;
use oracle_devstack::simulator::Faults;
use rig::fetchers::{POLL, feed, fetcher_rig, id, metric, pair};
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_is_obeyed_budget_never_exceeded_retry_after_respected() {
    let feeds = vec![
        feed("BTC/USD", &["binance"], &[], 1),
        feed("ETH/USD", &["binance"], &[], 1),
        feed("SOL/USD", &["binance"], &[], 1),
    ];
    let mut rig = fetcher_rig("storm", &[("binance", "binance")], feeds).await;
    // 3 feeds every 500 ms want 6 requests/s; the budget allows 4.
    rig.config
        .sources
        .get_mut(&id("binance"))
        .unwrap()
        .rate_limit = Some(RateLimit {
        requests: 4,
        per: Duration::from_secs(1),
    });
    rig.config.fetchers.max_attempts = 3;
    rig.config.fetchers.breaker_failures = 1_000; // keep the breaker out of this test
    rig.spawn_fetchers(rig.config.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let storm = Faults {
        status: Some(429),
        retry_after_s: Some(2),
        ..Faults::default()
    };
    assert!(rig.sim.set_faults(&id("binance"), storm));
    tokio::time::sleep(Duration::from_secs(5)).await;
    rig.sim.set_faults(&id("binance"), Faults::default());
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let reqs = rig.requests("binance");
    let times: Vec<u64> = reqs.iter().map(|r| r.at_ms).collect();
    // The budget: at most 4 in any second (arrival times; 10 ms allowed for
    // the time a request spends on loopback).
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| **u < t + 990).count();
        assert!(
            in_window <= 4,
            "{in_window} requests within a second from {t}: {times:?}"
        );
    }
    // Retry-After: after a 429 (plus 150 ms for requests already in flight),
    // nothing until its 2 s have passed.
    let storms: Vec<u64> = reqs
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at_ms)
        .collect();
    assert!(storms.len() >= 2, "the storm happened: {reqs:?}");
    for t in &storms {
        let early: Vec<&u64> = times
            .iter()
            .filter(|u| **u > t + 150 && **u < t + 1_900)
            .collect();
        assert!(
            early.is_empty(),
            "requests {early:?} within Retry-After of the 429 at {t}"
        );
    }
    // And it recovered.
    let last_429 = storms.iter().max().copied().unwrap();
    assert!(
        reqs.iter().any(|r| r.status == 200 && r.at_ms > last_429),
        "no success after the storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_source_does_not_delay_the_others() {
    let sources = [
        ("dead", "coinbase"),
        ("kraken", "kraken"),
        ("binance", "binance"),
    ];
    let rig = fetcher_rig(
        "dead",
        &sources,
        vec![feed("BTC/USD", &["dead", "kraken", "binance"], &[], 2)],
    )
    .await;
    rig.sim.set_faults(
        &id("dead"),
        Faults {
            latency_ms: 10_000,
            ..Faults::default()
        },
    );
    rig.spawn_fetchers(rig.config.clone());
    let start = now_ms();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let end = now_ms();
    let obs = rig.observations().await;
    assert!(
        obs.iter().all(|o| o.source.as_str() != "dead"),
        "the dead source answered?"
    );
    for source in ["kraken", "binance"] {
        let mut times: Vec<u64> = obs
            .iter()
            .filter(|o| o.source.as_str() == source && o.fetched_at_ms > start + 1_000)
            .map(|o| o.fetched_at_ms)
            .collect();
        times.sort();
        let expected = ((end - start - 1_000) / POLL.as_millis() as u64) as usize;
        assert!(
            times.len() + 1 >= expected,
            "{source}: {} observations, expected about {expected}",
            times.len()
        );
        let worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        // One poll interval of delay at most: no gap beyond two intervals.
        assert!(
            worst <= 2 * POLL.as_millis() as u64,
            "{source}: a gap of {worst} ms between observations"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_are_polled_when_primaries_fail_and_dropped_when_they_recover() {
    let sources = [("p1", "coinbase"), ("p2", "kraken"), ("f1", "binance")];
    let mut rig = fetcher_rig(
        "fallback",
        &sources,
        vec![feed("BTC/USD", &["p1", "p2"], &["f1"], 2)],
    )
    .await;
    rig.config.fetchers.breaker_failures = 3;
    rig.config.fetchers.breaker_cooldown = Duration::from_millis(800);
    rig.spawn_fetchers(rig.config.clone());

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        rig.requests("f1").is_empty(),
        "fallback polled while the primaries answered"
    );

    let failed_at = now_ms();
    rig.sim.set_faults(
        &id("p1"),
        Faults {
            status: Some(500),
            ..Faults::default()
        },
    );
    let rank = eventually(
        Duration::from_secs(5),
        "an observation from the fallback",
        || async {
            rig.observations()
                .await
                .into_iter()
                .find(|o| o.source.as_str() == "f1" && o.fetched_at_ms > failed_at)
                .map(|o| o.fallback_rank)
        },
    )
    .await
    .unwrap();
    assert_eq!(rank, 1);

    let recovered_at = now_ms();
    rig.sim.set_faults(&id("p1"), Faults::default());
    eventually(Duration::from_secs(5), "p1 answering again", || async {
        rig.requests("p1")
            .iter()
            .any(|r| r.status == 200 && r.at_ms > recovered_at)
            .then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(POLL).await;
    let before = rig.requests("f1").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rig.requests("f1").len(),
        before,
        "fallback still polled after the primary recovered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_produce_no_duplicate_observations() {
    let sources = [
        ("kraken", "kraken"),
        ("binance", "binance"),
        ("coinbase", "coinbase"),
    ];
    let rig = fetcher_rig(
        "replicas",
        &sources,
        vec![feed("BTC/USD", &["kraken", "binance", "coinbase"], &[], 2)],
    )
    .await;
    let mut a = rig.config.clone();
    a.fetchers.id = "fetchers-a".into();
    let mut b = rig.config.clone();
    b.fetchers.id = "fetchers-b".into();
    let ra = rig.spawn_fetchers(a);
    let rb = rig.spawn_fetchers(b);
    let start = now_ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let end = now_ms();

    let obs = rig.observations().await;
    let mut keys = BTreeSet::new();
    for o in &obs {
        assert!(
            keys.insert(o.msg_id()),
            "two messages with id {}",
            o.msg_id()
        );
    }
    // Sources without a timestamp of their own: at most one per slot.
    let slots = ((end - start) / POLL.as_millis() as u64 + 2) as usize;
    for source in ["kraken", "binance"] {
        let n = obs.iter().filter(|o| o.source.as_str() == source).count();
        assert!(
            n <= slots,
            "{source}: {n} observations for {slots} slots: the replicas were not deduplicated"
        );
        assert!(n >= slots / 2, "{source}: only {n} observations");
    }
    let fetchers: BTreeSet<&str> = obs.iter().map(|o| o.fetcher.as_str()).collect();
    assert!(!fetchers.is_empty());
    // Both replicas published; the stream dropped the second copies.
    let dups = metric(&ra, "oracle_fetchers_publish_duplicates_total")
        + metric(&rb, "oracle_fetchers_publish_duplicates_total");
    assert!(
        dups > 0.0,
        "no duplicate was ever acknowledged: were both replicas publishing?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_yields_fresh_observations_within_a_second() {
    let sources = [
        ("kraken", "kraken"),
        ("binance", "binance"),
        ("coinbase", "coinbase"),
    ];
    let feeds = vec![
        feed("BTC/USD", &["kraken", "binance", "coinbase"], &[], 2),
        feed("ETH/USD", &["kraken", "binance", "coinbase"], &[], 2),
    ];
    let mut rig = fetcher_rig("trigger", &sources, feeds).await;
    rig.config.fetchers.poll_interval = Duration::from_secs(120); // no scheduled polls in the way
    rig.spawn_fetchers(rig.config.clone());

    let ask = |pair: &'static str, at: u64| {
        let client = rig.client.clone();
        async move {
            let body = FetchRequest::new(at).encode();
            let msg = tokio::time::timeout(
                Duration::from_secs(5),
                client.request(format!("oracle.fetch.{pair}"), body.into()),
            )
            .await
            .ok()?
            .ok()?;
            serde_json::from_slice::<FetchReply>(&msg.payload).ok()
        }
    };
    // Wait until the fetchers listen.
    eventually(
        Duration::from_secs(10),
        "the fetchers answering requests",
        || ask("BTC-USD", now_ms()),
    )
    .await
    .unwrap();

    let asked = now_ms();
    let started = std::time::Instant::now();
    let reply = ask("BTC-USD", asked).await.expect("a reply");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "reply after {took:?}");
    assert!(reply.quorum && reply.sources.len() >= 2, "{reply:?}");
    // Sources without their own timestamp (the Kraken and Binance tickers)
    // carry the request's time, so that replicas answering the same request
    // deduplicate. Which of them answered depends on their rate budgets; the
    // stream may also hold answers to the readiness probe above.
    let untimed: Vec<SourceId> = reply
        .sources
        .iter()
        .filter(|s| matches!(s.as_str(), "kraken" | "binance"))
        .cloned()
        .collect();
    assert!(!untimed.is_empty(), "{reply:?}");
    eventually(
        Duration::from_secs(3),
        "the triggered observations in the stream, carrying the request's time",
        || async {
            let o: Vec<Observation> = rig
                .observations()
                .await
                .into_iter()
                .filter(|o| {
                    o.pair == pair("BTC/USD")
                        && o.trigger.as_deref() == Some("on-demand")
                        && o.observed_at_ms == asked
                })
                .collect();
            untimed
                .iter()
                .all(|s| o.iter().any(|x| &x.source == s))
                .then_some(())
        },
    )
    .await
    .unwrap();

    // Concurrent requests for one pair share one cycle: one request per source.
    for (sid, _) in &sources {
        rig.sim.set_faults(
            &id(sid),
            Faults {
                latency_ms: 200,
                ..Faults::default()
            },
        );
    }
    let before: BTreeMap<&str, usize> = sources
        .iter()
        .map(|(s, _)| (*s, rig.requests(s).len()))
        .collect();
    let at = now_ms();
    let replies = futures::future::join_all((0..5).map(|_| ask("ETH-USD", at))).await;
    assert!(
        replies.iter().all(|r| r.as_ref().is_some_and(|r| r.quorum)),
        "{replies:?}"
    );
    for (sid, _) in &sources {
        assert_eq!(
            rig.requests(sid).len(),
            before[sid] + 1,
            "{sid} asked more than once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fetches_one_source_once_and_reports_errors() {
    let rig = fetcher_rig(
        "probe",
        &[("kraken", "kraken"), ("binance", "binance")],
        vec![feed("BTC/USD", &["kraken", "binance"], &[], 1)],
    )
    .await;
    let obs = oracle_fetchers::probe(&rig.config, &id("kraken"), &pair("BTC/USD"), None)
        .await
        .unwrap();
    assert_eq!(obs.source.as_str(), "kraken");
    assert_eq!(
        Some(obs.price),
        rig.sim.quote(&id("kraken"), &pair("BTC/USD"))
    );
    assert_eq!(obs.trigger.as_deref(), Some("probe"));
    assert_eq!(rig.requests("kraken").len(), 1);

    // --base-url points the source elsewhere: here at the binance venue, which
    // answers Kraken's path with 404 and the probe says why.
    let base = rig.config.sources[&id("binance")].base_url.clone();
    let err = oracle_fetchers::probe(&rig.config, &id("kraken"), &pair("BTC/USD"), Some(&base))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kraken BTC/USD"), "{err}");

    // An exchange error body reaches the operator.
    rig.sim.set_faults(
        &id("binance"),
        Faults {
            status: Some(503),
            ..Faults::default()
        },
    );
    let err = oracle_fetchers::probe(&rig.config, &id("binance"), &pair("BTC/USD"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_look_like_real_failures() {
    let rig = fetcher_rig(
        "faults",
        &[("kraken", "kraken")],
        vec![feed("BTC/USD", &["kraken"], &[], 1)],
    )
    .await;
    let mut config = rig.config.clone();
    config.fetchers.max_attempts = 1;
    let (k, btc) = (id("kraken"), pair("BTC/USD"));
    let probe_err = |faults: Faults| {
        let (config, sim, k, btc) = (config.clone(), rig.sim.clone(), k.clone(), btc.clone());
        async move {
            sim.set_faults(&k, faults);
            // A Retry-After must never add attempts: the probe ends promptly.
            let e = tokio::time::timeout(
                Duration::from_secs(10),
                oracle_fetchers::probe(&config, &k, &btc, None),
            )
            .await
            .expect("the probe did not end: retried past max_attempts?")
            .unwrap_err()
            .to_string();
            sim.set_faults(&k, Faults::default());
            e
        }
    };
    let e = probe_err(Faults {
        reset: true,
        ..Faults::default()
    })
    .await;
    assert!(e.ends_with("(connect)"), "{e}");
    let e = probe_err(Faults {
        malformed: true,
        ..Faults::default()
    })
    .await;
    assert!(e.ends_with("(malformed)"), "{e}");
    let e = probe_err(Faults {
        status: Some(503),
        ..Faults::default()
    })
    .await;
    assert!(e.ends_with("(unavailable)"), "{e}");
    let e = probe_err(Faults {
        status: Some(429),
        retry_after_s: Some(1),
        ..Faults::default()
    })
    .await;
    assert!(e.ends_with("(rate_limited)"), "{e}");
    let e = probe_err(Faults {
        latency_ms: 2_500,
        ..Faults::default()
    })
    .await; // timeout is 1 s
    assert!(e.ends_with("(timeout)"), "{e}");

    // A frozen venue keeps its price while the market moves; an outlier is off by its bps.
    let reference = rig.sim.quote(&k, &btc).unwrap();
    rig.sim.set_faults(
        &k,
        Faults {
            freeze: true,
            ..Faults::default()
        },
    );
    for _ in 0..20 {
        rig.sim.step();
    }
    let frozen = oracle_fetchers::probe(&config, &k, &btc, None)
        .await
        .unwrap();
    assert_eq!(frozen.price, reference);
    rig.sim.set_faults(
        &k,
        Faults {
            outlier_bps: 500,
            ..Faults::default()
        },
    );
    let normal = {
        rig.sim.set_faults(&k, Faults::default());
        rig.sim.quote(&k, &btc).unwrap()
    };
    rig.sim.set_faults(
        &k,
        Faults {
            outlier_bps: 500,
            ..Faults::default()
        },
    );
    let outlier = oracle_fetchers::probe(&config, &k, &btc, None)
        .await
        .unwrap()
        .price;
    let ratio = outlier / normal;
    assert!(
        ratio > Decimal::new(1049, 3) && ratio < Decimal::new(1051, 3),
        "{outlier} vs {normal}"
    );
}
