//! Operator retries of failed submissions (`oracle.admin.retry`, sent by the
//! bff's admin endpoint): un-park the submission's feeds, force them into the
//! next evaluation with `retry_of` set, and answer once the new submission
//! reached a final status.

use std::collections::BTreeSet;

use oracle_common::wire::{RetryReply, RetryRequest, SCHEMA_VERSION, SubmissionEvent};
use oracle_common::{Pair, now_ms};
use tracing::{info, warn};

/// A retry waiting for its submission.
#[derive(Debug)]
pub struct PendingRetry {
    /// The failed submission.
    pub retry_of: String,
    /// Its feeds (all configured here).
    pub pairs: BTreeSet<Pair>,
    /// When to give up waiting for a quorum, Unix ms.
    pub deadline_ms: u64,
    /// Where to answer.
    pub reply: Option<async_nats::Subject>,
}

fn error(retry_of: String, code: &str, message: String) -> RetryReply {
    RetryReply {
        v: SCHEMA_VERSION,
        retry_of,
        submission_id: None,
        status: None,
        error: Some(code.to_owned()),
        message: Some(message),
    }
}

/// Sends `body` to `to`.
pub async fn answer(nats: &async_nats::Client, to: Option<async_nats::Subject>, body: &RetryReply) {
    if let Some(to) = to {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        if let Err(e) = nats.publish(to, bytes.into()).await {
            warn!(error = %e, "cannot answer a retry request");
        }
    }
}

/// Reads a request. `Err` is the answer to send when it cannot be served.
pub fn accept(
    payload: &[u8],
    reply: Option<async_nats::Subject>,
    configured: impl Fn(&Pair) -> bool,
    wait_ms: u64,
) -> Result<PendingRetry, RetryReply> {
    let request: RetryRequest = serde_json::from_slice(payload)
        .map_err(|e| error(String::new(), "bad_request", e.to_string()))?;
    if request.pairs.is_empty() {
        return Err(error(
            request.retry_of,
            "bad_request",
            "no feeds to retry".into(),
        ));
    }
    if let Some(p) = request.pairs.iter().find(|p| !configured(p)) {
        let message = format!("{p} is not a configured feed");
        return Err(error(request.retry_of, "unknown_pair", message));
    }
    info!(retry_of = %request.retry_of, pairs = ?request.pairs, "operator retry");
    Ok(PendingRetry {
        retry_of: request.retry_of,
        pairs: request.pairs.into_iter().collect(),
        deadline_ms: now_ms() + wait_ms,
        reply,
    })
}

/// After an evaluation: answers the retries whose feeds went into `event`,
/// and those past their deadline; keeps the rest.
pub async fn settle(
    nats: &async_nats::Client,
    pending: &mut Vec<PendingRetry>,
    event: Option<&SubmissionEvent>,
) {
    let now = now_ms();
    let mut keep = Vec::with_capacity(pending.len());
    for r in pending.drain(..) {
        let carried = event.filter(|e| e.reports.iter().any(|x| r.pairs.contains(&x.pair)));
        if let Some(e) = carried {
            let body = RetryReply {
                v: SCHEMA_VERSION,
                retry_of: r.retry_of.clone(),
                submission_id: Some(e.id.clone()),
                status: Some(e.status),
                error: None,
                message: e.error.clone(),
            };
            answer(nats, r.reply, &body).await;
        } else if now > r.deadline_ms {
            let message = "no aggregate could be formed for the feeds in time".to_owned();
            answer(nats, r.reply, &error(r.retry_of, "no_quorum", message)).await;
        } else {
            keep.push(r);
        }
    }
    *pending = keep;
}

/// The feeds to force into the next evaluation.
pub fn forced(pending: &[PendingRetry]) -> BTreeSet<Pair> {
    pending
        .iter()
        .flat_map(|r| r.pairs.iter().cloned())
        .collect()
}

/// The `retry_of` to record on a submission of `pairs`: the oldest pending
/// retry among them.
pub fn retry_of<'a>(
    pending: &[PendingRetry],
    pairs: impl Iterator<Item = &'a Pair> + Clone,
) -> Option<String> {
    pending
        .iter()
        .find(|r| pairs.clone().any(|p| r.pairs.contains(p)))
        .map(|r| r.retry_of.clone())
}
