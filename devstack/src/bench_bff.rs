//! `oracle-devstack bench-bff`: requests per second and latency of
//! `GET /v1/prices/{pair}` on the release `oracle-bff` process, against a
//! bare axum server (`oracle-devstack bare-http`, a separate process)
//! returning the same JSON body, with the same load generator in the same
//! run. The stack is real (nats-server, anvil, the deployed hub); the
//! fetchers and aggregator are stopped once the feed has a value so they do
//! not compete for the two cores.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oracle_common::config::Config;

use crate::process::{ChildProcess, Output};
use crate::stack::{Mode, Options, Stack, StackError, eventually};
use crate::tools;

/// Throughput and latency of one target.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    /// Requests completed per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Non-200 answers or transport errors.
    pub errors: u64,
}

/// Drives `url` from `connections` concurrent keep-alive connections for
/// `duration` (after `warmup`).
pub async fn load(
    url: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let start = Instant::now() + warmup;
    let end = start + duration;
    let url: Arc<str> = url.into();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = match client.get(&*url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if t >= start {
                    if ok {
                        latencies.push(t.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us)))
    };
    LoadResult {
        rps: all.len() as f64 / duration.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

/// Serves `body` as JSON on every path at `addr` until killed.
pub async fn bare_http(addr: std::net::SocketAddr, body: String) -> std::io::Result<()> {
    let body: Arc<str> = body.into();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// Runs the benchmark and prints its figures.
pub async fn bench_bff(
    bin_dir: &Path,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<(), StackError> {
    let config_path = tools::workspace_root().join("config/dev.toml");
    let config = Config::load(&config_path).map_err(|e| StackError::Config(e.to_string()))?;
    let data_dir = tools::workspace_root().join("target/bench-bff");
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut stack = Stack::start(Options {
        config,
        mode: Mode::Processes {
            bin_dir: bin_dir.to_path_buf(),
            config_path,
            log_files: true,
            env: Vec::new(),
        },
        ephemeral_ports: true,
        data_dir: data_dir.clone(),
        sim_tick: Duration::from_secs(1),
        nodes: crate::nodes::dev_nodes(4)?,
        block_time: None,
        nats_cluster: 1,
        fetchers: 1,
        bffs: 1,
    })
    .await?;
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let client = reqwest::Client::new();
    let body = eventually(Duration::from_secs(60), "BTC/USD served", || async {
        let r = client.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    })
    .await?;
    stack.kill_service("fetchers").await;
    stack.kill_service("aggregator").await;

    let port = tools::free_port().map_err(|e| StackError::Io(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| StackError::Io(e.to_string()))?;
    let mut bare = ChildProcess::spawn(
        "bare-http",
        &exe,
        &[
            "bare-http".into(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            "--body".into(),
            body.clone(),
        ],
        &[],
        Output::File(data_dir.join("bare-http.log")),
    )
    .map_err(|e| StackError::Io(e.to_string()))?;
    let bare_url = format!("http://127.0.0.1:{port}/v1/prices/BTC-USD");
    eventually(Duration::from_secs(10), "bare server up", || async {
        client.get(&bare_url).send().await.ok().map(|_| ())
    })
    .await?;

    println!(
        "GET /v1/prices/BTC-USD, {connections} connections, {warmup:?} warm-up, {duration:?} measured, load generator on the same 2 cores"
    );
    println!("response body: {} bytes", body.len());
    // Bare, bff, bare again: the ratio is taken against the better bare
    // window, so load from elsewhere on the machine cannot flatter the bff.
    let bare_before = load(&bare_url, connections, warmup, duration).await;
    let bff_result = load(&url, connections, warmup, duration).await;
    let bare_after = load(&bare_url, connections, warmup, duration).await;
    let bare_result = if bare_after.rps > bare_before.rps {
        bare_after
    } else {
        bare_before
    };
    for (name, r) in [
        ("bare axum", bare_before),
        ("oracle-bff", bff_result),
        ("bare axum", bare_after),
    ] {
        println!(
            "{name:>10}: {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            r.rps,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.errors
        );
    }
    println!(
        "oracle-bff reaches {:.0}% of the better bare window",
        100.0 * bff_result.rps / bare_result.rps.max(1.0)
    );
    let metrics = client
        .get(format!("http://{}/metrics", stack.config.bff.metrics_addr))
        .send()
        .await
        .ok();
    if let Some(m) = metrics
        && let Ok(text) = m.text().await
    {
        for line in text
            .lines()
            .filter(|l| l.starts_with("oracle_bff_cache_requests_total"))
        {
            println!("{line}");
        }
    }
    bare.stop(Duration::from_secs(2)).await;
    stack.stop().await;
    Ok(())
}
