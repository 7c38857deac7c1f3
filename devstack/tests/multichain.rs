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
    for (i, name) in [&local, &slow].into_iter().enumerate() {
        let chain_id = stack.config.chains[i].chain_id;
        // Final once its confirmations are on top (the slow chain has one).
        let mine = eventually(Duration::from_secs(30), "a final submission", || async {
            let mine: Vec<_> = rig::events(&js)
                .await
                .into_iter()
                .filter(|e| e.status == SubmissionStatus::Success && &e.chain == name)
                .collect();
            (!mine.is_empty()).then_some(mine)
        })
        .await
        .unwrap();
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

    // The bff serves both: `/v1/chains`, and `?chain=` on the price, history
    // and stream routes, each value proven on its own chain.
    let client = reqwest::Client::new();
    let json = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", stack.bff_url);
        async move {
            let r = client.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, chains) = json("/v1/chains".into()).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = chains["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [local.as_str(), slow.as_str()]);
    assert_eq!(
        chains["chains"][1]["chain_id"],
        stack.config.chains[1].chain_id
    );
    for i in 0..2 {
        let name = stack.config.chains[i].name.clone();
        let stack = &stack;
        let served = eventually(
            Duration::from_secs(30),
            "the bff in step with the hub",
            || {
                let (json, name) = (&json, name.clone());
                async move {
                    let hub_round = round(stack, i, "BTC/USD").await;
                    let (status, body) = json(format!("/v1/prices/BTC-USD?chain={name}")).await;
                    (status == 200 && body["round"] == hub_round).then_some(body)
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(served["chain"]["name"], name.as_str());
        assert_eq!(served["chain"]["chain_id"], stack.config.chains[i].chain_id);
        let (status, history) = json(format!("/v1/prices/BTC-USD/history?chain={name}")).await;
        assert_eq!(status, 200);
        assert_eq!(history["chain"], name.as_str());
        assert!(!history["rounds"].as_array().unwrap().is_empty());
    }
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let response = client
        .get(format!(
            "{}/v1/stream?pairs=BTC-USD&chain={slow}",
            stack.bff_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reader = tokio::spawn(rig::read_sse(response, tx));
    let first = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event, "price");
    assert_eq!(first.data["chain"]["name"], slow.as_str());
    reader.abort();

    // The slow chain's node stalls: the local chain keeps getting rounds at
    // its usual pace (deviation on a moving market, or the 30 s heartbeat at
    // worst: two within 90 s).
    let paused_at = round(&stack, 1, "BTC/USD").await;
    stack.pause_chain(1);
    let r = round(&stack, 0, "BTC/USD").await;
    wait_round(&stack, 0, r + 2, Duration::from_secs(90)).await;

    // It comes back: its lane catches up.
    stack.resume_chain(1);
    wait_round(&stack, 1, paused_at + 1, Duration::from_secs(90)).await;

    // Its sender runs out of gas money there: the local chain is not
    // affected, and the node reports the slow chain's balance as zero.
    let sender: alloy::signers::local::PrivateKeySigner =
        stack.nodes[0].sender_key.expose().parse().unwrap();
    provider(&stack, 1)
        .raw_request::<_, ()>(
            "anvil_setBalance".into(),
            (sender.address(), alloy::primitives::U256::ZERO),
        )
        .await
        .unwrap();
    let r = round(&stack, 0, "BTC/USD").await;
    wait_round(&stack, 0, r + 2, Duration::from_secs(90)).await;
    eventually(
        Duration::from_secs(60),
        "the slow chain's sender balance at 0",
        || async {
            (gauge(
                &stack,
                "oracle_aggregator_signer_balance_wei",
                &[("chain", &slow)],
            ) == Some(0.0))
            .then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        gauge(
            &stack,
            "oracle_aggregator_signer_balance_wei",
            &[("chain", &local)]
        )
        .unwrap()
            > 0.0
    );

    // It stops for good: the local chain still updates, and the node says
    // which chain it cannot reach.
    stack.stop_chain(1).await;
    let r = round(&stack, 0, "BTC/USD").await;
    wait_round(&stack, 0, r + 2, Duration::from_secs(90)).await;
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

/// Waits for the hub's round of BTC/USD on the first chain to move twice,
/// checks the bff serves the new round within 10 s, and returns how
/// `/v1/chains` says the bff follows that chain's heads.
async fn bff_follows_new_rounds(stack: &Stack) -> serde_json::Value {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let served_round = || async {
        let body: serde_json::Value = client.get(&url).send().await.ok()?.json().await.ok()?;
        body["round"].as_u64()
    };
    let start = served_round().await.unwrap_or(0);
    let hub_round = wait_round(
        stack,
        0,
        u32::try_from(start).unwrap() + 2,
        Duration::from_secs(90),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the bff serving the hub's new round",
        || async { (served_round().await? >= u64::from(hub_round)).then_some(()) },
    )
    .await
    .unwrap();
    let chains: serde_json::Value = client
        .get(format!("{}/v1/chains", stack.bff_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    chains["chains"][0]["heads_via"].clone()
}

/// With polling all but off (`chain_poll` of an hour), the bff's cache still
/// follows every new round: new heads come over the websocket subscription
/// (the first poll ran at start; later rounds reach the cache by heads only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bff_follows_new_heads_over_the_websocket() {
    let stack = rig::stack("ws-heads", StackSpec::default(), |config, _| {
        config.bff.chain_poll = Duration::from_secs(3600);
    })
    .await;
    assert!(stack.config.chains[0].ws_url.is_some());
    assert_eq!(bff_follows_new_rounds(&stack).await, "websocket");
    assert_eq!(
        oracle_devstack::metric_value(
            &stack.registries.bff,
            "oracle_bff_head_subscription",
            Some(&stack.config.chains[0].name)
        ),
        1.0
    );
    stack.stop().await;
}

/// A chain without a websocket endpoint: the bff's cache follows it by
/// polling the head every `chain_poll`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_websocket_the_bff_polls() {
    let stack = rig::stack("polling", StackSpec::default(), |config, _| {
        config.chains[0].ws_url = None;
    })
    .await;
    assert!(stack.config.chains[0].ws_url.is_none());
    assert_eq!(bff_follows_new_rounds(&stack).await, "polling");
    stack.stop().await;
}

/// Forwards TCP connections from a free port to `to` until the returned
/// token is cancelled; then every connection is dropped and the port closed.
/// The counter is the connections it accepted.
async fn tcp_proxy(
    to: std::net::SocketAddr,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (token, count) = (stop.clone(), accepted.clone());
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = tokio::select! {
                _ = token.cancelled() => return,
                a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
            };
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let token = token.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                }
            });
        }
    });
    (url, stop, accepted)
}

/// A node whose first RPC URL is dead from the start uses the next one; when
/// that one dies while it runs, it moves on to the one after: rounds keep
/// coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moves_to_the_next_rpc_url_when_one_stops_answering() {
    if std::env::var("ORACLE_TEST_LOG").is_ok() {
        oracle_common::telemetry::init_tracing(&oracle_common::config::TelemetryConfig::default());
    }
    let rig = rig::Rig::start("rpc-failover", rig::RigOptions::fetchers()).await;
    let direct = rig.config.chains[0].rpc_urls[0].clone();
    let anvil: std::net::SocketAddr = direct.trim_start_matches("http://").parse().unwrap();
    let (proxy, cut, through_proxy) = tcp_proxy(anvil).await;
    let dead = format!(
        "http://127.0.0.1:{}",
        oracle_devstack::tools::free_port().unwrap()
    );
    let mut config = rig.node_config(0);
    config.chains[0].rpc_urls = vec![dead, proxy, direct];
    let stop = tokio_util::sync::CancellationToken::new();
    let (registry, _task) = rig.run_node_with(config, &stop);
    let r = rig.wait_round("BTC/USD", 2, Duration::from_secs(90)).await;
    let used = through_proxy.load(std::sync::atomic::Ordering::Relaxed);
    assert!(used > 0, "the node did not use the second URL");
    cut.cancel();
    // BTC/USD moves by deviation or at least every 30 s heartbeat.
    rig.wait_round("BTC/USD", r + 1, Duration::from_secs(90))
        .await;
    eventually(Duration::from_secs(10), "chain_up back to 1", || async {
        (oracle_devstack::metric_value(&registry, "oracle_aggregator_chain_up", None) == 1.0)
            .then_some(())
    })
    .await
    .unwrap();
    // Batches that could not even be priced while the endpoint was down are
    // not the feeds' fault: nothing is parked.
    assert_eq!(
        oracle_devstack::metric_value(&registry, "oracle_aggregator_parked", None),
        0.0
    );
    stop.cancel();
}
