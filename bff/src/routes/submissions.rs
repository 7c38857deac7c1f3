//! `GET /v1/submissions` (filtered, paginated newest first) and
//! `GET /v1/submissions/{id}`: the transaction records rebuilt from
//! `ORACLE_SUBMISSIONS`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use oracle_common::Pair;
use oracle_common::wire::SubmissionStatus;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;
use crate::submissions::{Filter, Record, valid_id};

/// Default and largest page size.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

/// A page of submissions.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionsPage {
    /// Newest first.
    pub submissions: Vec<Record>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

fn parse_status(s: &str) -> Result<SubmissionStatus, ApiError> {
    match s {
        "queued" => Ok(SubmissionStatus::Queued),
        "pending" => Ok(SubmissionStatus::Pending),
        "success" => Ok(SubmissionStatus::Success),
        "failed" => Ok(SubmissionStatus::Failed),
        other => Err(ApiError::InvalidParameter(format!(
            "`status` must be queued, pending, success or failed, got `{other}`"
        ))),
    }
}

/// `GET /v1/submissions?status=&pair=&from=&to=&limit=&cursor=` (`from`/`to`
/// in Unix ms, `pair` as `BTC-USD`).
pub async fn list_submissions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<SubmissionsPage>, ApiError> {
    let p = Params::parse(
        query.as_deref(),
        &["status", "pair", "from", "to", "limit", "cursor", "chain"],
    )?;
    // Every chain's unless one is named.
    let chain = match p.str("chain") {
        None => None,
        Some(name) => {
            let view = state.chains.get(Some(name))?;
            let first = state.chains.is_default(view);
            Some((view.reader.chain_id(), first))
        }
    };
    let limit = p.u64("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidParameter(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    let pair = p
        .str("pair")
        .map(|raw| {
            raw.parse::<Pair>()
                .map_err(|e| ApiError::InvalidParameter(format!("`pair`: {e}")))
        })
        .transpose()?;
    let cursor = p.str("cursor").map(str::to_owned);
    if let Some(c) = &cursor
        && !valid_id(c)
    {
        return Err(ApiError::InvalidParameter(
            "`cursor` is not one this API returned".into(),
        ));
    }
    // `from` after `to` selects nothing: an empty page, as the schema allows.
    let (from_ms, to_ms) = (p.u64("from")?, p.u64("to")?);
    let filter = Filter {
        status: p.str("status").map(parse_status).transpose()?,
        pair,
        chain,
        from_ms,
        to_ms,
        before: cursor,
    };
    let (submissions, more) = state.submissions.list(&filter, limit as usize);
    let next_cursor = more
        .then(|| submissions.last().map(|r| r.latest.id.clone()))
        .flatten();
    Ok(Json(SubmissionsPage {
        submissions,
        next_cursor,
    }))
}

/// `GET /v1/submissions/{id}`.
pub async fn get_submission(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Record>, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::InvalidSubmissionId(id));
    }
    state
        .submissions
        .get(&id)
        .map(Json)
        .ok_or(ApiError::UnknownSubmission(id))
}
