//! `[sources.<id>]`: each price source's API, its markets per pair and its
//! request budget.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::{Pair, SourceId};

/// One price source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The connector that speaks this source's API; defaults to the source id.
    #[serde(default)]
    pub kind: Option<String>,
    /// Base URL of the API, e.g. `https://api.kraken.com` (a path prefix is kept).
    pub base_url: String,
    /// Per-request timeout.
    #[serde(default = "default_source_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The source's market for each pair it serves: `"BTC/USD" = "XBTUSD"`
    /// (a market quoted in the pair's quote currency), or
    /// `"BTC/USD" = { symbol = "BTCUSDT", quote = "USDT" }` to let a market
    /// quoted in another currency stand in for it (observations then carry
    /// `market_quote`).
    pub symbols: BTreeMap<Pair, SymbolSpec>,
    /// Request budget, never exceeded; defaults to the API's documented limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A source's market for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SymbolSpec {
    /// A market quoted in the pair's own quote currency.
    Plain(String),
    /// A market quoted in `quote`, standing in for the pair's quote currency.
    Proxy {
        /// The source's symbol.
        symbol: String,
        /// The market's quote currency, e.g. `USDT`.
        quote: String,
    },
}

impl SymbolSpec {
    /// The source's symbol.
    pub fn symbol(&self) -> &str {
        match self {
            SymbolSpec::Plain(s) => s,
            SymbolSpec::Proxy { symbol, .. } => symbol,
        }
    }

    /// The market's quote currency when it differs from the pair's.
    pub fn proxy_quote(&self) -> Option<&str> {
        match self {
            SymbolSpec::Plain(_) => None,
            SymbolSpec::Proxy { quote, .. } => Some(quote),
        }
    }
}

/// A request budget: at most `requests` in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

fn default_source_timeout() -> Duration {
    Duration::from_secs(3)
}

impl SourceConfig {
    /// The connector name: `kind`, or the source id when `kind` is not set.
    pub fn kind_or<'a>(&'a self, id: &'a SourceId) -> &'a str {
        self.kind.as_deref().unwrap_or(id.as_str())
    }
}

impl RateLimit {
    /// Checks a budget configured at `key`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.requests == 0 || self.per.is_zero() {
            return Err(ConfigError::key(key, "requests and per must be positive"));
        }
        Ok(())
    }
}

impl SourceConfig {
    /// Checks source `id`.
    pub fn validate(&self, id: &SourceId) -> Result<(), ConfigError> {
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::key(
                format!("sources.{id}.base_url"),
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::key(
                format!("sources.{id}.timeout"),
                "must be positive",
            ));
        }
        if let Some(limit) = self.rate_limit {
            limit.validate(&format!("sources.{id}.rate_limit"))?;
        }
        Ok(())
    }
}
