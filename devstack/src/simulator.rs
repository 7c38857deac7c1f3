//! The exchange simulator: serves each configured source's real public ticker
//! format on loopback under `/{source_id}/…`, with prices that move.
//!
//! Each pair follows a random walk around a shared reference (a step of at
//! most ±8 bps per tick); each venue quotes the reference with its own small
//! fixed offset. Every quote served is recorded (bounded) so tests can check
//! that what reached the chain is the median of what was served.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oracle_common::config::Config;
use oracle_common::{Pair, SourceId, now_ms};
use oracle_fetchers::sources::Venue;
use rand::Rng;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How many served quotes are remembered.
const SERVED_CAPACITY: usize = 100_000;
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

#[derive(Debug)]
struct VenueSim {
    venue: Venue,
    offset_bps: i64,
    /// The venue's symbol → pair.
    symbols: BTreeMap<String, Pair>,
}

#[derive(Debug)]
struct Inner {
    venues: BTreeMap<SourceId, VenueSim>,
    reference: RwLock<BTreeMap<Pair, Decimal>>,
    tick_at_ms: std::sync::atomic::AtomicU64,
    served: Mutex<VecDeque<Served>>,
}

/// A running or ready-to-run simulator; cheap to clone.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

/// A plausible starting price for a pair.
fn initial_price(pair: &Pair) -> Decimal {
    match pair.base() {
        "BTC" => Decimal::new(9_700_000, 2),
        "ETH" => Decimal::new(305_000, 2),
        "SOL" => Decimal::new(14_500, 2),
        _ => Decimal::new(10_000, 2),
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
                .map(|(pair, symbol)| (symbol.clone(), pair.clone()))
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
                },
            );
        }
        Self {
            inner: Arc::new(Inner {
                venues,
                reference: RwLock::new(reference),
                tick_at_ms: std::sync::atomic::AtomicU64::new(now_ms()),
                served: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Moves every reference price one random step.
    pub fn step(&self) {
        let mut rng = rand::rng();
        if let Ok(mut reference) = self.inner.reference.write() {
            for price in reference.values_mut() {
                let bps = rng.random_range(-MAX_STEP_BPS..=MAX_STEP_BPS);
                *price = (*price * Decimal::new(10_000 + bps, 4)).round_dp(2);
            }
        }
        self.inner
            .tick_at_ms
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// What `source` quotes for `pair` now.
    pub fn quote(&self, source: &SourceId, pair: &Pair) -> Option<Decimal> {
        let venue = self.inner.venues.get(source)?;
        let reference = *self.inner.reference.read().ok()?.get(pair)?;
        Some((reference * Decimal::new(10_000 + venue.offset_bps, 4)).round_dp(2))
    }

    /// Every quote served so far (the newest [`SERVED_CAPACITY`]).
    pub fn served(&self) -> Vec<Served> {
        self.inner
            .served
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, source: &SourceId, pair: &Pair, price: Decimal) {
        if let Ok(mut served) = self.inner.served.lock() {
            if served.len() == SERVED_CAPACITY {
                served.pop_front();
            }
            served.push_back(Served {
                source: source.clone(),
                pair: pair.clone(),
                price,
                at_ms: now_ms(),
            });
        }
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
            .route("/{source}/api/v3/ticker/price", get(binance))
            .route("/{source}/products/{product}/ticker", get(coinbase))
            .route("/{source}/0/public/Ticker", get(kraken))
            .with_state(self);
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        stepper.abort();
        result
    }

    /// Resolves a request: the source must be simulated with `venue`'s format.
    fn lookup(&self, source: &str, venue: Venue, symbol: &str) -> Lookup {
        let Ok(id) = source.parse::<SourceId>() else {
            return Lookup::NoVenue;
        };
        match self.inner.venues.get(&id) {
            Some(v) if v.venue == venue => match v.symbols.get(symbol) {
                Some(pair) => match self.quote(&id, pair) {
                    Some(price) => {
                        self.record(&id, pair, price);
                        Lookup::Price(price)
                    }
                    None => Lookup::UnknownSymbol,
                },
                None => Lookup::UnknownSymbol,
            },
            _ => Lookup::NoVenue,
        }
    }

    fn tick_time_ms(&self) -> u64 {
        self.inner
            .tick_at_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

enum Lookup {
    Price(Decimal),
    UnknownSymbol,
    NoVenue,
}

fn no_venue() -> Response {
    (StatusCode::NOT_FOUND, "no such simulated venue").into_response()
}

/// Formats with exactly `dp` decimals (the venue's own precision).
fn fixed(price: Decimal, dp: u32) -> String {
    let mut p = price;
    p.rescale(dp);
    p.to_string()
}

#[derive(Deserialize)]
struct BinanceQuery {
    symbol: Option<String>,
}

async fn binance(
    State(sim): State<Simulator>,
    Path(source): Path<String>,
    Query(q): Query<BinanceQuery>,
) -> Response {
    let symbol = q.symbol.unwrap_or_default();
    match sim.lookup(&source, Venue::Binance, &symbol) {
        Lookup::Price(price) => {
            axum::Json(json!({ "symbol": symbol, "price": fixed(price, 8) })).into_response()
        }
        Lookup::UnknownSymbol => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "code": -1121, "msg": "Invalid symbol." })),
        )
            .into_response(),
        Lookup::NoVenue => no_venue(),
    }
}

async fn coinbase(
    State(sim): State<Simulator>,
    Path((source, product)): Path<(String, String)>,
) -> Response {
    match sim.lookup(&source, Venue::Coinbase, &product) {
        Lookup::Price(price) => {
            let tick = std::time::UNIX_EPOCH + Duration::from_millis(sim.tick_time_ms());
            let cent = Decimal::new(1, 2);
            axum::Json(json!({
                "ask": fixed(price + cent, 2),
                "bid": fixed(price - cent, 2),
                "volume": "8470.57402816",
                "trade_id": sim.tick_time_ms() / 1000,
                "price": fixed(price, 2),
                "size": "0.00120000",
                "time": humantime::format_rfc3339_micros(tick).to_string(),
                "rfq_volume": "12.581722",
                "conversions_volume": "0",
            }))
            .into_response()
        }
        Lookup::UnknownSymbol => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "NotFound" })),
        )
            .into_response(),
        Lookup::NoVenue => no_venue(),
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

#[derive(Deserialize)]
struct KrakenQuery {
    pair: Option<String>,
}

async fn kraken(
    State(sim): State<Simulator>,
    Path(source): Path<String>,
    Query(q): Query<KrakenQuery>,
) -> Response {
    let symbol = q.pair.unwrap_or_default();
    match sim.lookup(&source, Venue::Kraken, &symbol) {
        Lookup::Price(price) => {
            let cent = Decimal::new(1, 2);
            let ticker = json!({
                "a": [fixed(price + cent, 5), "1", "1.000"],
                "b": [fixed(price - cent, 5), "2", "2.000"],
                "c": [fixed(price, 5), "0.00100000"],
                "v": ["1234.56789012", "2345.67890123"],
                "p": [fixed(price, 5), fixed(price, 5)],
                "t": [12345, 23456],
                "l": [fixed(price - cent, 5), fixed(price - cent, 5)],
                "h": [fixed(price + cent, 5), fixed(price + cent, 5)],
                "o": fixed(price, 5),
            });
            let mut result = serde_json::Map::new();
            result.insert(kraken_key(&symbol), ticker);
            axum::Json(json!({ "error": [], "result": result })).into_response()
        }
        Lookup::UnknownSymbol => {
            axum::Json(json!({ "error": ["EQuery:Unknown asset pair"] })).into_response()
        }
        Lookup::NoVenue => no_venue(),
    }
}

async fn state(State(sim): State<Simulator>) -> Response {
    let mut venues = serde_json::Map::new();
    for id in sim.inner.venues.keys() {
        let pairs: serde_json::Map<String, serde_json::Value> = sim
            .inner
            .reference
            .read()
            .map(|r| {
                r.keys()
                    .filter_map(|p| {
                        sim.quote(id, p)
                            .map(|q| (p.to_string(), json!(q.to_string())))
                    })
                    .collect()
            })
            .unwrap_or_default();
        venues.insert(id.to_string(), serde_json::Value::Object(pairs));
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
    }
}
