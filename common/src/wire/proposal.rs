//! The signer quorum's messages. The leader publishes a [`Proposal`] on
//! `oracle.proposal` with a reply inbox; every node answers with a
//! [`ProposalReply`] carrying its signature over the batch digest, or its
//! typed refusals. A node that refuses also records a [`RefusalRecord`] on
//! `oracle.refusal.{node}` in `ORACLE_REPORTS`.

use alloy::primitives::{Address, Bytes};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, UpdateReason, wire_message};
use crate::Pair;

/// One report of a proposal: the aggregate and exactly the observations it
/// was computed from, by their `ORACLE_OBS` stream sequences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedReport {
    /// The feed.
    pub pair: Pair,
    /// Its index on the hub.
    pub feed_index: u16,
    /// The round (the hub's latest + 1).
    pub round: u32,
    /// The exact median of the used observations.
    pub price: Decimal,
    /// The on-chain integer, as text.
    pub price_scaled: String,
    /// Half-width of the interval around the median (Pyth's rule).
    pub confidence: Decimal,
    /// The observation time to submit, Unix seconds.
    pub observed_at: u64,
    /// Why the leader says it is due.
    pub reason: UpdateReason,
    /// Sequences of the observations used, one per source.
    pub used: Vec<u64>,
    /// Sequences of the fresh observations rejected as outliers.
    pub rejected: Vec<u64>,
}

/// A batch the leader asks every node to verify and sign, on `oracle.proposal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Schema version.
    pub v: u32,
    /// Unique id (`{unix_ms}-{random}`).
    pub id: String,
    /// The proposing node (its `aggregator.consumer`).
    pub leader: String,
    /// The revision of the leader lease it holds (KV bucket `oracle_leader`).
    pub lease_revision: u64,
    /// The chain the batch is for (EIP-712 domain).
    pub chain_id: u64,
    /// The hub the batch is for (EIP-712 domain).
    pub hub: Address,
    /// When the leader computed the aggregates, Unix ms: nodes check the
    /// observation windows as of this time.
    pub computed_at_ms: u64,
    /// No node signs after this, Unix ms; the leader stops waiting then.
    pub deadline_ms: u64,
    /// The reports, in batch order.
    pub reports: Vec<ProposedReport>,
}

/// Why a node refused to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The proposal could not be read, or is not self-consistent.
    Malformed,
    /// Another chain or hub than this node serves.
    WrongChain,
    /// The deadline passed, or the computation time is off this node's clock.
    Expired,
    /// The proposer does not hold the leader lease.
    NotLeader,
    /// A feed this node does not serve, or at another index.
    UnknownFeed,
    /// A cited sequence is not in `ORACLE_OBS`.
    ObservationMissing,
    /// A cited message is not an observation of that feed (subject, pair or
    /// source do not match), or a source is cited twice.
    ObservationNotGenuine,
    /// A cited observation is older than the feed's window.
    ObservationStale,
    /// A cited observation is dated in the future beyond the allowed skew.
    ObservationInFuture,
    /// The cited observations do not give the proposed aggregate (price,
    /// confidence, observation time, or which ones are outliers).
    AggregateMismatch,
    /// The round is not the hub's latest + 1.
    RoundMismatch,
    /// The stated reason does not hold against the chain (no heartbeat
    /// elapsed, deviation below the threshold).
    PolicyNotMet,
    /// The price is outside the feed's bounds.
    OutOfBounds,
    /// This node's own newest-per-source median is too far from the proposal:
    /// sources were left out.
    Disagreement,
    /// This node has no quorum of its own to compare with.
    NoOwnView,
    /// This node cannot read the stream or the chain now.
    Unavailable,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

impl RefusalCode {
    /// Every code, for metrics that start at zero.
    pub const ALL: [RefusalCode; 16] = [
        Self::Malformed,
        Self::WrongChain,
        Self::Expired,
        Self::NotLeader,
        Self::UnknownFeed,
        Self::ObservationMissing,
        Self::ObservationNotGenuine,
        Self::ObservationStale,
        Self::ObservationInFuture,
        Self::AggregateMismatch,
        Self::RoundMismatch,
        Self::PolicyNotMet,
        Self::OutOfBounds,
        Self::Disagreement,
        Self::NoOwnView,
        Self::Unavailable,
    ];

    /// The code as written on the wire and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongChain => "wrong_chain",
            Self::Expired => "expired",
            Self::NotLeader => "not_leader",
            Self::UnknownFeed => "unknown_feed",
            Self::ObservationMissing => "observation_missing",
            Self::ObservationNotGenuine => "observation_not_genuine",
            Self::ObservationStale => "observation_stale",
            Self::ObservationInFuture => "observation_in_future",
            Self::AggregateMismatch => "aggregate_mismatch",
            Self::RoundMismatch => "round_mismatch",
            Self::PolicyNotMet => "policy_not_met",
            Self::OutOfBounds => "out_of_bounds",
            Self::Disagreement => "disagreement",
            Self::NoOwnView => "no_own_view",
            Self::Unavailable => "unavailable",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a node refused, about one report or the whole proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The report's feed, when the refusal is about one report.
    pub pair: Option<Pair>,
    /// The report's feed index, likewise.
    pub feed_index: Option<u16>,
    /// Why.
    pub code: RefusalCode,
    /// What exactly did not hold.
    pub detail: String,
}

impl Refusal {
    /// A refusal of the whole proposal.
    pub fn whole(code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            pair: None,
            feed_index: None,
            code,
            detail: detail.into(),
        }
    }

    /// A refusal of one report.
    pub fn of(report: &ProposedReport, code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            pair: Some(report.pair.clone()),
            feed_index: Some(report.feed_index),
            code,
            detail: detail.into(),
        }
    }
}

/// A node's answer to a [`Proposal`], on the proposal's reply inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalReply {
    /// Schema version.
    pub v: u32,
    /// The proposal answered.
    pub proposal: String,
    /// The answering node.
    pub node: String,
    /// Its signer address.
    pub signer: Address,
    /// Its signature over the batch digest (65 bytes `r | s | v`), when it signs.
    pub signature: Option<Bytes>,
    /// Why it does not sign (empty when it signs).
    pub refusals: Vec<Refusal>,
}

/// A refusal recorded on `oracle.refusal.{node}` in `ORACLE_REPORTS`, so that
/// operators and auditors see every proposal a node would not sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// Schema version.
    pub v: u32,
    /// The proposal refused.
    pub proposal: String,
    /// Who proposed it.
    pub leader: String,
    /// The refusing node.
    pub node: String,
    /// Its signer address.
    pub signer: Address,
    /// When, Unix ms.
    pub at_ms: u64,
    /// The proposal's reports (pair, round, scaled price), for the record.
    pub reports: Vec<(Pair, u32, String)>,
    /// Why.
    pub refusals: Vec<Refusal>,
}

wire_message!(
    Proposal => SCHEMA_VERSION,
    ProposalReply => SCHEMA_VERSION,
    RefusalRecord => SCHEMA_VERSION,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireMessage;

    #[test]
    fn refusal_codes_are_stable_strings() {
        for code in RefusalCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
            let back: RefusalCode =
                serde_json::from_value(serde_json::Value::from(code.as_str())).unwrap();
            assert_eq!(back, code);
        }
        let later: RefusalCode = serde_json::from_str(r#""from_the_future""#).unwrap();
        assert_eq!(later, RefusalCode::Unknown);
    }

    #[test]
    fn a_reply_round_trips() {
        let reply = ProposalReply {
            v: SCHEMA_VERSION,
            proposal: "1-a".into(),
            node: "node-2".into(),
            signer: Address::repeat_byte(7),
            signature: Some(Bytes::from(vec![1u8; 65])),
            refusals: vec![Refusal::whole(RefusalCode::Expired, "late")],
        };
        assert_eq!(ProposalReply::decode(&reply.encode()).unwrap(), reply);
    }
}
