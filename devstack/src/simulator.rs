//! The exchange simulator: serves each configured source's real public ticker
//! format on loopback under `/{source_id}/…` (all twelve connectors), with
//! prices that move, and faults that can be injected per venue.
//!
//! Each pair follows a random walk around a shared reference (a step of at
//! most ±8 bps per tick); each venue quotes the reference with its own small
//! fixed offset. Every quote served and every request received is recorded
//! (bounded) so tests can check what reached the chain and how often a venue
//! was asked.
//!
//! Faults (per venue, through [`Simulator::set_faults`] or
//! `PUT /_sim/faults/{source}` with a JSON [`Faults`]; `DELETE` clears):
//! added latency, an HTTP error status (429 with `Retry-After`, 5xx), a
//! malformed body, a connection reset, a frozen price, an outlier price, a
//! clock that runs ahead or behind (the venue's data timestamps shifted).
//!
//! Many-markets endpoints: each venue's batch request (named lists, or every
//! market) is served in its real format for the symbols the config gives it
//! (see the table in `oracle_fetchers::sources`); a named symbol the venue
//! does not list is left out of the answer, except where the real venue
//! refuses the whole list (Binance `-1121`, Kraken `EQuery:Unknown asset
//! pair`).
//!
//! Budgets ([`Simulator::enforce_budgets`], off by default so that local
//! stacks may poll faster than the public limits allow): each venue's
//! documented public limit, by its own rule ([`budget_rules`]: a sliding or
//! fixed window, request weights where the venue weighs endpoints, per
//! endpoint where it limits them apart). A request over budget gets the
//! venue's real rate-limit answer, HTTP 429 with `Retry-After` (seconds until
//! the window frees). Every request is counted per venue, with its cost and
//! whether it was refused ([`Simulator::budget_stats`], and `GET /_sim/state`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oracle_common::config::Config;
use oracle_common::{Pair, SourceId, now_ms};
use oracle_fetchers::sources::Venue;
use rand::Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How many served quotes and requests are remembered.
const LOG_CAPACITY: usize = 100_000;
/// Largest random-walk step per tick, in basis points.
const MAX_STEP_BPS: i64 = 8;

/// One quote the simulator served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The source (venue) id.
    pub source: SourceId,
    /// The pair.
    pub pair: Pair,
    /// The price in the response.
    pub price: Decimal,
    /// When it was served, Unix ms.
    pub at_ms: u64,
}

/// One request a venue received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The venue.
    pub source: SourceId,
    /// When it arrived, Unix ms.
    pub at_ms: u64,
    /// The status answered (0 for a reset connection).
    pub status: u16,
    /// Markets the request asked for (0: every market of the venue).
    pub markets: usize,
    /// What it counts against the venue's budget (request weight, or 1).
    pub cost: u32,
    /// Refused for being over the venue's documented budget.
    pub over_budget: bool,
}

/// One documented limit of a venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetRule {
    /// Units (requests, or request weight) allowed per window.
    pub units: u32,
    /// The window, ms.
    pub per_ms: u64,
    /// A fixed window aligned to the clock (Binance's minute, KuCoin's 30 s)
    /// rather than a sliding one.
    pub fixed: bool,
    /// Which requests it counts.
    pub applies: Applies,
}

/// Which requests a [`BudgetRule`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applies {
    /// Every request.
    All,
    /// Per-symbol tickers only.
    Single,
    /// Many-markets requests only.
    Many,
}

/// Requests and refusals of one venue so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BudgetStats {
    /// Requests received.
    pub requests: u64,
    /// Units they counted for.
    pub units: u64,
    /// Requests refused for being over budget (HTTP 429).
    pub rejected: u64,
}

/// Arrival times within this much of a window's end count as outside it:
/// the time a request spends on loopback (a client that spaces its sends by
/// exactly the window must not be refused for scheduling jitter).
const BUDGET_TOLERANCE_MS: u64 = 20;

/// Faults injected into one venue's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency before answering, ms.
    pub latency_ms: u64,
    /// Answer with this HTTP status and the venue's error body (429, 500, 503…).
    pub status: Option<u16>,
    /// With `status`: the `Retry-After` header, seconds.
    pub retry_after_s: Option<u64>,
    /// Answer 200 with a body that is not valid JSON.
    pub malformed: bool,
    /// Drop the connection without answering.
    pub reset: bool,
    /// Keep quoting the price of the moment the freeze was set.
    pub freeze: bool,
    /// Quote this many basis points away from the reference.
    pub outlier_bps: i64,
    /// Shift the venue's timestamps by this many ms (positive: its clock runs
    /// ahead), as an exchange with a wrong clock would.
    pub clock_offset_ms: i64,
}

#[derive(Debug)]
struct VenueSim {
    venue: Venue,
    offset_bps: i64,
    /// The venue's symbol → pair.
    symbols: BTreeMap<String, Pair>,
    faults: Faults,
    frozen: BTreeMap<Pair, Decimal>,
}

/// A venue's budget windows: per rule, the counted arrivals (ms, cost).
#[derive(Debug, Default)]
struct BudgetState {
    windows: Vec<VecDeque<(u64, u32)>>,
    stats: BudgetStats,
}

#[derive(Debug)]
struct Inner {
    venues: RwLock<BTreeMap<SourceId, VenueSim>>,
    budgets: Mutex<BTreeMap<SourceId, BudgetState>>,
    enforce_budgets: std::sync::atomic::AtomicBool,
    reference: RwLock<BTreeMap<Pair, Decimal>>,
    tick_at_ms: AtomicU64,
    served: Mutex<VecDeque<Served>>,
    requests: Mutex<VecDeque<Request>>,
}

/// A running or ready-to-run simulator; cheap to clone.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

/// A plausible starting price for a pair.
pub fn initial_price(pair: &Pair) -> Decimal {
    let cents: i64 = match pair.base() {
        "BTC" => 9_700_000,
        "ETH" => 305_000,
        "SOL" => 14_500,
        "BNB" => 62_000,
        "XRP" => 240,
        "ADA" => 70,
        "DOGE" => 18,
        "DOT" => 520,
        "LTC" => 9_500,
        "LINK" => 1_450,
        "AVAX" => 2_800,
        "UNI" => 900,
        "ATOM" => 480,
        "XLM" => 30,
        "ETC" => 1_800,
        "BCH" => 42_000,
        "FIL" => 350,
        "TRX" => 25,
        "NEAR" => 380,
        "APT" => 620,
        _ => 10_000,
    };
    Decimal::new(cents, 2)
}

/// Decimals a price is quoted with: more for small prices.
fn price_dp(price: Decimal) -> u32 {
    if price >= Decimal::from(1000) {
        2
    } else if price >= Decimal::ONE {
        4
    } else {
        6
    }
}

fn bounded_push<T>(log: &Mutex<VecDeque<T>>, item: T) {
    if let Ok(mut log) = log.lock() {
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(item);
    }
}

impl Simulator {
    /// A simulator for every source in `config` whose connector it knows.
    pub fn from_config(config: &Config) -> Self {
        let mut venues = BTreeMap::new();
        let mut reference = BTreeMap::new();
        for (i, (id, source)) in config.sources.iter().enumerate() {
            let Some(venue) = Venue::from_kind(source.kind_or(id)) else {
                continue;
            };
            let symbols: BTreeMap<String, Pair> = source
                .symbols
                .iter()
                .map(|(pair, spec)| (spec.symbol().to_owned(), pair.clone()))
                .collect();
            for pair in symbols.values() {
                reference
                    .entry(pair.clone())
                    .or_insert_with(|| initial_price(pair));
            }
            // Small fixed offsets, -4..=4 bps, different per venue.
            let offset_bps = (i as i64 * 7) % 9 - 4;
            venues.insert(
                id.clone(),
                VenueSim {
                    venue,
                    offset_bps,
                    symbols,
                    faults: Faults::default(),
                    frozen: BTreeMap::new(),
                },
            );
        }
        Self {
            inner: Arc::new(Inner {
                venues: RwLock::new(venues),
                budgets: Mutex::new(BTreeMap::new()),
                enforce_budgets: std::sync::atomic::AtomicBool::new(false),
                reference: RwLock::new(reference),
                tick_at_ms: AtomicU64::new(now_ms()),
                served: Mutex::new(VecDeque::new()),
                requests: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Moves every reference price one random step.
    pub fn step(&self) {
        let mut rng = rand::rng();
        if let Ok(mut reference) = self.inner.reference.write() {
            for price in reference.values_mut() {
                let bps = rng.random_range(-MAX_STEP_BPS..=MAX_STEP_BPS);
                *price = (*price * Decimal::new(10_000 + bps, 4)).round_dp(price_dp(*price));
            }
        }
        self.inner.tick_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn reference(&self, pair: &Pair) -> Option<Decimal> {
        self.inner.reference.read().ok()?.get(pair).copied()
    }

    fn quote_of(&self, v: &VenueSim, pair: &Pair) -> Option<Decimal> {
        if v.faults.freeze
            && let Some(frozen) = v.frozen.get(pair)
        {
            return Some(*frozen);
        }
        let reference = self.reference(pair)?;
        let bps = v.offset_bps + v.faults.outlier_bps;
        Some((reference * Decimal::new(10_000 + bps, 4)).round_dp(price_dp(reference)))
    }

    /// What `source` quotes for `pair` now (faults included).
    pub fn quote(&self, source: &SourceId, pair: &Pair) -> Option<Decimal> {
        let venues = self.inner.venues.read().ok()?;
        self.quote_of(venues.get(source)?, pair)
    }

    /// Injects `faults` into `source`'s answers (replacing earlier ones).
    pub fn set_faults(&self, source: &SourceId, faults: Faults) -> bool {
        let Ok(mut venues) = self.inner.venues.write() else {
            return false;
        };
        let Some(v) = venues.get_mut(source) else {
            return false;
        };
        v.frozen.clear();
        if faults.freeze {
            let pairs: Vec<Pair> = v.symbols.values().cloned().collect();
            // Frozen at the price the venue quotes with the new faults (an
            // outlier offset included), so freeze and outlier combine.
            let unfrozen = VenueSim {
                faults: Faults {
                    outlier_bps: faults.outlier_bps,
                    ..Faults::default()
                },
                frozen: BTreeMap::new(),
                symbols: BTreeMap::new(),
                ..*v
            };
            for pair in pairs {
                if let Some(p) = self.quote_of(&unfrozen, &pair) {
                    v.frozen.insert(pair, p);
                }
            }
        }
        v.faults = faults;
        true
    }

    /// Every quote served so far (the newest ones).
    pub fn served(&self) -> Vec<Served> {
        self.inner
            .served
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every request `source` received so far (the newest ones).
    pub fn requests(&self, source: &SourceId) -> Vec<Request> {
        self.inner
            .requests
            .lock()
            .map(|r| r.iter().filter(|r| &r.source == source).cloned().collect())
            .unwrap_or_default()
    }

    /// Refuses requests over each venue's documented budget from now on
    /// (`true`), or answers every request (`false`, the default).
    pub fn enforce_budgets(&self, on: bool) {
        self.inner.enforce_budgets.store(on, Ordering::Relaxed);
    }

    /// Requests, units and refusals of `source` so far.
    pub fn budget_stats(&self, source: &SourceId) -> BudgetStats {
        self.inner
            .budgets
            .lock()
            .ok()
            .and_then(|b| b.get(source).map(|s| s.stats.clone()))
            .unwrap_or_default()
    }

    /// Counts a request of `kind` costing `cost` at `now_ms`; `Some(wait)`
    /// when it is over budget (budgets enforced), with the time until the
    /// window frees.
    fn admit(
        &self,
        source: &SourceId,
        venue: Venue,
        kind: AskKind,
        cost: u32,
        now_ms: u64,
    ) -> Option<Duration> {
        let enforce = self.inner.enforce_budgets.load(Ordering::Relaxed);
        let rules = budget_rules(venue);
        let mut budgets = self.inner.budgets.lock().ok()?;
        let state = budgets.entry(source.clone()).or_default();
        state.windows.resize_with(rules.len(), VecDeque::new);
        state.stats.requests += 1;
        let applies = |r: &BudgetRule| match r.applies {
            Applies::All => true,
            Applies::Single => kind == AskKind::Single,
            Applies::Many => kind != AskKind::Single,
        };
        let mut wait: Option<u64> = None;
        for (rule, window) in rules.iter().zip(state.windows.iter_mut()) {
            if !applies(rule) {
                continue;
            }
            // Forget what left the window.
            let start = if rule.fixed {
                now_ms - now_ms % rule.per_ms
            } else {
                now_ms.saturating_sub(rule.per_ms - BUDGET_TOLERANCE_MS)
            };
            let keep = |at: u64| if rule.fixed { at >= start } else { at > start };
            while window.front().is_some_and(|(at, _)| !keep(*at)) {
                window.pop_front();
            }
            let used: u64 = window.iter().map(|(_, c)| u64::from(*c)).sum();
            if used + u64::from(cost) > u64::from(rule.units) {
                let frees_at = if rule.fixed {
                    start + rule.per_ms
                } else {
                    window.front().map_or(now_ms, |(at, _)| at + rule.per_ms)
                };
                wait = wait.max(Some(frees_at.saturating_sub(now_ms)));
            }
        }
        if enforce && let Some(ms) = wait {
            state.stats.rejected += 1;
            return Some(Duration::from_millis(ms));
        }
        for (rule, window) in rules.iter().zip(state.windows.iter_mut()) {
            if applies(rule) {
                window.push_back((now_ms, cost));
            }
        }
        state.stats.units += u64::from(cost);
        None
    }

    fn tick_time_ms(&self) -> u64 {
        self.inner.tick_at_ms.load(Ordering::Relaxed)
    }

    /// Serves on `listener` and steps prices every `tick` until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        tick: Duration,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let stepper = {
            let sim = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.tick().await;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = interval.tick() => sim.step(),
                    }
                }
            })
        };
        let app = Router::new()
            .route("/_sim/state", get(state))
            .route(
                "/_sim/faults/{source}",
                axum::routing::put(put_faults).delete(delete_faults),
            )
            .route("/{source}/{*rest}", get(venue))
            .with_state(self);
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        stepper.abort();
        result
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    /// One market, by the per-symbol ticker.
    Single(String),
    /// A list of markets.
    Many(Vec<String>),
    /// Every market of the venue.
    Every,
}

/// The kind of an [`Ask`], for budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AskKind {
    Single,
    Many,
    Every,
}

impl Ask {
    fn kind(&self) -> AskKind {
        match self {
            Ask::Single(_) => AskKind::Single,
            Ask::Many(_) => AskKind::Many,
            Ask::Every => AskKind::Every,
        }
    }
}

/// Each venue's documented public limit (the table in
/// `oracle_fetchers::sources`), as the venue enforces it.
pub fn budget_rules(venue: Venue) -> Vec<BudgetRule> {
    let rule = |units: u32, per_s: u64, fixed: bool, applies: Applies| BudgetRule {
        units,
        per_ms: per_s * 1000,
        fixed,
        applies,
    };
    match venue {
        // Request weight per calendar minute.
        Venue::Binance => vec![rule(6000, 60, true, Applies::All)],
        Venue::Coinbase => vec![rule(10, 1, false, Applies::All)],
        Venue::Kraken => vec![rule(1, 1, false, Applies::All)],
        Venue::Bitstamp => vec![rule(8000, 600, false, Applies::All)],
        Venue::Gemini => vec![rule(120, 60, false, Applies::All)],
        Venue::Okx => vec![rule(20, 2, false, Applies::All)],
        Venue::Bybit => vec![rule(600, 5, false, Applies::All)],
        // The public weight pool, reset every 30 s.
        Venue::Kucoin => vec![rule(2000, 30, true, Applies::All)],
        // `ticker` and `tickers` are limited apart.
        Venue::Bitfinex => vec![
            rule(90, 60, false, Applies::Single),
            rule(30, 60, false, Applies::Many),
        ],
        Venue::Gateio => vec![rule(200, 10, false, Applies::All)],
        Venue::Htx => vec![rule(100, 10, false, Applies::All)],
        Venue::Coingecko => vec![rule(10, 60, false, Applies::All)],
    }
}

/// What a request of `kind` weighs at `venue` (1 where requests are counted).
fn request_cost(venue: Venue, kind: AskKind) -> u32 {
    match (venue, kind) {
        (Venue::Binance, AskKind::Single) => 2,
        (Venue::Binance, _) => 4,
        (Venue::Kucoin, AskKind::Single) => 2,
        (Venue::Kucoin, _) => 15,
        _ => 1,
    }
}

/// Decodes `%XX` escapes (and nothing else) of a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request asks for, by the venue's URL scheme.
fn asked(venue: Venue, rest: &str, query: &str) -> Option<Ask> {
    let params = |name: &str| -> Vec<String> {
        query
            .split('&')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then(|| percent_decode(v))
            })
            .collect()
    };
    let param = |name: &str| params(name).into_iter().next();
    let list = |text: String| -> Ask {
        let items: Vec<String> = text.split(',').map(str::to_owned).collect();
        match <[String; 1]>::try_from(items) {
            Ok([one]) => Ask::Single(one),
            Err(items) => Ask::Many(items),
        }
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    Some(match (venue, segments.as_slice()) {
        (Venue::Binance, ["api", "v3", "ticker", "price"]) => {
            match (param("symbol"), param("symbols")) {
                (Some(sym), _) => Ask::Single(sym),
                (None, Some(json)) => Ask::Many(serde_json::from_str(&json).ok()?),
                (None, None) => Ask::Every,
            }
        }
        (Venue::Coinbase, ["products", sym, "ticker"]) => Ask::Single((*sym).to_owned()),
        (Venue::Coinbase, ["api", "v3", "brokerage", "market", "products"]) => {
            match params("product_ids") {
                ids if ids.is_empty() => Ask::Every,
                ids => Ask::Many(ids),
            }
        }
        (Venue::Kraken, ["0", "public", "Ticker"]) => param("pair").map_or(Ask::Every, list),
        (Venue::Bitstamp, ["api", "v2", "ticker", sym]) => Ask::Single((*sym).to_owned()),
        (Venue::Bitstamp, ["api", "v2", "ticker"]) => Ask::Every,
        (Venue::Gemini, ["v1", "pubticker", sym]) => Ask::Single((*sym).to_owned()),
        (Venue::Gemini, ["v1", "pricefeed"]) => Ask::Every,
        (Venue::Okx, ["api", "v5", "market", "ticker"]) => Ask::Single(param("instId")?),
        (Venue::Okx, ["api", "v5", "market", "tickers"]) => Ask::Every,
        (Venue::Bybit, ["v5", "market", "tickers"]) => {
            param("symbol").map_or(Ask::Every, Ask::Single)
        }
        (Venue::Kucoin, ["api", "v1", "market", "orderbook", "level1"]) => {
            Ask::Single(param("symbol")?)
        }
        (Venue::Kucoin, ["api", "v1", "market", "allTickers"]) => Ask::Every,
        (Venue::Bitfinex, ["v2", "ticker", sym]) => Ask::Single((*sym).to_owned()),
        (Venue::Bitfinex, ["v2", "tickers"]) => match param("symbols")? {
            all if all == "ALL" => Ask::Every,
            names => Ask::Many(names.split(',').map(str::to_owned).collect()),
        },
        (Venue::Gateio, ["api", "v4", "spot", "tickers"]) => {
            param("currency_pair").map_or(Ask::Every, Ask::Single)
        }
        (Venue::Htx, ["market", "detail", "merged"]) => Ask::Single(param("symbol")?),
        (Venue::Htx, ["market", "tickers"]) => Ask::Every,
        (Venue::Coingecko, ["api", "v3", "simple", "price"]) => list(param("ids")?),
        _ => return None,
    })
}

/// Kraken's own name for a pair it is asked for by its short name.
fn kraken_key(symbol: &str) -> String {
    const LEGACY_BASE: [&str; 6] = ["XBT", "ETH", "LTC", "XRP", "XLM", "XMR"];
    const FIAT: [&str; 4] = ["USD", "EUR", "GBP", "JPY"];
    for base in LEGACY_BASE {
        if let Some(quote) = symbol.strip_prefix(base)
            && FIAT.contains(&quote)
        {
            return format!("X{base}Z{quote}");
        }
    }
    symbol.to_owned()
}

/// Formats with at least `dp` decimals (the venue's precision).
fn fixed(price: Decimal, dp: u32) -> String {
    let mut p = price;
    if p.scale() < dp {
        p.rescale(dp);
    }
    p.to_string()
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The venue's success body for `price`.
fn success_body(venue: Venue, symbol: &str, quote: &str, price: Decimal, tick_ms: u64) -> String {
    let step = Decimal::new(1, price_dp(price));
    let (bid, ask) = (price - step, price + step);
    let tick_s = tick_ms / 1000;
    match venue {
        Venue::Binance => json!({"symbol": symbol, "price": fixed(price, 8)}).to_string(),
        Venue::Coinbase => {
            let time = humantime::format_rfc3339_micros(std::time::UNIX_EPOCH + Duration::from_millis(tick_ms));
            json!({"ask": fixed(ask, 2), "bid": fixed(bid, 2), "volume": "8470.57402816", "trade_id": tick_s,
                   "price": fixed(price, 2), "size": "0.00120000", "time": time.to_string(),
                   "rfq_volume": "12.581722", "conversions_volume": "0"})
            .to_string()
        }
        Venue::Kraken => {
            let mut result = serde_json::Map::new();
            result.insert(kraken_key(symbol), entry(venue, symbol, price, tick_ms));
            json!({"error": [], "result": result}).to_string()
        }
        Venue::Bitstamp => entry(venue, symbol, price, tick_ms).to_string(),
        Venue::Gateio => json!([entry(venue, symbol, price, tick_ms)]).to_string(),
        Venue::Gemini => json!({"bid": fixed(bid, 2), "ask": fixed(ask, 2),
                                "volume": {"BTC": "1234.56789", "USD": "119876543.21", "timestamp": tick_ms},
                                "last": fixed(price, 2)})
        .to_string(),
        Venue::Okx => json!({"code": "0", "msg": "", "data": [entry(venue, symbol, price, tick_ms)]}).to_string(),
        Venue::Bybit => json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot",
                               "list": [entry(venue, symbol, price, tick_ms)]}, "retExtInfo": {}, "time": now_ms()})
        .to_string(),
        Venue::Kucoin => json!({"code": "200000", "data": {"time": tick_ms, "sequence": "14591378215",
                                "price": price.to_string(), "size": "0.0002", "bestBid": bid.to_string(),
                                "bestBidSize": "0.52", "bestAsk": ask.to_string(), "bestAskSize": "0.11"}})
        .to_string(),
        // JSON numbers, written from the decimal text (never through f64).
        Venue::Bitfinex => format!("[{bid},1.23456789,{ask},0.98765432,325.5,0.00336,{price},1234.56789,{ask},{bid}]"),
        Venue::Htx => format!(
            r#"{{"ch":"market.{symbol}.detail.merged","status":"ok","ts":{},"tick":{{"id":{tick_s},"version":{tick_s},"open":{price},"close":{price},"low":{bid},"high":{ask},"amount":12345.678901,"vol":1201234567.8123,"count":1234567,"bid":[{bid},0.5],"ask":[{ask},0.3]}}}}"#,
            now_ms()
        ),
        Venue::Coingecko => format!(r#"{{"{symbol}":{{"{}":{price},"last_updated_at":{tick_s}}}}}"#, quote.to_ascii_lowercase()),
    }
}

/// One market's ticker object, as it appears in both the per-symbol and the
/// many-markets answers of the venues whose fields are strings.
fn entry(venue: Venue, symbol: &str, price: Decimal, tick_ms: u64) -> serde_json::Value {
    let step = Decimal::new(1, price_dp(price));
    let (bid, ask) = (price - step, price + step);
    match venue {
        Venue::Kraken => {
            json!({"a": [fixed(ask, 5), "1", "1.000"], "b": [fixed(bid, 5), "2", "2.000"],
                                "c": [fixed(price, 5), "0.00100000"], "v": ["1234.56789012", "2345.67890123"],
                                "p": [fixed(price, 5), fixed(price, 5)], "t": [12345, 23456],
                                "l": [fixed(bid, 5), fixed(bid, 5)], "h": [fixed(ask, 5), fixed(ask, 5)], "o": fixed(price, 5)})
        }
        Venue::Bitstamp => {
            json!({"timestamp": (tick_ms / 1000).to_string(), "open": fixed(price, 0), "high": fixed(ask, 0),
                                  "low": fixed(bid, 0), "last": price.to_string(), "volume": "1234.56789012",
                                  "vwap": price.to_string(), "bid": bid.to_string(), "ask": ask.to_string(),
                                  "side": "0", "open_24": price.to_string(), "percent_change_24": "0.38"})
        }
        Venue::Okx => json!({"instType": "SPOT", "instId": symbol,
                             "last": price.to_string(), "lastSz": "0.00012", "askPx": ask.to_string(), "askSz": "0.41",
                             "bidPx": bid.to_string(), "bidSz": "1.02", "open24h": price.to_string(),
                             "high24h": ask.to_string(), "low24h": bid.to_string(), "volCcy24h": "1201234567.8",
                             "vol24h": "12345.67", "ts": tick_ms.to_string(), "sodUtc0": price.to_string(),
                             "sodUtc8": price.to_string()}),
        Venue::Bybit => json!({"symbol": symbol, "bid1Price": bid.to_string(), "bid1Size": "0.5",
                               "ask1Price": ask.to_string(), "ask1Size": "0.3", "lastPrice": price.to_string(),
                               "prevPrice24h": price.to_string(), "price24hPcnt": "0.0033",
                               "highPrice24h": ask.to_string(), "lowPrice24h": bid.to_string(),
                               "turnover24h": "1201234567.8", "volume24h": "12345.67",
                               "usdIndexPrice": price.to_string()}),
        Venue::Gateio => {
            json!({"currency_pair": symbol, "last": price.to_string(), "lowest_ask": ask.to_string(),
                                "lowest_size": "0.41", "highest_bid": bid.to_string(), "highest_size": "1.02",
                                "change_percentage": "0.33", "change_utc0": "0.21", "change_utc8": "0.25",
                                "base_volume": "12345.67", "quote_volume": "1201234567.8",
                                "high_24h": ask.to_string(), "low_24h": bid.to_string()})
        }
        _ => json!({}),
    }
}

/// One market of a many-markets answer: the venue's symbol, its pair, its
/// price (faults applied) and the time stamped on it.
#[derive(Debug, Clone)]
struct Entry {
    symbol: String,
    pair: Pair,
    price: Decimal,
}

/// Bitstamp's `pair` field for a symbol (`btcusd` of BTC/USD → `BTC/USD`).
fn bitstamp_pair(symbol: &str, pair: &Pair) -> String {
    let base = pair.base().to_ascii_lowercase();
    match symbol.to_ascii_lowercase().strip_prefix(&base) {
        Some(quote) if !quote.is_empty() => {
            format!("{}/{}", pair.base(), quote.to_ascii_uppercase())
        }
        _ => pair.to_string(),
    }
}

/// The venue's many-markets answer for `entries`.
fn batch_body(venue: Venue, entries: &[Entry], tick_ms: u64) -> String {
    let tick_s = tick_ms / 1000;
    let values = |f: &dyn Fn(&Entry) -> serde_json::Value| -> Vec<serde_json::Value> {
        entries.iter().map(f).collect()
    };
    let step = |p: Decimal| Decimal::new(1, price_dp(p));
    match venue {
        Venue::Binance => json!(values(&|e| json!({"symbol": e.symbol, "price": fixed(e.price, 8)}))).to_string(),
        Venue::Coinbase => {
            let products = values(&|e| json!({
                "product_id": e.symbol, "price": fixed(e.price, 2), "price_percentage_change_24h": "0.33621463226784",
                "volume_24h": "8470.57402816", "volume_percentage_change_24h": "-12.40133172540349",
                "base_increment": "0.00000001", "quote_increment": "0.01", "quote_min_size": "1",
                "quote_max_size": "150000000", "base_min_size": "0.00000001", "base_max_size": "3400",
                "base_name": e.pair.base(), "quote_name": e.pair.quote(), "watched": false, "is_disabled": false,
                "new": false, "status": "online", "cancel_only": false, "limit_only": false, "post_only": false,
                "trading_disabled": false, "auction_mode": false, "product_type": "SPOT",
                "quote_currency_id": e.pair.quote(), "base_currency_id": e.pair.base(),
                "fcm_trading_session_details": null, "mid_market_price": "", "alias": "", "alias_to": [],
                "base_display_symbol": e.pair.base(), "quote_display_symbol": e.pair.quote(), "view_only": false,
                "price_increment": "0.01", "display_name": e.symbol, "product_venue": "CBE",
                "approximate_quote_24h_volume": "822704233.64"}));
            json!({"products": products, "num_products": entries.len()}).to_string()
        }
        Venue::Kraken => {
            let result: serde_json::Map<String, serde_json::Value> = entries
                .iter()
                .map(|e| (kraken_key(&e.symbol), entry(venue, &e.symbol, e.price, tick_ms)))
                .collect();
            json!({"error": [], "result": result}).to_string()
        }
        Venue::Bitstamp => json!(values(&|e| {
            let mut t = entry(venue, &e.symbol, e.price, tick_ms);
            t["market_type"] = json!("SPOT");
            t["pair"] = json!(bitstamp_pair(&e.symbol, &e.pair));
            t
        }))
        .to_string(),
        Venue::Gemini => json!(values(&|e| json!({"pair": e.symbol.to_ascii_uppercase(),
                                                  "price": fixed(e.price, 2), "percentChange24h": "0.0133"})))
        .to_string(),
        Venue::Okx => json!({"code": "0", "msg": "", "data": values(&|e| entry(venue, &e.symbol, e.price, tick_ms))}).to_string(),
        Venue::Bybit => json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot",
                               "list": values(&|e| entry(venue, &e.symbol, e.price, tick_ms))},
                               "retExtInfo": {}, "time": now_ms()})
        .to_string(),
        Venue::Kucoin => {
            let tickers = values(&|e| {
                let (p, d) = (e.price, step(e.price));
                json!({"symbol": e.symbol, "symbolName": e.symbol, "buy": (p - d).to_string(), "bestBidSize": "0.52",
                       "sell": (p + d).to_string(), "bestAskSize": "0.11", "changeRate": "0.0033",
                       "changePrice": "323.4", "high": (p + d).to_string(), "low": (p - d).to_string(),
                       "vol": "1234.56789012", "volValue": "119876543.21", "last": p.to_string(),
                       "averagePrice": p.to_string(), "takerFeeRate": "0.001", "makerFeeRate": "0.001",
                       "takerCoefficient": "1", "makerCoefficient": "1"})
            });
            json!({"code": "200000", "data": {"time": tick_ms, "ticker": tickers}}).to_string()
        }
        Venue::Bitfinex => {
            let rows: Vec<String> = entries
                .iter()
                .map(|e| {
                    let (p, d) = (e.price, step(e.price));
                    let (bid, ask) = (p - d, p + d);
                    format!(r#"["{}",{bid},1.23456789,{ask},0.98765432,325.5,0.00336,{p},1234.56789,{ask},{bid}]"#, e.symbol)
                })
                .collect();
            format!("[{}]", rows.join(","))
        }
        Venue::Gateio => json!(values(&|e| entry(venue, &e.symbol, e.price, tick_ms))).to_string(),
        Venue::Htx => {
            let rows: Vec<String> = entries
                .iter()
                .map(|e| {
                    let (p, d) = (e.price, step(e.price));
                    let (bid, ask) = (p - d, p + d);
                    format!(
                        r#"{{"symbol":"{}","open":{p},"high":{ask},"low":{bid},"close":{p},"amount":12345.678901,"vol":1201234567.8123,"count":1234567,"bid":{bid},"bidSize":0.5,"ask":{ask},"askSize":0.3}}"#,
                        e.symbol
                    )
                })
                .collect();
            format!(r#"{{"data":[{}],"status":"ok","ts":{}}}"#, rows.join(","), now_ms())
        }
        Venue::Coingecko => {
            let coins: Vec<String> = entries
                .iter()
                .map(|e| {
                    format!(
                        r#""{}":{{"{}":{},"last_updated_at":{tick_s}}}"#,
                        e.symbol,
                        e.pair.quote().to_ascii_lowercase(),
                        e.price
                    )
                })
                .collect();
            format!("{{{}}}", coins.join(","))
        }
    }
}

/// The venue's answer for a symbol it does not list.
fn unknown_symbol(venue: Venue, symbol: &str) -> Response {
    let (status, body) = match venue {
        Venue::Binance => (400, json!({"code": -1121, "msg": "Invalid symbol."}).to_string()),
        Venue::Coinbase => (404, json!({"message": "NotFound"}).to_string()),
        Venue::Kraken => (200, json!({"error": ["EQuery:Unknown asset pair"]}).to_string()),
        Venue::Bitstamp => (404, json!({"errors": [{"message": "Not Found", "field": null, "code": "404"}]}).to_string()),
        Venue::Gemini => (400, json!({"result": "error", "reason": "InvalidSymbol",
                                      "message": format!("Supplied value '{symbol}' is not a valid symbol")}).to_string()),
        Venue::Okx => (200, json!({"code": "51001", "msg": "Instrument ID does not exist", "data": []}).to_string()),
        Venue::Bybit => (200, json!({"retCode": 10001, "retMsg": "Not supported symbols", "result": {},
                                     "retExtInfo": {}, "time": now_ms()}).to_string()),
        Venue::Kucoin => (200, json!({"code": "200000", "data": null}).to_string()),
        Venue::Bitfinex => (500, json!(["error", 10020, "symbol: invalid"]).to_string()),
        Venue::Gateio => (400, json!({"label": "INVALID_CURRENCY_PAIR",
                                      "message": format!("Invalid currency pair {symbol}")}).to_string()),
        Venue::Htx => (200, json!({"status": "error", "err-code": "invalid-parameter", "err-msg": "invalid symbol",
                                   "data": null, "ts": now_ms()}).to_string()),
        Venue::Coingecko => (200, "{}".to_owned()),
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
}

/// The venue's body for an injected error status.
fn error_body(venue: Venue, status: u16) -> String {
    match (venue, status) {
        (Venue::Binance, 429 | 418) => json!({"code": -1003, "msg": "Too much request weight used."}).to_string(),
        (Venue::Coingecko, 429) => json!({"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}).to_string(),
        (Venue::Okx, 429) => json!({"msg": "Too Many Requests", "code": "50011"}).to_string(),
        (Venue::Gateio, 429) => json!({"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}).to_string(),
        (Venue::Bitfinex, _) => json!(["error", 11010, "ratelimit: error"]).to_string(),
        (Venue::Coinbase, 429) => json!({"message": "Public rate limit exceeded"}).to_string(),
        (Venue::Kraken, 429) => json!({"error": ["EGeneral:Too many requests"]}).to_string(),
        (Venue::Gemini, 429) => json!({"result": "error", "reason": "RateLimited",
                                        "message": "Requests were made too frequently"}).to_string(),
        (Venue::Bybit, 429) => json!({"retCode": 10006, "retMsg": "Too many visits!", "result": {},
                                       "retExtInfo": {}, "time": now_ms()}).to_string(),
        (Venue::Kucoin, 429) => json!({"code": "429000", "msg": "Too Many Requests"}).to_string(),
        (Venue::Htx, 429) => json!({"status": "error", "err-code": "too-many-request",
                                     "err-msg": "Too many requests", "data": null}).to_string(),
        _ => json!({"message": format!("simulated HTTP {status}")}).to_string(),
    }
}

async fn venue(
    State(sim): State<Simulator>,
    Path((source, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(id) = source.parse::<SourceId>() else {
        return (StatusCode::NOT_FOUND, "no such simulated venue").into_response();
    };
    let query = query.unwrap_or_default();
    // Read what is needed, then release the lock before any await.
    let found = sim.inner.venues.read().ok().and_then(|venues| {
        let v = venues.get(&id)?;
        let ask = asked(v.venue, &rest, &query);
        let resolve = |symbol: &str| {
            let pair = v.symbols.get(symbol)?;
            let price = sim.quote_of(v, pair)?;
            Some(Entry {
                symbol: symbol.to_owned(),
                pair: pair.clone(),
                price,
            })
        };
        let (known, unknown): (Vec<Entry>, Vec<String>) = match &ask {
            Some(Ask::Single(sym)) => match resolve(sym) {
                Some(e) => (vec![e], vec![]),
                None => (vec![], vec![sym.clone()]),
            },
            Some(Ask::Many(symbols)) => {
                let mut known = Vec::new();
                let mut unknown = Vec::new();
                for sym in symbols {
                    match resolve(sym) {
                        Some(e) => known.push(e),
                        None => unknown.push(sym.clone()),
                    }
                }
                (known, unknown)
            }
            Some(Ask::Every) => (
                v.symbols.keys().filter_map(|s| resolve(s)).collect(),
                vec![],
            ),
            None => (vec![], vec![]),
        };
        Some((v.venue, v.faults.clone(), ask, known, unknown))
    });
    let Some((venue, faults, ask, known, unknown)) = found else {
        return (StatusCode::NOT_FOUND, "no such simulated venue").into_response();
    };
    let arrived = now_ms();
    let kind = ask.as_ref().map(Ask::kind);
    let cost = kind.map_or(1, |k| request_cost(venue, k));
    let markets = match &ask {
        Some(Ask::Single(_)) => 1,
        Some(Ask::Many(symbols)) => symbols.len(),
        _ => 0,
    };
    // A venue counts every request it receives, before anything else.
    let over = kind.and_then(|k| sim.admit(&id, venue, k, cost, arrived));
    let record = |status: u16, over_budget: bool| {
        bounded_push(
            &sim.inner.requests,
            Request {
                source: id.clone(),
                at_ms: arrived,
                status,
                markets,
                cost,
                over_budget,
            },
        )
    };
    if let Some(wait) = over {
        record(429, true);
        let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, error_body(venue, 429));
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.reset {
        record(0, false);
        // Abort this connection without an answer (no panic message is printed).
        std::panic::resume_unwind(Box::new("simulated connection reset"));
    }
    if let Some(status) = faults.status {
        record(status, false);
        let mut r = json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_body(venue, status),
        );
        if let Some(s) = faults.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let Some(ask) = ask else {
        record(404, false);
        return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
    };
    // Binance and Kraken refuse a whole list for one symbol they do not list.
    let refuses_list = matches!(venue, Venue::Binance | Venue::Kraken);
    match &ask {
        Ask::Single(symbol) if known.is_empty() => {
            let r = unknown_symbol(venue, symbol);
            record(r.status().as_u16(), false);
            return r;
        }
        Ask::Many(_) if refuses_list && !unknown.is_empty() => {
            let r = unknown_symbol(venue, &unknown.join(","));
            record(r.status().as_u16(), false);
            return r;
        }
        _ => {}
    }
    record(200, false);
    if faults.malformed {
        return json_response(StatusCode::OK, "{\"price\": \"97123.4\", ".to_owned());
    }
    let served_at = now_ms();
    if let Ok(mut log) = sim.inner.served.lock() {
        for e in &known {
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(Served {
                source: id.clone(),
                pair: e.pair.clone(),
                price: e.price,
                at_ms: served_at,
            });
        }
    }
    let stamped = i64::try_from(sim.tick_time_ms())
        .unwrap_or(i64::MAX)
        .saturating_add(faults.clock_offset_ms)
        .max(0) as u64;
    let body = match (&ask, known.as_slice()) {
        (Ask::Single(symbol), [e]) => success_body(venue, symbol, e.pair.quote(), e.price, stamped),
        _ => batch_body(venue, &known, stamped),
    };
    json_response(StatusCode::OK, body)
}

async fn put_faults(
    State(sim): State<Simulator>,
    Path(source): Path<String>,
    axum::Json(faults): axum::Json<Faults>,
) -> Response {
    match source.parse::<SourceId>() {
        Ok(id) if sim.set_faults(&id, faults) => StatusCode::NO_CONTENT.into_response(),
        _ => (StatusCode::NOT_FOUND, "no such simulated venue").into_response(),
    }
}

async fn delete_faults(State(sim): State<Simulator>, Path(source): Path<String>) -> Response {
    match source.parse::<SourceId>() {
        Ok(id) if sim.set_faults(&id, Faults::default()) => StatusCode::NO_CONTENT.into_response(),
        _ => (StatusCode::NOT_FOUND, "no such simulated venue").into_response(),
    }
}

async fn state(State(sim): State<Simulator>) -> Response {
    let mut venues = serde_json::Map::new();
    if let Ok(vs) = sim.inner.venues.read() {
        for (id, v) in vs.iter() {
            let pairs: serde_json::Map<String, serde_json::Value> = v
                .symbols
                .values()
                .filter_map(|p| {
                    sim.quote_of(v, p)
                        .map(|q| (p.to_string(), json!(q.to_string())))
                })
                .collect();
            let budget = json!({
                "enforced": sim.inner.enforce_budgets.load(Ordering::Relaxed),
                "rules": budget_rules(v.venue),
                "stats": sim.budget_stats(id),
            });
            venues.insert(
                id.to_string(),
                json!({"venue": v.venue.name(), "faults": v.faults, "quotes": pairs, "budget": budget}),
            );
        }
    }
    axum::Json(json!({ "tick_at_ms": sim.tick_time_ms(), "venues": venues })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kraken_keys_follow_krakens_naming() {
        assert_eq!(kraken_key("XBTUSD"), "XXBTZUSD");
        assert_eq!(kraken_key("ETHUSD"), "XETHZUSD");
        assert_eq!(kraken_key("SOLUSD"), "SOLUSD");
    }

    #[test]
    fn fixed_keeps_venue_precision() {
        assert_eq!(fixed(Decimal::new(9_712_345, 2), 8), "97123.45000000");
        assert_eq!(fixed(Decimal::new(9_712_345, 2), 5), "97123.45000");
        assert_eq!(fixed(Decimal::new(123_456, 6), 2), "0.123456");
    }

    /// Every success body the simulator serves is read back by the fetchers'
    /// own parser for that venue, to the same price.
    #[test]
    fn every_format_parses_with_its_connector() {
        use oracle_fetchers::sources::{Market, Response as Answer};
        let price = Decimal::new(9_712_345, 2);
        for venue in Venue::ALL {
            let symbol = match venue {
                Venue::Coingecko => "bitcoin",
                Venue::Kraken => "XBTUSD",
                _ => "BTCUSD",
            };
            let body = success_body(venue, symbol, "USD", price, 1_763_700_000_123);
            let m = Market {
                symbol,
                quote: "USD",
            };
            let q = venue
                .parse(
                    &m,
                    &Answer {
                        status: 200,
                        body: body.as_bytes(),
                        retry_after: None,
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}\n{body}", venue.name()));
            assert_eq!(q.price, price, "{}", venue.name());
            let err = unknown_symbol(venue, symbol);
            assert!(err.status().as_u16() >= 200, "{}", venue.name());
        }
    }

    /// What the fetchers ask (per-symbol, named lists, every market) is
    /// understood, for every venue.
    #[test]
    fn asks_follow_each_url_scheme() {
        use oracle_fetchers::sources::{Market, Shape};
        let one = [Market {
            symbol: "SYM-1",
            quote: "USD",
        }];
        let two = [
            one[0],
            Market {
                symbol: "SYM-2",
                quote: "USD",
            },
        ];
        let split = |url: String| -> (String, String) {
            let tail = url.trim_start_matches("http://h:1/x/").to_owned();
            let (rest, query) = tail.split_once('?').unwrap_or((&tail, ""));
            (rest.to_owned(), query.to_owned())
        };
        for venue in Venue::ALL {
            let (rest, query) = split(venue.request_url("http://h:1/x", Shape::Single, &one));
            assert_eq!(
                asked(venue, &rest, &query),
                Some(Ask::Single("SYM-1".into())),
                "{}",
                venue.name()
            );
            let named = venue.request_url("http://h:1/x", Shape::Named, &two);
            let every = venue.request_url("http://h:1/x", Shape::Every, &two);
            let (rest, query) = split(named.clone());
            let want_named = match venue.batch() {
                oracle_fetchers::sources::Batch::Named { .. } => {
                    Ask::Many(vec!["SYM-1".into(), "SYM-2".into()])
                }
                oracle_fetchers::sources::Batch::Every => Ask::Every,
            };
            assert_eq!(asked(venue, &rest, &query), Some(want_named), "{named}");
            let (rest, query) = split(every.clone());
            let want_every = match venue {
                // No every-coin request: the named list is what it asks.
                Venue::Coingecko => Ask::Many(vec!["SYM-1".into(), "SYM-2".into()]),
                // Advanced Trade without product_ids lists every product.
                _ => Ask::Every,
            };
            if !matches!(venue, Venue::Coinbase) {
                assert_eq!(asked(venue, &rest, &query), Some(want_every), "{every}");
            }
        }
    }

    /// Every many-markets answer the simulator serves is read back by the
    /// fetchers' own parser for that venue, market by market.
    #[test]
    fn every_batch_format_parses_with_its_connector() {
        use oracle_fetchers::sources::{Market, Response as Answer, Shape};
        let pair = |p: &str| p.parse::<Pair>().unwrap();
        for venue in Venue::ALL {
            let (btc, eth) = match venue {
                Venue::Coingecko => ("bitcoin", "ethereum"),
                Venue::Kraken => ("XBTUSD", "ETHUSD"),
                Venue::Bitstamp | Venue::Gemini => ("btcusd", "ethusd"),
                Venue::Bitfinex => ("tBTCUSD", "tETHUSD"),
                _ => ("BTC-USD", "ETH-USD"),
            };
            let entries = vec![
                Entry {
                    symbol: btc.into(),
                    pair: pair("BTC/USD"),
                    price: Decimal::new(9_712_345, 2),
                },
                Entry {
                    symbol: eth.into(),
                    pair: pair("ETH/USD"),
                    price: Decimal::new(3_050_110_000, 6),
                },
            ];
            let body = batch_body(venue, &entries, 1_763_700_000_123);
            let markets = [
                Market {
                    symbol: eth,
                    quote: "USD",
                },
                Market {
                    symbol: "NOPE",
                    quote: "USD",
                },
                Market {
                    symbol: btc,
                    quote: "USD",
                },
            ];
            let shape = match venue.batch() {
                oracle_fetchers::sources::Batch::Named { .. } => Shape::Named,
                oracle_fetchers::sources::Batch::Every => Shape::Every,
            };
            let out = venue
                .parse_many(
                    shape,
                    &markets,
                    &Answer {
                        status: 200,
                        body: body.as_bytes(),
                        retry_after: None,
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}\n{body}", venue.name()));
            assert_eq!(
                out[0].as_ref().unwrap().price,
                entries[1].price,
                "{}",
                venue.name()
            );
            assert!(out[1].is_err(), "{}", venue.name());
            assert_eq!(
                out[2].as_ref().unwrap().price,
                entries[0].price,
                "{}",
                venue.name()
            );
        }
        assert_eq!(bitstamp_pair("btcusd", &pair("BTC/USD")), "BTC/USD");
        assert_eq!(bitstamp_pair("ethusdt", &pair("ETH/USD")), "ETH/USDT");
    }

    #[test]
    fn budgets_follow_each_venues_rule() {
        let config = Config::default();
        let sim = Simulator::from_config(&config);
        let id = |s: &str| s.parse::<SourceId>().unwrap();
        // Not enforced: counted, never refused.
        let k = id("kraken");
        assert!(
            sim.admit(&k, Venue::Kraken, AskKind::Many, 1, 1_000)
                .is_none()
        );
        assert!(
            sim.admit(&k, Venue::Kraken, AskKind::Many, 1, 1_100)
                .is_none()
        );
        assert_eq!(sim.budget_stats(&k).rejected, 0);
        sim.enforce_budgets(true);
        // Kraken, 1 per sliding second: refused until the window frees.
        let k = id("kraken-2");
        assert!(
            sim.admit(&k, Venue::Kraken, AskKind::Many, 1, 10_000)
                .is_none()
        );
        assert_eq!(
            sim.admit(&k, Venue::Kraken, AskKind::Many, 1, 10_400),
            Some(Duration::from_millis(600))
        );
        // Within the loopback tolerance of the window's end: allowed.
        assert!(
            sim.admit(&k, Venue::Kraken, AskKind::Many, 1, 10_990)
                .is_none()
        );
        let stats = sim.budget_stats(&k);
        assert_eq!((stats.requests, stats.rejected, stats.units), (3, 1, 2));
        // Binance: 6000 weight per calendar minute; lists weigh 4.
        let b = id("binance");
        let minute = 60_000 * 29_000_000;
        for i in 0..1500 {
            assert!(
                sim.admit(&b, Venue::Binance, AskKind::Many, 4, minute + i * 10)
                    .is_none()
            );
        }
        assert_eq!(
            sim.admit(&b, Venue::Binance, AskKind::Single, 2, minute + 50_000),
            Some(Duration::from_secs(10))
        );
        assert!(
            sim.admit(&b, Venue::Binance, AskKind::Every, 4, minute + 60_000)
                .is_none()
        );
        // Bitfinex: 30/min for `tickers`, apart from `ticker`'s 90.
        let f = id("bitfinex");
        for i in 0..30 {
            assert!(
                sim.admit(&f, Venue::Bitfinex, AskKind::Many, 1, 100_000 + i)
                    .is_none()
            );
        }
        assert!(
            sim.admit(&f, Venue::Bitfinex, AskKind::Many, 1, 100_100)
                .is_some()
        );
        assert!(
            sim.admit(&f, Venue::Bitfinex, AskKind::Single, 1, 100_100)
                .is_none()
        );
    }

    #[test]
    fn percent_decoding_reads_binances_symbols_list() {
        assert_eq!(
            asked(
                Venue::Binance,
                "api/v3/ticker/price",
                "symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D"
            ),
            Some(Ask::Many(vec!["BTCUSDT".into(), "ETHUSDT".into()]))
        );
        assert_eq!(
            asked(Venue::Binance, "api/v3/ticker/price", ""),
            Some(Ask::Every)
        );
    }
}
