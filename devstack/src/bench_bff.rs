//! `oracle-devstack bench-bff`: requests per second and latency of
//! `GET /v1/prices/{pair}` on the release `oracle-bff` process, against a
//! bare axum server (`oracle-devstack bare-http`, a separate process)
//! returning the same JSON body, with the same load generator in the same
//! run, with API keys and a rate limit switched on in the bff. The stack is
//! real (nats-server, anvil, the deployed hub); the
//! fetchers and aggregator are stopped once the feed has a value so they do
//! not compete for the two cores.
//!
//! `oracle-devstack bench-sse`: thousands of `/v1/stream` clients on the
//! release bff while the whole pipeline produces rounds, then the same
//! clients on a bare fan-out (`oracle-devstack bare-sse`) for this machine's
//! floor in the same run.

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
                let ok = match client
                    .get(&*url)
                    .header("x-api-key", BENCH_API_KEY)
                    .send()
                    .await
                {
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

/// The API key the benchmarks configure and send: keys and limits are on,
/// as a production deployment runs.
pub const BENCH_API_KEY: &str = "bench-key-0123456789abcdef";

/// Starts the release stack from `config/dev.toml` with API keys and a rate
/// limit switched on (plus `extra_env`), waits until BTC/USD is served, and
/// returns it with the served body.
async fn bench_stack(
    bin_dir: &Path,
    name: &str,
    extra_env: &[(&str, &str)],
) -> Result<(Stack, String, std::path::PathBuf), StackError> {
    let config_path = tools::workspace_root().join("config/dev.toml");
    let config = Config::load(&config_path).map_err(|e| StackError::Config(e.to_string()))?;
    let data_dir = tools::workspace_root().join("target").join(name);
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut env: Vec<(String, String)> = vec![
        (
            "ORACLE__BFF__API_KEYS".into(),
            format!("[\"{BENCH_API_KEY}\"]"),
        ),
        // A limit every request is checked against, high enough that the
        // load generator is never refused.
        (
            "ORACLE__BFF__RATE_LIMIT__REQUESTS".into(),
            "1000000000".into(),
        ),
        ("ORACLE__BFF__RATE_LIMIT__PER".into(), "1s".into()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let stack = Stack::start(Options {
        config,
        mode: Mode::Processes {
            bin_dir: bin_dir.to_path_buf(),
            config_path,
            log_files: true,
            env,
        },
        ephemeral_ports: true,
        data_dir: data_dir.clone(),
        sim_tick: Duration::from_secs(1),
        nodes: crate::nodes::dev_nodes(4)?,
        block_time: None,
        chains: 1,
        nats_cluster: 1,
        fetchers: 1,
        bffs: 1,
    })
    .await?;
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let client = reqwest::Client::new();
    let body = eventually(Duration::from_secs(60), "BTC/USD served", || async {
        let r = client
            .get(&url)
            .header("x-api-key", BENCH_API_KEY)
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    })
    .await?;
    Ok((stack, body, data_dir))
}

/// Starts this binary's hidden baseline server `command` (`bare-http`,
/// `bare-sse`) on a free loopback port with `flag value`, logging into
/// `data_dir`.
fn spawn_bare(
    data_dir: &Path,
    command: &str,
    flag: &str,
    value: &str,
) -> Result<(ChildProcess, u16), StackError> {
    let port = tools::free_port().map_err(|e| StackError::Io(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| StackError::Io(e.to_string()))?;
    let child = ChildProcess::spawn(
        command,
        &exe,
        &[
            command.into(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            flag.into(),
            value.into(),
        ],
        &[],
        Output::File(data_dir.join(format!("{command}.log"))),
    )
    .map_err(|e| StackError::Io(e.to_string()))?;
    Ok((child, port))
}

/// Runs the benchmark and prints its figures.
pub async fn bench_bff(
    bin_dir: &Path,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<(), StackError> {
    let (mut stack, body, data_dir) = bench_stack(bin_dir, "bench-bff", &[]).await?;
    let url = format!("{}/v1/prices/BTC-USD", stack.bff_url);
    let client = reqwest::Client::new();
    stack.kill_service("fetchers").await;
    stack.kill_service("aggregator").await;

    let (mut bare, port) = spawn_bare(&data_dir, "bare-http", "--body", &body)?;
    let bare_url = format!("http://127.0.0.1:{port}/v1/prices/BTC-USD");
    eventually(Duration::from_secs(10), "bare server up", || async {
        client.get(&bare_url).send().await.ok().map(|_| ())
    })
    .await?;

    println!(
        "GET /v1/prices/BTC-USD with X-API-Key (bff: API keys and a rate limit on), {connections} connections, {warmup:?} warm-up, {duration:?} measured, load generator on the same 2 cores"
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

/// Raises this process's open-file limit to its hard limit (children inherit
/// it), so that thousands of connections fit.
#[allow(unsafe_code)]
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// Resident memory of process `pid`, bytes (Linux `/proc`).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time process `pid` used so far (user + system), from `/proc`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in USER_HZ, 100 per second on every supported platform.
    Some(Duration::from_millis(ticks * 10))
}

/// One stream client on a raw TCP connection: sends the request, then for
/// every `price` event records (round id, ms from the bff seeing the block
/// to this client reading the event's data). Chunked-encoding size lines are
/// ignored along with everything that is not the comment or the id.
async fn sse_client(
    addr: std::net::SocketAddr,
    path: Arc<str>,
    connected: Arc<tokio::sync::Barrier>,
    from_ms: Arc<std::sync::atomic::AtomicU64>,
    until: tokio_util::sync::CancellationToken,
) -> Vec<(String, u64)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut out = Vec::new();
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        connected.wait().await;
        return out;
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nX-API-Key: {BENCH_API_KEY}\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        connected.wait().await;
        return out;
    }
    let mut reader = BufReader::with_capacity(4096, stream);
    let mut line = Vec::with_capacity(1024);
    let mut waited = false;
    let mut seen_at: Option<u64> = None;
    let mut id: Option<String> = None;
    let mut first = true;
    loop {
        line.clear();
        let read = tokio::select! {
            _ = until.cancelled() => break,
            read = reader.read_until(b'\n', &mut line) => read,
        };
        if !matches!(read, Ok(n) if n > 0) {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !waited && text.is_empty() {
            // End of the response head: connected.
            waited = true;
            connected.wait().await;
            continue;
        }
        // Fields come in the order the bff writes them (event, id, comment,
        // data); an event ends with its `data:` line.
        if let Some(v) = text.strip_prefix(b": seen_at_ms=") {
            seen_at = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
        } else if let Some(v) = text.strip_prefix(b"id: ") {
            id = Some(String::from_utf8_lossy(v).into_owned());
        } else if text.starts_with(b"data:")
            && let (Some(seen), Some(id)) = (seen_at.take(), id.take())
        {
            let now = oracle_common::now_ms();
            if first {
                // The current value, sent on connecting: not a new round.
                first = false;
            } else if seen >= from_ms.load(std::sync::atomic::Ordering::Relaxed) {
                out.push((id, now.saturating_sub(seen)));
            }
        }
    }
    if !waited {
        connected.wait().await;
    }
    out
}

/// What one measured window of stream clients saw.
struct SseFigures {
    /// Every delivery of a new round, ms from the server seeing it.
    deliveries: Vec<u64>,
    /// Clients that got no event.
    closed_early: usize,
}

impl SseFigures {
    /// The `p` quantile of every delivery, ms.
    fn quantile(&self, p: f64) -> Option<u64> {
        let n = self.deliveries.len();
        (n > 0).then(|| self.deliveries[((n as f64 * p) as usize).min(n - 1)])
    }

    /// Rounds delivered (to every client).
    fn rounds(&self, clients: usize) -> usize {
        (self.deliveries.len() / clients.max(1)).max(1)
    }
}

/// Stream clients connected to one server, not measuring yet.
struct Clients {
    count: usize,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, u64)>>>,
    /// Rounds the server made before this time (Unix ms) are not counted:
    /// some clients would see them as their current value.
    from_ms: Arc<std::sync::atomic::AtomicU64>,
    until: tokio_util::sync::CancellationToken,
}

/// Connects `count` stream clients to `path` on `addr` (on the
/// [`client_runtime`]) and returns once every one is connected, with how
/// long that took.
async fn connect_clients(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    path: &str,
    count: usize,
) -> (Clients, Duration) {
    let path: Arc<str> = path.into();
    let connected = Arc::new(tokio::sync::Barrier::new(count + 1));
    let until = tokio_util::sync::CancellationToken::new();
    let from_ms = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let started = Instant::now();
    let tasks = (0..count)
        .map(|_| {
            runtime.spawn(sse_client(
                addr,
                path.clone(),
                connected.clone(),
                from_ms.clone(),
                until.clone(),
            ))
        })
        .collect();
    connected.wait().await;
    let clients = Clients {
        count,
        tasks,
        from_ms,
        until,
    };
    (clients, started.elapsed())
}

impl Clients {
    /// Records the rounds of the next `duration`, ends the clients and
    /// prints one row per round (p50, p99, max over clients).
    async fn measure(self, duration: Duration) -> SseFigures {
        self.from_ms.store(
            oracle_common::now_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
        tokio::time::sleep(duration).await;
        self.until.cancel();
        let mut by_round: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        let mut closed_early = 0usize;
        for t in self.tasks {
            match t.await {
                Ok(events) if !events.is_empty() => {
                    for (id, ms) in events {
                        by_round.entry(id).or_default().push(ms);
                    }
                }
                _ => closed_early += 1,
            }
        }
        let mut deliveries = Vec::new();
        println!("round            clients   p50 ms   p99 ms   max ms");
        for (id, mut ms) in by_round {
            if ms.len() < self.count / 2 {
                continue; // a round only some clients saw as news (at the edges)
            }
            ms.sort_unstable();
            let pct = |p: f64| ms[((ms.len() as f64 * p) as usize).min(ms.len() - 1)];
            let (p50, p99, max) = (pct(0.5), pct(0.99), ms[ms.len() - 1]);
            println!("{id:<16} {:>7} {p50:>8} {p99:>8} {max:>8}", ms.len());
            deliveries.extend(ms);
        }
        deliveries.sort_unstable();
        SseFigures {
            deliveries,
            closed_early,
        }
    }
}

/// CPU time spent between two readings of [`cpu_time`], when both worked.
fn cpu_spent(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?))
}

/// How long connections settle before memory is read and rounds counted.
const SETTLE: Duration = Duration::from_secs(2);

/// Prints the summary line of a window.
fn print_summary(label: &str, f: &SseFigures, duration: Duration) {
    match (f.quantile(0.5), f.quantile(0.99), f.deliveries.last()) {
        (Some(p50), Some(p99), Some(max)) => println!(
            "{label}: {} deliveries, p50 {p50} ms, p99 {p99} ms, max {max} ms; clients without events: {}",
            f.deliveries.len(),
            f.closed_early
        ),
        _ => println!("{label}: no round was delivered to the clients during {duration:?}"),
    }
}

/// Opens `clients` concurrent `/v1/stream` clients on the release bff (keys
/// and limits on; the per-client stream cap raised, since every client comes
/// from 127.0.0.1), lets the real pipeline produce rounds for `duration`,
/// and prints for each new round how long after the bff saw its block the
/// clients read it (p50, p99, max over clients), and the bff's resident
/// memory per connected client. Then the same clients against a bare
/// fan-out (`oracle-devstack bare-sse`, a separate process, the same event
/// bytes, no HTTP framework): this machine's floor, in the same run.
pub async fn bench_sse(
    bin_dir: &Path,
    clients: usize,
    duration: Duration,
) -> Result<(), StackError> {
    let fd_limit = raise_fd_limit();
    if fd_limit < clients as u64 + 1024 {
        return Err(StackError::Io(format!(
            "open-file limit {fd_limit} is too low for {clients} clients (raise the hard limit)"
        )));
    }
    let cap = (clients + 100).to_string();
    let (mut stack, body, data_dir) = bench_stack(
        bin_dir,
        "bench-sse",
        &[
            ("ORACLE__BFF__MAX_STREAMS", cap.as_str()),
            ("ORACLE__BFF__MAX_STREAMS_PER_CLIENT", cap.as_str()),
        ],
    )
    .await?;
    let pid = stack
        .pid("bff")
        .ok_or_else(|| StackError::Io("no bff process".into()))?;
    let addr: std::net::SocketAddr = stack
        .bff_url
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| StackError::Io(format!("bff url {}: {e}", stack.bff_url)))?;
    let runtime = client_runtime()?;
    let rss_before = rss_bytes(pid).unwrap_or(0);
    let (streams, connect_time) = connect_clients(
        &runtime,
        addr,
        "/v1/stream?pairs=BTC-USD&throttle_ms=0",
        clients,
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    let rss_connected = rss_bytes(pid).unwrap_or(0);
    println!(
        "{clients} SSE clients connected in {:.1} s (bff: API keys and a rate limit on; clients on two SCHED_BATCH threads sharing the 2 cores with the bff)",
        connect_time.as_secs_f64()
    );
    println!(
        "bff RSS: {:.1} MiB before, {:.1} MiB with the clients: {:.1} KiB per client",
        rss_before as f64 / 1048576.0,
        rss_connected as f64 / 1048576.0,
        (rss_connected.saturating_sub(rss_before)) as f64 / 1024.0 / clients as f64
    );
    let (bff_before, self_before) = (cpu_time(pid), cpu_time(std::process::id()));
    let bff = streams.measure(duration).await;
    let bff_cpu = cpu_spent(bff_before, cpu_time(pid));
    let self_cpu = cpu_spent(self_before, cpu_time(std::process::id()));
    print_summary("bff, all rounds", &bff, duration);
    if let (Some(b), Some(c)) = (bff_cpu, self_cpu) {
        let rounds = bff.rounds(clients);
        println!(
            "CPU over the {duration:?} measured: bff {:.2} s, clients {:.2} s, {rounds} rounds: {:.0} ms and {:.0} ms per round",
            b.as_secs_f64(),
            c.as_secs_f64(),
            b.as_secs_f64() * 1e3 / rounds as f64,
            c.as_secs_f64() * 1e3 / rounds as f64
        );
    }

    // The floor: the same clients, the same bytes, a bare fan-out.
    let (mut bare, port) = spawn_bare(&data_dir, "bare-sse", "--data", &body)?;
    let bare_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    eventually(Duration::from_secs(10), "bare-sse up", || async {
        tokio::net::TcpStream::connect(bare_addr)
            .await
            .ok()
            .map(|_| ())
    })
    .await?;
    println!(
        "the floor: the same clients on a bare fan-out (a task per connection, one write per round of the same event bytes, HTTP/1.1 chunked, a round every {BARE_ROUND_EVERY:?}; the stack idle beside it)"
    );
    let floor_time = duration.min(Duration::from_secs(30));
    let bare_pid = bare.id().unwrap_or(0);
    let (streams, _) = connect_clients(&runtime, bare_addr, "/v1/stream", clients).await;
    tokio::time::sleep(SETTLE).await;
    let bare_before = cpu_time(bare_pid);
    let floor = streams.measure(floor_time).await;
    let bare_cpu = cpu_spent(bare_before, cpu_time(bare_pid));
    print_summary("bare fan-out, all rounds", &floor, floor_time);
    if let Some(c) = bare_cpu {
        let rounds = floor.rounds(clients);
        println!(
            "CPU of the bare fan-out: {:.2} s, {rounds} rounds: {:.0} ms per round",
            c.as_secs_f64(),
            c.as_secs_f64() * 1e3 / rounds as f64
        );
    }
    if let (Some(b), Some(f)) = (bff.quantile(0.99), floor.quantile(0.99)) {
        println!("p99: bff {b} ms, bare fan-out {f} ms (target: bff <= 100 ms)");
    }
    bare.kill_now().await;
    runtime.shutdown_background();
    stack.kill_service("fetchers").await;
    stack.stop().await;
    Ok(())
}

/// How often the bare fan-out sends a round.
const BARE_ROUND_EVERY: Duration = Duration::from_secs(3);

/// The floor of bench-sse: accepts connections on `addr`, answers each
/// request head with a chunked `text/event-stream` head, and every
/// [`BARE_ROUND_EVERY`] writes to every connection one event in the bff's
/// format (`data` the bff's JSON body, a `seen_at_ms` comment stamped when
/// the round is made), built once and shared. One task per connection woken
/// by a broadcast, one write per round: no HTTP framework, no stream logic.
pub async fn bare_sse(addr: std::net::SocketAddr, data: String) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (rounds, _) = tokio::sync::broadcast::channel::<axum::body::Bytes>(16);
    let event = move |round: u64| {
        let frame = format!(
            "event: price\nid: BTC/USD:{round}\n: seen_at_ms={}\ndata: {data}\n\n",
            oracle_common::now_ms()
        );
        axum::body::Bytes::from(format!("{:x}\r\n{frame}\r\n", frame.len()))
    };
    let sender = rounds.clone();
    let make = event.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BARE_ROUND_EVERY);
        for round in 1.. {
            tick.tick().await;
            let _ = sender.send(make(round));
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut updates = rounds.subscribe();
        let first = event(0);
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let response = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(response).await.is_err() || socket.write_all(&first).await.is_err()
            {
                return;
            }
            while let Ok(frame) = updates.recv().await {
                if socket.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The runtime the stream clients run on: two workers scheduled as
/// `SCHED_BATCH`, so that a client woken by the bff's write does not preempt
/// the bff in the middle of its fan-out. In production the clients are on
/// other machines; on loopback their receive path and wake-ups run on the
/// bff's cores, and with wake-up preemption every delivery costs the bff two
/// context switches (measured: 200 ms of bff CPU per round instead of 140).
fn client_runtime() -> Result<tokio::runtime::Runtime, StackError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sse-client")
        .on_thread_start(batch_scheduling)
        .enable_all()
        .build()
        .map_err(|e| StackError::Io(format!("client runtime: {e}")))
}

/// Makes the calling thread `SCHED_BATCH` (Linux): CPU-bound, never
/// preempting others when it wakes up.
#[allow(unsafe_code)]
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the calling thread's (pid 0) policy from a valid struct.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        eprintln!(
            "sse client thread: SCHED_BATCH refused: {}",
            std::io::Error::last_os_error()
        );
    }
}
