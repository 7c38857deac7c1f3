//! Submission events, on `oracle.submission.{id}` in stream
//! `ORACLE_SUBMISSIONS`: one per status change of a transaction. The list of
//! submissions is rebuilt by replaying this stream.

use serde::{Deserialize, Serialize};

use super::wire_message;
use crate::Pair;

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
    /// The feed's index on the hub (what the hub's events name).
    pub feed_index: u16,
    /// Its round.
    pub round: u32,
    /// The scaled price, as text.
    pub price_scaled: String,
    /// Observation time, Unix seconds.
    pub observed_at: u64,
}

/// Why the hub skipped a report: the name of its `IOracleHub` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// No feed at that index.
    UnknownFeedIndex,
    /// The feed is paused.
    FeedPaused,
    /// The round is not the feed's latest + 1.
    UnexpectedRound,
    /// The observation time goes back from the stored one.
    ObservationTooOld,
    /// The observation time is ahead of the block beyond the hub's skew.
    ObservationInFuture,
    /// The observation time is older than the feed's `maxReportAge`.
    ReportTooOld,
    /// The price is at or beyond the feed's bounds.
    OutOfBounds,
    /// A reason this build does not know.
    #[serde(other)]
    Unknown,
}

impl SkipReason {
    /// The hub's error name (`FeedPaused`, …), for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownFeedIndex => "UnknownFeedIndex",
            Self::FeedPaused => "FeedPaused",
            Self::UnexpectedRound => "UnexpectedRound",
            Self::ObservationTooOld => "ObservationTooOld",
            Self::ObservationInFuture => "ObservationInFuture",
            Self::ReportTooOld => "ReportTooOld",
            Self::OutOfBounds => "OutOfBounds",
            Self::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report of a mined submission that the hub skipped (`ReportRejected`),
/// matched to its feed by the event's feed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedReport {
    /// The feed index the hub named.
    pub feed_index: u16,
    /// The feed of that index in this submission.
    pub pair: Pair,
    /// The round skipped.
    pub round: u32,
    /// Why.
    pub reason: SkipReason,
}

/// One status change of a submission, on `oracle.submission.{id}` in
/// `ORACLE_SUBMISSIONS`. Each event is written before the step it announces
/// (`pending` before the broadcast), and carries the whole record so far, so
/// the last event of a submission is its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionEvent {
    /// Schema version (2).
    pub v: u32,
    /// Submission id (`{unix_ms}-{random}`), unique.
    pub id: String,
    /// The new status.
    pub status: SubmissionStatus,
    /// When, Unix ms.
    pub at_ms: u64,
    /// The chain (its configured name) the transaction is sent on; empty in
    /// events written before several chains were served (the first chain).
    #[serde(default)]
    pub chain: String,
    /// That chain's id (0 in those older events).
    #[serde(default)]
    pub chain_id: u64,
    /// Which aggregator node.
    pub aggregator: String,
    /// The account that sends the transaction (each node has its own).
    pub sender: String,
    /// The proposal whose signatures it carries.
    pub proposal: Option<String>,
    /// The signers (addresses, ascending) whose signatures it carries.
    pub signers: Vec<String>,
    /// The packed signatures (hex), so that a restarted node can replace the
    /// transaction with the same reports without asking for signatures again.
    pub signatures: Option<String>,
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
    /// Reports the hub skipped.
    pub skipped: Vec<SkippedReport>,
    /// Why it failed.
    pub error: Option<String>,
}

wire_message!(SubmissionEvent => 2);

impl SubmissionEvent {
    /// The first event of a submission: `queued` now, nothing sent.
    pub fn queued(
        id: String,
        (chain, chain_id): (String, u64),
        aggregator: String,
        sender: String,
        reports: Vec<SubmittedReport>,
        retry_of: Option<String>,
    ) -> Self {
        Self {
            v: <Self as super::WireMessage>::VERSION,
            id,
            status: SubmissionStatus::Queued,
            at_ms: crate::now_ms(),
            chain,
            chain_id,
            aggregator,
            sender,
            proposal: None,
            signers: vec![],
            signatures: None,
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

    /// Whether the event is of the chain `chain_id`, the first configured
    /// chain (`first`) owning the events that name none.
    pub fn is_on(&self, chain_id: u64, first: bool) -> bool {
        super::record_is_on(self.chain_id, chain_id, first)
    }

    /// Whether the report of `pair` is on chain: the transaction was mined
    /// (final, or included and waiting for its confirmations) and the hub did
    /// not skip it. A reorg may still drop an included one.
    pub fn included(&self, pair: &Pair) -> bool {
        let mined = self.status == SubmissionStatus::Success
            || (self.status == SubmissionStatus::Pending && self.block.is_some());
        mined
            && self.reports.iter().any(|r| &r.pair == pair)
            && !self.skipped.iter().any(|s| &s.pair == pair)
    }

    /// Whether the report of `pair` was applied: the submission succeeded and
    /// the hub did not skip it.
    pub fn applied(&self, pair: &Pair) -> bool {
        self.status == SubmissionStatus::Success && self.included(pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireMessage;

    #[test]
    fn skip_reasons_read_as_the_hub_names_them_and_unknown_ones_survive() {
        let s: SkippedReport = serde_json::from_str(
            r#"{"feed_index":3,"pair":"BTC/USD","round":7,"reason":"FeedPaused"}"#,
        )
        .unwrap();
        assert_eq!(s.reason, SkipReason::FeedPaused);
        let s: SkippedReport = serde_json::from_str(
            r#"{"feed_index":3,"pair":"BTC/USD","round":7,"reason":"SomethingNew"}"#,
        )
        .unwrap();
        assert_eq!(s.reason, SkipReason::Unknown);
    }

    #[test]
    fn events_without_a_chain_belong_to_the_first_one() {
        let mut e = SubmissionEvent::queued(
            "1-a".into(),
            ("slow".into(), 31338),
            "n".into(),
            "0x0".into(),
            vec![],
            None,
        );
        assert!(e.is_on(31338, false) && !e.is_on(31337, true));
        // An event of an earlier version: no chain fields at all.
        let mut old = serde_json::to_value(&e).unwrap();
        let o = old.as_object_mut().unwrap();
        o.remove("chain");
        o.remove("chain_id");
        e = serde_json::from_value(old).unwrap();
        assert_eq!((e.chain.as_str(), e.chain_id), ("", 0));
        assert!(e.is_on(31337, true) && !e.is_on(31338, false));
    }

    #[test]
    fn applied_means_success_and_not_skipped() {
        let report = |pair: &str, index| SubmittedReport {
            pair: pair.parse().unwrap(),
            feed_index: index,
            round: 1,
            price_scaled: "1".into(),
            observed_at: 1,
        };
        let mut e = SubmissionEvent::queued(
            "1-a".into(),
            ("local".into(), 31337),
            "n".into(),
            "0x0".into(),
            vec![report("BTC/USD", 0), report("ETH/USD", 1)],
            None,
        );
        let (btc, eth) = ("BTC/USD".parse().unwrap(), "ETH/USD".parse().unwrap());
        assert!(!e.applied(&btc));
        e.status = SubmissionStatus::Success;
        e.skipped = vec![SkippedReport {
            feed_index: 0,
            pair: btc.clone(),
            round: 1,
            reason: SkipReason::FeedPaused,
        }];
        assert!(!e.applied(&btc));
        assert!(e.applied(&eth));
        assert!(!e.included(&btc) && e.included(&eth));
        // Included, waiting for confirmations: on chain, not final.
        e.status = SubmissionStatus::Pending;
        e.block = Some(7);
        assert!(!e.applied(&eth) && e.included(&eth));
        e.block = None;
        assert!(!e.included(&eth));
        assert_eq!(SubmissionEvent::decode(&e.encode()).unwrap(), e);
    }
}
