//! `oracle-devstack bench-fetchers`: the fetchers' cost at scale. Starts
//! nats-server and the simulator (enforcing every venue's documented public
//! budget), writes a config polling 12 sources as primaries for every one of
//! `BENCH_FEEDS` feeds (default 500: the 20 real bases, then generated ones,
//! `T0021`…) every second with no fallbacks, runs the `oracle-fetchers`
//! binary as a child process, and reports: requests per second per venue
//! against its budget and the simulator's refusals, each feed's observation
//! age (from a NATS subscription), and the process's CPU time and resident
//! memory from `/proc`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use oracle_common::config::Config;
use oracle_common::wire::{Observation, WireMessage};
use oracle_common::{SourceId, now_ms};
use oracle_fetchers::sources::Venue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::process::{ChildProcess, Output};
use crate::simulator::{Simulator, budget_rules};
use crate::stack::{StackError, start_nats};
use crate::tools;

/// Feeds polled by default (`BENCH_FEEDS` overrides).
pub const DEFAULT_FEEDS: usize = 500;

/// The 20 bases of the benchmark's feeds (all quoted in USD).
pub const BASES: [&str; 20] = [
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "AVAX", "UNI", "ATOM",
    "XLM", "ETC", "BCH", "FIL", "TRX", "NEAR", "APT",
];

/// `n` bases: the real ones first, then generated tickers `T0021`, `T0022`….
pub fn bases(n: usize) -> Vec<String> {
    BASES
        .iter()
        .map(|b| (*b).to_owned())
        .chain((BASES.len() + 1..).map(|i| format!("T{i:04}")))
        .take(n)
        .collect()
}

/// CoinGecko's coin id for a base (a generated base's own name, lower case).
fn coingecko_id(base: &str) -> String {
    let id = match base {
        "BTC" => "bitcoin",
        "ETH" => "ethereum",
        "SOL" => "solana",
        "BNB" => "binancecoin",
        "XRP" => "ripple",
        "ADA" => "cardano",
        "DOGE" => "dogecoin",
        "DOT" => "polkadot",
        "LTC" => "litecoin",
        "LINK" => "chainlink",
        "AVAX" => "avalanche-2",
        "UNI" => "uniswap",
        "ATOM" => "cosmos",
        "XLM" => "stellar",
        "ETC" => "ethereum-classic",
        "BCH" => "bitcoin-cash",
        "FIL" => "filecoin",
        "TRX" => "tron",
        "NEAR" => "near",
        "APT" => "aptos",
        other => return other.to_ascii_lowercase(),
    };
    id.to_owned()
}

/// The venue's usual symbol for `base`/USD, as a TOML value (USDT markets
/// are marked as standing in for USD).
pub fn symbol_toml(venue: Venue, base: &str) -> String {
    let b = base;
    let l = base.to_ascii_lowercase();
    let usdt = |s: String| format!("{{ symbol = \"{s}\", quote = \"USDT\" }}");
    match venue {
        Venue::Binance => usdt(format!("{b}USDT")),
        Venue::Coinbase => format!("\"{b}-USD\""),
        Venue::Kraken if b == "BTC" => "\"XBTUSD\"".into(),
        Venue::Kraken => format!("\"{b}USD\""),
        Venue::Bitstamp | Venue::Gemini => format!("\"{l}usd\""),
        Venue::Okx => usdt(format!("{b}-USDT")),
        Venue::Bybit => usdt(format!("{b}USDT")),
        Venue::Kucoin => usdt(format!("{b}-USDT")),
        Venue::Bitfinex => format!("\"t{b}USD\""),
        Venue::Gateio => usdt(format!("{b}_USDT")),
        Venue::Htx => usdt(format!("{l}usdt")),
        Venue::Coingecko => format!("\"{}\"", coingecko_id(b)),
    }
}

/// The 20-feed configuration (the real bases, 1 s polling) other benchmarks
/// start from.
pub fn config_toml(nats_url: &str, sim_addr: &str, metrics_port: u16) -> String {
    config_toml_for(
        nats_url,
        sim_addr,
        metrics_port,
        &bases(BASES.len()),
        Duration::from_secs(1),
    )
}

/// The benchmark's configuration: every venue a primary of every feed of
/// `bases`, no fallbacks, `poll` polling, each source at its documented
/// default budget.
pub fn config_toml_for(
    nats_url: &str,
    sim_addr: &str,
    metrics_port: u16,
    bases: &[String],
    poll: Duration,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[telemetry]\nlog_format = \"json\"\nlog_level = \"warn\"\n"
    );
    let _ = writeln!(t, "[nats]\nurls = [\"{nats_url}\"]\n");
    let _ = writeln!(
        t,
        "[fetchers]\nid = \"bench\"\npoll_interval = \"{}ms\"\nmetrics_addr = \"127.0.0.1:{metrics_port}\"\n",
        poll.as_millis()
    );
    for venue in Venue::ALL {
        let name = venue.name();
        let _ = writeln!(
            t,
            "[sources.{name}]\nbase_url = \"http://{sim_addr}/{name}\"\ntimeout = \"2s\""
        );
        let _ = writeln!(t, "[sources.{name}.symbols]");
        for base in bases {
            let _ = writeln!(t, "\"{base}/USD\" = {}", symbol_toml(venue, base));
        }
        t.push('\n');
    }
    let all = Venue::ALL.map(|v| format!("\"{}\"", v.name())).join(", ");
    for base in bases {
        let _ = writeln!(
            t,
            "[[feeds]]\npair = \"{base}/USD\"\nmin_price = \"0.0001\"\nmax_price = \"10000000\"\nsources = [{all}]\nmin_sources = 3\n"
        );
    }
    t
}

/// CPU time (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU seconds used so far.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub rss_peak: u64,
}

/// Reads `/proc/{pid}`.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    Some(Usage {
        cpu_s: ticks / 100.0,
        rss: kb("VmRSS:")?,
        rss_peak: kb("VmHWM:")?,
    })
}

/// Percentile `p` (0..=100) of sorted `values` (nearest rank).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The value of every series of `name` in a Prometheus text page, summed
/// per the value of `label` (or under "" without it).
fn scrape(page: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in page.lines().filter(|l| l.starts_with(name)) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if !(series == name || series.starts_with(&format!("{name}{{"))) {
            continue;
        }
        let key = series
            .split(&format!("{label}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_owned();
        *out.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// Runs the benchmark and prints its figures.
pub async fn bench_fetchers(
    fetchers_bin: &Path,
    warmup: Duration,
    duration: Duration,
) -> Result<(), StackError> {
    let feeds = std::env::var("BENCH_FEEDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_FEEDS);
    let poll = Duration::from_secs(1);
    let bases = bases(feeds);
    let io = |e: std::io::Error| StackError::Io(e.to_string());
    let dir = std::env::temp_dir().join(format!("oracle-bench-fetchers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let nats_url = format!("nats://127.0.0.1:{}", tools::free_port().map_err(io)?);
    let _nats = start_nats(&nats_url, &dir.join("nats"), &dir.join("logs")).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
    let sim_addr = listener.local_addr().map_err(io)?.to_string();
    let metrics_port = tools::free_port().map_err(io)?;
    let toml = config_toml_for(&nats_url, &sim_addr, metrics_port, &bases, poll);
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, &toml).map_err(io)?;
    let config = Config::load_with_env(&config_path, Vec::new())
        .map_err(|e| StackError::Config(e.to_string()))?;
    let sim = Simulator::from_config(&config);
    sim.enforce_budgets(true);
    let shutdown = CancellationToken::new();
    tokio::spawn(
        sim.clone()
            .serve(listener, Duration::from_secs(1), shutdown.clone()),
    );

    // The newest observation time seen per feed, from a plain subscription
    // to what the fetchers publish.
    let newest: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let nats = async_nats::connect(&nats_url)
        .await
        .map_err(|e| StackError::Io(format!("nats: {e}")))?;
    let mut sub = nats
        .subscribe("oracle.obs.>")
        .await
        .map_err(|e| StackError::Io(format!("nats subscribe: {e}")))?;
    {
        let (newest, received) = (Arc::clone(&newest), Arc::clone(&received));
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Ok(o) = Observation::decode(&msg.payload) {
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut newest) = newest.lock() {
                        let at = newest.entry(o.pair.to_string()).or_insert(0);
                        *at = (*at).max(o.observed_at_ms);
                    }
                }
            }
        });
    }

    let mut child = ChildProcess::spawn(
        "oracle-fetchers",
        fetchers_bin,
        &["--config".into(), config_path.display().to_string()],
        &[],
        Output::File(dir.join("fetchers.log")),
    )
    .map_err(io)?;
    let pid = child
        .id()
        .ok_or_else(|| StackError::Io("fetchers exited at once".into()))?;
    println!(
        "fetchers cost: {} sources x {} feeds (all primaries, no fallbacks) every {poll:?}, \
         simulator enforcing each venue's documented budget, warm-up {warmup:?}, measuring {duration:?}",
        Venue::ALL.len(),
        bases.len()
    );
    tokio::time::sleep(warmup).await;
    child.check_running().map_err(io)?;
    let before = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let received_before = received.load(std::sync::atomic::Ordering::Relaxed);
    let from_ms = now_ms();
    let started = Instant::now();
    let mut peak_rss = before.rss;
    // Age samples per feed, every 100 ms.
    let mut ages: HashMap<String, Vec<u64>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < duration {
        tick.tick().await;
        let now = now_ms();
        if let Ok(newest) = newest.lock() {
            for base in &bases {
                let pair = format!("{base}/USD");
                let age = newest
                    .get(&pair)
                    .map_or(u64::MAX, |at| now.saturating_sub(*at));
                ages.entry(pair).or_default().push(age);
            }
        }
        if let Some(u) = usage(pid) {
            peak_rss = peak_rss.max(u.rss);
        }
    }
    let after = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let to_ms = now_ms();
    let elapsed = started.elapsed().as_secs_f64();
    let received_total = received.load(std::sync::atomic::Ordering::Relaxed) - received_before;
    let page = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .ok();
    let page = match page {
        Some(r) => r.text().await.unwrap_or_default(),
        None => String::new(),
    };
    child.check_running().map_err(io)?;
    child.stop(Duration::from_secs(5)).await;
    shutdown.cancel();

    println!("\nrequests per venue while measuring (simulator's count, by arrival second):");
    println!(
        "| venue | req/s mean | req/s max in a second | units/s mean | budget | refused (429) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut refused_total = 0;
    for venue in Venue::ALL {
        let id: SourceId = venue
            .name()
            .parse()
            .map_err(|_| StackError::Io("source id".into()))?;
        let reqs: Vec<_> = sim
            .requests(&id)
            .into_iter()
            .filter(|r| r.at_ms >= from_ms && r.at_ms < to_ms)
            .collect();
        let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
        for r in &reqs {
            *per_second.entry(r.at_ms / 1000).or_default() += 1;
        }
        let max = per_second.values().copied().max().unwrap_or(0);
        let units: u64 = reqs.iter().map(|r| u64::from(r.cost)).sum();
        let refused = reqs.iter().filter(|r| r.over_budget).count();
        refused_total += refused;
        let budget = budget_rules(venue)
            .iter()
            .map(|r| {
                format!(
                    "{} per {} s{}{}",
                    r.units,
                    r.per_ms / 1000,
                    if r.fixed { " (fixed window)" } else { "" },
                    match r.applies {
                        crate::simulator::Applies::All => "",
                        crate::simulator::Applies::Single => " (ticker)",
                        crate::simulator::Applies::Many => " (tickers)",
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} | {:.2} | {max} | {:.2} | {budget} | {refused} |",
            venue.name(),
            reqs.len() as f64 / elapsed,
            units as f64 / elapsed,
        );
    }
    println!("refused over budget, all venues: {refused_total} (target 0)");

    let mut p99s: Vec<u64> = ages
        .values_mut()
        .map(|samples| {
            samples.sort_unstable();
            percentile(samples, 99.0)
        })
        .collect();
    p99s.sort_unstable();
    let ms = |v: u64| {
        if v == u64::MAX {
            "never observed".to_owned()
        } else {
            format!("{v} ms")
        }
    };
    println!(
        "\nobservation age p99 per feed (every 100 ms, each feed's age = now - the newest observed_at_ms \
         among its observations received on a NATS subscription to oracle.obs.>; p99 over a feed's samples): \
         best feed {}, median feed {}, worst feed {} ({} feeds)",
        ms(p99s.first().copied().unwrap_or(0)),
        ms(percentile(&p99s, 50.0)),
        ms(p99s.last().copied().unwrap_or(0)),
        p99s.len()
    );
    println!(
        "observations received: {:.0}/s",
        received_total as f64 / elapsed
    );
    let requests = scrape(&page, "oracle_fetchers_requests_total", "outcome");
    let dropped = scrape(&page, "oracle_fetchers_dropped_total", "reason");
    let depth = scrape(&page, "oracle_fetchers_buffer_depth", "");
    println!(
        "fetcher requests by outcome since start: {requests:?}; dropped: {dropped:?}; publish buffer depth at the end: {}",
        depth.values().sum::<f64>()
    );
    let cpu = (after.cpu_s - before.cpu_s) / elapsed * 100.0;
    println!("CPU: {cpu:.1}% of one core (target < 25%)");
    println!(
        "RSS: {:.1} MiB at the end, {:.1} MiB peak while measuring, {:.1} MiB peak overall (target < 100 MiB)",
        after.rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        after.rss_peak as f64 / 1048576.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
