//! The live page the bff serves at `/`, tested in a real browser: the stack
//! as processes (nats-server, anvil with the hub, the fetchers against the
//! exchange simulator, one aggregator node, the bff), then
//! `tests/browser/page.test.mjs` (Node with playwright-core driving Debian's
//! headless Chromium) against the bff. The script checks the page loads
//! without console errors or failed requests, shows the API's exact price and
//! the chain proof, shows each new round within 2 s of the API serving it
//! without a reload, runs a refresh from its button, switches to the second
//! chain (two are served here) from the header's list, and fits a phone; when
//! it prints `PHASE stop-aggregator` this test kills the aggregator and
//! answers `aggregator-stopped`, and the page must then show the aggregator
//! stopped and the feed stale. The script's output is printed; screenshots
//! are left in `target/browser/`.
//!
//! Node, Chromium and playwright-core are installed by
//! `scripts/bootstrap.sh` (`.tools/bin/chromium`, `tests/browser/node_modules`).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::process::Stdio;
use std::time::Duration;

use oracle_common::Pair;
use oracle_common::config::Config;
use oracle_devstack::{eventually, tools};
use rig::StackSpec;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod rig;

/// The feeds' heartbeat in this test: short, so that a feed turns stale soon
/// after the aggregator stops.
const HEARTBEAT_S: u64 = 10;
/// The script's whole run; it is killed past it.
const RUN_DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_follows_the_chain_in_a_real_browser() {
    let root = tools::workspace_root();
    let node = tools::find("node").unwrap_or_else(|e| panic!("{e} (Node.js 20+)"));
    let chromium = tools::find("chromium").unwrap_or_else(|e| panic!("{e} (Debian's chromium)"));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules/playwright-core is missing: run scripts/bootstrap.sh \
         (npm install from tests/browser/package-lock.json)"
    );

    let mut env = vec![("RUST_LOG".to_owned(), "info".to_owned())];
    // The services read config/dev.toml: the heartbeat reaches them by environment.
    let feeds = Config::load(&root.join("config/dev.toml")).unwrap().feeds;
    for i in 0..feeds.len() {
        env.push((
            format!("ORACLE__FEEDS__{i}__HEARTBEAT"),
            format!("{HEARTBEAT_S}s"),
        ));
    }
    let spec = StackSpec {
        processes: true,
        nodes: 1,
        chains: 2,
        env,
        ..StackSpec::default()
    };
    let mut stack = rig::stack("browser", spec, |_, _| {}).await;
    let pair: Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&pair, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let price = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    eventually(Duration::from_secs(30), "BTC/USD served", || async {
        let r = client.get(&price).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .unwrap();

    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    println!(
        "browser: {} page.test.mjs against {} with {}",
        node.display(),
        stack.bff_url,
        chromium.display()
    );
    let mut child = tokio::process::Command::new(&node)
        .arg("page.test.mjs")
        .current_dir(&dir)
        .env("BFF_URL", &stack.bff_url)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .env("ORACLE_BROWSER_DRIVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} could not run: {e}", node.display()));
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            println!("page.test.mjs stderr: {line}");
        }
    });

    let mut stopped = false;
    let mut result = None;
    let run = async {
        while let Ok(Some(line)) = stdout.next_line().await {
            println!("page.test.mjs: {line}");
            if line.trim() == "PHASE stop-aggregator" {
                stack.kill_service("aggregator").await;
                stopped = true;
                println!("browser: the aggregator is stopped");
                stdin.write_all(b"aggregator-stopped\n").await.unwrap();
                stdin.flush().await.unwrap();
            }
            if let Some(json) = line.strip_prefix("RESULT ") {
                result = serde_json::from_str::<serde_json::Value>(json).ok();
            }
        }
        child.wait().await
    };
    let status = tokio::time::timeout(RUN_DEADLINE, run).await;
    stack.stop().await;
    let status = status
        .unwrap_or_else(|_| {
            panic!(
                "page.test.mjs did not finish within {} s (killed)",
                RUN_DEADLINE.as_secs()
            )
        })
        .unwrap();
    println!(
        "browser: page.test.mjs ended ({status}); round-to-page latencies (ms) {}; screenshots in {}",
        result
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |r| r["latencies_ms"].to_string()),
        shots.display()
    );
    assert!(
        status.success(),
        "page.test.mjs failed ({status}): see its output above and {}/page-failure.png",
        shots.display()
    );
    assert!(stopped, "page.test.mjs never asked to stop the aggregator");
    assert_eq!(
        result.as_ref().map(|r| r["passed"].clone()),
        Some(serde_json::Value::Bool(true)),
        "page.test.mjs did not report a pass"
    );
}
