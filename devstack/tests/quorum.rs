//! The signer quorum on real processes (nats-server, anvil, the simulator,
//! the fetchers, the bff and four `oracle-aggregator` nodes, hub threshold 3):
//! every node's key stays in its own process; prices flow with one node down,
//! stop with two down (the quorum-lost alert fires in a real Prometheus), and
//! resume with contiguous rounds; a leader SIGKILLed mid-submission is
//! replaced within the lease TTL with nothing applied twice; and proposals
//! crafted by a lease holder that lies get no signature from honest nodes,
//! each refusal typed and recorded.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod rig;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use oracle_common::config::Config;
use oracle_common::wire::{
    PROPOSAL_SUBJECT, Proposal, ProposalReply, ProposedReport, REPORTS_STREAM, RefusalCode,
    RefusalRecord, SCHEMA_VERSION, SubmissionStatus, UpdateReason, WireMessage,
};
use oracle_devstack::{Stack, eventually, tools};
use rig::{
    Rig, RigOptions, applied_rounds, assert_contiguous, events, observation, publish, scrape,
};

/// The stack with the four nodes of config/dev-nodes.toml as processes.
async fn start(name: &str, block_time: Option<u64>) -> Stack {
    rig::process_stack(&format!("quorum-{name}"), block_time).await
}

fn provider(stack: &Stack) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(stack.config.chains[0].rpc_urls[0].parse().unwrap())
        .erased()
}

async fn round(stack: &Stack, provider: &DynProvider, pair: &str) -> u32 {
    let pair: oracle_common::Pair = pair.parse().unwrap();
    oracle_common::chain::OracleHub::new(stack.deployment.hub, provider.clone())
        .latest(pair.feed_id())
        .call()
        .await
        .unwrap()
        .roundId
}

async fn wait_round(
    stack: &Stack,
    provider: &DynProvider,
    pair: &str,
    at_least: u32,
    timeout: Duration,
) -> u32 {
    eventually(timeout, &format!("round {at_least} of {pair}"), || async {
        let r = round(stack, provider, pair).await;
        (r >= at_least).then_some(r)
    })
    .await
    .unwrap()
}

/// The `ORACLE__…` variables of a running process, from `/proc/{pid}/environ`.
fn oracle_env(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            k.starts_with("ORACLE__")
                .then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The signer addresses the configuration `config` holds keys of.
fn signer_keys(config: &Config) -> Vec<Address> {
    let key = |k: &oracle_common::config::Secret| {
        k.expose()
            .parse::<alloy::signers::local::PrivateKeySigner>()
            .unwrap()
            .address()
    };
    let mut out: Vec<Address> = config.aggregator.signer_keys.iter().map(key).collect();
    if !config.aggregator.signer_key.is_empty() {
        out.push(key(&config.aggregator.signer_key));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_per_process_and_the_quorum_survives_one_loss_not_two() {
    let mut stack = start("flow", None).await;
    let prom_url = stack.start_prometheus(true).await.unwrap();
    let provider = provider(&stack);
    let config_path = stack.config_path().unwrap().to_owned();

    // Every node's key stays in its own process: each process's config is the
    // shared file plus its environment; the file holds no key.
    let shared = Config::load_with_env(&config_path, Vec::new()).unwrap();
    assert!(signer_keys(&shared).is_empty() && shared.aggregator.sender_key.is_empty());
    let mut seen = BTreeSet::new();
    for node in stack.nodes.clone() {
        let pid = stack.pid(&node.name).unwrap();
        let config = Config::load_with_env(&config_path, oracle_env(pid)).unwrap();
        let keys = signer_keys(&config);
        assert_eq!(
            keys,
            vec![node.signer().unwrap()],
            "{} holds {keys:?}",
            node.name
        );
        assert!(seen.insert(keys[0]), "{} shares a key", node.name);
        assert!(!config.aggregator.sender_key.is_empty());
    }
    for service in ["fetchers", "bff"] {
        let pid = stack.pid(service).unwrap();
        let config = Config::load_with_env(&config_path, oracle_env(pid)).unwrap();
        assert!(
            signer_keys(&config).is_empty(),
            "{service} holds a signer key"
        );
        assert!(
            config.aggregator.sender_key.is_empty(),
            "{service} holds a sender key"
        );
    }
    assert_eq!(
        seen,
        stack
            .deployment
            .signers
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
    );
    // And a node given a list of keys refuses to start, naming the key.
    let log = stack.data_dir.join("refused.log");
    let mut refused = oracle_devstack::process::ChildProcess::spawn(
        "oracle-aggregator-refused",
        &tools::debug_bin_dir().join("oracle-aggregator"),
        &["--config".into(), config_path.display().to_string()],
        &[(
            "ORACLE__AGGREGATOR__SIGNER_KEYS".to_owned(),
            format!(
                "[\"{}\", \"{}\"]",
                stack.nodes[0].signer_key.expose(),
                stack.nodes[1].signer_key.expose()
            ),
        )],
        oracle_devstack::process::Output::File(log.clone()),
    )
    .unwrap();
    let exited = eventually(Duration::from_secs(20), "the refusal", || {
        let done = refused.check_running().is_err();
        async move { done.then_some(()) }
    })
    .await;
    assert!(exited.is_ok(), "a node with two keys kept running");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("aggregator.signer_keys") && said.contains("exactly one signer key"),
        "{said}"
    );
    assert!(
        !said.contains(stack.nodes[0].signer_key.expose()),
        "the key was printed: {said}"
    );

    // Prices flow with all four.
    let r = wait_round(&stack, &provider, "BTC/USD", 2, Duration::from_secs(60)).await;
    let first = events(&stack_js(&stack).await)
        .await
        .into_iter()
        .find(|e| e.status == SubmissionStatus::Success)
        .unwrap();
    assert_eq!(first.signers.len(), 3, "threshold 3 of 4");

    // One node down (SIGKILL): prices keep flowing, signed by the other three.
    stack.kill_service("node-4").await;
    let killed_at = oracle_common::now_ms();
    // Batches signed before the kill may still land in the next seconds; the
    // ones that count are those that landed well after it, so wait for them
    // (not for a round count, which the in-flight batches can reach alone).
    let js = stack_js(&stack).await;
    let after = eventually(
        Duration::from_secs(60),
        "two batches landed 5 s after node-4 died",
        || async {
            let after: Vec<_> = events(&js)
                .await
                .into_iter()
                .filter(|e| e.status == SubmissionStatus::Success && e.at_ms > killed_at + 5_000)
                .collect();
            (after.len() >= 2).then_some(after)
        },
    )
    .await
    .unwrap();
    let r = wait_round(&stack, &provider, "BTC/USD", r + 1, Duration::from_secs(60)).await;
    let node4 = stack.nodes[3].signer().unwrap().to_string();
    assert!(
        after.iter().all(|e| !e.signers.contains(&node4)),
        "node-4 is dead but signed"
    );

    // A second node down: no transaction at all.
    stack.kill_service("node-3").await;
    tokio::time::sleep(Duration::from_secs(5)).await; // a batch in flight may land
    let quiet_from = oracle_common::now_ms();
    let frozen = round(&stack, &provider, "BTC/USD").await;
    // The quorum-lost alert fires.
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(180),
        "OracleSignerQuorumLost firing",
        || async {
            let v: serde_json::Value = client
                .get(format!("{prom_url}/api/v1/alerts"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["data"]["alerts"]
                .as_array()?
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == "OracleSignerQuorumLost" && a["state"] == "firing"
                })
                .then_some(())
        },
    )
    .await
    .unwrap();
    let queued_since = events(&stack_js(&stack).await)
        .await
        .into_iter()
        .filter(|e| e.status == SubmissionStatus::Queued && e.at_ms > quiet_from)
        .count();
    assert_eq!(queued_since, 0, "a transaction was sent without the quorum");
    assert_eq!(
        round(&stack, &provider, "BTC/USD").await,
        frozen,
        "a round landed without the quorum"
    );
    let mut failed_proposals = 0.0;
    for node in &stack.nodes[..2] {
        failed_proposals += scrape(
            node.metrics_addr,
            "oracle_aggregator_proposals_total",
            Some("no_signer_quorum"),
        )
        .await
        .unwrap_or(0.0);
    }
    assert!(failed_proposals >= 1.0, "the leader did not try");

    // Both back: the flow resumes, rounds contiguous.
    stack.restart_service("node-3").unwrap();
    stack.restart_service("node-4").unwrap();
    wait_round(
        &stack,
        &provider,
        "BTC/USD",
        frozen + 2,
        Duration::from_secs(90),
    )
    .await;
    for pair in ["BTC/USD", "ETH/USD"] {
        assert_contiguous(
            pair,
            &applied_rounds(&provider, stack.deployment.hub, pair).await,
        );
    }
    let _ = r;
    stack.stop().await;
}

async fn stack_js(stack: &Stack) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(async_nats::connect(&stack.config.nats.urls).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_submission_is_replaced_and_nothing_is_applied_twice() {
    let mut stack = start("leader-kill", None).await;
    let provider = provider(&stack);
    let js = stack_js(&stack).await;
    wait_round(&stack, &provider, "BTC/USD", 1, Duration::from_secs(60)).await;
    // Hold the next transaction in the mempool: the leader is mid-submission.
    provider
        .raw_request::<_, ()>("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let held_from = oracle_common::now_ms();
    let pending = eventually(Duration::from_secs(60), "a pending submission", || async {
        events(&js)
            .await
            .into_iter()
            .find(|e| e.status == SubmissionStatus::Pending && e.at_ms >= held_from)
    })
    .await
    .unwrap();
    let leader = pending.aggregator.clone();
    stack.kill_service(&leader).await; // SIGKILL: no lease release
    let killed = Instant::now();
    let others: Vec<_> = stack
        .nodes
        .iter()
        .filter(|n| n.name != leader)
        .cloned()
        .collect();
    let successor = eventually(Duration::from_secs(15), "another node leading", || async {
        for node in &others {
            if scrape(node.metrics_addr, "oracle_aggregator_leader", None).await == Some(1.0) {
                return Some(node.name.clone());
            }
        }
        None
    })
    .await
    .unwrap();
    let took = killed.elapsed();
    println!(
        "{successor} took over {took:?} after {leader} was killed (lease TTL {:?})",
        stack.config.aggregator.lease_ttl
    );
    assert!(
        took < stack.config.aggregator.lease_ttl,
        "takeover took {took:?}"
    );
    // The held transaction is mined now; the new leader settles it and goes on.
    provider
        .raw_request::<_, ()>("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    provider
        .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
    let settled = eventually(
        Duration::from_secs(40),
        "the killed leader's submission settled",
        || async {
            events(&js)
                .await
                .into_iter()
                .find(|e| e.id == pending.id && e.status == SubmissionStatus::Success)
        },
    )
    .await
    .unwrap();
    assert!(
        pending
            .tx_hashes
            .contains(settled.tx_hash.as_ref().unwrap())
    );
    let later = eventually(
        Duration::from_secs(60),
        "a submission by the new leader",
        || async {
            events(&js).await.into_iter().find(|e| {
                e.aggregator == successor
                    && e.status == SubmissionStatus::Success
                    && e.reports.iter().any(|r| {
                        pending
                            .reports
                            .iter()
                            .any(|p| p.pair == r.pair && r.round > p.round)
                    })
            })
        },
    )
    .await
    .unwrap();
    assert!(later.skipped.is_empty(), "{later:?}");
    // Nothing applied twice, no round skipped, and no transaction of the
    // successor raced the killed leader's rounds.
    for pair in ["BTC/USD", "ETH/USD"] {
        assert_contiguous(
            pair,
            &applied_rounds(&provider, stack.deployment.hub, pair).await,
        );
    }
    for e in events(&js)
        .await
        .iter()
        .filter(|e| e.status == SubmissionStatus::Success)
    {
        assert!(
            e.skipped.is_empty(),
            "the hub skipped {:?} of {}",
            e.skipped,
            e.id
        );
    }
    stack.stop().await;
}

/// Sends `proposal` to every node and collects the answers for up to 5 s.
async fn ask(rig: &Rig, proposal: &Proposal, expected: usize) -> Vec<ProposalReply> {
    use futures::StreamExt;
    let inbox = rig.nats.new_inbox();
    let mut answers = rig.nats.subscribe(inbox.clone()).await.unwrap();
    rig.nats
        .publish_with_reply(PROPOSAL_SUBJECT, inbox, proposal.encode().into())
        .await
        .unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < expected {
        match tokio::time::timeout_at(deadline, answers.next()).await {
            Ok(Some(m)) => out.push(ProposalReply::decode(&m.payload).unwrap()),
            _ => break,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_a_lying_leader_crafts_get_no_signature_from_honest_nodes() {
    use oracle_aggregator::window::{Entry, Rules, aggregate_of};
    // Four signers, threshold 3. node-1 is the liar: this test holds the
    // leader lease as node-1 and publishes proposals itself; nodes 2-4 are
    // honest and run in this process. No fetchers: the observations are the
    // ones published here.
    let options = RigOptions {
        fetchers: false,
        nodes: 4,
        threshold: Some(3),
        block_time: None,
    };
    let rig = Rig::start("crafted", options).await;
    let store = rig
        .js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: oracle_aggregator::leader::BUCKET.to_owned(),
            history: 1,
            max_age: rig.config.aggregator.lease_ttl / 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut revision = store
        .create(oracle_aggregator::leader::KEY, "node-1".into())
        .await
        .unwrap();
    let lease_revision = revision;
    let renew = tokio::spawn({
        let store = store.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                revision = store
                    .update(oracle_aggregator::leader::KEY, "node-1".into(), revision)
                    .await
                    .unwrap();
            }
        }
    });
    let honest: Vec<_> = (1..4)
        .map(|i| (rig.nodes[i].clone(), rig.run_node(i)))
        .collect();
    oracle_common::streams::ensure_obs_stream(&rig.js, &rig.config.nats)
        .await
        .unwrap();

    // BTC/USD from six venues: three near 97,000, three about 1.5% higher.
    let now = oracle_common::now_ms();
    let obs = |source: &str, cents: i64, at: u64| observation("BTC/USD", source, cents, at);
    let mut entries = Vec::new();
    for (source, cents) in [
        ("coinbase", 9_700_000),
        ("kraken", 9_709_700),
        ("binance", 9_719_400),
        ("bitstamp", 9_845_500),
        ("gemini", 9_855_200),
        ("bybit", 9_864_900),
    ] {
        let o = obs(source, cents, now);
        entries.push(Entry {
            seq: publish(&rig.js, &o).await,
            obs: o,
        });
    }
    // In the stream too: one too old for the window, one dated an hour ahead.
    let stale = obs("okx", 9_700_000, now - 20_000);
    let stale_seq = publish(&rig.js, &stale).await;
    let future = obs("kucoin", 9_700_000, now + 3_600_000);
    let future_seq = publish(&rig.js, &future).await;
    for (node, registry) in &honest {
        eventually(
            Duration::from_secs(20),
            &format!("{} ingesting", node.name),
            || async {
                let consumed = oracle_devstack::metric_value(
                    registry,
                    "oracle_aggregator_observations_consumed_total",
                    Some("BTC/USD"),
                );
                (consumed >= 8.0).then_some(())
            },
        )
        .await
        .unwrap();
    }

    let btc: oracle_common::Pair = "BTC/USD".parse().unwrap();
    let feed = rig.config.feed(&btc).unwrap().clone();
    let rules = Rules::from_config(&rig.config.aggregator);
    let computed_at = oracle_common::now_ms();
    let report_of = |cited: &[Entry]| {
        let agg = aggregate_of(&feed, cited.to_vec(), computed_at, &rules, vec![]).unwrap();
        let scaled = oracle_common::price::to_scaled(agg.price, 8).unwrap();
        ProposedReport {
            pair: btc.clone(),
            feed_index: 0,
            round: 1,
            price: agg.price,
            price_scaled: scaled.to_string(),
            confidence: agg.confidence,
            observed_at: agg.observed_at_ms / 1000,
            reason: UpdateReason::First,
            used: agg.used.iter().map(|e| e.seq).collect(),
            rejected: agg.rejected.iter().map(|(e, _)| e.seq).collect(),
        }
    };
    let proposal = |id: &str, report: ProposedReport| Proposal {
        v: SCHEMA_VERSION,
        id: id.to_owned(),
        leader: "node-1".into(),
        lease_revision,
        chain_id: 31337,
        hub: rig.deployment.hub,
        computed_at_ms: computed_at,
        deadline_ms: oracle_common::now_ms() + 5_000,
        reports: vec![report],
    };

    // Control: the honest proposal gets every honest signature, each from
    // the node's own key (the harness can see a signature when there is one).
    let honest_report = report_of(&entries);
    let replies = ask(&rig, &proposal("honest", honest_report.clone()), 3).await;
    assert_eq!(replies.len(), 3);
    let digest = oracle_common::chain::batch_digest(
        &[oracle_common::chain::Report {
            feedIndex: 0,
            roundId: 1,
            price: honest_report.price_scaled.parse().unwrap(),
            observedAt: honest_report.observed_at as u32,
        }],
        31337,
        rig.deployment.hub,
    );
    let mut signers = BTreeSet::new();
    for reply in &replies {
        assert!(reply.refusals.is_empty(), "{reply:?}");
        let sig =
            oracle_common::chain::HubSignature::from_bytes(reply.signature.as_deref().unwrap())
                .unwrap();
        assert_eq!(sig.recover(digest), Some(reply.signer), "{}", reply.node);
        let node = honest.iter().find(|(n, _)| n.name == reply.node).unwrap();
        assert_eq!(node.0.signer().unwrap(), reply.signer);
        signers.insert(reply.signer);
    }
    assert_eq!(signers.len(), 3);

    // The attacks.
    let mut wrong_median = honest_report.clone();
    wrong_median.price += rust_decimal::Decimal::ONE;
    let mut missing = honest_report.clone();
    missing.used.push(9_999_999);
    let high: Vec<Entry> = entries[3..].to_vec();
    let cherry_picked = report_of(&high);
    let mut with_stale = honest_report.clone();
    with_stale.used.push(stale_seq);
    let mut with_future = honest_report.clone();
    with_future.used.push(future_seq);
    let attacks = [
        ("wrong-median", wrong_median, RefusalCode::AggregateMismatch),
        ("missing", missing, RefusalCode::ObservationMissing),
        ("cherry-picked", cherry_picked, RefusalCode::Disagreement),
        ("stale", with_stale, RefusalCode::ObservationStale),
        ("future", with_future, RefusalCode::ObservationInFuture),
    ];
    for (id, report, code) in &attacks {
        let replies = ask(&rig, &proposal(id, report.clone()), 3).await;
        assert_eq!(replies.len(), 3, "{id}: every honest node answers");
        for reply in &replies {
            assert!(reply.signature.is_none(), "{id}: {} signed", reply.node);
            assert!(
                reply.refusals.iter().any(|r| r.code == *code),
                "{id}: {} refused with {:?}, expected {code}",
                reply.node,
                reply.refusals
            );
        }
    }
    // Every refusal is recorded on ORACLE_REPORTS, one per node and attack,
    // and counted by reason.
    let recorded: Vec<RefusalRecord> =
        eventually(Duration::from_secs(10), "the refusal records", || async {
            let records: Vec<RefusalRecord> = oracle_devstack::read_stream(&rig.js, REPORTS_STREAM)
                .await
                .iter()
                .filter_map(|b| RefusalRecord::decode(b).ok())
                .collect();
            (records.len() >= attacks.len() * 3).then_some(records)
        })
        .await
        .unwrap();
    let mut by_attack: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for record in &recorded {
        let (id, _, code) = attacks
            .iter()
            .find(|(id, ..)| *id == record.proposal)
            .unwrap();
        assert!(
            record.refusals.iter().any(|r| r.code == *code),
            "{record:?}"
        );
        assert_eq!(record.leader, "node-1");
        by_attack.entry(id).or_default().insert(record.node.clone());
    }
    for (id, ..) in &attacks {
        assert_eq!(
            by_attack.get(id).map(BTreeSet::len),
            Some(3),
            "{id}: records {by_attack:?}"
        );
    }
    for (node, registry) in &honest {
        for (id, _, code) in &attacks {
            let n = oracle_devstack::metric_value(
                registry,
                "oracle_aggregator_proposals_refused_total",
                Some(code.as_str()),
            );
            assert!(n >= 1.0, "{}: {id} not counted as {code}", node.name);
        }
    }
    renew.abort();
}
