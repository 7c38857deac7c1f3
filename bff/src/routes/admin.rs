//! `POST /v1/admin/submissions/{id}/retry`: an operator retries a failed
//! submission. Behind a bearer token (`bff.admin_token`) compared in constant
//! time; only `failed` submissions that were not retried already (409
//! otherwise). The aggregator un-parks the feeds and submits them again with
//! fresh, re-signed aggregates; the new submission records `retry_of`.

use alloy::primitives::keccak256;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oracle_common::wire::{
    RETRY_SUBJECT, RetryReply, RetryRequest, SCHEMA_VERSION, SubmissionStatus, WireMessage,
};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::submissions::valid_id;

/// The answer to a retry.
#[derive(Debug, Clone, Serialize)]
pub struct RetryResponse {
    /// The failed submission.
    pub retry_of: String,
    /// The new submission, when known.
    pub submission_id: Option<String>,
    /// Its status: a final one (200) or `pending` (202).
    pub status: String,
}

/// Equal inputs, in time independent of where they differ (both sides are
/// hashed first, so the length of the secret does not leak either).
fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (keccak256(given.as_bytes()), keccak256(expected.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks the `Authorization: Bearer …` header against `bff.admin_token`.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    // Without credentials the answer is 401 whether or not the endpoints are
    // enabled, as the security scheme in the OpenAPI document says.
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let Some(expected) = state.admin_token.as_deref() else {
        return Err(ApiError::AdminDisabled);
    };
    if token_matches(given.trim(), expected) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /v1/admin/submissions/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    if !valid_id(&id) {
        return Err(ApiError::InvalidSubmissionId(id));
    }
    let record = state
        .submissions
        .get(&id)
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    if record.latest.status != SubmissionStatus::Failed {
        return Err(ApiError::Conflict(format!(
            "submission {id} is {}; only failed submissions can be retried",
            record.latest.status.as_str()
        )));
    }
    if let Some(newer) = state.submissions.retried_by(&id) {
        return Err(ApiError::Conflict(format!(
            "submission {id} was already retried as {newer}"
        )));
    }
    let nats = state.bus()?;
    let payload = RetryRequest {
        v: SCHEMA_VERSION,
        retry_of: id.clone(),
        chain: record.latest.chain.clone(),
        pairs: record
            .latest
            .reports
            .iter()
            .map(|r| r.pair.clone())
            .collect(),
    }
    .encode();
    let answer = nats
        .send_request(
            RETRY_SUBJECT,
            async_nats::Request::new()
                .payload(payload.into())
                .timeout(Some(state.refresh_wait)),
        )
        .await;
    let Some(msg) = crate::aggregator_answer(answer)? else {
        let pending = RetryResponse {
            retry_of: id,
            submission_id: None,
            status: "pending".into(),
        };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    };
    let reply = RetryReply::decode(&msg.payload).map_err(|e| ApiError::Refresh {
        code: "retry_failed",
        message: format!("unreadable aggregator reply: {e}"),
    })?;
    if let Some(code) = reply.error {
        let message = reply.message.unwrap_or_default();
        return Err(ApiError::from_reply(code, message, None, "retry_failed"));
    }
    let status = reply
        .status
        .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned());
    tracing::info!(retry_of = %id, submission = ?reply.submission_id, %status, "operator retry done");
    Ok(Json(RetryResponse {
        retry_of: id,
        submission_id: reply.submission_id,
        status,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        for other in ["", "s3cret-toke", "s3cret-token ", "S3cret-token", "x"] {
            assert!(!token_matches(other, "s3cret-token"), "{other:?}");
        }
    }
}
