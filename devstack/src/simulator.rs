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
}

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

#[derive(Debug)]
struct Inner {
    venues: RwLock<BTreeMap<SourceId, VenueSim>>,
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

/// The symbol a request asks for, by the venue's URL scheme.
fn requested_symbol(venue: Venue, rest: &str, query: &str) -> Option<String> {
    let param = |name: &str| -> Option<String> {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (venue, segments.as_slice()) {
        (Venue::Binance, ["api", "v3", "ticker", "price"]) => param("symbol"),
        (Venue::Coinbase, ["products", sym, "ticker"]) => Some((*sym).to_owned()),
        (Venue::Kraken, ["0", "public", "Ticker"]) => param("pair"),
        (Venue::Bitstamp, ["api", "v2", "ticker", sym]) => Some((*sym).to_owned()),
        (Venue::Gemini, ["v1", "pubticker", sym]) => Some((*sym).to_owned()),
        (Venue::Okx, ["api", "v5", "market", "ticker"]) => param("instId"),
        (Venue::Bybit, ["v5", "market", "tickers"]) => param("symbol"),
        (Venue::Kucoin, ["api", "v1", "market", "orderbook", "level1"]) => param("symbol"),
        (Venue::Bitfinex, ["v2", "ticker", sym]) => Some((*sym).to_owned()),
        (Venue::Gateio, ["api", "v4", "spot", "tickers"]) => param("currency_pair"),
        (Venue::Htx, ["market", "detail", "merged"]) => param("symbol"),
        (Venue::Coingecko, ["api", "v3", "simple", "price"]) => param("ids"),
        _ => None,
    }
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
            result.insert(
                kraken_key(symbol),
                json!({"a": [fixed(ask, 5), "1", "1.000"], "b": [fixed(bid, 5), "2", "2.000"],
                       "c": [fixed(price, 5), "0.00100000"], "v": ["1234.56789012", "2345.67890123"],
                       "p": [fixed(price, 5), fixed(price, 5)], "t": [12345, 23456],
                       "l": [fixed(bid, 5), fixed(bid, 5)], "h": [fixed(ask, 5), fixed(ask, 5)], "o": fixed(price, 5)}),
            );
            json!({"error": [], "result": result}).to_string()
        }
        Venue::Bitstamp => json!({"timestamp": tick_s.to_string(), "open": fixed(price, 0), "high": fixed(ask, 0),
                                  "low": fixed(bid, 0), "last": price.to_string(), "volume": "1234.56789012",
                                  "vwap": price.to_string(), "bid": bid.to_string(), "ask": ask.to_string(),
                                  "side": "0", "open_24": price.to_string(), "percent_change_24": "0.38"})
        .to_string(),
        Venue::Gemini => json!({"bid": fixed(bid, 2), "ask": fixed(ask, 2),
                                "volume": {"BTC": "1234.56789", "USD": "119876543.21", "timestamp": tick_ms},
                                "last": fixed(price, 2)})
        .to_string(),
        Venue::Okx => json!({"code": "0", "msg": "", "data": [{"instType": "SPOT", "instId": symbol,
                             "last": price.to_string(), "lastSz": "0.00012", "askPx": ask.to_string(), "askSz": "0.41",
                             "bidPx": bid.to_string(), "bidSz": "1.02", "open24h": price.to_string(),
                             "high24h": ask.to_string(), "low24h": bid.to_string(), "volCcy24h": "1201234567.8",
                             "vol24h": "12345.67", "ts": tick_ms.to_string(), "sodUtc0": price.to_string(),
                             "sodUtc8": price.to_string()}]})
        .to_string(),
        Venue::Bybit => json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [{
                               "symbol": symbol, "bid1Price": bid.to_string(), "bid1Size": "0.5",
                               "ask1Price": ask.to_string(), "ask1Size": "0.3", "lastPrice": price.to_string(),
                               "prevPrice24h": price.to_string(), "price24hPcnt": "0.0033",
                               "highPrice24h": ask.to_string(), "lowPrice24h": bid.to_string(),
                               "turnover24h": "1201234567.8", "volume24h": "12345.67",
                               "usdIndexPrice": price.to_string()}]}, "retExtInfo": {}, "time": now_ms()})
        .to_string(),
        Venue::Kucoin => json!({"code": "200000", "data": {"time": tick_ms, "sequence": "14591378215",
                                "price": price.to_string(), "size": "0.0002", "bestBid": bid.to_string(),
                                "bestBidSize": "0.52", "bestAsk": ask.to_string(), "bestAskSize": "0.11"}})
        .to_string(),
        // JSON numbers, written from the decimal text (never through f64).
        Venue::Bitfinex => format!("[{bid},1.23456789,{ask},0.98765432,325.5,0.00336,{price},1234.56789,{ask},{bid}]"),
        Venue::Gateio => json!([{"currency_pair": symbol, "last": price.to_string(), "lowest_ask": ask.to_string(),
                                 "lowest_size": "0.41", "highest_bid": bid.to_string(), "highest_size": "1.02",
                                 "change_percentage": "0.33", "change_utc0": "0.21", "change_utc8": "0.25",
                                 "base_volume": "12345.67", "quote_volume": "1201234567.8",
                                 "high_24h": ask.to_string(), "low_24h": bid.to_string()}])
        .to_string(),
        Venue::Htx => format!(
            r#"{{"ch":"market.{symbol}.detail.merged","status":"ok","ts":{},"tick":{{"id":{tick_s},"version":{tick_s},"open":{price},"close":{price},"low":{bid},"high":{ask},"amount":12345.678901,"vol":1201234567.8123,"count":1234567,"bid":[{bid},0.5],"ask":[{ask},0.3]}}}}"#,
            now_ms()
        ),
        Venue::Coingecko => format!(r#"{{"{symbol}":{{"{}":{price},"last_updated_at":{tick_s}}}}}"#, quote.to_ascii_lowercase()),
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
        let symbol = requested_symbol(v.venue, &rest, &query);
        let pair = symbol.as_ref().and_then(|s| v.symbols.get(s)).cloned();
        let price = pair.as_ref().and_then(|p| sim.quote_of(v, p));
        Some((v.venue, v.faults.clone(), symbol, pair, price))
    });
    let Some((venue, faults, symbol, pair, price)) = found else {
        return (StatusCode::NOT_FOUND, "no such simulated venue").into_response();
    };
    let record = |status: u16| {
        bounded_push(
            &sim.inner.requests,
            Request {
                source: id.clone(),
                at_ms: now_ms(),
                status,
            },
        )
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.reset {
        record(0);
        // Abort this connection without an answer (no panic message is printed).
        std::panic::resume_unwind(Box::new("simulated connection reset"));
    }
    if let Some(status) = faults.status {
        record(status);
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
    let Some(symbol) = symbol else {
        record(404);
        return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
    };
    let (Some(pair), Some(price)) = (pair, price) else {
        let r = unknown_symbol(venue, &symbol);
        record(r.status().as_u16());
        return r;
    };
    record(200);
    if faults.malformed {
        return json_response(StatusCode::OK, "{\"price\": \"97123.4\", ".to_owned());
    }
    bounded_push(
        &sim.inner.served,
        Served {
            source: id.clone(),
            pair: pair.clone(),
            price,
            at_ms: now_ms(),
        },
    );
    let stamped = i64::try_from(sim.tick_time_ms())
        .unwrap_or(i64::MAX)
        .saturating_add(faults.clock_offset_ms)
        .max(0);
    json_response(
        StatusCode::OK,
        success_body(venue, &symbol, pair.quote(), price, stamped as u64),
    )
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
            venues.insert(
                id.to_string(),
                json!({"venue": v.venue.name(), "faults": v.faults, "quotes": pairs}),
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

    #[test]
    fn requested_symbols_follow_each_url_scheme() {
        for venue in Venue::ALL {
            let m = oracle_fetchers::sources::Market {
                symbol: "SYM-1",
                quote: "USD",
            };
            let url = venue.ticker_url("http://h:1/x", &m);
            let rest_and_query = url.trim_start_matches("http://h:1/x/");
            let (rest, query) = rest_and_query
                .split_once('?')
                .unwrap_or((rest_and_query, ""));
            assert_eq!(
                requested_symbol(venue, rest, query).as_deref(),
                Some("SYM-1"),
                "{}",
                venue.name()
            );
        }
    }
}
