//! Wire schemas (versioned JSON, field `v`), NATS subjects and stream names.
//!
//! Observations travel on `oracle.obs.{PAIR}.{source}` (PAIR like `BTC-USD`) in
//! stream `ORACLE_OBS`, with header `Nats-Msg-Id: {source}:{PAIR}:{observed_at_ms}`
//! so that redundant fetchers and retried publishes are deduplicated.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Pair, SourceId};

/// Schema version carried in field `v` of every message.
pub const SCHEMA_VERSION: u32 = 1;

/// Stream of observations.
pub const OBS_STREAM: &str = "ORACLE_OBS";
/// Subjects captured by [`OBS_STREAM`].
pub const OBS_SUBJECTS: &str = "oracle.obs.>";
/// Stream of aggregated reports.
pub const REPORTS_STREAM: &str = "ORACLE_REPORTS";
/// Subjects captured by [`REPORTS_STREAM`].
pub const REPORTS_SUBJECTS: &str = "oracle.report.>";
/// Stream of submission status events.
pub const SUBMISSIONS_STREAM: &str = "ORACLE_SUBMISSIONS";
/// Subjects captured by [`SUBMISSIONS_STREAM`].
pub const SUBMISSIONS_SUBJECTS: &str = "oracle.submission.>";
/// Header NATS JetStream deduplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// `oracle.obs.BTC-USD.kraken`
pub fn obs_subject(pair: &Pair, source: &SourceId) -> String {
    format!("oracle.obs.{}.{}", pair.subject_token(), source)
}

/// `oracle.fetch.BTC-USD`: asks every fetcher to poll that pair now.
pub fn fetch_subject(pair: &Pair) -> String {
    format!("oracle.fetch.{}", pair.subject_token())
}

/// `oracle.report.BTC-USD`
pub fn report_subject(pair: &Pair) -> String {
    format!("oracle.report.{}", pair.subject_token())
}

/// Body of a request on `oracle.fetch.{PAIR}` (core NATS, request/reply or
/// plain publish): poll that pair's sources now. An empty body is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Schema version.
    pub v: u32,
    /// When the fetch was asked for, Unix ms. Fetchers use it as the
    /// observation time of sources without a timestamp of their own, so that
    /// redundant fetchers answering the same request are deduplicated.
    pub requested_at_ms: u64,
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

/// Errors decoding a message from the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is not valid JSON for the schema.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The schema version is not one this build understands.
    #[error("unsupported schema version {0} (this build reads v{SCHEMA_VERSION})")]
    Version(u32),
    /// The message parses but breaks a rule of the schema.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

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

    /// Serializes to the wire JSON.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of plain fields always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks a message body.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let obs: Self = serde_json::from_slice(body)?;
        if obs.v != SCHEMA_VERSION {
            return Err(WireError::Version(obs.v));
        }
        if obs.price <= Decimal::ZERO {
            return Err(WireError::Invalid("price must be positive"));
        }
        Ok(obs)
    }
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
            Err(WireError::Version(2))
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
