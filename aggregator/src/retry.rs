//! Operator retries of failed submissions (`oracle.admin.retry`, sent by the
//! bff's admin endpoint; only the leader subscribes): un-park the submission's
//! feeds, force them into the next batch with `retry_of` set, and answer once
//! that batch reached a final status.

use std::collections::BTreeSet;

use oracle_common::wire::{ErrorCode, RetryReply, RetryRequest, SCHEMA_VERSION, WireMessage};
use oracle_common::{Pair, now_ms};
use tracing::{info, warn};

use crate::pipeline::BatchDone;

/// A retry waiting for its batch.
#[derive(Debug)]
pub struct PendingRetry {
    /// The failed submission.
    pub retry_of: String,
    /// Its feeds (all configured here).
    pub pairs: BTreeSet<Pair>,
    /// When to give up waiting for an aggregate, Unix ms.
    pub deadline_ms: u64,
    /// Where to answer.
    pub reply: Option<async_nats::Subject>,
    /// The batch carrying it, once one does.
    pub batch: Option<u64>,
}

/// Sends `body` to `to`.
pub async fn answer(nats: &async_nats::Client, to: Option<async_nats::Subject>, body: &RetryReply) {
    if let Some(to) = to
        && let Err(e) = nats.publish(to, body.encode().into()).await
    {
        warn!(error = %e, "cannot answer a retry request");
    }
}

/// Reads a request. `Err` is the answer to send when it cannot be served.
pub fn accept(
    payload: &[u8],
    reply: Option<async_nats::Subject>,
    configured: impl Fn(&Pair) -> bool,
    wait_ms: u64,
) -> Result<PendingRetry, RetryReply> {
    let request = RetryRequest::decode(payload)
        .map_err(|e| RetryReply::error(String::new(), ErrorCode::BadRequest, e.to_string()))?;
    if request.pairs.is_empty() {
        return Err(RetryReply::error(
            request.retry_of,
            ErrorCode::BadRequest,
            "no feeds to retry".into(),
        ));
    }
    if let Some(p) = request.pairs.iter().find(|p| !configured(p)) {
        let message = format!("{p} is not a configured feed");
        return Err(RetryReply::error(
            request.retry_of,
            ErrorCode::UnknownPair,
            message,
        ));
    }
    info!(retry_of = %request.retry_of, pairs = ?request.pairs, "operator retry");
    Ok(PendingRetry {
        retry_of: request.retry_of,
        pairs: request.pairs.into_iter().collect(),
        deadline_ms: now_ms() + wait_ms,
        reply,
        batch: None,
    })
}

/// The retries a leader is serving.
#[derive(Debug, Default)]
pub struct Retries {
    pending: Vec<PendingRetry>,
}

impl Retries {
    /// Adds an accepted retry.
    pub fn push(&mut self, retry: PendingRetry) {
        self.pending.push(retry);
    }

    /// The feeds to force into the next batch.
    pub fn forced(&self) -> BTreeSet<Pair> {
        self.pending
            .iter()
            .filter(|r| r.batch.is_none())
            .flat_map(|r| r.pairs.iter().cloned())
            .collect()
    }

    /// The `retry_of` to record on a batch of `pairs` (the oldest pending
    /// retry among them), marking those retries as carried by `batch`.
    pub fn assign(&mut self, pairs: &BTreeSet<Pair>, batch: u64) -> Option<String> {
        let mut first = None;
        for r in self.pending.iter_mut() {
            if r.batch.is_none() && r.pairs.iter().any(|p| pairs.contains(p)) {
                r.batch = Some(batch);
                first.get_or_insert_with(|| r.retry_of.clone());
            }
        }
        first
    }

    /// Answers the retries `done` carried.
    pub async fn settle(&mut self, nats: &async_nats::Client, done: &BatchDone) {
        let settled: Vec<_> = self
            .pending
            .extract_if(.., |r| r.batch == Some(done.id))
            .collect();
        for r in settled {
            let body = match &done.event {
                Some(e) => RetryReply {
                    v: SCHEMA_VERSION,
                    retry_of: r.retry_of,
                    submission_id: Some(e.id.clone()),
                    status: Some(e.status),
                    error: None,
                    message: e.error.clone(),
                },
                None => {
                    let (code, why) = done.why_unsent();
                    RetryReply::error(r.retry_of, code, why)
                }
            };
            answer(nats, r.reply, &body).await;
        }
    }

    /// Answers `no_quorum` to the retries no batch carried by their deadline.
    pub async fn expire(&mut self, nats: &async_nats::Client) {
        let now = now_ms();
        let expired: Vec<_> = self
            .pending
            .extract_if(.., |r| r.batch.is_none() && now > r.deadline_ms)
            .collect();
        for r in expired {
            let message = "no aggregate could be formed for the feeds in time".to_owned();
            answer(
                nats,
                r.reply,
                &RetryReply::error(r.retry_of, ErrorCode::NoQuorum, message),
            )
            .await;
        }
    }

    /// Drops every retry (leadership lost).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}
