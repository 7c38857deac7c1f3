//! The client API fuzzed against its own OpenAPI description: the real stack
//! (nats-server, anvil with the hub, one aggregator node, the fetchers
//! against the exchange simulator, the bff) on free ports, and once BTC/USD
//! has a round on chain and the bff serves it, `schemathesis run` on the
//! bff's `/openapi.json` with every check, a bounded number of examples per
//! operation and a fixed seed. The test passes when schemathesis finds
//! nothing (exit 0); its whole output is printed, each failure with the curl
//! command that reproduces it, and a JUnit report is left under
//! `target/test-data/api-fuzz/schemathesis/`.
//!
//! schemathesis is pinned in `scripts/fuzz-api-requirements.txt` and
//! installed by `scripts/bootstrap.sh` (`.tools/bin/schemathesis`);
//! `ORACLE_SCHEMATHESIS_BIN` points at another one.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::path::Path;
use std::time::{Duration, Instant};

use oracle_common::Pair;
use oracle_devstack::{eventually, tools};
use rig::StackSpec;

mod rig;

/// Seed of the generated cases: the same requests on every run
/// (`ORACLE_API_FUZZ_SEED` chooses another).
const SEED: u64 = 20_240_611;
/// Cases per operation in the fuzzing phase (`ORACLE_API_FUZZ_EXAMPLES`
/// asks for more); the coverage phase adds its own boundary cases, refreshes
/// get fewer and the stateful phase 60% as many scenarios (see [`config`]).
/// A run that finds nothing then takes about a minute on two cores, the stack
/// starting in another half minute.
const MAX_EXAMPLES: u32 = 100;
/// Cases of `POST /v1/prices/{pair}/refresh`.
const REFRESH_EXAMPLES: u32 = 15;
/// A request's time limit: above `bff.refresh_wait` (12 s in
/// config/dev.toml), so that a refresh waiting for inclusion is not a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole run's limit. Past it schemathesis is interrupted and prints what
/// it found so far, and the test fails.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// The project configuration schemathesis reads (`--config-file`):
/// - the SSE endpoint never ends a stream by itself, so schemathesis reads
///   its first event (the current value of a pair) or gives up after five
///   seconds, instead of waiting `REQUEST_TIMEOUT` on every case;
/// - every accepted refresh is a transaction the aggregator proposes, signs
///   and waits for (about a second): fewer cases there, and fewer stateful
///   scenarios, where the inferred links lead from a price read to its
///   refresh.
fn config(examples: u32) -> String {
    format!(
        r#"# Written by devstack/tests/api_fuzz.rs.
[phases.stateful]
generation.max-examples = {stateful}

[[operations]]
include-path = "/v1/stream"
request-timeout = 5
max-stream-events = 1

[[operations]]
include-path = "/v1/prices/{{pair}}/refresh"
generation.max-examples = {refresh}
"#,
        stateful = (examples * 3 / 5).max(1),
        refresh = REFRESH_EXAMPLES.min(examples),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bff_answers_as_its_openapi_description_says_under_schemathesis() {
    let schemathesis = tools::find("schemathesis").unwrap_or_else(|e| panic!("{e}"));
    let stack = rig::stack("api-fuzz", StackSpec::default(), |_, _| {}).await;
    let bff = stack.bff_url.clone();

    // Data to read before fuzzing: a round of BTC/USD on chain, served by
    // the bff (its cache follows the head), and the bff ready.
    let pair: Pair = "BTC/USD".parse().unwrap();
    stack
        .wait_round(&pair, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for (path, what) in [
        ("/v1/prices/BTC-USD", "the bff serves BTC/USD"),
        ("/readyz", "the bff is ready"),
        ("/openapi.json", "the bff serves its OpenAPI description"),
    ] {
        let url = format!("{bff}{path}");
        eventually(Duration::from_secs(30), what, || async {
            let r = client.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .unwrap();
    }

    let dir = stack.data_dir.join("schemathesis");
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("schemathesis.toml");
    let examples = env_or("ORACLE_API_FUZZ_EXAMPLES", MAX_EXAMPLES);
    std::fs::write(&config_file, config(examples)).unwrap();
    let junit = dir.join("junit.xml");
    let mut args: Vec<String> = vec![
        "--no-color".into(),
        "--config-file".into(),
        config_file.display().to_string(),
        "run".into(),
        format!("{bff}/openapi.json"),
        "--url".into(),
        bff.clone(),
        "--checks".into(),
        "all".into(),
        "--max-examples".into(),
        examples.to_string(),
        "--seed".into(),
        env_or("ORACLE_API_FUZZ_SEED", SEED).to_string(),
        // No example database: a failure found once is not replayed on
        // later runs, so every run generates the same cases.
        "--generation-database".into(),
        "none".into(),
        // Every failing case of an operation, not only the first one.
        "--continue-on-failure".into(),
        // Failing cases as generated: shrinking replays them against the
        // stack (refreshes are transactions) and can take minutes.
        "--no-shrink".into(),
        "--workers".into(),
        "1".into(),
        "--request-timeout".into(),
        REQUEST_TIMEOUT.as_secs().to_string(),
        "--wait-for-schema".into(),
        "30".into(),
        "--report".into(),
        "junit".into(),
        "--report-junit-path".into(),
        junit.display().to_string(),
    ];
    // The admin route takes a bearer token when the stack configures one
    // (config/dev.toml sets none: the route is then disabled).
    let mut shown = args.clone();
    if let Some(token) = &stack.config.bff.admin_token {
        args.extend([
            "--header".into(),
            format!("Authorization: Bearer {}", token.expose()),
        ]);
        shown.extend(["--header".into(), "Authorization: Bearer ***".into()]);
    }
    println!(
        "api_fuzz: {} {}",
        schemathesis.display(),
        shown
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&schemathesis)
        .args(&args)
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "160")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} could not run: {e}", schemathesis.display()));
    // Its output as it comes (with --nocapture), and kept for the verdict.
    let stdout = tokio::spawn(relay(child.stdout.take().unwrap(), false));
    let stderr = tokio::spawn(relay(child.stderr.take().unwrap(), true));
    let status = match tokio::time::timeout(RUN_DEADLINE, child.wait()).await {
        Ok(status) => Ok(status.unwrap()),
        Err(_) => {
            // Interrupted, schemathesis still reports what it found so far.
            if let Some(pid) = child.id() {
                let _ = tokio::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            Err(())
        }
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    stack.stop().await;
    let status = status.unwrap_or_else(|()| {
        panic!(
            "schemathesis did not finish within {} s: interrupted (its report so far is above); \
             a request that hangs, or too many examples for this machine",
            RUN_DEADLINE.as_secs()
        )
    });
    println!(
        "api_fuzz: schemathesis ran {:.1} s, exit {}; JUnit report {}",
        elapsed.as_secs_f64(),
        status
            .code()
            .map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
        report(&junit)
    );
    assert!(
        status.success(),
        "schemathesis found problems in the client API (exit {:?}): {}\n\
         see its output above (with --nocapture), each failure with the curl command \
         that reproduces it against a running stack{}",
        status.code(),
        summary(&stdout),
        if stderr.trim().is_empty() {
            String::new()
        } else {
            format!("\nstderr:\n{stderr}")
        }
    );
}

/// Prints each line of `output` as it arrives (to stderr when `to_stderr`);
/// returns all of it.
async fn relay(output: impl tokio::io::AsyncRead + Unpin, to_stderr: bool) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(output).lines();
    let mut all = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        all.push_str(&line);
        all.push('\n');
    }
    all
}

/// The lines of schemathesis' summary that name the failures and warnings.
fn summary(stdout: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .filter(|l| l.contains('❌') || l.contains('⚠') || l.contains("generated"))
        .map(str::trim)
        .collect();
    if lines.is_empty() {
        "no summary printed".to_owned()
    } else {
        lines.join("; ")
    }
}

/// The number in the environment variable `name`, else `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// `path`, or a note that it was not written.
fn report(path: &Path) -> String {
    if path.is_file() {
        path.display().to_string()
    } else {
        format!("{} (not written)", path.display())
    }
}

/// `arg` as a POSIX shell word.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
