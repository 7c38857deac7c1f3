//! Wire schemas (versioned JSON, field `v`), NATS subjects and stream names.
//!
//! Every message type implements [`WireMessage`], which encodes it, decodes
//! it and checks its schema version in one place: a reader refuses a version
//! it does not know with [`WireError::Version`] instead of misreading it.
//!
//! Layout:
//! - [`observation`]: observations (`oracle.obs.{PAIR}.{source}` on
//!   `ORACLE_OBS`, deduplicated by `Nats-Msg-Id`) and fetch triggers.
//! - [`report`]: reports with every input used and rejected (`ORACLE_REPORTS`).
//! - [`proposal`]: the signer quorum's proposals, signatures and refusals.
//! - [`submission`]: transaction lifecycle events (`ORACLE_SUBMISSIONS`).
//! - [`requests`]: on-demand refreshes and operator retries, with their
//!   shared error codes.

pub mod observation;
pub mod proposal;
pub mod report;
pub mod requests;
pub mod submission;

pub use observation::{FetchReply, FetchRequest, Observation};
pub use proposal::{Proposal, ProposalReply, ProposedReport, Refusal, RefusalCode, RefusalRecord};
pub use report::{RejectedInput, ReportMessage, UpdateReason, UsedInput};
pub use requests::{ErrorCode, RefreshReply, RefreshRequest, RetryReply, RetryRequest};
pub use submission::{
    SkipReason, SkippedReport, SubmissionEvent, SubmissionStatus, SubmittedReport,
};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Pair, SourceId};

/// Schema version of the messages still at their first version.
pub const SCHEMA_VERSION: u32 = 1;

/// Stream of observations.
pub const OBS_STREAM: &str = "ORACLE_OBS";
/// Subjects captured by [`OBS_STREAM`].
pub const OBS_SUBJECTS: &str = "oracle.obs.>";
/// Stream of aggregated reports and of the signer quorum's refusals.
pub const REPORTS_STREAM: &str = "ORACLE_REPORTS";
/// Report subjects captured by [`REPORTS_STREAM`].
pub const REPORTS_SUBJECTS: &str = "oracle.report.>";
/// Refusal subjects captured by [`REPORTS_STREAM`].
pub const REFUSALS_SUBJECTS: &str = "oracle.refusal.>";
/// Stream of submission status events.
pub const SUBMISSIONS_STREAM: &str = "ORACLE_SUBMISSIONS";
/// Subjects captured by [`SUBMISSIONS_STREAM`].
pub const SUBMISSIONS_SUBJECTS: &str = "oracle.submission.>";
/// The KV bucket holding the aggregator nodes' leader lease.
pub const LEASE_BUCKET: &str = "oracle_leader";
/// The key of the lease in [`LEASE_BUCKET`]; its value is the holder's id.
pub const LEASE_KEY: &str = "aggregator";
/// Header NATS JetStream deduplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Subject of on-demand refresh requests (request/reply, queue group `aggregators`).
pub const REFRESH_SUBJECT: &str = "oracle.refresh";

/// Subject of operator retries of failed submissions (request/reply, queue
/// group `aggregators`; only the leader subscribes).
pub const RETRY_SUBJECT: &str = "oracle.admin.retry";

/// Subject of the leader's proposals (core NATS, every node subscribes, no
/// queue group; each answers on the proposal's reply inbox).
pub const PROPOSAL_SUBJECT: &str = "oracle.proposal";

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

/// `oracle.refusal.{node}`: a node's refusal to sign a proposal.
pub fn refusal_subject(node: &str) -> String {
    format!("oracle.refusal.{node}")
}

/// `oracle.submission.{id}`
pub fn submission_subject(id: &str) -> String {
    format!("oracle.submission.{id}")
}

/// Errors decoding a message from the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is not valid JSON for the schema.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The schema version is not the one this build reads.
    #[error("unsupported schema version {found} (this build reads v{expected})")]
    Version {
        /// The message's `v`.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// The message parses but breaks a rule of the schema.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// A message that travels on NATS: JSON with a schema version in field `v`.
pub trait WireMessage: Serialize + DeserializeOwned + Sized {
    /// The version this build writes and reads.
    const VERSION: u32;

    /// The message's `v`.
    fn version(&self) -> u32;

    /// Rules beyond the schema; [`WireMessage::decode`] applies them.
    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }

    /// Serializes to the wire JSON.
    fn encode(&self) -> Vec<u8> {
        // Structs of plain fields always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a body, checks its version, then its rules. A body of another
    /// version is refused as such even when it does not parse as this one.
    fn decode(body: &[u8]) -> Result<Self, WireError> {
        #[derive(serde::Deserialize)]
        struct Versioned {
            v: u32,
        }
        match serde_json::from_slice::<Self>(body) {
            Ok(message) if message.version() != Self::VERSION => Err(WireError::Version {
                found: message.version(),
                expected: Self::VERSION,
            }),
            Ok(message) => message.check().map(|()| message),
            Err(e) => match serde_json::from_slice::<Versioned>(body) {
                Ok(Versioned { v }) if v != Self::VERSION => Err(WireError::Version {
                    found: v,
                    expected: Self::VERSION,
                }),
                _ => Err(WireError::Malformed(e)),
            },
        }
    }
}

/// Implements [`WireMessage`] for a struct with a `v: u32` field.
macro_rules! wire_message {
    ($($ty:ty => $version:expr),+ $(,)?) => {$(
        impl $crate::wire::WireMessage for $ty {
            const VERSION: u32 = $version;
            fn version(&self) -> u32 {
                self.v
            }
        }
    )+};
}
pub(crate) use wire_message;

/// Whether a record naming chain `recorded` (0: none, written before several
/// chains were served) is of chain `chain_id`; the first configured chain
/// (`first`) owns the records that name none.
pub fn record_is_on(recorded: u64, chain_id: u64, first: bool) -> bool {
    recorded == chain_id || (recorded == 0 && first)
}
