//! Exchange connectors: how to ask each source for a ticker and how to read
//! its answer, in its real wire format. Each venue lives in its own module,
//! tested against recorded responses in `fetchers/fixtures/`.
//!
//! | venue | endpoint | documented public limit (default budget) |
//! |---|---|---|
//! | binance | `GET /api/v3/ticker/price?symbol=BTCUSDT` | 6000 weight/min, 2 per call (1200/min) |
//! | coinbase | `GET /products/BTC-USD/ticker` | 10/s per IP |
//! | kraken | `GET /0/public/Ticker?pair=XBTUSD` | about 1/s |
//! | bitstamp | `GET /api/v2/ticker/btcusd/` | 8000 per 10 min (13/s) |
//! | gemini | `GET /v1/pubticker/btcusd` | 120/min |
//! | okx | `GET /api/v5/market/ticker?instId=BTC-USDT` | 20 per 2 s |
//! | bybit | `GET /v5/market/tickers?category=spot&symbol=BTCUSDT` | 600 per 5 s |
//! | kucoin | `GET /api/v1/market/orderbook/level1?symbol=BTC-USDT` | 2000 weight per 30 s, 2 per call |
//! | bitfinex | `GET /v2/ticker/tBTCUSD` | 90/min |
//! | gateio | `GET /api/v4/spot/tickers?currency_pair=BTC_USDT` | 200 per 10 s |
//! | htx | `GET /market/detail/merged?symbol=btcusdt` | 100 per 10 s |
//! | coingecko | `GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true` | 10/min (public plan) |

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

    /// The documented public request budget: `(requests, per period)`.
    pub fn default_rate_limit(self) -> (u32, Duration) {
        let s = Duration::from_secs;
        match self {
            Venue::Binance => (1200, s(60)),
            Venue::Coinbase => (10, s(1)),
            Venue::Kraken => (1, s(1)),
            Venue::Bitstamp => (13, s(1)),
            Venue::Gemini => (120, s(60)),
            Venue::Okx => (20, s(2)),
            Venue::Bybit => (600, s(5)),
            Venue::Kucoin => (1000, s(30)),
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
}
