//! Exchange connectors: how to ask each source for a ticker and how to read
//! its answer, in its real wire format. Each venue lives in its own module with
//! tests against recorded responses in `fetchers/fixtures/`.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::error::FetchError;

pub mod binance;
pub mod coinbase;
pub mod kraken;

/// What a source said about one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Last trade price.
    pub price: Decimal,
    /// Best bid, when given.
    pub bid: Option<Decimal>,
    /// Best ask, when given.
    pub ask: Option<Decimal>,
    /// The source's own timestamp (Unix ms), when it gives one.
    pub observed_at_ms: Option<u64>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Venue {
    /// Binance spot, `GET /api/v3/ticker/price?symbol=BTCUSDT`.
    Binance,
    /// Coinbase Exchange, `GET /products/BTC-USD/ticker`.
    Coinbase,
    /// Kraken, `GET /0/public/Ticker?pair=XBTUSD`.
    Kraken,
}

impl Venue {
    /// Every supported venue.
    pub const ALL: [Venue; 3] = [Venue::Binance, Venue::Coinbase, Venue::Kraken];

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
        }
    }

    /// The ticker URL for `symbol` under `base_url` (a path prefix is kept).
    pub fn ticker_url(self, base_url: &str, symbol: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            Venue::Binance => format!("{base}/api/v3/ticker/price?symbol={symbol}"),
            Venue::Coinbase => format!("{base}/products/{symbol}/ticker"),
            Venue::Kraken => format!("{base}/0/public/Ticker?pair={symbol}"),
        }
    }

    /// Reads a ticker answer for `symbol`.
    pub fn parse(self, symbol: &str, response: &Response<'_>) -> Result<Quote, FetchError> {
        match self {
            Venue::Binance => binance::parse(symbol, response),
            Venue::Coinbase => coinbase::parse(symbol, response),
            Venue::Kraken => kraken::parse(symbol, response),
        }
    }
}

/// Whether a configured symbol is safe to put in a URL as is.
pub fn valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 32
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses a decimal string field, naming it in the error.
pub(crate) fn decimal(field: &str, text: &str) -> Result<Decimal, FetchError> {
    let value: Decimal = text
        .parse()
        .map_err(|_| FetchError::Malformed(format!("{field} is not a decimal: {text:?}")))?;
    if value <= Decimal::ZERO {
        return Err(FetchError::Malformed(format!(
            "{field} is not positive: {text:?}"
        )));
    }
    Ok(value)
}

/// Parses JSON, turning syntax errors into [`FetchError::Malformed`].
pub(crate) fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, FetchError> {
    serde_json::from_slice(body)
        .map_err(|e| FetchError::Malformed(format!("{e}: {}", crate::error::excerpt(body))))
}
