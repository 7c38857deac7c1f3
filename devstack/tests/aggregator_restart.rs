//! Restart safety and failover of the aggregator on real nats-server and
//! anvil: stopped abruptly after broadcasting a transaction and before its
//! receipt, the restarted aggregator settles that submission from the chain,
//! then carries on, and no round is applied twice; with two aggregators, the
//! standby takes over within the lease TTL when the leader dies.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::chain::OracleHub;
use oracle_common::config::Config;
use oracle_common::wire::{SUBMISSIONS_STREAM, SubmissionEvent, SubmissionStatus};
use oracle_devstack::simulator::Simulator;
use oracle_devstack::{deploy, eventually, start_anvil, start_nats, tools};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn events(js: &async_nats::jetstream::Context) -> Vec<SubmissionEvent> {
    oracle_devstack::read_stream(js, SUBMISSIONS_STREAM)
        .await
        .iter()
        .map(|b| SubmissionEvent::decode(b).unwrap())
        .collect()
}

/// Waits up to `timeout` for a recorded submission event that `matches`.
async fn wait_event(
    js: &async_nats::jetstream::Context,
    timeout: Duration,
    what: &str,
    matches: impl Fn(&SubmissionEvent) -> bool,
) -> SubmissionEvent {
    eventually(timeout, what, || async {
        events(js).await.into_iter().find(|e| matches(e))
    })
    .await
    .unwrap()
}

/// Runs an aggregator in this process until `shutdown` (a failure panics the task).
fn run_aggregator(config: &Config, shutdown: &CancellationToken) {
    let (c, s) = (config.clone(), shutdown.child_token());
    tokio::spawn(async move {
        oracle_aggregator::run(c, &Registry::new(), s)
            .await
            .unwrap()
    });
}

/// Waits until a restarted aggregator settles `pending` as a success, through
/// one of the transactions it had broadcast.
async fn settled_after_restart(js: &async_nats::jetstream::Context, pending: &SubmissionEvent) {
    let settled = wait_event(
        js,
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

/// Holds transactions in anvil's mempool (`false`) or mines them as they come.
async fn set_automine(provider: &impl Provider, on: bool) {
    provider
        .raw_request::<_, ()>("evm_setAutomine".into(), (on,))
        .await
        .unwrap();
}

/// Mines what the mempool holds now and every later transaction at once.
async fn mine_held(provider: &impl Provider) {
    set_automine(provider, true).await;
    provider
        .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
}

/// Checks that the hub skipped no report of any successful submission (a
/// skip would mean a round applied twice, or a stale one sent).
async fn assert_nothing_skipped(js: &async_nats::jetstream::Context) {
    for e in events(js)
        .await
        .iter()
        .filter(|e| e.status == SubmissionStatus::Success)
    {
        assert!(
            e.skipped.is_empty(),
            "the hub skipped reports of {}: {:?}",
            e.id,
            e.skipped
        );
    }
}

/// Waits for a successful submission that takes a pair of `after` to a later
/// round, then checks that the hub never skipped a report (no round applied
/// twice). Returns that later submission.
async fn carries_on_after(
    js: &async_nats::jetstream::Context,
    after: &SubmissionEvent,
) -> SubmissionEvent {
    let later = wait_event(js, Duration::from_secs(60), "a later submission", |e| {
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
    assert_nothing_skipped(js).await;
    later
}

struct Rig {
    config: Config,
    dir: std::path::PathBuf,
    shutdown: CancellationToken,
    js: async_nats::jetstream::Context,
    deployment: oracle_common::deploy::Deployment,
    _nats: oracle_devstack::process::ChildProcess,
    _anvil: oracle_devstack::process::ChildProcess,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nats-server, anvil with the hub, the simulator and the fetchers, from
/// config/dev.toml on free ports; aggregators are started by the tests.
async fn rig(name: &str) -> Rig {
    let dir = std::env::temp_dir().join(format!("oracle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::load(&tools::workspace_root().join("config/dev.toml")).unwrap();
    let port = || tools::free_port().unwrap();
    config.nats.url = format!("nats://127.0.0.1:{}", port());
    config.chain.rpc_url = format!("http://127.0.0.1:{}", port());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_port = listener.local_addr().unwrap().port();
    for (id, source) in config.sources.iter_mut() {
        source.base_url = format!("http://127.0.0.1:{sim_port}/{id}");
    }
    config.aggregator.receipt_timeout = Duration::from_secs(3);
    let nats = start_nats(&config.nats.url, &dir.join("nats"), &dir.join("nats.log"))
        .await
        .unwrap();
    let anvil = start_anvil(&config.chain.rpc_url, 31337, &dir.join("anvil.log"))
        .await
        .unwrap();
    let deployment = deploy::deploy(&config.chain.rpc_url, &config)
        .await
        .unwrap();
    config.chain.hub_address = Some(deployment.hub);
    let shutdown = CancellationToken::new();
    let sim = Simulator::from_config(&config);
    tokio::spawn(sim.serve(listener, Duration::from_secs(1), shutdown.clone()));
    let (c, s) = (config.clone(), shutdown.clone());
    tokio::spawn(async move { oracle_fetchers::run(c, &Registry::new(), s).await.unwrap() });
    let client = async_nats::connect(&config.nats.url).await.unwrap();
    Rig {
        config,
        dir,
        shutdown,
        js: async_nats::jetstream::new(client),
        deployment,
        _nats: nats,
        _anvil: anvil,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_broadcast_and_receipt_then_restarted() {
    let rig = rig("restart").await;
    let config = rig.config.clone();
    let js = rig.js.clone();
    let shutdown = rig.shutdown.clone();
    let deployment = rig.deployment.clone();
    // Hold transactions in the mempool.
    let provider = ProviderBuilder::new().connect_http(config.chain.rpc_url.parse().unwrap());
    set_automine(&provider, false).await;

    let (c, s) = (config.clone(), shutdown.child_token());
    let first = tokio::spawn(async move { oracle_aggregator::run(c, &Registry::new(), s).await });
    let pending = wait_event(&js, Duration::from_secs(30), "a pending submission", |e| {
        e.status == SubmissionStatus::Pending
    })
    .await;
    // The crash: the task stops where it is, between broadcast and receipt.
    first.abort();
    let _ = first.await;
    assert!(
        !events(&js)
            .await
            .iter()
            .any(|e| e.id == pending.id && e.status == SubmissionStatus::Success),
        "settled before the crash?"
    );

    // The transaction is mined while no aggregator runs.
    mine_held(&provider).await;

    run_aggregator(&config, &shutdown);
    settled_after_restart(&js, &pending).await;

    // It carries on: a later submission succeeds with the next rounds.
    let hub = OracleHub::new(deployment.hub, &provider);
    let later = carries_on_after(&js, &pending).await;
    for r in &later.reports {
        let onchain = hub.latest(r.pair.feed_id()).call().await.unwrap();
        assert!(u64::from(onchain.roundId) >= u64::from(r.round));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_dies() {
    let mut rig = rig("failover").await;
    rig.config.aggregator.lease_ttl = Duration::from_secs(2);
    let start = |id: &str| {
        let mut c = rig.config.clone();
        c.aggregator.consumer = id.to_owned();
        let registry = Registry::new();
        let (r, s) = (registry.clone(), rig.shutdown.child_token());
        (
            tokio::spawn(async move { oracle_aggregator::run(c, &r, s).await }),
            registry,
        )
    };
    let (a, ra) = start("agg-a");
    let (b, rb) = start("agg-b");
    let js = rig.js.clone();
    let first = wait_event(&js, Duration::from_secs(30), "a first submission", |e| {
        e.status == SubmissionStatus::Success
    })
    .await;
    let leader = first.aggregator.clone();
    let gauge = |r: &Registry| oracle_devstack::metric_value(r, "oracle_aggregator_leader", None);
    assert_eq!(gauge(&ra) + gauge(&rb), 1.0, "exactly one leader");
    // Only the leader submits.
    assert!(events(&js).await.iter().all(|e| e.aggregator == leader));

    let (dead, standby, standby_metrics) = if leader == "agg-a" {
        (a, "agg-b", rb)
    } else {
        (b, "agg-a", ra)
    };
    dead.abort(); // no clean release: the lease must expire
    let killed = std::time::Instant::now();
    eventually(
        Duration::from_secs(10),
        "the standby taking the lease",
        || async { (gauge(&standby_metrics) == 1.0).then_some(()) },
    )
    .await
    .unwrap();
    let takeover = killed.elapsed();
    println!("standby leading {takeover:?} after the leader died (lease TTL 2 s)");
    // Within the lease TTL.
    assert!(
        takeover < Duration::from_secs(2),
        "takeover took {takeover:?}"
    );
    let taken = wait_event(
        &js,
        Duration::from_secs(30),
        "a submission by the standby",
        |e| e.aggregator == standby && e.status == SubmissionStatus::Success,
    )
    .await;
    let took = killed.elapsed();
    println!("standby submitted {took:?} after the leader died (lease TTL 2 s)");
    // The lease expires within its TTL; the standby notices within a third of
    // it and submits at its next tick once a feed is due (heartbeat or
    // deviation in config/dev.toml), so allow the TTL plus a heartbeat.
    assert!(took < Duration::from_secs(2 + 30 + 3), "took {took:?}");
    assert_nothing_skipped(&js).await;
    let provider = ProviderBuilder::new().connect_http(rig.config.chain.rpc_url.parse().unwrap());
    let hub = OracleHub::new(rig.deployment.hub, &provider);
    for r in &taken.reports {
        assert!(hub.latest(r.pair.feed_id()).call().await.unwrap().roundId >= r.round);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_park_the_feed_for_an_operator() {
    let mut rig = rig("parked").await;
    // A sender with no ether: every submission fails (insufficient funds).
    rig.config.aggregator.sender_key = oracle_common::config::Secret::new(
        "0x1111111111111111111111111111111111111111111111111111111111111111",
    );
    rig.config.aggregator.retry_limit = 2;
    let registry = Registry::new();
    let (c, r, s) = (
        rig.config.clone(),
        registry.clone(),
        rig.shutdown.child_token(),
    );
    tokio::spawn(async move { oracle_aggregator::run(c, &r, s).await });
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
    let all = events(&rig.js).await;
    let failures = failed_with_btc(&all);
    assert_eq!(failures, 3, "retry_limit 2: the first try and two retries");
    assert!(
        all.iter()
            .filter(|e| e.status == SubmissionStatus::Failed)
            .all(|e| e.error.is_some())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        failed_with_btc(&events(&rig.js).await),
        failures,
        "a parked feed is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_left_queued_is_marked_failed_on_start() {
    let rig = rig("queued").await;
    // What a crash right after recording `queued` (before signing) leaves behind.
    oracle_common::streams::ensure_submissions_stream(&rig.js, &rig.config.nats)
        .await
        .unwrap();
    let left = SubmissionEvent::queued(
        "1763700000000-deadbeef".into(),
        "aggregator".into(),
        vec![oracle_common::wire::SubmittedReport {
            pair: "BTC/USD".parse().unwrap(),
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
    run_aggregator(&rig.config, &rig.shutdown);
    let failed = wait_event(
        &rig.js,
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
    wait_event(
        &rig.js,
        Duration::from_secs(30),
        "a successful first round",
        |e| {
            e.status == SubmissionStatus::Success
                && e.reports
                    .iter()
                    .any(|r| r.pair.to_string() == "BTC/USD" && r.round == 1)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_arbitrary_moments_nothing_applied_twice_nothing_lost() {
    let mut rig = rig("chaos").await;
    rig.config.aggregator.lease_ttl = Duration::from_secs(1);
    for feed in rig.config.feeds.iter_mut() {
        feed.heartbeat = Duration::from_secs(2); // plenty of submissions to interrupt
    }
    // Kill and restart five times at arbitrary points of the cycle.
    for i in 0..5u64 {
        let (c, s) = (rig.config.clone(), rig.shutdown.child_token());
        let task =
            tokio::spawn(async move { oracle_aggregator::run(c, &Registry::new(), s).await });
        tokio::time::sleep(Duration::from_millis(2_300 + 370 * i)).await;
        task.abort();
        let _ = task.await;
    }
    run_aggregator(&rig.config, &rig.shutdown);
    // Let the last run settle what the kills left and make progress.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let all = events(&rig.js).await;
    let mut last: std::collections::BTreeMap<String, SubmissionEvent> = Default::default();
    for e in all {
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
    let provider = ProviderBuilder::new().connect_http(rig.config.chain.rpc_url.parse().unwrap());
    let hub = OracleHub::new(rig.deployment.hub, &provider);
    for feed in &rig.config.feeds {
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
            "{}: only {} successful rounds",
            feed.pair,
            rounds.len()
        );
        // Contiguous from 1: every round applied exactly once, none skipped.
        assert_eq!(
            rounds,
            (1..=rounds.len() as u32).collect::<Vec<_>>(),
            "{}",
            feed.pair
        );
        let on_chain = hub
            .latest(feed.pair.feed_id())
            .call()
            .await
            .unwrap()
            .roundId;
        assert!(
            on_chain >= *rounds.last().unwrap(),
            "{}: chain at {on_chain}, recorded {rounds:?}",
            feed.pair
        );
    }
}

/// Starts the real `oracle-aggregator` process against the rig (run `n`,
/// logging to the rig's directory), with a 2 s lease and a 3 s receipt timeout.
fn spawn_aggregator(rig: &Rig, n: u32) -> oracle_devstack::process::ChildProcess {
    let env = vec![
        ("ORACLE__NATS__URL".to_owned(), rig.config.nats.url.clone()),
        (
            "ORACLE__CHAIN__RPC_URL".to_owned(),
            rig.config.chain.rpc_url.clone(),
        ),
        (
            "ORACLE__CHAIN__HUB_ADDRESS".to_owned(),
            rig.deployment.hub.to_string(),
        ),
        (
            "ORACLE__AGGREGATOR__RECEIPT_TIMEOUT".to_owned(),
            "3s".to_owned(),
        ),
        ("ORACLE__AGGREGATOR__LEASE_TTL".to_owned(), "2s".to_owned()),
        (
            "ORACLE__TELEMETRY__LOG_FORMAT".to_owned(),
            "json".to_owned(),
        ),
        (
            "ORACLE__AGGREGATOR__METRICS_ADDR".to_owned(),
            format!("127.0.0.1:{}", tools::free_port().unwrap()),
        ),
    ];
    oracle_devstack::process::ChildProcess::spawn(
        "oracle-aggregator",
        &aggregator_bin(),
        &[
            "--config".into(),
            tools::workspace_root()
                .join("config/dev.toml")
                .display()
                .to_string(),
        ],
        &env,
        oracle_devstack::process::Output::File(rig.dir.join(format!("aggregator-{n}.log"))),
    )
    .unwrap()
}

/// The `oracle-aggregator` binary of this workspace (scripts/test.sh builds it).
fn aggregator_bin() -> std::path::PathBuf {
    let bin = tools::debug_bin_dir().join("oracle-aggregator");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --workspace --bins` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_aggregator_process_between_broadcast_and_receipt() {
    let rig = rig("sigkill").await;
    let provider = ProviderBuilder::new().connect_http(rig.config.chain.rpc_url.parse().unwrap());
    set_automine(&provider, false).await;
    let mut first = spawn_aggregator(&rig, 1);
    let pending = wait_event(
        &rig.js,
        Duration::from_secs(30),
        "a pending submission",
        |e| e.status == SubmissionStatus::Pending,
    )
    .await;
    first.kill_now().await; // SIGKILL: no cleanup, no lease release
    mine_held(&provider).await;

    let mut second = spawn_aggregator(&rig, 2);
    settled_after_restart(&rig.js, &pending).await;
    carries_on_after(&rig.js, &pending).await;
    second.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_receipt_before_the_acks_loses_nothing() {
    let rig = rig("sigkill-ack").await;
    let mut first = spawn_aggregator(&rig, 1);
    // The moment a success is recorded, the observations of that evaluation
    // are not yet acknowledged: kill then.
    let done = wait_event(
        &rig.js,
        Duration::from_secs(30),
        "a successful submission",
        |e| e.status == SubmissionStatus::Success,
    )
    .await;
    first.kill_now().await;
    let mut stream = rig
        .js
        .get_stream(oracle_common::wire::OBS_STREAM)
        .await
        .unwrap();
    let published_before_kill = stream.info().await.unwrap().state.last_sequence;

    let mut second = spawn_aggregator(&rig, 2);
    // Nothing lost: every observation published before the kill gets
    // acknowledged by the new process (after being aggregated).
    eventually(
        Duration::from_secs(30),
        "every earlier observation acknowledged",
        || async {
            let stream = rig
                .js
                .get_stream(oracle_common::wire::OBS_STREAM)
                .await
                .ok()?;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .get_consumer(&rig.config.aggregator.consumer)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            (info.ack_floor.stream_sequence >= published_before_kill).then_some(())
        },
    )
    .await
    .unwrap();
    // Nothing applied twice: rounds keep going up by one, none skipped.
    carries_on_after(&rig.js, &done).await;
    let all = events(&rig.js).await;
    for feed in &rig.config.feeds {
        let mut rounds: Vec<u32> = all
            .iter()
            .filter(|e| e.status == SubmissionStatus::Success)
            .flat_map(|e| {
                e.reports
                    .iter()
                    .filter(|r| r.pair == feed.pair)
                    .map(|r| r.round)
            })
            .collect();
        rounds.sort();
        rounds.dedup();
        assert_eq!(
            rounds,
            (1..=rounds.len() as u32).collect::<Vec<_>>(),
            "{}",
            feed.pair
        );
    }
    second.stop(Duration::from_secs(5)).await;
}
