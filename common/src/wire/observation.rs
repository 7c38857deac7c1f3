//! Observations, on `oracle.obs.{PAIR}.{source}` (PAIR like `BTC-USD`) in
//! stream `ORACLE_OBS`, with header `Nats-Msg-Id: {source}:{PAIR}:{observed_at_ms}`
//! so that redundant fetchers and retried publishes are deduplicated; and the
//! fetch trigger `oracle.fetch.{PAIR}` that asks fetchers to poll a pair now.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, WireError, WireMessage, obs_subject, wire_message};
use crate::{Pair, SourceId};

/// One price seen at one source, as published by a fetcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Schema version, [`SCHEMA_VERSION`].
    pub v: u32,
    /// The feed, `BTC/USD`.
    pub pair: Pair,
    /// The source that quoted it.
    pub source: SourceId,
    /// Last trade (or reference) price, exact decimal.
    pub price: Decimal,
    /// Best bid, when the source reports one.
    pub bid: Option<Decimal>,
    /// Best ask, when the source reports one.
    pub ask: Option<Decimal>,
    /// When the source says the price was current (its own timestamp, or the
    /// fetch time when the source gives none), Unix ms.
    pub observed_at_ms: u64,
    /// When the fetcher received the response, Unix ms.
    pub fetched_at_ms: u64,
    /// Which fetcher process published it.
    pub fetcher: String,
    /// 0 for a primary source, n for the n-th fallback.
    pub fallback_rank: u32,
    /// Why it was fetched out of schedule (`on-demand`), `None` for a scheduled poll.
    pub trigger: Option<String>,
    /// The quote currency of the market the price came from, when it is not the
    /// pair's own (a `USDT` market standing in for `USD`, as configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_quote: Option<String>,
}

impl Observation {
    /// The subject this observation is published on.
    pub fn subject(&self) -> String {
        obs_subject(&self.pair, &self.source)
    }

    /// The deduplication id: `{source}:{PAIR}:{observed_at_ms}`.
    pub fn msg_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.source,
            self.pair.subject_token(),
            self.observed_at_ms
        )
    }
}

impl WireMessage for Observation {
    const VERSION: u32 = SCHEMA_VERSION;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), WireError> {
        if self.price <= Decimal::ZERO {
            return Err(WireError::Invalid("price must be positive"));
        }
        Ok(())
    }
}

wire_message!(FetchRequest => SCHEMA_VERSION, FetchReply => SCHEMA_VERSION);

/// Body of a request on `oracle.fetch.{PAIR}` (core NATS, request/reply or
/// plain publish): poll that pair's sources now. An empty body is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Schema version.
    pub v: u32,
    /// When the fetch was asked for, Unix ms. Fetchers use it as the
    /// observation time of sources without a timestamp of their own, so that
    /// redundant fetchers answering the same request are deduplicated.
    pub requested_at_ms: u64,
    /// Sources not to count (an aggregator names the ones it rejected as
    /// outliers or misses): the fetchers poll the feed's other sources,
    /// fallbacks included in priority order, until `min_sources` of them
    /// answered. Empty for a plain trigger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<SourceId>,
}

impl FetchRequest {
    /// A plain trigger asked for at `requested_at_ms`.
    pub fn new(requested_at_ms: u64) -> Self {
        Self {
            v: SCHEMA_VERSION,
            requested_at_ms,
            exclude: Vec::new(),
        }
    }
}

/// Reply of a fetcher to a [`FetchRequest`] (one per fetcher process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchReply {
    /// Schema version.
    pub v: u32,
    /// The pair asked for, as in the subject (`BTC-USD`).
    pub pair: String,
    /// Sources whose observation was handed to the publisher.
    pub sources: Vec<SourceId>,
    /// Whether `min_sources` of the feed answered.
    pub quorum: bool,
    /// Why nothing was polled (unknown pair), if so.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"{"v":1,"pair":"BTC/USD","source":"kraken","price":"97123.40","bid":"97123.3","ask":"97123.5",
 "observed_at_ms":1763700000123,"fetched_at_ms":1763700000150,"fetcher":"fetchers-1",
 "fallback_rank":0,"trigger":null}"#;

    #[test]
    fn decodes_the_design_example_exactly() {
        let obs = Observation::decode(DESIGN_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(obs.price.to_string(), "97123.40");
        assert_eq!(obs.bid.unwrap().to_string(), "97123.3");
        assert_eq!(obs.msg_id(), "kraken:BTC-USD:1763700000123");
        assert_eq!(obs.subject(), "oracle.obs.BTC-USD.kraken");
        let again = Observation::decode(&obs.encode()).unwrap();
        assert_eq!(again, obs);
        assert_eq!(obs.market_quote, None);
        assert!(
            !String::from_utf8(obs.encode())
                .unwrap()
                .contains("market_quote")
        );
        // Prices travel as strings, never as JSON numbers.
        let json: serde_json::Value = serde_json::from_slice(&obs.encode()).unwrap();
        assert_eq!(json["price"], "97123.40");
    }

    #[test]
    fn rejects_other_versions_and_bad_prices() {
        let v2 = DESIGN_EXAMPLE.replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            Observation::decode(v2.as_bytes()),
            Err(WireError::Version {
                found: 2,
                expected: 1
            })
        ));
        // A body of another version is named as such even when its shape differs.
        assert!(matches!(
            Observation::decode(br#"{"v":3,"pair":7}"#),
            Err(WireError::Version { found: 3, .. })
        ));
        let neg = DESIGN_EXAMPLE.replace("\"97123.40\"", "\"-1\"");
        assert!(matches!(
            Observation::decode(neg.as_bytes()),
            Err(WireError::Invalid(_))
        ));
        assert!(matches!(
            Observation::decode(b"{"),
            Err(WireError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod fetch_tests {
    use super::*;

    #[test]
    fn a_plain_trigger_reads_as_before_and_exclusions_travel() {
        let plain: FetchRequest = FetchRequest::decode(br#"{"v":1,"requested_at_ms":5}"#).unwrap();
        assert_eq!(plain, FetchRequest::new(5));
        assert!(
            !String::from_utf8(plain.encode())
                .unwrap()
                .contains("exclude")
        );
        let mut wider = FetchRequest::new(6);
        wider.exclude = vec!["bitstamp".parse().unwrap()];
        assert_eq!(FetchRequest::decode(&wider.encode()).unwrap(), wider);
    }
}
