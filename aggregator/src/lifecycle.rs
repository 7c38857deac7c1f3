//! The transaction lifecycle of a submission, recorded on `ORACLE_SUBMISSIONS`:
//! `queued` (decided, written before anything is signed) → `pending` (written
//! before each broadcast: hash, nonce, fees and the signed bytes) → `success`
//! (block, gas used, reports the hub skipped) or `failed` (decoded revert or
//! permanent error).
//!
//! One nonce manager per sender key. A transaction not mined within
//! `receipt_timeout` is replaced with the same nonce and fees raised by
//! `fee_bump_percent` (up to `max_fee_per_gas_gwei`); a transaction whose
//! outcome is unknown is never re-sent with a new nonce. After a restart,
//! [`Lifecycle::reconcile`] finishes every submission the stream shows as
//! unfinished: a mined hash decides it; a pending one is broadcast again and
//! waited for (or replaced); one never broadcast is marked failed.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::B256;
use async_nats::jetstream::{self, consumer};
use oracle_common::chain::Report;
use oracle_common::config::AggregatorConfig;
use oracle_common::wire::{
    SUBMISSIONS_STREAM, SUBMISSIONS_SUBJECTS, SubmissionEvent, SubmissionStatus, SubmittedReport,
    submission_subject,
};
use oracle_common::{Pair, now_ms};
use tokio::sync::Mutex;
use tracing::{Instrument, error, info, info_span, warn};

use crate::metrics::Metrics;
use crate::submitter::{Fees, SubmitError, Submitter};

/// How a submission ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The final event (`success` or `failed`).
    pub event: SubmissionEvent,
}

/// A report with its pair, as the lifecycle records it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The feed.
    pub pair: Pair,
    /// The on-chain report.
    pub report: Report,
}

/// Drives submissions and keeps their record.
#[derive(Debug)]
pub struct Lifecycle {
    js: jetstream::Context,
    submitter: Submitter,
    aggregator_id: String,
    config: AggregatorConfig,
    metrics: Metrics,
    next_nonce: Mutex<Option<u64>>,
}

/// A fresh submission id: `{unix_ms}-{random}`.
pub fn new_id() -> String {
    format!("{}-{:08x}", now_ms(), rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.finish() as u32
}

impl Lifecycle {
    /// A lifecycle over `submitter`, recording on `js`.
    pub fn new(
        js: jetstream::Context,
        submitter: Submitter,
        aggregator_id: String,
        config: AggregatorConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            js,
            submitter,
            aggregator_id,
            config,
            metrics,
            next_nonce: Mutex::new(None),
        }
    }

    /// The submitter (chain access).
    pub fn submitter(&self) -> &Submitter {
        &self.submitter
    }

    fn cap(&self) -> u128 {
        u128::from(self.config.max_fee_per_gas_gwei) * 1_000_000_000
    }

    /// Publishes an event and waits for the stream's acknowledgement: a step
    /// is taken only once its announcement is stored.
    async fn record(&self, event: &SubmissionEvent) -> Result<(), SubmitError> {
        // Submissions are followed one at a time, so one gauge tells how long
        // the current one has been waiting for a receipt.
        match event.status {
            SubmissionStatus::Pending if self.metrics.pending_since.get() == 0.0 => {
                self.metrics.pending_since.set(event.at_ms as f64 / 1000.0);
            }
            SubmissionStatus::Success | SubmissionStatus::Failed => {
                self.metrics.pending_since.set(0.0);
            }
            _ => {}
        }
        let ack = self
            .js
            .publish(submission_subject(&event.id), event.encode().into())
            .await
            .map_err(|e| SubmitError::Rpc(format!("recording {}: {e}", event.status.as_str())))?;
        ack.await
            .map_err(|e| SubmitError::Rpc(format!("recording {}: {e}", event.status.as_str())))?;
        self.metrics
            .submission_events
            .with_label_values(&[event.status.as_str()])
            .inc();
        Ok(())
    }

    async fn reserve_nonce(&self) -> Result<u64, SubmitError> {
        let mut next = self.next_nonce.lock().await;
        let n = match *next {
            Some(n) => n,
            None => self.submitter.pending_nonce().await?,
        };
        *next = Some(n + 1);
        Ok(n)
    }

    /// Gives back a nonce that was never broadcast.
    async fn release_nonce(&self, nonce: u64) {
        let mut next = self.next_nonce.lock().await;
        if *next == Some(nonce + 1) {
            *next = Some(nonce);
        }
    }

    /// Forgets the local nonce: the next reservation asks the chain.
    async fn resync_nonce(&self) {
        *self.next_nonce.lock().await = None;
    }

    /// Submits `planned` as one transaction (submission `id`, see [`new_id`])
    /// and follows it to a final status.
    pub async fn submit(
        &self,
        id: String,
        planned: &[Planned],
        retry_of: Option<String>,
    ) -> Outcome {
        let span = info_span!("submission", submission = %id, tx_hash = tracing::field::Empty, nonce = tracing::field::Empty);
        self.submit_inner(id, planned, retry_of)
            .instrument(span)
            .await
    }

    async fn submit_inner(
        &self,
        id: String,
        planned: &[Planned],
        retry_of: Option<String>,
    ) -> Outcome {
        let reports = planned
            .iter()
            .map(|p| SubmittedReport {
                pair: p.pair.clone(),
                round: p.report.roundId,
                price_scaled: p.report.price.to_string(),
                observed_at: u64::from(p.report.observedAt),
            })
            .collect();
        let mut event = SubmissionEvent::queued(id, self.aggregator_id.clone(), reports, retry_of);
        if let Err(e) = self.record(&event).await {
            // Nothing was signed or sent; the feeds stay due and are tried again.
            error!(error = %e, "cannot record the submission; not sending");
            event.status = SubmissionStatus::Failed;
            event.error = Some(e.to_string());
            return Outcome { event };
        }
        let reports: Vec<Report> = planned.iter().map(|p| p.report.clone()).collect();
        let nonce = match self.reserve_nonce().await {
            Ok(n) => n,
            Err(e) => return self.fail(event, e.to_string()).await,
        };
        let fees = match self.submitter.fees().await {
            Ok(f) => Fees {
                max_fee: f.max_fee.min(self.cap()),
                priority: f.priority.min(self.cap()),
            },
            Err(e) => {
                self.release_nonce(nonce).await;
                return self.fail(event, e.to_string()).await;
            }
        };
        event.nonce = Some(nonce);
        tracing::Span::current().record("nonce", nonce);
        self.follow(event, reports, fees).await
    }

    /// Signs, records `pending`, broadcasts, waits; replaces with higher fees
    /// when no receipt comes in time. Returns the final outcome.
    async fn follow(
        &self,
        mut event: SubmissionEvent,
        reports: Vec<Report>,
        mut fees: Fees,
    ) -> Outcome {
        let Some(nonce) = event.nonce else {
            return self.fail(event, "no nonce".into()).await;
        };
        loop {
            let signed = match self.submitter.sign_tx(reports.clone(), nonce, fees).await {
                Ok(s) => s,
                Err(e) => {
                    // Never broadcast with this nonce? Then give it back; if an
                    // earlier attempt is out there, keep waiting for it instead.
                    if event.tx_hashes.is_empty() {
                        self.release_nonce(nonce).await;
                        return self.fail(event, e.to_string()).await;
                    }
                    warn!(error = %e, "cannot sign a replacement; waiting for the earlier transaction");
                    return self.wait_only(event).await;
                }
            };
            let hash = signed.hash.to_string();
            tracing::Span::current().record("tx_hash", hash.as_str());
            event.status = SubmissionStatus::Pending;
            event.at_ms = now_ms();
            event.tx_hash = Some(hash.clone());
            event.tx_hashes.push(hash);
            event.max_fee_per_gas = Some(fees.max_fee);
            event.max_priority_fee_per_gas = Some(fees.priority);
            event.raw_tx = Some(alloy::primitives::hex::encode_prefixed(&signed.raw));
            if let Err(e) = self.record(&event).await {
                // Not announced, so not sent. If nothing else was sent, the nonce is free.
                error!(error = %e, "cannot record pending; not broadcasting");
                event.tx_hashes.pop();
                if event.tx_hashes.is_empty() {
                    self.release_nonce(nonce).await;
                    return self.fail(event, e.to_string()).await;
                }
                return self.wait_only(event).await;
            }
            let started = std::time::Instant::now();
            if let Err(e) = self.submitter.broadcast(&signed.raw).await {
                warn!(error = %e, "broadcast failed; watching for a receipt anyway");
            }
            match self
                .await_receipt(&event, self.config.receipt_timeout)
                .await
            {
                Some(outcome) => {
                    self.metrics
                        .confirmation
                        .observe(started.elapsed().as_secs_f64());
                    return outcome;
                }
                None => {
                    let next = fees.bumped(self.config.fee_bump_percent, self.cap());
                    if next == fees {
                        warn!(
                            nonce,
                            "fees at the cap; waiting for the pending transaction"
                        );
                        return self.wait_only(event).await;
                    }
                    info!(
                        nonce,
                        old = fees.max_fee,
                        new = next.max_fee,
                        "not mined in time; replacing with higher fees"
                    );
                    self.metrics.replacements.inc();
                    fees = next;
                }
            }
        }
    }

    /// Waits (without replacing) until one of the broadcast hashes is mined.
    async fn wait_only(&self, event: SubmissionEvent) -> Outcome {
        loop {
            if let Some(outcome) = self
                .await_receipt(&event, self.config.receipt_timeout)
                .await
            {
                return outcome;
            }
            warn!(submission = %event.id, nonce = event.nonce.unwrap_or_default(),
                  tx_hash = event.tx_hash.as_deref().unwrap_or_default(), "transaction still pending");
        }
    }

    /// Polls for a receipt of any of the event's hashes; records the outcome.
    async fn await_receipt(&self, event: &SubmissionEvent, timeout: Duration) -> Option<Outcome> {
        let hashes: Vec<B256> = event
            .tx_hashes
            .iter()
            .filter_map(|h| h.parse().ok())
            .collect();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.submitter.find_receipt(&hashes).await {
                Ok(Some(receipt)) => return Some(self.settle(event.clone(), &receipt).await),
                Ok(None) => {}
                Err(e) => warn!(error = %e, "receipt lookup failed"),
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn settle(
        &self,
        mut event: SubmissionEvent,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Outcome {
        let mut next = self.next_nonce.lock().await;
        if let Some(n) = event.nonce
            && next.is_none_or(|x| x <= n)
        {
            *next = Some(n + 1);
        }
        drop(next);
        event.tx_hash = Some(receipt.transaction_hash.to_string());
        event.block = receipt.block_number;
        event.gas_used = Some(receipt.gas_used);
        event.at_ms = now_ms();
        self.metrics.gas_used.observe(receipt.gas_used as f64);
        if receipt.status() {
            event.status = SubmissionStatus::Success;
            let pairs: BTreeMap<u32, Pair> = event
                .reports
                .iter()
                .map(|r| (r.round, r.pair.clone()))
                .collect();
            event.skipped = Submitter::skipped(receipt)
                .into_iter()
                .map(|(index, round, why)| {
                    let pair = pairs
                        .get(&round)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| format!("feed {index}"));
                    format!("{pair}: {why}")
                })
                .collect();
        } else {
            event.status = SubmissionStatus::Failed;
            event.error = Some("the transaction reverted".into());
        }
        self.metrics
            .submissions
            .with_label_values(&[event.status.as_str()])
            .inc();
        if let Err(e) = self.record(&event).await {
            error!(error = %e, "cannot record the outcome; the next start will settle it");
        }
        info!(
            status = event.status.as_str(),
            block = event.block.unwrap_or_default(),
            tx_hash = event.tx_hash.as_deref().unwrap_or_default(),
            gas_used = receipt.gas_used,
            "submission settled"
        );
        Outcome { event }
    }

    async fn fail(&self, mut event: SubmissionEvent, error: String) -> Outcome {
        warn!(submission = %event.id, error = %error, "submission failed");
        event.status = SubmissionStatus::Failed;
        event.at_ms = now_ms();
        event.error = Some(error);
        self.metrics
            .submissions
            .with_label_values(&["failed"])
            .inc();
        if let Err(e) = self.record(&event).await {
            error!(error = %e, "cannot record the failure");
        }
        Outcome { event }
    }

    /// The latest event of every submission in the stream.
    pub async fn latest_events(
        js: &jetstream::Context,
    ) -> Result<Vec<SubmissionEvent>, SubmitError> {
        let nats = |e: String| SubmitError::Rpc(format!("reading {SUBMISSIONS_STREAM}: {e}"));
        let stream = js
            .get_stream(SUBMISSIONS_STREAM)
            .await
            .map_err(|e| nats(e.to_string()))?;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                filter_subject: SUBMISSIONS_SUBJECTS.to_owned(),
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| nats(e.to_string()))?;
        let mut out = Vec::new();
        for msg in oracle_common::streams::drain(&consumer)
            .await
            .map_err(nats)?
        {
            match SubmissionEvent::decode(&msg.payload) {
                Ok(e) => out.push(e),
                Err(e) => warn!(subject = %msg.subject, error = %e, "unreadable submission event"),
            }
        }
        Ok(out)
    }

    /// Finishes every submission the stream shows as unfinished (after a
    /// crash): `queued` ones were never broadcast and are marked failed;
    /// `pending` ones are settled from the chain, or broadcast again and
    /// followed. Returns how many it finished.
    pub async fn reconcile(
        &self,
        resign: impl Fn(&[SubmittedReport]) -> Option<Vec<Report>>,
    ) -> Result<usize, SubmitError> {
        let unfinished: Vec<SubmissionEvent> = Self::latest_events(&self.js)
            .await?
            .into_iter()
            .filter(|e| {
                matches!(
                    e.status,
                    SubmissionStatus::Queued | SubmissionStatus::Pending
                )
            })
            .collect();
        if unfinished.is_empty() {
            return Ok(0);
        }
        info!(
            count = unfinished.len(),
            "finishing submissions left unfinished by the last run"
        );
        let mined = self.submitter.mined_nonce().await?;
        for event in &unfinished {
            let span = info_span!("reconcile", submission = %event.id, status = event.status.as_str(),
                                  tx_hash = event.tx_hash.as_deref().unwrap_or_default());
            async {
                if event.status == SubmissionStatus::Queued || event.tx_hashes.is_empty() {
                    self.fail(
                        event.clone(),
                        "abandoned before broadcast (the aggregator stopped)".into(),
                    )
                    .await;
                    return;
                }
                let hashes: Vec<B256> = event
                    .tx_hashes
                    .iter()
                    .filter_map(|h| h.parse().ok())
                    .collect();
                match self.submitter.find_receipt(&hashes).await {
                    Ok(Some(receipt)) => {
                        self.settle(event.clone(), &receipt).await;
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "receipt lookup failed"),
                }
                let nonce = event.nonce.unwrap_or(u64::MAX);
                if nonce < mined {
                    // The nonce was used, but by none of our hashes: never re-send.
                    self.fail(
                        event.clone(),
                        format!("nonce {nonce} was used by another transaction"),
                    )
                    .await;
                    return;
                }
                // Still pending: broadcast the signed bytes again and follow it,
                // replacing with the same nonce if it does not get mined.
                if let Some(raw) = event
                    .raw_tx
                    .as_deref()
                    .and_then(|r| alloy::primitives::hex::decode(r).ok())
                    && let Err(e) = self.submitter.broadcast(&raw).await
                {
                    warn!(error = %e, "re-broadcast failed");
                }
                {
                    let mut next = self.next_nonce.lock().await;
                    if next.is_none_or(|n| n <= nonce) {
                        *next = Some(nonce + 1);
                    }
                }
                let fees = Fees {
                    max_fee: event.max_fee_per_gas.unwrap_or_default(),
                    priority: event.max_priority_fee_per_gas.unwrap_or_default(),
                };
                match self.await_receipt(event, self.config.receipt_timeout).await {
                    Some(_) => {}
                    None => match resign(&event.reports) {
                        Some(reports) => {
                            let bumped = fees.bumped(self.config.fee_bump_percent, self.cap());
                            self.follow(event.clone(), reports, bumped).await;
                        }
                        None => {
                            self.wait_only(event.clone()).await;
                        }
                    },
                }
            }
            .instrument(span)
            .await;
        }
        self.resync_nonce().await;
        Ok(unfinished.len())
    }
}
