//! `oracle-devstack bench-fetchers`: the fetchers' cost at scale. Starts
//! nats-server and the simulator, writes a config polling 12 sources for 20
//! feeds every second, runs the `oracle-fetchers` binary as a child process,
//! and samples its CPU time and resident memory from `/proc`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use oracle_common::config::Config;
use oracle_fetchers::sources::Venue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::process::{ChildProcess, Output};
use crate::simulator::Simulator;
use crate::stack::{StackError, start_nats};
use crate::tools;

/// The 20 bases of the benchmark's feeds (all quoted in USD).
pub const BASES: [&str; 20] = [
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "AVAX", "UNI", "ATOM",
    "XLM", "ETC", "BCH", "FIL", "TRX", "NEAR", "APT",
];

/// CoinGecko's coin id for a base.
fn coingecko_id(base: &str) -> &'static str {
    match base {
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
        _ => "aptos",
    }
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

/// The benchmark's configuration: every venue, every base, 1 s polling.
pub fn config_toml(nats_url: &str, sim_addr: &str, metrics_port: u16) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[telemetry]\nlog_format = \"json\"\nlog_level = \"warn\"\n"
    );
    let _ = writeln!(t, "[nats]\nurl = \"{nats_url}\"\n");
    let _ = writeln!(
        t,
        "[fetchers]\nid = \"bench\"\npoll_interval = \"1s\"\nmetrics_addr = \"127.0.0.1:{metrics_port}\"\n"
    );
    for venue in Venue::ALL {
        let name = venue.name();
        let _ = writeln!(
            t,
            "[sources.{name}]\nbase_url = \"http://{sim_addr}/{name}\"\ntimeout = \"2s\""
        );
        let _ = writeln!(t, "rate_limit = {{ requests = 100, per = \"1s\" }}");
        let _ = writeln!(t, "[sources.{name}.symbols]");
        for base in BASES {
            let _ = writeln!(t, "\"{base}/USD\" = {}", symbol_toml(venue, base));
        }
        t.push('\n');
    }
    let all = Venue::ALL.map(|v| format!("\"{}\"", v.name())).join(", ");
    for base in BASES {
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

/// Runs the benchmark and prints its figures.
pub async fn bench_fetchers(
    fetchers_bin: &Path,
    warmup: Duration,
    duration: Duration,
) -> Result<(), StackError> {
    let dir = std::env::temp_dir().join(format!("oracle-bench-fetchers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| StackError::Io(e.to_string()))?;
    let nats_url = format!(
        "nats://127.0.0.1:{}",
        tools::free_port().map_err(|e| StackError::Io(e.to_string()))?
    );
    let _nats = start_nats(&nats_url, &dir.join("nats"), &dir.join("nats.log")).await?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StackError::Io(e.to_string()))?;
    let sim_addr = listener
        .local_addr()
        .map_err(|e| StackError::Io(e.to_string()))?
        .to_string();
    let metrics_port = tools::free_port().map_err(|e| StackError::Io(e.to_string()))?;
    let toml = config_toml(&nats_url, &sim_addr, metrics_port);
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, &toml).map_err(|e| StackError::Io(e.to_string()))?;
    let config = Config::load_with_env(&config_path, Vec::new())
        .map_err(|e| StackError::Config(e.to_string()))?;
    let sim = Simulator::from_config(&config);
    let shutdown = CancellationToken::new();
    tokio::spawn(
        sim.clone()
            .serve(listener, Duration::from_secs(1), shutdown.clone()),
    );

    let mut child = ChildProcess::spawn(
        "oracle-fetchers",
        fetchers_bin,
        &["--config".into(), config_path.display().to_string()],
        &[],
        Output::File(dir.join("fetchers.log")),
    )
    .map_err(|e| StackError::Io(e.to_string()))?;
    let pid = child
        .id()
        .ok_or_else(|| StackError::Io("fetchers exited at once".into()))?;
    println!(
        "fetchers cost: {} sources x {} feeds every 1 s, warm-up {warmup:?}, measuring {duration:?}",
        Venue::ALL.len(),
        BASES.len()
    );
    tokio::time::sleep(warmup).await;
    child
        .check_running()
        .map_err(|e| StackError::Io(e.to_string()))?;
    let served_before = sim.served().len();
    let before = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let started = Instant::now();
    let mut peak_rss = before.rss;
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(u) = usage(pid) {
            peak_rss = peak_rss.max(u.rss);
        }
    }
    let after = usage(pid).ok_or_else(|| StackError::Io("cannot read /proc".into()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let served = sim.served().len() - served_before;
    child
        .check_running()
        .map_err(|e| StackError::Io(e.to_string()))?;
    child.stop(Duration::from_secs(5)).await;
    shutdown.cancel();
    let cpu = (after.cpu_s - before.cpu_s) / elapsed * 100.0;
    println!(
        "requests answered by the simulator: {:.0}/s",
        served as f64 / elapsed
    );
    println!("CPU: {cpu:.1}% of one core (target < 10%)");
    println!(
        "RSS: {:.1} MiB at the end, {:.1} MiB peak while measuring, {:.1} MiB peak overall (target < 50 MiB)",
        after.rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        after.rss_peak as f64 / 1048576.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
