//! `POST /v1/prices/{pair}/refresh`: the on-demand workflow. Asks the
//! aggregators (`oracle.refresh`, request/reply) to update the feed now, and
//! answers 200 with the value read back from the chain at the block that
//! included it, 202 with the submission id when inclusion takes longer than
//! `bff.refresh_wait`, or 503 `no_aggregator` when nobody answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use oracle_common::wire::{
    REFRESH_SUBJECT, RefreshReply, RefreshRequest, SCHEMA_VERSION, SUBMISSIONS_SUBJECTS,
    SubmissionEvent, WireMessage,
};
use oracle_common::{Pair, now_ms};
use serde::Serialize;

use super::prices::{PriceResponse, pin_at, read, to_response};
use crate::AppState;
use crate::error::ApiError;

/// 200: the refreshed value as the chain holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Refreshed {
    /// `included`.
    pub status: &'static str,
    /// The submission that carried it.
    pub submission_id: Option<String>,
    /// Its transaction.
    pub tx_hash: Option<String>,
    /// The value read at the inclusion block.
    #[serde(flatten)]
    pub price: PriceResponse,
}

/// 202: submitted but not yet included.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// `pending`.
    pub status: &'static str,
    /// The pair.
    pub pair: String,
    /// The submission carrying the pair, when one was seen in time.
    pub submission_id: Option<String>,
}

/// `POST /v1/prices/{pair}/refresh`; the body must be empty or a JSON object.
pub async fn refresh(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            ApiError::InvalidBody(e.body_text())
        }
    })?;
    let pair: Pair = raw.parse()?;
    if !body.iter().all(u8::is_ascii_whitespace)
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_err()
    {
        return Err(ApiError::InvalidBody(
            "the body must be empty or a JSON object".into(),
        ));
    }
    let p = crate::params::Params::parse(query.as_deref(), &["chain"])?;
    let chain = state.chains.get(p.str("chain"))?;
    let feed = chain
        .feeds
        .get(&pair)
        .ok_or_else(|| ApiError::UnknownPair(pair.to_string()))?;
    let heartbeat_s = feed.heartbeat.as_secs();
    let nats = state.bus()?;
    let asked_at_ms = now_ms();
    // Watch submissions while waiting, to name the one carrying the pair if
    // the answer does not come in time.
    let mut events = nats
        .subscribe(SUBMISSIONS_SUBJECTS)
        .await
        .map_err(|e| ApiError::Bus(e.to_string()))?;
    let payload = RefreshRequest {
        v: SCHEMA_VERSION,
        pair: pair.clone(),
        chain: chain.name.to_string(),
    }
    .encode();
    let request = nats.send_request(
        REFRESH_SUBJECT,
        async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(state.refresh_wait)),
    );
    tokio::pin!(request);
    let mut submission_id = None;
    let answer = loop {
        tokio::select! {
            answer = &mut request => break answer,
            Some(msg) = events.next() => {
                if submission_id.is_none()
                    && let Ok(event) = SubmissionEvent::decode(&msg.payload)
                    && event.at_ms >= asked_at_ms
                    && event.is_on(
                        chain.reader.chain_id(),
                        state.chains.is_default(chain),
                    )
                    && event.reports.iter().any(|r| r.pair == pair)
                {
                    submission_id = Some(event.id);
                }
            }
        }
    };
    drop(events);
    let Some(msg) = crate::aggregator_answer(answer)? else {
        let pending = Pending {
            status: "pending",
            pair: pair.to_string(),
            submission_id,
        };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    };
    let reply = RefreshReply::decode(&msg.payload).map_err(|e| ApiError::Refresh {
        code: "refresh_failed",
        message: format!("unreadable aggregator reply: {e}"),
    })?;
    if let Some(code) = reply.error {
        let message = reply.message.unwrap_or_default();
        return Err(ApiError::from_reply(
            code,
            message,
            Some(&pair),
            "refresh_failed",
        ));
    }
    let block = reply.block.ok_or_else(|| ApiError::Refresh {
        code: "refresh_failed",
        message: "the aggregator answered without an inclusion block".into(),
    })?;
    let pinned = pin_at(&state, chain, Some(block)).await?;
    let value = read(&state, chain, &pair, pinned)
        .await?
        .ok_or_else(|| ApiError::NoData(pair.to_string()))?;
    Ok(Json(Refreshed {
        status: "included",
        submission_id: reply.submission_id,
        tx_hash: reply.tx_hash,
        price: to_response(&pair, &value, heartbeat_s, chain),
    })
    .into_response())
}
