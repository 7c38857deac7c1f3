//! End to end on real processes: nats-server, anvil, the deployed hub, the
//! simulator and the three services. The price the bff serves must be the
//! median of what the simulator served, read back from the chain at a block
//! that exists on the node.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

mod rig;

use alloy::eips::BlockId;
use alloy::providers::{Provider, ProviderBuilder};
use oracle_common::chain::OracleHub;
use oracle_common::wire::{
    REPORTS_STREAM, RefreshReply, RefreshRequest, ReportMessage, SUBMISSIONS_STREAM,
    SubmissionEvent, SubmissionStatus,
};
use oracle_common::{Pair, SourceId};
use oracle_devstack::eventually;
use rig::StackSpec;
use rust_decimal::Decimal;
use serde_json::Value;

/// Whether `target` is the median of one price per source, for some choice of
/// at least `min` sources and of one candidate price per chosen source.
fn is_median_of_some_choice(
    candidates: &BTreeMap<SourceId, Vec<Decimal>>,
    min: usize,
    target: Decimal,
) -> bool {
    let sources: Vec<&Vec<Decimal>> = candidates.values().collect();
    let n = sources.len();
    for mask in 1u32..(1 << n) {
        if (mask.count_ones() as usize) < min {
            continue;
        }
        let chosen: Vec<&Vec<Decimal>> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| sources[i])
            .collect();
        // Odometer over one candidate per chosen source.
        let mut idx = vec![0usize; chosen.len()];
        loop {
            let mut values: Vec<Decimal> = chosen.iter().zip(&idx).map(|(c, &i)| c[i]).collect();
            values.sort();
            let mid = values.len() / 2;
            let median = if values.len() % 2 == 1 {
                values[mid]
            } else {
                (values[mid - 1] + values[mid]) / Decimal::TWO
            };
            if median == target {
                return true;
            }
            let mut k = 0;
            loop {
                if k == idx.len() {
                    break;
                }
                idx[k] += 1;
                if idx[k] < chosen[k].len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == idx.len() {
                break;
            }
        }
    }
    false
}

/// The block of the hub's first `PriceUpdated` event.
async fn first_report_block(provider: &impl Provider, hub: alloy::primitives::Address) -> u64 {
    use alloy::sol_types::SolEvent;
    let filter = alloy::rpc::types::Filter::new()
        .address(hub)
        .event_signature(OracleHub::PriceUpdated::SIGNATURE_HASH)
        .from_block(0);
    let logs = provider.get_logs(&filter).await.unwrap();
    logs.iter()
        .filter_map(|l| l.block_number)
        .min()
        .expect("at least one report landed")
}

async fn get_json(client: &reqwest::Client, url: String) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bff_serves_the_median_of_served_prices_read_back_from_chain() {
    // The real quorum: four nodes, three signatures per batch.
    let spec = StackSpec {
        nodes: 4,
        ..StackSpec::default()
    };
    let stack = rig::stack("thin-path", spec, |_, _| {}).await;

    let client = reqwest::Client::new();
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    // Round 2 or later: the first value, then at least one update driven by
    // the moving simulator (deviation) or the heartbeat (30 s in dev.toml).
    let body: Value = eventually(
        Duration::from_secs(90),
        "a second BTC/USD round from the bff",
        || async {
            let r = client.get(&url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            let body: Value = r.json().await.ok()?;
            (body["round"].as_u64()? >= 2).then_some(body)
        },
    )
    .await
    .expect("bff serves BTC/USD");

    let pair: Pair = "BTC/USD".parse().unwrap();
    let price: Decimal = body["price"].as_str().unwrap().parse().unwrap();
    let price_raw: i128 = body["price_raw"].as_str().unwrap().parse().unwrap();
    let round = body["round"].as_u64().unwrap();
    let observed_at = body["observed_at"].as_u64().unwrap();
    let block_number = body["chain"]["block_number"].as_u64().unwrap();
    let block_hash = body["chain"]["block_hash"].as_str().unwrap().to_owned();
    assert_eq!(body["pair"], "BTC/USD");
    assert_eq!(body["decimals"], 8);
    assert_eq!(body["stale"], false);
    assert_eq!(body["chain"]["chain_id"], 31337);
    assert_eq!(
        body["chain"]["contract"].as_str().unwrap().to_lowercase(),
        stack.deployment.hub.to_string().to_lowercase()
    );

    // The block exists on the node, with that hash.
    let provider =
        ProviderBuilder::new().connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap());
    let block = provider
        .get_block_by_number(block_number.into())
        .await
        .unwrap()
        .expect("the block the bff cites exists");
    assert_eq!(block.header.hash.to_string(), block_hash);

    // Reading at that block again, alone or with every feed, gives the same
    // value and reference; before the hub existed, or a block that does not
    // exist yet, is a 404 with its own code, not a guess or a 5xx; between
    // deployment and the first report there is no data.
    let bff = stack.bff_url.clone();
    let get = |path: String| get_json(&client, format!("{bff}{path}"));
    let (status, again) = get(format!("/v1/prices/BTC-USD?block={block_number}")).await;
    assert_eq!(status, 200);
    // (confidence and num_sources come from the bff's report index, which may
    // catch up between two reads; the chain part must be identical.)
    let chain_part = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("confidence");
            o.remove("num_sources");
        }
        v
    };
    assert_eq!(
        chain_part(&again),
        chain_part(&body),
        "a pinned read is reproducible"
    );
    let (status, all) = get(format!("/v1/prices?block={block_number}")).await;
    assert_eq!(status, 200);
    assert_eq!(all["chain"]["block_hash"], block_hash.as_str());
    let listed = all["prices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pair"] == "BTC/USD")
        .expect("BTC/USD in the list");
    assert_eq!(chain_part(listed), chain_part(&body));
    assert!(
        all["prices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["chain"]["block_number"] == block_number),
        "one snapshot: {all}"
    );
    // History from the hub's events, newest first, up to that block: its
    // newest round is the one served, and pages chain through the cursor.
    let (status, hist) = get(format!("/v1/prices/BTC-USD/history?to={block_number}")).await;
    assert_eq!(status, 200, "{hist}");
    let rounds: Vec<u64> = hist["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert_eq!(rounds.first(), Some(&round), "{hist}");
    assert!(
        rounds.windows(2).all(|w| w[0] == w[1] + 1),
        "every round, newest first: {rounds:?}"
    );
    assert_eq!(rounds.last(), Some(&1));
    assert_eq!(hist["rounds"][0]["price_raw"], body["price_raw"]);
    assert_eq!(hist["rounds"][0]["price"], body["price"]);
    let (_, page1) = get(format!(
        "/v1/prices/BTC-USD/history?to={block_number}&limit=1"
    ))
    .await;
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("more than one round")
        .to_owned();
    let (_, page2) = get(format!(
        "/v1/prices/BTC-USD/history?to={block_number}&limit=1&cursor={cursor}"
    ))
    .await;
    assert_eq!(page1["rounds"][0]["round"].as_u64(), Some(round));
    assert_eq!(page2["rounds"][0]["round"].as_u64(), Some(round - 1));
    let (status, genesis) = get("/v1/prices/BTC-USD?block=0".into()).await;
    assert_eq!(
        (status, genesis["code"].as_str()),
        (404, Some("not_deployed"))
    );
    let (status, genesis) = get("/v1/prices?block=0".into()).await;
    assert_eq!(
        (status, genesis["code"].as_str()),
        (404, Some("not_deployed"))
    );
    let first = first_report_block(&provider, stack.deployment.hub).await - 1;
    let (status, early) = get(format!("/v1/prices/BTC-USD?block={first}")).await;
    // Before the feed's first round: 404 `no_data` naming the block (issue 13).
    assert_eq!((status, early["code"].as_str()), (404, Some("no_data")));
    assert!(
        early["message"]
            .as_str()
            .unwrap()
            .contains(&first.to_string()),
        "{early}"
    );
    let (status, early_all) = get(format!("/v1/prices?block={first}")).await;
    assert_eq!(status, 200);
    assert!(early_all["prices"].as_array().unwrap().is_empty());
    assert!(
        early_all["no_data"]
            .as_array()
            .unwrap()
            .contains(&Value::from("BTC/USD"))
    );
    let (status, future) = get(format!(
        "/v1/prices/BTC-USD?block={}",
        block_number + 1_000_000
    ))
    .await;
    assert_eq!(
        (status, future["code"].as_str()),
        (404, Some("no_such_block"))
    );

    // The contract holds exactly that value at that block.
    let hub = OracleHub::new(stack.deployment.hub, &provider);
    let on_chain = hub
        .latest(pair.feed_id())
        .block(BlockId::number(block_number))
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain.price, price_raw);
    assert_eq!(u64::from(on_chain.roundId), round);
    assert_eq!(Decimal::from_i128_with_scale(price_raw, 8), price);

    // The value is the median of prices the simulator served for BTC/USD in
    // the aggregation window before the observation time.
    let feed = stack.config.feed(&pair).unwrap().clone();
    let to_ms = observed_at * 1000 + 2_000;
    let from_ms = (observed_at * 1000).saturating_sub(feed.max_age.as_millis() as u64 + 2_000);
    let mut candidates: BTreeMap<SourceId, Vec<Decimal>> = BTreeMap::new();
    for s in stack.simulator.served() {
        if s.pair == pair && (from_ms..=to_ms).contains(&s.at_ms) {
            let list = candidates.entry(s.source).or_default();
            if !list.contains(&s.price) {
                list.push(s.price);
            }
        }
    }
    assert!(
        candidates.len() >= feed.min_sources,
        "the simulator served fewer than {} venues in the window: {candidates:?}",
        feed.min_sources
    );
    assert!(
        is_median_of_some_choice(&candidates, feed.min_sources, price),
        "on-chain {price} is not the median of any choice of served prices {candidates:?}"
    );

    // The report on ORACLE_REPORTS explains the value: its used observations'
    // median is the on-chain price, and its submission went queued -> pending
    // -> success on ORACLE_SUBMISSIONS, with the transaction's block.
    let nats = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let read_all = |name: &'static str| oracle_devstack::read_stream(&js, name);
    let reports: Vec<ReportMessage> = read_all(REPORTS_STREAM)
        .await
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let report = reports
        .iter()
        .find(|r| r.pair == pair && u64::from(r.round) == round)
        .expect("the report of the served round");
    assert_eq!(report.price_scaled, price_raw.to_string());
    let mut used: Vec<Decimal> = report.used.iter().map(|u| u.observation.price).collect();
    used.sort();
    let mid = used.len() / 2;
    let recomputed = if used.len() % 2 == 1 {
        used[mid]
    } else {
        (used[mid - 1] + used[mid]) / Decimal::TWO
    };
    assert_eq!(recomputed.round_dp(8), price.round_dp(8));
    assert!(report.used.len() >= feed.min_sources);

    // The round is readable on chain a moment before the aggregator records
    // `success` (after the receipt): wait for the final event.
    let events: Vec<SubmissionEvent> = eventually(
        Duration::from_secs(10),
        "the submission's final event",
        || async {
            let events: Vec<SubmissionEvent> = read_all(SUBMISSIONS_STREAM)
                .await
                .iter()
                .map(|b| <SubmissionEvent as oracle_common::wire::WireMessage>::decode(b).unwrap())
                .filter(|e| e.id == report.submission_id)
                .collect();
            events
                .iter()
                .any(|e| {
                    matches!(
                        e.status,
                        SubmissionStatus::Success | SubmissionStatus::Failed
                    )
                })
                .then_some(events)
        },
    )
    .await
    .unwrap();
    let statuses: Vec<SubmissionStatus> = events.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        vec![
            SubmissionStatus::Queued,
            SubmissionStatus::Pending,
            SubmissionStatus::Success
        ]
    );
    let success = events.last().unwrap();
    let receipt = provider
        .get_transaction_receipt(success.tx_hash.as_deref().unwrap().parse().unwrap())
        .await
        .unwrap()
        .expect("the recorded transaction exists");
    assert_eq!(receipt.block_number, success.block);
    assert_eq!(
        events[1].tx_hash, success.tx_hash,
        "pending announced the hash that was mined"
    );
    assert!(events[1].raw_tx.is_some() && events[1].nonce.is_some());

    // Replay: every report so far recomputes from ORACLE_OBS and matches the chain.
    let lines = oracle_aggregator::replay::replay(&stack.config, 0, oracle_common::now_ms())
        .await
        .unwrap();
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        assert!(line.ok, "{line:?}");
        assert_eq!(line.on_chain.as_ref(), Some(&line.recorded), "{line:?}");
    }
    // A forged report (a real one with another price) is caught.
    let mut forged = report.clone();
    forged.price_scaled = (price_raw + 1).to_string();
    forged.computed_at_ms = oracle_common::now_ms();
    js.publish(
        oracle_common::wire::report_subject(&pair),
        serde_json::to_vec(&forged).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let lines = oracle_aggregator::replay::replay(
        &stack.config,
        forged.computed_at_ms,
        oracle_common::now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(lines.len(), 1);
    assert!(!lines[0].ok);
    assert!(
        lines[0].problems.iter().any(|p| p.contains("recomputed")),
        "{:?}",
        lines[0]
    );
    assert!(
        lines[0]
            .problems
            .iter()
            .any(|p| p.contains("the chain holds")),
        "{:?}",
        lines[0]
    );

    stack.stop().await;
}

#[test]
fn median_search_finds_only_true_medians() {
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let a: SourceId = "a".parse().unwrap();
    let b: SourceId = "b".parse().unwrap();
    let c: SourceId = "c".parse().unwrap();
    let candidates = BTreeMap::from([
        (a, vec![d("100"), d("101")]),
        (b, vec![d("103")]),
        (c, vec![d("110")]),
    ]);
    assert!(is_median_of_some_choice(&candidates, 2, d("103")));
    assert!(
        is_median_of_some_choice(&candidates, 2, d("102")),
        "mean of 101 and 103"
    );
    assert!(!is_median_of_some_choice(&candidates, 2, d("104")));
    assert!(!is_median_of_some_choice(&candidates, 3, d("102")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_refresh_updates_the_chain_regardless_of_deviation() {
    let stack = rig::stack("refresh", StackSpec::default(), |config, _| {
        // Only the first value and refreshes may update: no deviation can
        // reach 100%, and the heartbeat is an hour away.
        for feed in config.feeds.iter_mut() {
            feed.deviation_bps = 10_000;
            feed.heartbeat = Duration::from_secs(3600);
        }
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

    let nats = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let ask = |body: Vec<u8>| {
        let nats = nats.clone();
        async move {
            let msg = tokio::time::timeout(
                Duration::from_secs(20),
                nats.request("oracle.refresh", body.into()),
            )
            .await
            .expect("a reply in time")
            .unwrap();
            serde_json::from_slice::<RefreshReply>(&msg.payload).unwrap()
        }
    };
    let started = std::time::Instant::now();
    let reply = ask(serde_json::to_vec(&RefreshRequest {
        v: 1,
        pair: pair.clone(),
        chain: String::new(),
    })
    .unwrap())
    .await;
    assert_eq!(reply.error, None, "{reply:?}");
    let round = reply.round.unwrap();
    assert_eq!(round, before + 1, "a refresh adds exactly one round");
    let block = reply.block.unwrap();
    let at_block = hub
        .latest(pair.feed_id())
        .block(BlockId::number(block))
        .call()
        .await
        .unwrap();
    assert_eq!(at_block.roundId, round);
    assert_eq!(at_block.price.to_string(), reply.price_scaled.unwrap());
    assert!(reply.tx_hash.is_some() && reply.submission_id.is_some());
    println!("refresh answered in {:?}", started.elapsed());

    // Errors have stable codes.
    let unknown = ask(serde_json::to_vec(&RefreshRequest {
        v: 1,
        pair: "DOGE/USD".parse().unwrap(),
        chain: String::new(),
    })
    .unwrap())
    .await;
    assert_eq!(
        unknown.error,
        Some(oracle_common::wire::ErrorCode::UnknownPair)
    );
    let elsewhere = ask(serde_json::to_vec(&RefreshRequest {
        v: 1,
        pair: pair.clone(),
        chain: "mars".into(),
    })
    .unwrap())
    .await;
    assert_eq!(
        elsewhere.error,
        Some(oracle_common::wire::ErrorCode::BadRequest),
        "{elsewhere:?}"
    );
    assert!(elsewhere.message.unwrap_or_default().contains("mars"));
    let bad = ask(b"not json".to_vec()).await;
    assert_eq!(bad.error, Some(oracle_common::wire::ErrorCode::BadRequest));
    stack.stop().await;
}
