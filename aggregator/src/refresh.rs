//! On-demand refreshes (`oracle.refresh`, request/reply, queue group
//! `aggregators`; only the leader subscribes): ask the fetchers to poll the
//! pair now (`oracle.fetch.{PAIR}`), wait up to `refresh_timeout` for fresh
//! observations from a quorum, force the feed into the next batch (reason
//! `on-demand`), and answer with that batch's outcome: the round, price,
//! transaction and block, or a shared [`ErrorCode`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use oracle_common::wire::{
    ErrorCode, FetchRequest, RefreshReply, RefreshRequest, SCHEMA_VERSION, WireMessage,
    fetch_subject,
};
use oracle_common::{Pair, now_ms};
use tracing::warn;

use crate::feeds::Specs;
use crate::pipeline::BatchDone;
use crate::window::Window;

/// A refresh waiting for observations, then for its batch.
#[derive(Debug)]
struct PendingRefresh {
    pair: Pair,
    requested_at_ms: u64,
    deadline_ms: u64,
    reply: Option<async_nats::Subject>,
    /// The batch carrying it, once one does.
    batch: Option<u64>,
}

/// The refreshes a leader is serving.
#[derive(Debug, Default)]
pub struct Refreshes {
    pending: Vec<PendingRefresh>,
}

/// Answers a refresh request (when it asked for an answer).
pub async fn answer(
    nats: &async_nats::Client,
    to: Option<async_nats::Subject>,
    body: &RefreshReply,
) {
    if let Some(to) = to
        && let Err(e) = nats.publish(to, body.encode().into()).await
    {
        warn!(error = %e, "cannot answer a refresh request");
    }
}

impl Refreshes {
    /// Reads a request on `oracle.refresh`, asks the fetchers for the pair, and
    /// waits (in the ingest loop) for fresh observations.
    pub async fn start(
        &mut self,
        nats: &async_nats::Client,
        msg: async_nats::Message,
        specs: &Specs,
        timeout: Duration,
    ) {
        let request = match RefreshRequest::decode(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                let body = RefreshReply::error(String::new(), ErrorCode::BadRequest, e.to_string());
                return answer(nats, msg.reply, &body).await;
            }
        };
        if !specs.contains_key(&request.pair) {
            let message = format!("{} is not a configured feed", request.pair);
            let body =
                RefreshReply::error(request.pair.to_string(), ErrorCode::UnknownPair, message);
            return answer(nats, msg.reply, &body).await;
        }
        let requested_at_ms = now_ms();
        // The fetchers' replies are not needed, their observations are.
        let fetch = FetchRequest::new(requested_at_ms);
        if let Err(e) = nats
            .publish(fetch_subject(&request.pair), fetch.encode().into())
            .await
        {
            warn!(error = %e, "cannot ask the fetchers for a refresh");
        }
        self.pending.push(PendingRefresh {
            pair: request.pair,
            requested_at_ms,
            deadline_ms: requested_at_ms + timeout.as_millis() as u64,
            reply: msg.reply,
            batch: None,
        });
    }

    /// Pairs with a refresh whose fresh observations are in and that no batch
    /// carries yet: force them into the next one.
    pub fn ready(&self, windows: &BTreeMap<Pair, Window>, specs: &Specs) -> BTreeSet<Pair> {
        self.pending
            .iter()
            .filter(|r| r.batch.is_none())
            .filter(|r| {
                let (Some(w), Some(spec)) = (windows.get(&r.pair), specs.get(&r.pair)) else {
                    return false;
                };
                w.fetched_since(&spec.config, r.requested_at_ms) >= spec.config.min_sources
            })
            .map(|r| r.pair.clone())
            .collect()
    }

    /// Marks the ready refreshes of `pairs` as carried by `batch`.
    pub fn assign(&mut self, ready: &BTreeSet<Pair>, pairs: &BTreeSet<Pair>, batch: u64) {
        for r in self.pending.iter_mut() {
            if r.batch.is_none() && ready.contains(&r.pair) && pairs.contains(&r.pair) {
                r.batch = Some(batch);
            }
        }
    }

    /// Answers `no_quorum` to the refreshes still waiting for observations
    /// past their deadline.
    pub async fn expire(
        &mut self,
        nats: &async_nats::Client,
        min_sources: impl Fn(&Pair) -> usize,
    ) {
        let now = now_ms();
        let expired: Vec<_> = self
            .pending
            .extract_if(.., |r| r.batch.is_none() && now > r.deadline_ms)
            .collect();
        for r in expired {
            let message = format!(
                "fewer than {} sources answered within the refresh timeout",
                min_sources(&r.pair)
            );
            let body = RefreshReply::error(r.pair.to_string(), ErrorCode::NoQuorum, message);
            answer(nats, r.reply, &body).await;
        }
    }

    /// Answers the refreshes `done` carried.
    pub async fn settle(&mut self, nats: &async_nats::Client, done: &BatchDone) {
        let settled: Vec<_> = self
            .pending
            .extract_if(.., |r| r.batch == Some(done.id))
            .collect();
        for r in settled {
            let pair = r.pair.to_string();
            let body = match &done.event {
                Some(e) if e.included(&r.pair) => {
                    let rep = e.reports.iter().find(|x| x.pair == r.pair);
                    RefreshReply {
                        v: SCHEMA_VERSION,
                        pair,
                        submission_id: Some(e.id.clone()),
                        round: rep.map(|x| x.round),
                        price_scaled: rep.map(|x| x.price_scaled.clone()),
                        tx_hash: e.tx_hash.clone(),
                        block: e.block,
                        error: None,
                        message: None,
                    }
                }
                Some(e) if e.reports.iter().any(|x| x.pair == r.pair) => RefreshReply {
                    submission_id: Some(e.id.clone()),
                    ..RefreshReply::error(
                        pair,
                        ErrorCode::ChainError,
                        e.error.clone().unwrap_or_else(|| {
                            let why: Vec<String> = e
                                .skipped
                                .iter()
                                .filter(|s| s.pair == r.pair)
                                .map(|s| s.reason.to_string())
                                .collect();
                            format!("the hub skipped the report: {}", why.join(", "))
                        }),
                    )
                },
                Some(_) => RefreshReply::error(
                    pair,
                    ErrorCode::NoSignerQuorum,
                    "the signers refused this feed's report".into(),
                ),
                None => {
                    let (code, why) = done.why_unsent();
                    RefreshReply::error(pair, code, why)
                }
            };
            answer(nats, r.reply, &body).await;
        }
    }

    /// Drops every refresh (leadership lost): the requester times out and
    /// asks again, reaching the new leader.
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}
