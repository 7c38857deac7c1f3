//! Exchange connectors: how to ask each source for a ticker and how to read
//! its answer, in its real wire format. Each venue lives in its own module,
//! tested against recorded responses in `fetchers/fixtures/`.
//!
//! Every venue but one is asked for many markets at once: one request answers
//! the feeds of a whole polling slot ([`Venue::requests`] plans them). A single
//! market is asked through the venue's per-symbol ticker (on-demand cycles of
//! one feed, `oracle-fetchers probe`). Budgets are counted in the venue's own
//! unit: request weight where the venue weighs its endpoints (Binance,
//! KuCoin), requests elsewhere; [`Venue::cost`] is what one request uses.
//!
//! | venue | single market | many markets (cap per request) | documented public limit (default budget) | cost single / many |
//! |---|---|---|---|---|
//! | binance | `GET /api/v3/ticker/price?symbol=BTCUSDT` | `?symbols=["BTCUSDT","ETHUSDT"]` URL-encoded (100, ours: URL length); beyond, or after a whole list refused for one unknown symbol (`-1121`), every symbol (no parameter) | 6000 request weight/min per IP | 2 / 4 weight |
//! | coinbase | Exchange `GET /products/BTC-USD/ticker` | Advanced Trade public `GET /api/v3/brokerage/market/products?product_ids=BTC-USD&product_ids=ETH-USD` on `api.coinbase.com` (100, ours) | 10/s per IP (public endpoints of both APIs) | 1 / 1 |
//! | kraken | `GET /0/public/Ticker?pair=XBTUSD` | `?pair=XBTUSD,ETHUSD` (100, ours); beyond, or after `EQuery:Unknown asset pair` for the list, every pair (no `pair`); answers keyed by Kraken's own names (`XXBTZUSD`) | about 1/s per IP | 1 / 1 |
//! | bitstamp | `GET /api/v2/ticker/btcusd/` | `GET /api/v2/ticker/`: every market, `pair` "BTC/USD" | 8000 per 10 min (13/s) | 1 / 1 |
//! | gemini | `GET /v1/pubticker/btcusd` | `GET /v1/pricefeed`: every pair, `pair` "BTCUSD", price only | 120/min | 1 / 1 |
//! | okx | `GET /api/v5/market/ticker?instId=BTC-USDT` | `GET /api/v5/market/tickers?instType=SPOT`: every spot instrument | 20 per 2 s per IP | 1 / 1 |
//! | bybit | `GET /v5/market/tickers?category=spot&symbol=BTCUSDT` | `?category=spot` (no `symbol`): every spot symbol | 600 per 5 s per IP | 1 / 1 |
//! | kucoin | `GET /api/v1/market/orderbook/level1?symbol=BTC-USDT` | `GET /api/v1/market/allTickers`: every symbol | public pool 2000 weight per 30 s | 2 / 15 weight |
//! | bitfinex | `GET /v2/ticker/tBTCUSD` | `GET /v2/tickers?symbols=tBTCUSD,tETHUSD` (100, ours); beyond, `symbols=ALL` | 90/min for `ticker`, 30/min for `tickers` (one budget of 90 in which `tickers` costs 3) | 1 / 3 |
//! | gateio | `GET /api/v4/spot/tickers?currency_pair=BTC_USDT` | `GET /api/v4/spot/tickers` (no `currency_pair`): every pair | 200 per 10 s per endpoint | 1 / 1 |
//! | htx | `GET /market/detail/merged?symbol=btcusdt` | `GET /market/tickers`: every symbol | 100 per 10 s | 1 / 1 |
//! | coingecko | `GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true` | `?ids=bitcoin,ethereum&vs_currencies=usd` (100 ids, ours); no every-coin variant | about 10/min (keyless public API) | 1 / 1 |
//!
//! A symbol missing from a many-markets answer is that market's error
//! ([`FetchError::UnknownSymbol`]); the other markets of the answer stand.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::error::FetchError;

pub mod binance;
pub mod bitfinex;
pub mod bitstamp;
pub mod bybit;
pub mod coinbase;
pub mod coingecko;
pub mod gateio;
pub mod gemini;
pub mod htx;
pub mod kraken;
pub mod kucoin;
pub mod okx;

/// What a source said about one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Last trade (or reference) price.
    pub price: Decimal,
    /// Best bid, when given.
    pub bid: Option<Decimal>,
    /// Best ask, when given.
    pub ask: Option<Decimal>,
    /// The time of the data itself (a trade, a book update), Unix ms, when the
    /// source gives one. Server response times are not data times and are not used.
    pub observed_at_ms: Option<u64>,
}

/// The market asked for: the source's symbol and the currency it is quoted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Market<'a> {
    /// The source's symbol (`XBTUSD`, `BTC-USDT`, `bitcoin`).
    pub symbol: &'a str,
    /// The quote currency of that market (`USD`, `USDT`).
    pub quote: &'a str,
}

impl<'a> Market<'a> {
    /// A USD-quoted market (tests and simple calls).
    pub fn of(symbol: &'a str) -> Self {
        Self {
            symbol,
            quote: "USD",
        }
    }
}

/// The HTTP answer a connector parses.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: &'a [u8],
    /// `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
}

/// The supported exchange APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Venue {
    /// Binance spot.
    Binance,
    /// Coinbase Exchange.
    Coinbase,
    /// Kraken.
    Kraken,
    /// Bitstamp.
    Bitstamp,
    /// Gemini.
    Gemini,
    /// OKX.
    Okx,
    /// Bybit (v5, spot).
    Bybit,
    /// KuCoin.
    Kucoin,
    /// Bitfinex (v2).
    Bitfinex,
    /// Gate.io (v4).
    Gateio,
    /// HTX, formerly Huobi.
    Htx,
    /// CoinGecko (an aggregator, not an exchange).
    Coingecko,
}

/// How a venue answers many markets at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// The request names its markets, at most `cap` of them; `every` says
    /// whether the venue also answers every market when none is named.
    Named {
        /// Markets per request.
        cap: usize,
        /// Whether an every-market request exists.
        every: bool,
    },
    /// One request answers every market of the venue.
    Every,
}

/// The shape of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// The per-symbol ticker.
    Single,
    /// A list of named markets.
    Named,
    /// Every market of the venue.
    Every,
}

impl Venue {
    /// Every supported venue.
    pub const ALL: [Venue; 12] = [
        Venue::Binance,
        Venue::Coinbase,
        Venue::Kraken,
        Venue::Bitstamp,
        Venue::Gemini,
        Venue::Okx,
        Venue::Bybit,
        Venue::Kucoin,
        Venue::Bitfinex,
        Venue::Gateio,
        Venue::Htx,
        Venue::Coingecko,
    ];

    /// The connector for a config `kind`.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == kind)
    }

    /// The connector's name as used in config.
    pub fn name(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Coinbase => "coinbase",
            Venue::Kraken => "kraken",
            Venue::Bitstamp => "bitstamp",
            Venue::Gemini => "gemini",
            Venue::Okx => "okx",
            Venue::Bybit => "bybit",
            Venue::Kucoin => "kucoin",
            Venue::Bitfinex => "bitfinex",
            Venue::Gateio => "gateio",
            Venue::Htx => "htx",
            Venue::Coingecko => "coingecko",
        }
    }

    /// The production base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Venue::Binance => "https://api.binance.com",
            Venue::Coinbase => "https://api.exchange.coinbase.com",
            Venue::Kraken => "https://api.kraken.com",
            Venue::Bitstamp => "https://www.bitstamp.net",
            Venue::Gemini => "https://api.gemini.com",
            Venue::Okx => "https://www.okx.com",
            Venue::Bybit => "https://api.bybit.com",
            Venue::Kucoin => "https://api.kucoin.com",
            Venue::Bitfinex => "https://api-pub.bitfinex.com",
            Venue::Gateio => "https://api.gateio.ws",
            Venue::Htx => "https://api.huobi.pro",
            Venue::Coingecko => "https://api.coingecko.com",
        }
    }

    /// The documented public budget: `(units, per period)`, in request weight
    /// where the venue weighs its endpoints (Binance, KuCoin), else requests.
    pub fn default_rate_limit(self) -> (u32, Duration) {
        let s = Duration::from_secs;
        match self {
            Venue::Binance => (6000, s(60)),
            Venue::Coinbase => (10, s(1)),
            Venue::Kraken => (1, s(1)),
            Venue::Bitstamp => (13, s(1)),
            Venue::Gemini => (120, s(60)),
            Venue::Okx => (20, s(2)),
            Venue::Bybit => (600, s(5)),
            Venue::Kucoin => (2000, s(30)),
            Venue::Bitfinex => (90, s(60)),
            Venue::Gateio => (200, s(10)),
            Venue::Htx => (100, s(10)),
            Venue::Coingecko => (10, s(60)),
        }
    }

    /// The ticker URL for `m` under `base_url` (a path prefix is kept).
    pub fn ticker_url(self, base_url: &str, m: &Market<'_>) -> String {
        let base = base_url.trim_end_matches('/');
        let sym = m.symbol;
        match self {
            Venue::Binance => format!("{base}/api/v3/ticker/price?symbol={sym}"),
            Venue::Coinbase => format!("{base}/products/{sym}/ticker"),
            Venue::Kraken => format!("{base}/0/public/Ticker?pair={sym}"),
            Venue::Bitstamp => format!("{base}/api/v2/ticker/{sym}/"),
            Venue::Gemini => format!("{base}/v1/pubticker/{sym}"),
            Venue::Okx => format!("{base}/api/v5/market/ticker?instId={sym}"),
            Venue::Bybit => format!("{base}/v5/market/tickers?category=spot&symbol={sym}"),
            Venue::Kucoin => format!("{base}/api/v1/market/orderbook/level1?symbol={sym}"),
            Venue::Bitfinex => format!("{base}/v2/ticker/{sym}"),
            Venue::Gateio => format!("{base}/api/v4/spot/tickers?currency_pair={sym}"),
            Venue::Htx => format!("{base}/market/detail/merged?symbol={sym}"),
            Venue::Coingecko => format!(
                "{base}/api/v3/simple/price?ids={sym}&vs_currencies={}&include_last_updated_at=true",
                m.quote.to_ascii_lowercase()
            ),
        }
    }

    /// Reads a ticker answer for `m`.
    pub fn parse(self, m: &Market<'_>, response: &Response<'_>) -> Result<Quote, FetchError> {
        match self {
            Venue::Binance => binance::parse(m, response),
            Venue::Coinbase => coinbase::parse(m, response),
            Venue::Kraken => kraken::parse(m, response),
            Venue::Bitstamp => bitstamp::parse(m, response),
            Venue::Gemini => gemini::parse(m, response),
            Venue::Okx => okx::parse(m, response),
            Venue::Bybit => bybit::parse(m, response),
            Venue::Kucoin => kucoin::parse(m, response),
            Venue::Bitfinex => bitfinex::parse(m, response),
            Venue::Gateio => gateio::parse(m, response),
            Venue::Htx => htx::parse(m, response),
            Venue::Coingecko => coingecko::parse(m, response),
        }
    }

    /// How the venue answers many markets in one request.
    pub fn batch(self) -> Batch {
        const CAP: usize = 100;
        match self {
            Venue::Binance | Venue::Kraken | Venue::Bitfinex => Batch::Named {
                cap: CAP,
                every: true,
            },
            Venue::Coinbase | Venue::Coingecko => Batch::Named {
                cap: CAP,
                every: false,
            },
            Venue::Bitstamp
            | Venue::Gemini
            | Venue::Okx
            | Venue::Bybit
            | Venue::Kucoin
            | Venue::Gateio
            | Venue::Htx => Batch::Every,
        }
    }

    /// What one request of this shape uses of the budget (see the table above).
    pub fn cost(self, shape: Shape) -> u32 {
        match (self, shape) {
            (Venue::Binance, Shape::Single) => 2,
            (Venue::Binance, _) => 4,
            (Venue::Kucoin, Shape::Single) => 2,
            (Venue::Kucoin, _) => 15,
            (Venue::Bitfinex, Shape::Single) => 1,
            (Venue::Bitfinex, _) => 3,
            _ => 1,
        }
    }

    /// The requests that answer `n` markets: one per-symbol request for a
    /// single market, else named lists of at most the venue's cap, or one
    /// every-market request (when the venue has one and the list would not
    /// fit in one request, or `every` asks for it). Each is a shape and the
    /// range of markets it answers.
    pub fn requests(self, n: usize, every: bool) -> Vec<(Shape, std::ops::Range<usize>)> {
        match (n, self.batch()) {
            (0, _) => vec![],
            (1, _) => vec![(Shape::Single, 0..1)],
            (_, Batch::Every) => vec![(Shape::Every, 0..n)],
            (_, Batch::Named { cap, every: true }) if every || n > cap => {
                vec![(Shape::Every, 0..n)]
            }
            (_, Batch::Named { cap, .. }) => (0..n)
                .step_by(cap.max(1))
                .map(|start| (Shape::Named, start..(start + cap).min(n)))
                .collect(),
        }
    }

    /// The URL of one request of `shape` for `markets` under `base_url`.
    pub fn request_url(self, base_url: &str, shape: Shape, markets: &[Market<'_>]) -> String {
        let base = base_url.trim_end_matches('/');
        match (shape, markets) {
            (Shape::Single, [m]) => self.ticker_url(base, m),
            _ => {
                let every = shape == Shape::Every;
                match self {
                    Venue::Binance => binance::batch_url(base, markets, every),
                    Venue::Coinbase => coinbase::batch_url(base, markets),
                    Venue::Kraken => kraken::batch_url(base, markets, every),
                    Venue::Bitstamp => format!("{base}/api/v2/ticker/"),
                    Venue::Gemini => format!("{base}/v1/pricefeed"),
                    Venue::Okx => format!("{base}/api/v5/market/tickers?instType=SPOT"),
                    Venue::Bybit => format!("{base}/v5/market/tickers?category=spot"),
                    Venue::Kucoin => format!("{base}/api/v1/market/allTickers"),
                    Venue::Bitfinex => bitfinex::batch_url(base, markets, every),
                    Venue::Gateio => format!("{base}/api/v4/spot/tickers"),
                    Venue::Htx => format!("{base}/market/tickers"),
                    Venue::Coingecko => coingecko::batch_url(base, markets),
                }
            }
        }
    }

    /// Reads the answer to one request of `shape` for `markets`: an error for
    /// the whole request (HTTP status, the venue's error envelope, a body not
    /// in its format), or one result per market, in order.
    pub fn parse_many(
        self,
        shape: Shape,
        markets: &[Market<'_>],
        r: &Response<'_>,
    ) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
        if let (Shape::Single, [m]) = (shape, markets) {
            return self.parse(m, r).map(|q| vec![Ok(q)]);
        }
        match self {
            Venue::Binance => binance::parse_batch(markets, r),
            Venue::Coinbase => coinbase::parse_batch(markets, r),
            Venue::Kraken => kraken::parse_batch(markets, r),
            Venue::Bitstamp => bitstamp::parse_batch(markets, r),
            Venue::Gemini => gemini::parse_batch(markets, r),
            Venue::Okx => okx::parse_batch(markets, r),
            Venue::Bybit => bybit::parse_batch(markets, r),
            Venue::Kucoin => kucoin::parse_batch(markets, r),
            Venue::Bitfinex => bitfinex::parse_batch(markets, r),
            Venue::Gateio => gateio::parse_batch(markets, r),
            Venue::Htx => htx::parse_batch(markets, r),
            Venue::Coingecko => coingecko::parse_batch(markets, r),
        }
    }

    /// A pause the exchange's own rate-limit headers ask for (budget used up),
    /// beyond `Retry-After`.
    pub fn limit_pause(
        self,
        headers: &reqwest::header::HeaderMap,
        now_ms: u64,
    ) -> Option<Duration> {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let until = |reset_ms: u64| {
            Some(Duration::from_millis(
                reset_ms.saturating_sub(now_ms).min(60_000),
            ))
        };
        match self {
            // Used request weight in the current minute, limit 6000.
            Venue::Binance => (num("x-mbx-used-weight-1m")? >= 5_900)
                .then(|| Duration::from_millis(60_000 - now_ms % 60_000)),
            // Remaining requests and the reset time (ms).
            Venue::Bybit => (num("x-bapi-limit-status")? == 0)
                .then(|| until(num("x-bapi-limit-reset-timestamp")?))?,
            // Remaining requests and the reset time (s).
            Venue::Gateio => (num("x-gate-ratelimit-requests-remain")? == 0)
                .then(|| until(num("x-gate-ratelimit-reset-timestamp")? * 1000))?,
            // Remaining weight and milliseconds until reset.
            Venue::Kucoin => (num("gw-ratelimit-remaining")? == 0).then(|| {
                Some(Duration::from_millis(
                    num("gw-ratelimit-reset")?.min(60_000),
                ))
            })?,
            _ => None,
        }
    }
}

/// Whether a configured symbol is safe to put in a URL as is.
pub fn valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 48
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses a decimal string field, naming it in the error.
pub(crate) fn decimal(field: &str, text: &str) -> Result<Decimal, FetchError> {
    let value: Decimal = text
        .parse()
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| FetchError::Malformed(format!("{field} is not a decimal: {text:?}")))?;
    if value <= Decimal::ZERO {
        return Err(FetchError::Malformed(format!(
            "{field} is not positive: {text:?}"
        )));
    }
    Ok(value)
}

/// Parses a JSON number or string exactly from its text (no f64 on the way).
pub(crate) fn raw_decimal(field: &str, raw: &RawValue) -> Result<Decimal, FetchError> {
    let text = raw.get();
    decimal(
        field,
        text.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text),
    )
}

/// Parses JSON, turning syntax errors into [`FetchError::Malformed`].
pub(crate) fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, FetchError> {
    serde_json::from_slice(body)
        .map_err(|e| FetchError::Malformed(format!("{e}: {}", crate::error::excerpt(body))))
}

/// One result per asked market from what an answer holds, keyed by the
/// venue's symbol (`key` maps a market to the key it is answered under). A
/// market the answer does not hold is that market's [`FetchError::UnknownSymbol`].
pub(crate) fn pick<K, T>(
    markets: &[Market<'_>],
    answered: &std::collections::HashMap<K, T>,
    key: impl Fn(&Market<'_>) -> String,
    read: impl Fn(&Market<'_>, &T) -> Result<Quote, FetchError>,
) -> Vec<Result<Quote, FetchError>>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
{
    markets
        .iter()
        .map(|m| match answered.get(key(m).as_str()) {
            Some(entry) => read(m, entry),
            None => Err(missing(m.symbol)),
        })
        .collect()
}

/// A quote that is only a price (no book, no data time), from its text.
pub(crate) fn price_only(price: &str) -> Result<Quote, FetchError> {
    Ok(Quote {
        price: decimal("price", price)?,
        bid: None,
        ask: None,
        observed_at_ms: None,
    })
}

/// A market a many-markets answer does not hold.
pub(crate) fn missing(symbol: &str) -> FetchError {
    FetchError::UnknownSymbol {
        symbol: symbol.to_owned(),
        message: "not in the venue's answer".into(),
    }
}

/// Parses an optional decimal string field; empty means absent.
pub(crate) fn opt_decimal(field: &str, text: Option<&str>) -> Result<Option<Decimal>, FetchError> {
    text.filter(|t| !t.is_empty())
        .map(|t| decimal(field, t))
        .transpose()
}

/// Parses an envelope that carries the API's own error codes; when the body
/// is not even that (an HTML error page, an empty 5xx), the HTTP status decides.
pub(crate) fn envelope<'a, T: serde::Deserialize<'a>>(r: &Response<'a>) -> Result<T, FetchError> {
    match json(r.body) {
        Ok(env) => Ok(env),
        Err(_) if r.status != 200 => Err(status_error(r)),
        Err(e) => Err(e),
    }
}

/// Error for a non-success status whose body the connector did not explain.
pub(crate) fn status_error(r: &Response<'_>) -> FetchError {
    FetchError::from_status(r.status, crate::error::excerpt(r.body), r.retry_after)
}

#[cfg(test)]
pub(crate) fn resp(status: u16, body: &'static str) -> Response<'static> {
    Response {
        status,
        body: body.as_bytes(),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_venue_round_trips_its_name_and_has_a_budget() {
        for v in Venue::ALL {
            assert_eq!(Venue::from_kind(v.name()), Some(v));
            let (n, per) = v.default_rate_limit();
            assert!(n > 0 && !per.is_zero());
            assert!(v.default_base_url().starts_with("https://"));
        }
        assert_eq!(Venue::from_kind("mtgox"), None);
    }

    #[test]
    fn urls_follow_each_api() {
        let m = Market {
            symbol: "bitcoin",
            quote: "USD",
        };
        assert_eq!(
            Venue::Coingecko.ticker_url("https://api.coingecko.com/", &m),
            "https://api.coingecko.com/api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true"
        );
        assert_eq!(
            Venue::Bitstamp.ticker_url("http://127.0.0.1:1/bitstamp", &Market::of("btcusd")),
            "http://127.0.0.1:1/bitstamp/api/v2/ticker/btcusd/"
        );
    }

    #[test]
    fn exchange_limit_headers_ask_for_a_pause() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        h.insert("x-mbx-used-weight-1m", HeaderValue::from_static("5950"));
        assert_eq!(
            Venue::Binance.limit_pause(&h, 30_000),
            Some(Duration::from_secs(30))
        );
        h.insert("x-mbx-used-weight-1m", HeaderValue::from_static("100"));
        assert_eq!(Venue::Binance.limit_pause(&h, 30_000), None);
        let mut h = HeaderMap::new();
        h.insert("x-bapi-limit-status", HeaderValue::from_static("0"));
        h.insert(
            "x-bapi-limit-reset-timestamp",
            HeaderValue::from_static("1500"),
        );
        assert_eq!(
            Venue::Bybit.limit_pause(&h, 1_000),
            Some(Duration::from_millis(500))
        );
        let mut h = HeaderMap::new();
        h.insert("gw-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("gw-ratelimit-reset", HeaderValue::from_static("2000"));
        assert_eq!(
            Venue::Kucoin.limit_pause(&h, 0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(Venue::Kraken.limit_pause(&h, 0), None);
    }

    #[test]
    fn raw_numbers_are_parsed_exactly() {
        let v: Box<RawValue> = serde_json::from_str("97123.41").unwrap();
        assert_eq!(raw_decimal("x", &v).unwrap().to_string(), "97123.41");
        let v: Box<RawValue> = serde_json::from_str("\"0.1\"").unwrap();
        assert_eq!(raw_decimal("x", &v).unwrap().to_string(), "0.1");
        let v: Box<RawValue> = serde_json::from_str("1.5e3").unwrap();
        assert_eq!(raw_decimal("x", &v).unwrap().to_string(), "1500");
        let v: Box<RawValue> = serde_json::from_str("null").unwrap();
        assert!(raw_decimal("x", &v).is_err());
    }

    #[test]
    fn requests_follow_each_venues_batch_endpoint() {
        // One market: the per-symbol ticker, whatever the venue.
        for v in Venue::ALL {
            assert_eq!(v.requests(1, false), vec![(Shape::Single, 0..1)]);
            assert!(v.requests(0, false).is_empty());
        }
        // Every-market venues: one request for any number of markets.
        assert_eq!(
            Venue::Okx.requests(500, false),
            vec![(Shape::Every, 0..500)]
        );
        // Named lists up to the cap, then every market where the venue has it.
        assert_eq!(
            Venue::Binance.requests(100, false),
            vec![(Shape::Named, 0..100)]
        );
        assert_eq!(
            Venue::Binance.requests(101, false),
            vec![(Shape::Every, 0..101)]
        );
        assert_eq!(Venue::Kraken.requests(3, true), vec![(Shape::Every, 0..3)]);
        // ... else chunks of the cap.
        assert_eq!(
            Venue::Coingecko.requests(250, false),
            vec![
                (Shape::Named, 0..100),
                (Shape::Named, 100..200),
                (Shape::Named, 200..250)
            ]
        );
        // Weighted venues cost their weight.
        assert_eq!(
            (
                Venue::Binance.cost(Shape::Single),
                Venue::Binance.cost(Shape::Named)
            ),
            (2, 4)
        );
        assert_eq!(Venue::Kucoin.cost(Shape::Every), 15);
        assert_eq!(Venue::Okx.cost(Shape::Every), 1);
        let ms = [Market::of("btcusd"), Market::of("ethusd")];
        assert_eq!(
            Venue::Gemini.request_url("http://h/gemini/", Shape::Every, &ms),
            "http://h/gemini/v1/pricefeed"
        );
        assert_eq!(
            Venue::Gemini.request_url("http://h/gemini", Shape::Single, &ms[..1]),
            "http://h/gemini/v1/pubticker/btcusd"
        );
    }
}
