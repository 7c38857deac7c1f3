//! The client API on the real stack (nats-server, anvil, the services):
//! on-demand refresh through the bff (200 with the value the contract holds at
//! the returned block; 202 with the submission id while inclusion is held back;
//! 503 when no aggregator answers), the submission records rebuilt from
//! `ORACLE_SUBMISSIONS`, and `/readyz` following NATS and the chain.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::Duration;

mod rig;

use alloy::eips::BlockId;
use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::Pair;
use oracle_common::chain::OracleHub;
use oracle_common::config::Config;
use oracle_devstack::{Stack, eventually};
use rig::{StackSpec, read_sse};
use serde_json::Value;

/// The stack with one aggregator node (the quorum is tested elsewhere);
/// `edit` adjusts the config and that node.
async fn start(
    name: &str,
    edit: impl FnOnce(&mut Config, &mut oracle_devstack::nodes::NodeSpec),
) -> Stack {
    rig::stack(
        &format!("bff-api-{name}"),
        StackSpec::default(),
        |config, nodes| edit(config, &mut nodes[0]),
    )
    .await
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_through_the_bff_answers_with_what_the_chain_holds() {
    let mut stack = start("refresh", |config, _node| {
        // Only the first value and refreshes update; inclusion may take 4 s.
        for feed in config.feeds.iter_mut() {
            feed.deviation_bps = 10_000;
            feed.heartbeat = Duration::from_secs(3600);
        }
        config.bff.refresh_wait = Duration::from_secs(4);
    })
    .await;
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let hub = OracleHub::new(stack.deployment.hub, &provider);
    let pair: Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&pair, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let before = hub.latest(pair.feed_id()).call().await.unwrap().roundId;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/prices/BTC-USD/refresh", stack.bff_url);

    // 200: included, and the body is what the contract holds at its block.
    let (status, body) = call(client.post(&url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "included");
    assert_eq!(body["round"].as_u64().unwrap(), u64::from(before) + 1);
    let block = body["chain"]["block_number"].as_u64().unwrap();
    let at_block = hub
        .latest(pair.feed_id())
        .block(BlockId::number(block))
        .call()
        .await
        .unwrap();
    assert_eq!(body["price_raw"], at_block.price.to_string());
    assert_eq!(body["round"].as_u64().unwrap(), u64::from(at_block.roundId));
    let header = provider
        .get_block_by_number(block.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["chain"]["block_hash"], header.header.hash.to_string());
    let tx = body["tx_hash"].as_str().unwrap();
    let receipt = provider
        .get_transaction_receipt(tx.parse().unwrap())
        .await
        .unwrap()
        .expect("the cited transaction has a receipt");
    assert_eq!(receipt.block_number, Some(block));
    let first_id = body["submission_id"].as_str().unwrap().to_owned();

    // The round's confidence and sources come from its report on
    // ORACLE_REPORTS, attached once the bff has followed it.
    let round = body["round"].as_u64().unwrap();
    let price_url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let served = eventually(Duration::from_secs(10), "confidence attached", || async {
        let (status, b) = call(client.get(&price_url)).await;
        (status == 200 && b["round"] == round && b["confidence"].is_string()).then_some(b)
    })
    .await
    .unwrap();
    let nats = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let report = oracle_devstack::read_stream(&js, oracle_common::wire::REPORTS_STREAM)
        .await
        .iter()
        .filter_map(|b| serde_json::from_slice::<oracle_common::wire::ReportMessage>(b).ok())
        .rfind(|r| r.pair == pair && u64::from(r.round) == round)
        .expect("the round's report");
    assert_eq!(served["confidence"], report.confidence.to_string());
    let mut sources: Vec<_> = report
        .used
        .iter()
        .map(|u| u.observation.source.clone())
        .collect();
    sources.sort();
    sources.dedup();
    assert_eq!(served["num_sources"].as_u64(), Some(sources.len() as u64));

    // /v1/feeds names the adapter, and the adapter reads the same round.
    let (status, feeds) = call(client.get(format!("{}/v1/feeds", stack.bff_url))).await;
    assert_eq!(status, 200);
    let btc = feeds["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["pair"] == "BTC/USD")
        .unwrap();
    let adapter: alloy::primitives::Address = btc["adapter"].as_str().unwrap().parse().unwrap();
    let expected = stack.config.feed(&pair).unwrap().adapter.unwrap();
    assert_eq!(adapter, expected);
    let via_adapter = oracle_common::chain::FeedAdapter::new(adapter, &provider)
        .latestRoundData()
        .call()
        .await
        .unwrap();
    assert!(u64::try_from(via_adapter.roundId).unwrap() >= round);

    // 202: with mining held back, inclusion outlasts refresh_wait; the answer
    // names the submission, which succeeds once blocks are mined again.
    provider
        .raw_request::<_, ()>("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let (status, body) = call(client.post(&url).body("{}")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["pair"], "BTC/USD");
    let id = body["submission_id"]
        .as_str()
        .expect("the queued submission was seen while waiting")
        .to_owned();
    provider
        .raw_request::<_, ()>("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    provider
        .raw_request::<_, String>("evm_mine".into(), ())
        .await
        .unwrap();
    let record_url = format!("{}/v1/submissions/{id}", stack.bff_url);
    let settled = eventually(
        Duration::from_secs(30),
        "the pending submission succeeds (seen through /v1/submissions)",
        || async {
            let (status, body) = call(client.get(&record_url)).await;
            (status == 200 && body["status"] == "success").then_some(body)
        },
    )
    .await
    .unwrap();
    let steps: Vec<&str> = settled["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"queued"));
    assert!(steps.contains(&"pending"));
    assert_eq!(steps.last(), Some(&"success"));
    // The record agrees with the chain.
    let tx: alloy::primitives::B256 = settled["tx_hash"].as_str().unwrap().parse().unwrap();
    let receipt = provider
        .get_transaction_receipt(tx)
        .await
        .unwrap()
        .expect("receipt of the recorded transaction");
    assert_eq!(receipt.block_number, settled["block"].as_u64());
    // Both submissions are listed, newest first, filtered by pair and status.
    let (status, page) = call(client.get(format!(
        "{}/v1/submissions?pair=BTC-USD&status=success&limit=500",
        stack.bff_url
    )))
    .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{ids:?}");
    assert!(ids.contains(&first_id.as_str()), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(
        settled["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["pair"] == "BTC/USD")
    );

    // 503: no aggregator listens any more. Its subscription goes away with
    // its connection, a moment after the task: a request racing that is
    // answered 202 (nobody replied in time), so ask until the broker knows.
    stack.kill_service("aggregator").await;
    let (status, body) = eventually(Duration::from_secs(60), "503 no_aggregator", || async {
        let (status, body) = call(client.post(&url)).await;
        (status != 202).then_some((status, body))
    })
    .await
    .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("no_aggregator")),
        "{body}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_unready_when_nats_or_the_chain_stops() {
    let mut stack = start("readyz", |_, _| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/readyz", stack.bff_url);
    let wait_for = |want: u16, what: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            eventually(Duration::from_secs(30), what, || async {
                let (status, body) = call(client.get(&url)).await;
                (status == want).then_some(body)
            })
            .await
            .unwrap()
        }
    };
    let ready = wait_for(200, "ready once a feed is on chain").await;
    assert_eq!(ready["status"], "ready");

    stack.stop_nats().await;
    let body = wait_for(503, "unready without NATS").await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["nats"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["chain"]["ok"], true, "{body}");

    stack.restart_nats().await.unwrap();
    wait_for(200, "ready again once NATS is back").await;

    stack.stop_anvil().await;
    let body = wait_for(503, "unready without the chain").await;
    assert_eq!(body["checks"]["chain"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["nats"]["ok"], true, "{body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retries_a_failed_submission_with_the_admin_token() {
    // A sender without ether: every submission fails and the feeds park
    // after one automatic retry.
    const UNFUNDED: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
    let stack = start("admin-retry", |config, node| {
        node.sender_key = oracle_common::config::Secret::new(UNFUNDED);
        config.aggregator.retry_limit = 1;
        config.bff.admin_token = Some(oracle_common::config::Secret::new("op-t0ken"));
    })
    .await;
    let client = reqwest::Client::new();
    let bff = stack.bff_url.clone();
    let parked = |pair: &str| {
        oracle_devstack::metric_value(
            &stack.registries.aggregators["node-1"],
            "oracle_aggregator_parked",
            Some(pair),
        )
    };
    eventually(Duration::from_secs(60), "BTC/USD parked", || async {
        (parked("BTC/USD") == 1.0).then_some(())
    })
    .await
    .unwrap();
    // The newest failed submission carrying BTC/USD, as the bff lists it.
    let failed = eventually(Duration::from_secs(10), "the failure listed", || {
        let url = format!("{bff}/v1/submissions?status=failed&pair=BTC-USD&limit=1");
        let client = client.clone();
        async move {
            let (status, page) = call(client.get(url)).await;
            (status == 200).then_some(())?;
            page["submissions"][0]["id"].as_str().map(str::to_owned)
        }
    })
    .await
    .unwrap();
    let retry_url = format!("{bff}/v1/admin/submissions/{failed}/retry");

    // No token, a wrong token: 401, and nothing is retried.
    let (status, body) = call(client.post(&retry_url)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = call(client.post(&retry_url).bearer_auth("op-t0ken-")).await;
    assert_eq!(status, 401);
    assert_eq!(
        parked("BTC/USD"),
        1.0,
        "an unauthorized call changes nothing"
    );

    // Fund the sender, retry with the token: a new submission succeeds and
    // records what it retried; the feed is un-parked.
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let sender: alloy::signers::local::PrivateKeySigner = UNFUNDED.parse().unwrap();
    provider
        .raw_request::<_, ()>(
            "anvil_setBalance".into(),
            (sender.address(), "0x8AC7230489E80000"), // 10 ether
        )
        .await
        .unwrap();
    let (status, body) = call(client.post(&retry_url).bearer_auth("op-t0ken")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retry_of"], failed.as_str());
    assert_eq!(body["status"], "success", "{body}");
    let new_id = body["submission_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, failed);
    assert_eq!(parked("BTC/USD"), 0.0);
    let record = eventually(Duration::from_secs(10), "the retry recorded", || {
        let url = format!("{bff}/v1/submissions/{new_id}");
        let client = client.clone();
        async move {
            let (status, body) = call(client.get(url)).await;
            (status == 200 && body["status"] == "success").then_some(body)
        }
    })
    .await
    .unwrap();
    assert_eq!(record["retry_of"], failed.as_str());
    let hub = OracleHub::new(stack.deployment.hub, &provider);
    let pair: Pair = "BTC/USD".parse().unwrap();
    assert!(hub.latest(pair.feed_id()).call().await.unwrap().roundId >= 1);

    // Only failed submissions, and only once: 409 otherwise.
    let (status, body) = call(client.post(&retry_url).bearer_auth("op-t0ken")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = call(
        client
            .post(format!("{bff}/v1/admin/submissions/{new_id}/retry"))
            .bearer_auth("op-t0ken"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_client_gets_new_rounds_throttled_and_an_error_event_on_shutdown() {
    // Every simulator move is a deviation: rounds land about every second.
    let stack = start("stream", |config, _node| {
        for feed in config.feeds.iter_mut() {
            feed.deviation_bps = 1;
        }
        config.bff.chain_poll = Duration::from_millis(200);
    })
    .await;
    let client = reqwest::Client::new();
    let bad = call(client.get(format!("{}/v1/stream?pairs=DOGE-USD", stack.bff_url))).await;
    assert_eq!((bad.0, bad.1["code"].as_str()), (404, Some("unknown_pair")));
    let bad = call(client.get(format!("{}/v1/stream?throttle_ms=soon", stack.bff_url))).await;
    assert_eq!(
        (bad.0, bad.1["code"].as_str()),
        (400, Some("invalid_parameter"))
    );

    let throttle = Duration::from_millis(2500);
    let response = client
        .get(format!(
            "{}/v1/stream?pairs=BTC-USD&throttle_ms={}",
            stack.bff_url,
            throttle.as_millis()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(read_sse(response, tx));
    let mut prices = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while prices.len() < 5 {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("five price events within a minute")
            .expect("the stream stays open");
        assert_eq!(e.event, "price", "{e:?}");
        prices.push(e);
    }
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let hub = OracleHub::new(stack.deployment.hub, &provider);
    let pair: Pair = "BTC/USD".parse().unwrap();
    let mut coalesced = false;
    for (i, e) in prices.iter().enumerate() {
        assert_eq!(e.data["pair"], "BTC/USD");
        // Each event is what the hub held at the block it cites.
        let block = e.data["chain"]["block_number"].as_u64().unwrap();
        let on_chain = hub
            .latest(pair.feed_id())
            .block(BlockId::number(block))
            .call()
            .await
            .unwrap();
        assert_eq!(e.data["round"].as_u64(), Some(u64::from(on_chain.roundId)));
        assert_eq!(e.data["price_raw"], on_chain.price.to_string());
        if i > 0 {
            let prev = &prices[i - 1];
            let (r0, r1) = (
                prev.data["round"].as_u64().unwrap(),
                e.data["round"].as_u64().unwrap(),
            );
            assert!(r1 > r0, "rounds only move forward: {r0} then {r1}");
            coalesced |= r1 > r0 + 1;
            // The server spaces events by the throttle; allow loopback jitter.
            let gap = e.at - prev.at;
            assert!(
                gap >= throttle.mul_f64(0.8),
                "events {} ms apart, throttle {} ms",
                gap.as_millis(),
                throttle.as_millis()
            );
        }
    }
    assert!(
        coalesced,
        "rounds land faster than the throttle, so some are coalesced away: {:?}",
        prices
            .iter()
            .map(|e| e.data["round"].clone())
            .collect::<Vec<_>>()
    );

    // Stopping the server ends the stream with an error event, not silently.
    stack.stop().await;
    let mut last = None;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        last = Some(e);
    }
    let last = last.expect("an event before the stream closed");
    assert_eq!(last.event, "error", "{last:?}");
    assert_eq!(last.data["code"], "shutting_down");
    reader.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_invalidates_the_cached_value() {
    // Only the first value and refreshes update the chain.
    let stack = start("reorg", |config, _node| {
        for feed in config.feeds.iter_mut() {
            feed.deviation_bps = 10_000;
            feed.heartbeat = Duration::from_secs(3600);
        }
        config.bff.chain_poll = Duration::from_millis(100);
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let round_served = || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let (status, body) = call(client.get(url)).await;
            (status == 200).then(|| body["round"].as_u64()).flatten()
        }
    };
    eventually(Duration::from_secs(30), "round 1 served", || async {
        (round_served().await? == 1).then_some(())
    })
    .await
    .unwrap();
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let snapshot: alloy::primitives::U256 = provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    let (status, body) = call(client.post(format!("{url}/refresh"))).await;
    assert_eq!((status, body["round"].as_u64()), (200, Some(2)), "{body}");
    eventually(
        Duration::from_secs(10),
        "round 2 served from the cache",
        || async { (round_served().await? == 2).then_some(()) },
    )
    .await
    .unwrap();

    // Drop the block that stored round 2 and build a longer chain without it.
    let reverted: bool = provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    for _ in 0..3 {
        provider
            .raw_request::<_, String>("evm_mine".into(), ())
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(10), "round 1 served again", || async {
        (round_served().await? == 1).then_some(())
    })
    .await
    .unwrap();
    let reorgs =
        oracle_devstack::metric_value(&stack.registries.bff, "oracle_bff_reorgs_total", None);
    assert!(reorgs >= 1.0, "the cache counted the reorg");
    let hits = oracle_common::telemetry::render(&stack.registries.bff);
    assert!(
        hits.contains(r#"oracle_bff_cache_requests_total{result="hit"}"#),
        "latest reads are served from the cache: {hits}"
    );
    stack.stop().await;
}

/// What a new user found by trying the API (issue 13), on the real stack:
/// a block before the feed's first round is a 404 `no_data`; a history range
/// above the head is an empty page (the handler used to underflow and drop
/// the connection); paging re-reads no chunk of logs; the latest signed
/// report carries calldata the hub accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_new_user_tries_is_answered_as_documented() {
    let stack = start("new-user", |_, _| {}).await;
    let pair: Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&pair, 2, Duration::from_secs(60))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let base = &stack.bff_url;
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let head = provider.get_block_number().await.unwrap();

    let (status, body) = call(client.get(format!("{base}/v1/prices/BTC-USD?block=1"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("no_data")),
        "{body}"
    );

    let above = head + 1_000;
    let (status, body) =
        call(client.get(format!("{base}/v1/prices/BTC-USD/history?from={above}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rounds"].as_array().unwrap().len(), 0, "{body}");
    let (status, body) =
        call(client.get(format!("{base}/v1/prices/BTC-USD/history?from=10&to=5"))).await;
    assert_eq!(
        (status, body["rounds"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );

    // Two pages of one round each: the second reuses the chunk the first read.
    let misses = || async {
        oracle_devstack::metric_value(
            &stack.registries.bff,
            "oracle_bff_history_chunks_total",
            Some("miss"),
        )
    };
    let (status, first) = call(client.get(format!(
        "{base}/v1/prices/BTC-USD/history?limit=1&to={head}"
    )))
    .await;
    assert_eq!(status, 200, "{first}");
    let after_first = misses().await;
    assert!(after_first >= 1.0, "the first page read the chain");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more than one round")
        .to_owned();
    let (status, second) = call(client.get(format!(
        "{base}/v1/prices/BTC-USD/history?limit=1&to={head}&cursor={cursor}"
    )))
    .await;
    assert_eq!(status, 200, "{second}");
    assert!(
        second["rounds"][0]["round"].as_u64() < first["rounds"][0]["round"].as_u64(),
        "{first} then {second}"
    );
    assert_eq!(misses().await, after_first, "page 2 re-read the chain");

    // The latest report: its calldata, sent as a call to the hub, is accepted.
    let report = eventually(
        Duration::from_secs(30),
        "a signed report with calldata",
        || async {
            let (status, b) = call(client.get(format!("{base}/v1/reports/BTC-USD/latest"))).await;
            (status == 200 && b["calldata"]["submit"].is_string()).then_some(b)
        },
    )
    .await
    .unwrap();
    assert_eq!(report["pair"], "BTC/USD");
    assert!(
        !report["sources"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let data: alloy::primitives::Bytes = report["calldata"]["update_and_read"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let call_request = alloy::rpc::types::TransactionRequest::default()
        .to(stack.deployment.hub)
        .input(data.into());
    let answer = provider.call(call_request).await.unwrap();
    use alloy::sol_types::SolCall;
    let value = OracleHub::updateAndReadCall::abi_decode_returns(&answer).unwrap();
    // The report is the newest signed one: the hub holds it or stores it now.
    assert!(
        u64::from(value.roundId) >= report["round"].as_u64().unwrap(),
        "{value:?} for {report}"
    );
    if u64::from(value.roundId) == report["round"].as_u64().unwrap() {
        assert_eq!(
            value.price.to_string(),
            report["price_scaled"].as_str().unwrap()
        );
    }
    stack.stop().await;
}

/// A stalled chain node (anvil frozen with SIGSTOP): the latest price is
/// answered within a second from the last verified value, marked
/// `node_reachable: false`; a past block is a prompt 503
/// `chain_unavailable`; `/readyz` is unready; all recover when it thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_chain_node_is_answered_within_a_second() {
    let stack = start("stalled-chain", |_, _| {}).await;
    let pair: Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&pair, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = stack.bff_url.clone();
    let before = eventually(Duration::from_secs(10), "the round served", || async {
        let (status, b) = call(client.get(format!("{base}/v1/prices/BTC-USD"))).await;
        (status == 200).then_some(b)
    })
    .await
    .unwrap();
    assert_eq!(before["node_reachable"], true);

    stack.pause_anvil();
    let marked = eventually(
        Duration::from_secs(20),
        "served marked unreachable",
        || async {
            let started = std::time::Instant::now();
            let (status, b) = call(client.get(format!("{base}/v1/prices/BTC-USD"))).await;
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "answered in {took:?}: {b}");
            (status == 200 && b["node_reachable"] == false).then_some((b, took))
        },
    )
    .await
    .unwrap();
    println!("stalled node: answered in {:?}: {}", marked.1, marked.0);
    assert!(marked.0["round"].as_u64() >= before["round"].as_u64());
    let started = std::time::Instant::now();
    let (status, body) = call(client.get(format!("{base}/v1/prices/BTC-USD?block=2"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("chain_unavailable")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (status, body) = call(client.get(format!("{base}/readyz"))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["chain"]["ok"], false, "{body}");

    stack.resume_anvil();
    eventually(Duration::from_secs(20), "verified again", || async {
        let (status, b) = call(client.get(format!("{base}/v1/prices/BTC-USD"))).await;
        (status == 200 && b["node_reachable"] == true).then_some(())
    })
    .await
    .unwrap();
    stack.stop().await;
}
