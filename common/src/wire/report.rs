//! Reports, on `oracle.report.{PAIR}` in stream `ORACLE_REPORTS`: each
//! aggregate the signer quorum signed, with every observation used and every
//! one rejected (with its `ORACLE_OBS` sequence and the reason), so that any
//! on-chain value can be recomputed by replaying the streams.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Observation, wire_message};
use crate::Pair;

/// Why an update was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateReason {
    /// The feed had no value yet.
    First,
    /// The heartbeat elapsed since the last on-chain update.
    Heartbeat,
    /// The aggregate moved at least the deviation threshold.
    Deviation,
    /// Someone asked for an update now (a refresh, or an operator's retry).
    OnDemand,
}

impl UpdateReason {
    /// Label for logs and metrics: `first`, `heartbeat`, `deviation`, `on-demand`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Heartbeat => "heartbeat",
            Self::Deviation => "deviation",
            Self::OnDemand => "on-demand",
        }
    }
}

/// An observation an aggregate used, with its place in `ORACLE_OBS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedInput {
    /// Its `ORACLE_OBS` stream sequence.
    pub seq: u64,
    /// The observation.
    pub observation: Observation,
}

/// An observation an aggregate left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedInput {
    /// Its `ORACLE_OBS` stream sequence.
    pub seq: u64,
    /// The observation.
    pub observation: Observation,
    /// Why it was left out.
    pub reason: String,
}

/// An aggregate sent on chain, with everything needed to recompute it,
/// on `oracle.report.{PAIR}` in `ORACLE_REPORTS`. Published by the leader once
/// a quorum of nodes signed the proposal carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMessage {
    /// Schema version (2).
    pub v: u32,
    /// The feed.
    pub pair: Pair,
    /// The chain (configured name) it is submitted to; empty in records
    /// written before several chains were served (the first chain).
    #[serde(default)]
    pub chain: String,
    /// That chain's id (0 in those older records).
    #[serde(default)]
    pub chain_id: u64,
    /// The feed's index on the hub.
    pub feed_index: u16,
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
    /// When the leader computed it, Unix ms.
    pub computed_at_ms: u64,
    /// Why it was due.
    pub reason: UpdateReason,
    /// The proposal that carried it to the signers.
    pub proposal: String,
    /// The node that proposed it.
    pub leader: String,
    /// The signers whose signatures were submitted (addresses, ascending).
    pub signers: Vec<String>,
    /// The submission that carries it.
    pub submission_id: String,
    /// Every observation used.
    pub used: Vec<UsedInput>,
    /// Every fresh observation left out, with the reason.
    pub rejected: Vec<RejectedInput>,
}

wire_message!(ReportMessage => 2);

impl ReportMessage {
    /// Whether the report is for chain `chain_id` (the first configured chain
    /// when `first`, which owns the records that name none).
    pub fn is_on(&self, chain_id: u64, first: bool) -> bool {
        super::record_is_on(self.chain_id, chain_id, first)
    }
}
