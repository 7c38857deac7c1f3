//! Request/reply messages between the bff and the aggregators: on-demand
//! refreshes (`oracle.refresh`) and operator retries (`oracle.admin.retry`),
//! with the error codes both sides share.

use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, SubmissionStatus, wire_message};
use crate::Pair;

/// Why a refresh or retry produced no update. Shared by the aggregator (which
/// answers with it) and the bff (which maps it to an HTTP error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be read.
    BadRequest,
    /// The pair is not a configured feed.
    UnknownPair,
    /// Too few sources answered in time for an aggregate.
    NoQuorum,
    /// Too few nodes signed the proposal in time.
    NoSignerQuorum,
    /// The transaction failed, or the hub skipped the report.
    ChainError,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownPair => "unknown_pair",
            Self::NoQuorum => "no_quorum",
            Self::NoSignerQuorum => "no_signer_quorum",
            Self::ChainError => "chain_error",
            Self::Unknown => "unknown",
        }
    }
}

/// A request on `oracle.admin.retry`: submit the feeds of failed submission
/// `retry_of` again now (fresh aggregates, re-signed), un-parking them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRequest {
    /// Schema version.
    pub v: u32,
    /// The failed submission.
    pub retry_of: String,
    /// Its feeds.
    pub pairs: Vec<Pair>,
    /// Its chain (configured name; empty: the first chain).
    #[serde(default)]
    pub chain: String,
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
    /// Why no submission was made.
    pub error: Option<ErrorCode>,
    /// Details.
    pub message: Option<String>,
}

impl RetryReply {
    /// A reply saying why no submission was made.
    pub fn error(retry_of: String, code: ErrorCode, message: String) -> Self {
        Self {
            v: SCHEMA_VERSION,
            retry_of,
            submission_id: None,
            status: None,
            error: Some(code),
            message: Some(message),
        }
    }
}

/// A request on `oracle.refresh`: update this pair on chain now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// Schema version.
    pub v: u32,
    /// The pair.
    pub pair: Pair,
    /// The chain to update (configured name; empty: the first chain).
    #[serde(default)]
    pub chain: String,
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
    /// The round, once included.
    pub round: Option<u32>,
    /// Scaled price as text.
    pub price_scaled: Option<String>,
    /// Transaction hash.
    pub tx_hash: Option<String>,
    /// Block number.
    pub block: Option<u64>,
    /// Why it did not work.
    pub error: Option<ErrorCode>,
    /// Details of the error.
    pub message: Option<String>,
}

impl RefreshReply {
    /// A reply saying why no update was made.
    pub fn error(pair: String, code: ErrorCode, message: String) -> Self {
        Self {
            v: SCHEMA_VERSION,
            pair,
            submission_id: None,
            round: None,
            price_scaled: None,
            tx_hash: None,
            block: None,
            error: Some(code),
            message: Some(message),
        }
    }
}

wire_message!(
    RetryRequest => SCHEMA_VERSION,
    RetryReply => SCHEMA_VERSION,
    RefreshRequest => SCHEMA_VERSION,
    RefreshReply => SCHEMA_VERSION,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireMessage;

    #[test]
    fn error_codes_travel_as_the_strings_the_bff_reads() {
        let r = RefreshReply::error("BTC/USD".into(), ErrorCode::NoSignerQuorum, "x".into());
        let json = String::from_utf8(r.encode()).unwrap();
        assert!(json.contains(r#""error":"no_signer_quorum""#), "{json}");
        assert_eq!(RefreshReply::decode(json.as_bytes()).unwrap(), r);
        let later: RefreshReply = RefreshReply::decode(
            json.replace("no_signer_quorum", "from_the_future")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(later.error, Some(ErrorCode::Unknown));
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnknownPair,
            ErrorCode::NoQuorum,
            ErrorCode::NoSignerQuorum,
            ErrorCode::ChainError,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }
}
