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

/// `oracle.submission.{id}`
pub fn submission_subject(id: &str) -> String {
    format!("oracle.submission.{id}")
}

/// Subject of on-demand refresh requests (request/reply, queue group `aggregators`).
pub const REFRESH_SUBJECT: &str = "oracle.refresh";

/// Subject of operator retries of failed submissions (request/reply, queue
/// group `aggregators`; only the leader subscribes).
pub const RETRY_SUBJECT: &str = "oracle.admin.retry";

/// An observation an aggregate left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedInput {
    /// The observation.
    pub observation: Observation,
    /// Why it was left out.
    pub reason: String,
}

/// An aggregate sent on chain, with everything needed to recompute it,
/// on `oracle.report.{PAIR}` in `ORACLE_REPORTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMessage {
    /// Schema version.
    pub v: u32,
    /// The feed.
    pub pair: Pair,
    /// The round it is submitted as.
    pub round: u32,
    /// The exact median of the used observations.
    pub price: Decimal,
    /// The on-chain integer (price scaled by 10^decimals), as text.
    pub price_scaled: String,
    /// Decimals of `price_scaled`.
    pub decimals: u8,
    /// Half-width of the interval around the median (Pyth's rule).
    pub confidence: Decimal,
    /// The observation time submitted, Unix seconds.
    pub observed_at: u64,
    /// When it was computed, Unix ms.
    pub computed_at_ms: u64,
    /// Why it was due: `first`, `heartbeat`, `deviation`, `on-demand`.
    pub reason: String,
    /// The submission that carries it.
    pub submission_id: String,
    /// Every observation used.
    pub used: Vec<Observation>,
    /// Every fresh observation left out, with the reason.
    pub rejected: Vec<RejectedInput>,
}

/// Status of a submission (one transaction, possibly replaced with higher fees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// Decided, not yet broadcast.
    Queued,
    /// Broadcast (or about to be), awaiting a receipt.
    Pending,
    /// Included and executed.
    Success,
    /// Reverted, or abandoned with a permanent error.
    Failed,
}

impl SubmissionStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }
}

/// One report of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedReport {
    /// The feed.
    pub pair: Pair,
    /// Its round.
    pub round: u32,
    /// The scaled price, as text.
    pub price_scaled: String,
    /// Observation time, Unix seconds.
    pub observed_at: u64,
}

/// One status change of a submission, on `oracle.submission.{id}` in
/// `ORACLE_SUBMISSIONS`. Each event is written before the step it announces
/// (`pending` before the broadcast), and carries the whole record so far, so
/// the last event of a submission is its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionEvent {
    /// Schema version.
    pub v: u32,
    /// Submission id (`{unix_ms}-{random}`), unique.
    pub id: String,
    /// The new status.
    pub status: SubmissionStatus,
    /// When, Unix ms.
    pub at_ms: u64,
    /// Which aggregator process.
    pub aggregator: String,
    /// The reports.
    pub reports: Vec<SubmittedReport>,
    /// The submission this one retries, if any.
    pub retry_of: Option<String>,
    /// Hash of the latest transaction (each replacement has its own).
    pub tx_hash: Option<String>,
    /// Every transaction hash broadcast for this submission, oldest first.
    pub tx_hashes: Vec<String>,
    /// The nonce all of them share.
    pub nonce: Option<u64>,
    /// Fees of the latest transaction, wei.
    pub max_fee_per_gas: Option<u128>,
    /// Priority fee of the latest transaction, wei.
    pub max_priority_fee_per_gas: Option<u128>,
    /// The latest signed transaction (hex), so that a restarted aggregator can
    /// broadcast it again.
    pub raw_tx: Option<String>,
    /// Block of inclusion.
    pub block: Option<u64>,
    /// Gas used.
    pub gas_used: Option<u64>,
    /// Reports the hub skipped: `pair: reason`.
    pub skipped: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl SubmissionEvent {
    /// The first event of a submission: `queued` now, nothing signed or sent.
    pub fn queued(
        id: String,
        aggregator: String,
        reports: Vec<SubmittedReport>,
        retry_of: Option<String>,
    ) -> Self {
        Self {
            v: SCHEMA_VERSION,
            id,
            status: SubmissionStatus::Queued,
            at_ms: crate::now_ms(),
            aggregator,
            reports,
            retry_of,
            tx_hash: None,
            tx_hashes: vec![],
            nonce: None,
            max_fee_per_gas: None,
            max_priority_fee_per_gas: None,
            raw_tx: None,
            block: None,
            gas_used: None,
            skipped: vec![],
            error: None,
        }
    }

    /// Serializes to the wire JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks a message body.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let e: Self = serde_json::from_slice(body)?;
        if e.v != SCHEMA_VERSION {
            return Err(WireError::Version(e.v));
        }
        Ok(e)
    }
}

/// A request on [`RETRY_SUBJECT`]: submit the feeds of failed submission
/// `retry_of` again now (fresh aggregates, re-signed), un-parking them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRequest {
    /// Schema version.
    pub v: u32,
    /// The failed submission.
    pub retry_of: String,
    /// Its feeds.
    pub pairs: Vec<Pair>,
}

/// The aggregator's answer to a [`RetryRequest`], once the new submission
/// reached a final status (or could not be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReply {
    /// Schema version.
    pub v: u32,
    /// The failed submission retried.
    pub retry_of: String,
    /// The new submission (its events carry `retry_of`).
    pub submission_id: Option<String>,
    /// Its final status.
    pub status: Option<SubmissionStatus>,
    /// A stable error code when no submission was made: `bad_request`,
    /// `unknown_pair`, `no_quorum`.
    pub error: Option<String>,
    /// Details.
    pub message: Option<String>,
}

/// A request on [`REFRESH_SUBJECT`]: update this pair on chain now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// Schema version.
    pub v: u32,
    /// The pair.
    pub pair: Pair,
}

/// The aggregator's answer to a [`RefreshRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshReply {
    /// Schema version.
    pub v: u32,
    /// The pair (`BTC/USD`; empty when the request could not be read).
    pub pair: String,
    /// The submission, once decided.
    pub submission_id: Option<String>,
    /// The round, price (scaled, text), transaction and block, once included.
    pub round: Option<u32>,
    /// Scaled price as text.
    pub price_scaled: Option<String>,
    /// Transaction hash.
    pub tx_hash: Option<String>,
    /// Block number.
    pub block: Option<u64>,
    /// A stable error code when it did not work: `bad_request`,
    /// `unknown_pair`, `no_quorum`, `chain_error`.
    pub error: Option<String>,
    /// Details of the error.
    pub message: Option<String>,
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
