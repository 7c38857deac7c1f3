//! `[[feeds]]`: what each feed polls, how many sources it needs, when it is
//! updated, and its bounds as the hub stores them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::{ConfigError, SourceConfig};
use crate::{Pair, SourceId, price};

/// One feed: which sources, how many are needed, when to update.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The pair, `BTC/USD`.
    pub pair: Pair,
    /// Decimals of the on-chain integer.
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// Sanity bound: prices at or below it are rejected, never clamped (quote
    /// units, a decimal string such as `"1000"`). The hub stores bounds as
    /// `m × 10^e` with m < 65536 after scaling by `decimals`.
    pub min_price: Decimal,
    /// Sanity bound: prices at or above it are rejected, never clamped.
    pub max_price: Decimal,
    /// Primary sources, polled every cycle.
    pub sources: Vec<SourceId>,
    /// Fallback sources in priority order, polled within the same cycle only
    /// when fewer than `min_sources` primaries answered.
    #[serde(default)]
    pub fallbacks: Vec<SourceId>,
    /// Fewest distinct sources an aggregate needs.
    #[serde(default = "default_min_sources")]
    pub min_sources: usize,
    /// Oldest observation an aggregate may use.
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Update when the aggregate moved this many basis points from the on-chain value.
    #[serde(default = "default_deviation_bps")]
    pub deviation_bps: u32,
    /// Update at least this often.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How old a report's observation time may be when a block includes it
    /// (1 s to 4095 s): the hub skips older reports (`ReportTooOld`), so that
    /// a signed batch withheld and relayed later cannot look fresh. Set on the
    /// hub at deployment (`setMaxReportAge` changes it); the aggregator reads
    /// the hub's value.
    #[serde(default = "default_max_report_age", with = "humantime_serde")]
    pub max_report_age: Duration,
    /// The feed's Chainlink-compatible `FeedAdapter`, as `oracle-deploy`
    /// printed it; shown by the bff's `/v1/feeds`.
    #[serde(default)]
    pub adapter: Option<alloy::primitives::Address>,
}

fn default_decimals() -> u8 {
    8
}
fn default_min_sources() -> usize {
    2
}
fn default_max_age() -> Duration {
    Duration::from_secs(10)
}
fn default_deviation_bps() -> u32 {
    50
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_report_age() -> Duration {
    Duration::from_secs(120)
}

/// The longest `max_report_age` the hub stores (12 bits of seconds).
pub const MAX_REPORT_AGE_LIMIT: Duration = Duration::from_secs(4095);

impl FeedConfig {
    /// Checks feed `i` against the configured `sources`.
    pub fn validate(
        &self,
        i: usize,
        sources: &BTreeMap<SourceId, SourceConfig>,
    ) -> Result<(), ConfigError> {
        let k = |field: &str| format!("feeds[{i}].{field}");
        let feed = self;
        if feed.decimals > 18 {
            return Err(ConfigError::key(k("decimals"), "must be at most 18"));
        }
        if feed.sources.is_empty() {
            return Err(ConfigError::key(
                k("sources"),
                "must name at least one source",
            ));
        }
        let mut named = BTreeSet::new();
        let listed = feed.sources.iter().map(|s| ("sources", s));
        for (field, source) in listed.chain(feed.fallbacks.iter().map(|s| ("fallbacks", s))) {
            if !named.insert(source) {
                return Err(ConfigError::key(
                    k(field),
                    format!("source {source} is named twice"),
                ));
            }
            let Some(sc) = sources.get(source) else {
                return Err(ConfigError::key(
                    k(field),
                    format!("source {source} is not configured under [sources]"),
                ));
            };
            if !sc.symbols.contains_key(&feed.pair) {
                return Err(ConfigError::key(
                    format!("sources.{source}.symbols"),
                    format!(
                        "has no symbol for {}, which feed {} polls it for",
                        feed.pair, feed.pair
                    ),
                ));
            }
        }
        let available = feed.sources.len() + feed.fallbacks.len();
        if feed.min_sources == 0 || feed.min_sources > available {
            return Err(ConfigError::key(
                k("min_sources"),
                format!("must be between 1 and the number of sources and fallbacks ({available})"),
            ));
        }
        if feed.max_age.is_zero() {
            return Err(ConfigError::key(k("max_age"), "must be positive"));
        }
        if feed.heartbeat.is_zero() {
            return Err(ConfigError::key(k("heartbeat"), "must be positive"));
        }
        if feed.max_report_age < Duration::from_secs(1)
            || feed.max_report_age > MAX_REPORT_AGE_LIMIT
        {
            return Err(ConfigError::key(
                k("max_report_age"),
                "must be between 1s and 4095s (the hub stores 12 bits of seconds)",
            ));
        }
        if feed.deviation_bps == 0 || feed.deviation_bps > 10_000 {
            return Err(ConfigError::key(
                k("deviation_bps"),
                "must be between 1 and 10000",
            ));
        }
        if feed.min_price < Decimal::ZERO || feed.max_price <= feed.min_price {
            return Err(ConfigError::key(
                k("max_price"),
                format!(
                    "bounds must satisfy 0 <= min_price < max_price, got {} and {}",
                    feed.min_price, feed.max_price
                ),
            ));
        }
        for (field, value) in [("min_price", feed.min_price), ("max_price", feed.max_price)] {
            let decimals = u32::from(feed.decimals);
            let exact = price::to_scaled(value, decimals).is_ok_and(|scaled| {
                Decimal::from_i128_with_scale(scaled, decimals) == value
                    && price::bound_representable(scaled)
            });
            if !exact {
                return Err(ConfigError::key(
                    k(field),
                    format!(
                        "{value} cannot be stored by the hub: use at most 5 significant digits \
                         (like 1000 or 12.5) and at most {decimals} decimals"
                    ),
                ));
            }
        }
        Ok(())
    }
}
