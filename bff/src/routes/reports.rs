//! `GET /v1/reports/{pair}/latest`: the newest report of a feed that the node
//! quorum signed, with what went into it (sources used and left out, with
//! why) and ready-to-send calldata: `submit(reports, signatures)` pushes the
//! whole signed batch, `updateAndRead(reports, signatures, feedId)` stores it
//! if newer and returns the feed's value in the same call (the pull path a
//! contract uses inside its own transaction, see `contracts/src/OraclePull.sol`).

use alloy::primitives::{Bytes, hex};
use alloy::sol_types::SolCall;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use oracle_common::Pair;
use oracle_common::chain::{OracleHub, Report, pack_reports};
use oracle_common::wire::{ReportMessage, SubmittedReport};
use serde::Serialize;

use crate::AppState;
use crate::chains::ChainView;
use crate::error::ApiError;

/// An observation the report used.
#[derive(Debug, Clone, Serialize)]
pub struct UsedSource {
    /// The venue.
    pub source: String,
    /// Its price, exact decimal.
    pub price: String,
    /// When the venue says it was observed, Unix ms.
    pub observed_at_ms: u64,
}

/// An observation the report left out.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedSource {
    /// The venue.
    pub source: String,
    /// Its price, exact decimal.
    pub price: String,
    /// Why it was left out.
    pub reason: String,
}

/// Calldata for the hub, hex.
#[derive(Debug, Clone, Serialize)]
pub struct Calldata {
    /// `submit(bytes reports, bytes signatures)`.
    pub submit: String,
    /// `updateAndRead(bytes reports, bytes signatures, bytes32 feedId)`.
    pub update_and_read: String,
}

/// The newest signed report of a feed.
#[derive(Debug, Clone, Serialize)]
pub struct LatestReport {
    /// The pair, `BTC/USD`.
    pub pair: String,
    /// The feed's id on the hub, keccak256 of the pair.
    pub feed_id: String,
    /// Its round.
    pub round: u32,
    /// The median, exact decimal.
    pub price: String,
    /// The on-chain integer.
    pub price_scaled: String,
    /// Decimals of `price_scaled`.
    pub decimals: u8,
    /// Half-width of the interval around the median.
    pub confidence: String,
    /// Observation time submitted, Unix seconds.
    pub observed_at: u64,
    /// When the leader computed it, Unix ms.
    pub computed_at_ms: u64,
    /// Why it was due (`deviation`, `heartbeat`, `on_demand`, ...).
    pub reason: String,
    /// The node that proposed it.
    pub leader: String,
    /// The signers (addresses, ascending).
    pub signers: Vec<String>,
    /// The submission carrying it.
    pub submission_id: String,
    /// That submission's status, when known here.
    pub status: Option<String>,
    /// Sources used.
    pub sources: Vec<UsedSource>,
    /// Sources left out.
    pub rejected: Vec<RejectedSource>,
    /// The chain the signatures are for (its name here, `?chain=`).
    pub chain: String,
    /// Its id (the EIP-712 domain's).
    pub chain_id: u64,
    /// The hub they are for.
    pub hub: String,
    /// Ready-to-send calldata (`null` until the submission record carrying
    /// the signatures is known here).
    pub calldata: Option<Calldata>,
}

/// The hub's report of a submitted one (`None` if a field does not fit).
fn hub_report(r: &SubmittedReport) -> Option<Report> {
    Some(Report {
        feedIndex: r.feed_index,
        roundId: r.round,
        price: r.price_scaled.parse().ok()?,
        observedAt: u32::try_from(r.observed_at).ok()?,
    })
}

/// The calldata of a signed batch.
pub fn calldata(reports: &[SubmittedReport], signatures: &[u8], pair: &Pair) -> Option<Calldata> {
    let reports: Vec<Report> = reports.iter().map(hub_report).collect::<Option<_>>()?;
    let packed = pack_reports(&reports);
    let signatures = Bytes::copy_from_slice(signatures);
    Some(Calldata {
        submit: hex::encode_prefixed(
            OracleHub::submitCall {
                reports: packed.clone(),
                signatures: signatures.clone(),
            }
            .abi_encode(),
        ),
        update_and_read: hex::encode_prefixed(
            OracleHub::updateAndReadCall {
                reports: packed,
                signatures,
                feedId: pair.feed_id(),
            }
            .abi_encode(),
        ),
    })
}

fn body(state: &AppState, chain: &ChainView, r: &ReportMessage) -> LatestReport {
    let record = state.submissions.get(&r.submission_id);
    let calldata = record.as_ref().and_then(|rec| {
        let signatures = hex::decode(rec.latest.signatures.as_deref()?).ok()?;
        calldata(&rec.latest.reports, &signatures, &r.pair)
    });
    LatestReport {
        pair: r.pair.to_string(),
        feed_id: r.pair.feed_id().to_string(),
        round: r.round,
        price: r.price.to_string(),
        price_scaled: r.price_scaled.clone(),
        decimals: r.decimals,
        confidence: r.confidence.to_string(),
        observed_at: r.observed_at,
        computed_at_ms: r.computed_at_ms,
        reason: r.reason.as_str().to_owned(),
        leader: r.leader.clone(),
        signers: r.signers.clone(),
        submission_id: r.submission_id.clone(),
        status: record.map(|rec| rec.latest.status.as_str().to_owned()),
        sources: r
            .used
            .iter()
            .map(|u| UsedSource {
                source: u.observation.source.to_string(),
                price: u.observation.price.to_string(),
                observed_at_ms: u.observation.observed_at_ms,
            })
            .collect(),
        rejected: r
            .rejected
            .iter()
            .map(|u| RejectedSource {
                source: u.observation.source.to_string(),
                price: u.observation.price.to_string(),
                reason: u.reason.clone(),
            })
            .collect(),
        chain: chain.name.to_string(),
        chain_id: chain.reader.chain_id(),
        hub: chain.reader.hub_checksum().to_owned(),
        calldata,
    }
}

/// `GET /v1/reports/{pair}/latest`.
pub async fn latest_report(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<LatestReport>, ApiError> {
    let pair: Pair = raw.parse()?;
    let p = crate::params::Params::parse(query.as_deref(), &["chain"])?;
    let chain = state.chains.get(p.str("chain"))?;
    if !chain.feeds.contains_key(&pair) {
        return Err(ApiError::UnknownPair(pair.to_string()));
    }
    let report = chain
        .reports
        .latest(&pair)
        .ok_or_else(|| ApiError::NoReport(pair.to_string()))?;
    Ok(Json(body(&state, chain, &report)))
}
