//! The services and the broker, beyond one healthy server: `/readyz` of every
//! service while its nats-server is frozen, two fetcher replicas publishing
//! into a three-node JetStream cluster (one copy of each observation), and
//! stream replicas following `nats.replicas` (a count the cluster cannot
//! hold is a clear start-up error).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::HashSet;
use std::time::{Duration, Instant};

use oracle_common::config::NatsConfig;
use oracle_devstack::nats::{NatsCluster, NodePorts};
use oracle_devstack::{eventually, tools};
use rig::StackSpec;

mod rig;

/// The status of `GET url`, 0 when nothing answers.
async fn status(http: &reqwest::Client, url: &str) -> u16 {
    match http.get(url).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_of_every_service_follows_a_frozen_broker() {
    let spec = StackSpec {
        processes: true,
        ..StackSpec::default()
    };
    let mut stack = rig::stack("readyz-frozen", spec, |_, _| {}).await;
    let btc: oracle_common::Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&btc, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let probes = [
        ("bff", format!("{}/readyz", stack.bff_url)),
        (
            "bff metrics",
            format!("http://{}/readyz", stack.config.bff.metrics_addr),
        ),
        (
            "fetchers",
            format!("http://{}/readyz", stack.config.fetchers.metrics_addr),
        ),
        (
            "aggregator",
            format!("http://{}/readyz", stack.nodes[0].metrics_addr),
        ),
    ];
    for (name, url) in &probes {
        eventually(
            Duration::from_secs(30),
            &format!("{name} ready"),
            || async { (status(&http, url).await == 200).then_some(()) },
        )
        .await
        .unwrap();
    }

    // Frozen for 15 s: connections stay open, nothing answers.
    stack.nats().pause(0);
    let frozen = Instant::now();
    for (name, url) in &probes {
        let noticed = eventually(
            Duration::from_secs(8),
            &format!("{name} unready with NATS frozen"),
            || async { (status(&http, url).await == 503).then(|| frozen.elapsed()) },
        )
        .await
        .unwrap();
        println!("{name}: unready {noticed:?} after the freeze");
    }
    let body: serde_json::Value = http
        .get(&probes[0].1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["nats"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["chain"]["ok"], true, "{body}");
    // Alive all along, and still serving what the chain holds.
    assert_eq!(
        status(&http, &format!("{}/healthz", stack.bff_url)).await,
        200
    );
    assert_eq!(
        status(&http, &format!("{}/v1/prices/BTC-USD", stack.bff_url)).await,
        200
    );
    while frozen.elapsed() < Duration::from_secs(15) {
        for (name, url) in &probes {
            assert_eq!(status(&http, url).await, 503, "{name} ready while frozen");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    stack.nats().resume(0);
    for (name, url) in &probes {
        eventually(
            Duration::from_secs(20),
            &format!("{name} ready again"),
            || async { (status(&http, url).await == 200).then_some(()) },
        )
        .await
        .unwrap();
    }
    stack.check_services().unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fetcher_replicas_on_a_cluster_store_one_copy_of_each_observation() {
    let spec = StackSpec {
        processes: true,
        nats_cluster: 3,
        fetchers: 2,
        env: vec![(
            "RUST_LOG".into(),
            "info,oracle_fetchers::publisher=debug".into(),
        )],
        ..StackSpec::default()
    };
    let stack = rig::stack("two-fetchers", spec, |_, _| {}).await;
    assert_eq!(stack.config.nats.replicas, 3);
    let client = async_nats::connect(&stack.config.nats.urls).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let logs = stack.data_dir.join("logs");
    // Both replicas publish, and both saw duplicates of the other's copies.
    eventually(
        Duration::from_secs(60),
        "both replicas publishing",
        || async {
            let mut dups = 0.0;
            for addr in stack.fetchers_metrics() {
                dups += rig::scrape(addr, "oracle_fetchers_publish_duplicates_total", None).await?;
            }
            let a = rig::acked_msg_ids(&logs.join("oracle-fetchers.log")).len();
            let b = rig::acked_msg_ids(&logs.join("oracle-fetchers-2.log")).len();
            (a >= 100 && b >= 100 && dups >= 50.0).then_some(())
        },
    )
    .await
    .unwrap();
    let mut info = js
        .get_stream(oracle_common::wire::OBS_STREAM)
        .await
        .unwrap();
    let info = info.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(
        info.cluster.as_ref().map(|c| c.replicas.len()),
        Some(2),
        "the leader and two followers"
    );

    let mut acked: HashSet<String> = HashSet::new();
    let a = rig::acked_msg_ids(&logs.join("oracle-fetchers.log"));
    let b = rig::acked_msg_ids(&logs.join("oracle-fetchers-2.log"));
    let both = a.iter().filter(|id| b.contains(id)).count();
    assert!(both >= 50, "the replicas published the same observations");
    acked.extend(a);
    acked.extend(b);
    let stored = rig::obs_msg_ids(&js).await;
    let distinct: HashSet<&String> = stored.iter().collect();
    assert_eq!(
        stored.len(),
        distinct.len(),
        "messages in ORACLE_OBS equal distinct Nats-Msg-Ids"
    );
    let missing = acked.iter().filter(|id| !distinct.contains(id)).count();
    assert_eq!(missing, 0, "every acknowledged observation is stored");
    stack.stop().await;
}

/// A NATS config for `urls` at `replicas`.
fn nats_config(urls: Vec<String>, replicas: usize) -> NatsConfig {
    NatsConfig {
        urls,
        replicas,
        ..NatsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_replicas_follow_the_configuration() {
    let dir = std::env::temp_dir().join(format!("oracle-replicas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // One server cannot keep three replicas: the fetchers refuse to start
    // and say why.
    let single_url = format!("nats://127.0.0.1:{}", tools::free_port().unwrap());
    let single = oracle_devstack::start_nats(&single_url, &dir.join("single"), &dir.join("logs"))
        .await
        .unwrap();
    let output = tokio::process::Command::new(tools::debug_bin_dir().join("oracle-fetchers"))
        .args(["--config", "config/dev.toml"])
        .current_dir(tools::workspace_root())
        .env("ORACLE__NATS__URLS", &single_url)
        .env("ORACLE__NATS__REPLICAS", "3")
        .env(
            "ORACLE__FETCHERS__METRICS_ADDR",
            format!("127.0.0.1:{}", tools::free_port().unwrap()),
        )
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the fetchers exit")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("ORACLE_OBS"), "{stderr}");
    assert!(stderr.contains("3 replica"), "{stderr}");
    assert!(stderr.contains("nats.replicas"), "{stderr}");
    drop(single);

    // On a cluster: a stream made at R1 is moved to R3 (its messages kept),
    // and R5 on three servers is refused.
    let cluster = NatsCluster::start(
        &NodePorts::plan(3, None).unwrap(),
        &dir.join("cluster"),
        &dir.join("logs"),
    )
    .await
    .unwrap();
    let client = async_nats::connect(cluster.urls()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let r1 = nats_config(cluster.urls(), 1);
    let stream = oracle_common::streams::ensure_obs_stream(&js, &r1)
        .await
        .unwrap();
    assert_eq!(stream.cached_info().config.num_replicas, 1);
    for i in 0..10 {
        js.publish(format!("oracle.obs.BTC-USD.s{i}"), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let r3 = nats_config(cluster.urls(), 3);
    let stream = oracle_common::streams::ensure_obs_stream(&js, &r3)
        .await
        .unwrap();
    assert_eq!(stream.cached_info().config.num_replicas, 3);
    let peers = eventually(Duration::from_secs(30), "two followers", || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream(oracle_common::wire::OBS_STREAM).await.ok()?;
            let info = stream.info().await.ok()?;
            let cluster = info.cluster.as_ref()?;
            (cluster.replicas.len() == 2 && cluster.replicas.iter().all(|r| r.current))
                .then_some(info.state.messages)
        }
    })
    .await
    .unwrap();
    assert_eq!(peers, 10, "the messages were kept");
    let err = oracle_common::streams::ensure_obs_stream(&js, &nats_config(cluster.urls(), 5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("5 replica") && err.contains("nats.replicas"),
        "{err}"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
