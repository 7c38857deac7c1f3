//! The transaction lifecycle of a submission, recorded on `ORACLE_SUBMISSIONS`:
//! `queued` (decided, written before anything is sent) → `pending` (written
//! before each broadcast: hash, nonce, fees, the signed bytes and the quorum's
//! signatures) → `success` (block, gas used, reports the hub skipped, matched
//! to their feed by index) or `failed` (decoded revert or permanent error).
//!
//! On a chain with `confirmations`, a mined transaction is recorded as
//! `pending` with its block, and is `success` only once that many blocks are
//! on top of it; a reorg that drops it returns it to `pending` (no block) and
//! the same signed transaction, same nonce, is broadcast again. The batch is
//! handed back at inclusion (its reports are on chain) and its confirmations
//! are followed in the background, so that the chain's next batch, with the
//! next nonce and the next rounds, need not wait for them.
//!
//! One nonce manager per sender key and chain (each node has its own). A transaction not
//! mined within `receipt_timeout` is replaced with the same nonce and fees
//! raised by `fee_bump_percent` (up to `max_fee_per_gas_gwei`); a transaction
//! whose outcome is unknown is never re-sent with a new nonce. While waiting,
//! a nonce consumed by another transaction is noticed and the submission is
//! marked failed at once. After a restart or a takeover, [`Lifecycle::reconcile`]
//! finishes what the stream shows as unfinished: a mined hash decides it; this
//! node's pending transaction is broadcast again and followed, unless its
//! reports are older than the hub's report-age bound (then it is abandoned and
//! its nonce reused by a fresh submission); another node's is followed only;
//! one never broadcast is marked failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use async_nats::jetstream::{self, consumer};
use oracle_common::chain::{HubSignature, Report, pack_signatures, unpack_signatures};
use oracle_common::config::AggregatorConfig;
use oracle_common::wire::{
    SUBMISSIONS_STREAM, SUBMISSIONS_SUBJECTS, SkippedReport, SubmissionEvent, SubmissionStatus,
    SubmittedReport, WireMessage, submission_subject,
};
use oracle_common::{Pair, now_ms};
use tokio::sync::Mutex;
use tracing::{Instrument, error, info, info_span, warn};

use crate::metrics::Metrics;
use crate::submitter::{Fees, SubmitError, Submitter};

/// How often a pending transaction's nonce is checked against the chain.
const NONCE_CHECK: Duration = Duration::from_secs(1);

/// A report with its pair, as the lifecycle records it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The feed.
    pub pair: Pair,
    /// The on-chain report.
    pub report: Report,
}

/// The quorum's signatures over a batch.
#[derive(Debug, Clone)]
pub struct Quorum {
    /// The proposal they signed.
    pub proposal: String,
    /// Their signers, ascending.
    pub signers: Vec<Address>,
    /// The signatures, in the same order.
    pub signatures: Vec<HubSignature>,
}

/// What the lifecycle needs to know of its chain.
#[derive(Debug, Clone)]
pub struct ChainPolicy {
    /// The chain's configured name.
    pub name: String,
    /// Whether it is the first configured chain (it owns events that name none).
    pub first: bool,
    /// Blocks on top of the including one before a submission is final.
    pub confirmations: u64,
    /// The chain's expected block time (how often confirmations are checked).
    pub block_time: Duration,
}

/// Drives submissions and keeps their record.
#[derive(Debug)]
pub struct Lifecycle {
    js: jetstream::Context,
    /// The chain's configured name.
    chain: String,
    /// Whether it is the first configured chain (it owns events that name none).
    first: bool,
    /// Blocks on top of the including one before `success`.
    confirmations: u64,
    /// How often an included transaction is checked while it gathers them.
    confirm_poll: Duration,
    /// Submissions this node is confirming in the background (reconcile
    /// leaves them alone).
    confirming: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Unfinished submissions seen by this node: id → when first pending,
    /// Unix ms (the pending gauges).
    open: std::sync::Mutex<BTreeMap<String, u64>>,
    submitter: Submitter,
    node: String,
    config: AggregatorConfig,
    metrics: Metrics,
    /// Each feed's max report age on the hub, seconds.
    max_report_age: BTreeMap<Pair, u32>,
    nonce: Mutex<NonceState>,
}

/// The sender's nonce as this node manages it.
#[derive(Debug, Default)]
struct NonceState {
    /// The next nonce to use (`None`: ask the chain).
    next: Option<u64>,
    /// A nonce to reuse with at least these fees: an abandoned transaction
    /// (stale reports) may still sit in a mempool, and its replacement must
    /// outbid it.
    reuse: Option<(u64, Fees)>,
}

impl Lifecycle {
    /// A lifecycle over `submitter` (on `chain`), recording on `js` as node
    /// `node`. `config` holds the
    /// chain's effective receipt timeout and fee policy.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        js: jetstream::Context,
        chain: ChainPolicy,
        submitter: Submitter,
        node: String,
        config: AggregatorConfig,
        metrics: Metrics,
        max_report_age: BTreeMap<Pair, u32>,
    ) -> Self {
        Self {
            js,
            chain: chain.name,
            first: chain.first,
            confirmations: chain.confirmations,
            confirm_poll: (chain.block_time / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(1)),
            confirming: std::sync::Mutex::default(),
            open: std::sync::Mutex::default(),
            submitter,
            node,
            config,
            metrics,
            max_report_age,
            nonce: Mutex::new(NonceState::default()),
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
        // Several may be open at once (the next batch goes out while the
        // last one gathers its confirmations): the gauges show how many, and
        // since when the oldest has been waiting.
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            match event.status {
                SubmissionStatus::Pending => {
                    open.entry(event.id.clone()).or_insert(event.at_ms);
                }
                SubmissionStatus::Success | SubmissionStatus::Failed => {
                    open.remove(&event.id);
                }
                SubmissionStatus::Queued => {}
            }
            let c = [self.chain.as_str()];
            let oldest = open.values().min().copied().unwrap_or(0);
            self.metrics
                .pending_since
                .with_label_values(&c)
                .set(oldest as f64 / 1000.0);
            self.metrics
                .pending_transactions
                .with_label_values(&c)
                .set(i64::try_from(open.len()).unwrap_or(i64::MAX));
        }
        // One id per event: a retry after a lost acknowledgement is stored once.
        let msg_id = format!("{}:{}:{}", event.id, event.status.as_str(), event.at_ms);
        oracle_common::bus::publish_durably(
            &self.js,
            submission_subject(&event.id),
            &msg_id,
            event.encode().into(),
            oracle_common::bus::PUBLISH_PATIENCE,
        )
        .await
        .map_err(|e| SubmitError::Rpc(format!("recording {}: {e}", event.status.as_str())))?;
        self.metrics
            .submission_events
            .with_label_values(&[&self.chain, event.status.as_str()])
            .inc();
        Ok(())
    }

    /// The nonce to use and the lowest fees it needs.
    async fn reserve_nonce(&self) -> Result<(u64, Option<Fees>), SubmitError> {
        let mut state = self.nonce.lock().await;
        if let Some((n, floor)) = state.reuse.take() {
            state.next = Some(n + 1);
            return Ok((n, Some(floor)));
        }
        let n = match state.next {
            Some(n) => n,
            None => self.submitter.pending_nonce().await?,
        };
        state.next = Some(n + 1);
        Ok((n, None))
    }

    /// Gives back a nonce that was never broadcast.
    async fn release_nonce(&self, nonce: u64) {
        let mut state = self.nonce.lock().await;
        if state.next == Some(nonce + 1) {
            state.next = Some(nonce);
        }
    }

    /// Forgets the local nonce: the next reservation asks the chain.
    async fn resync_nonce(&self) {
        self.nonce.lock().await.next = None;
    }

    /// Submits `planned` with the quorum's signatures as one transaction
    /// (submission `id`) and follows it to a final status, which it returns;
    /// `Err` (why) when nothing was sent for a reason that is not the feeds'
    /// fault: the broker did not store the submission, or the chain's node
    /// did not answer before anything was signed (then the submission is
    /// recorded `failed` with why, and the feeds are not counted against).
    pub async fn submit(
        self: &Arc<Self>,
        id: String,
        planned: &[Planned],
        quorum: &Quorum,
        retry_of: Option<String>,
    ) -> Result<SubmissionEvent, String> {
        let span = info_span!("submission", submission = %id, tx_hash = tracing::field::Empty, nonce = tracing::field::Empty);
        self.submit_inner(id, planned, quorum, retry_of)
            .instrument(span)
            .await
    }

    async fn submit_inner(
        self: &Arc<Self>,
        id: String,
        planned: &[Planned],
        quorum: &Quorum,
        retry_of: Option<String>,
    ) -> Result<SubmissionEvent, String> {
        let reports = planned
            .iter()
            .map(|p| SubmittedReport {
                pair: p.pair.clone(),
                feed_index: p.report.feedIndex,
                round: p.report.roundId,
                price_scaled: p.report.price.to_string(),
                observed_at: u64::from(p.report.observedAt),
            })
            .collect();
        let mut event = SubmissionEvent::queued(
            id,
            (self.chain.clone(), self.submitter.chain_id()),
            self.node.clone(),
            self.submitter.sender().to_string(),
            reports,
            retry_of,
        );
        event.proposal = Some(quorum.proposal.clone());
        event.signers = quorum.signers.iter().map(|a| a.to_string()).collect();
        event.signatures = Some(alloy::primitives::hex::encode_prefixed(pack_signatures(
            &quorum.signatures,
        )));
        if let Err(e) = self.record(&event).await {
            // Nothing was sent; the feeds stay due and are tried again.
            error!(error = %e, "cannot record the submission; not sending");
            return Err(format!("not recorded: {e}"));
        }
        self.send_recorded(event, planned, quorum).await
    }

    /// Records `event` failed because the node did not answer before anything
    /// was sent; the reason, for [`Lifecycle::submit`]'s `Err`.
    async fn unsent(&self, event: SubmissionEvent, e: &SubmitError) -> String {
        let why = format!("nothing sent, the chain's node did not answer: {e}");
        self.fail(event, why.clone()).await;
        why
    }

    /// The rest of [`Lifecycle::submit`] once `queued` is stored: nonce,
    /// fees, signing, broadcast, follow-up; returns the final event.
    async fn send_recorded(
        self: &Arc<Self>,
        mut event: SubmissionEvent,
        planned: &[Planned],
        quorum: &Quorum,
    ) -> Result<SubmissionEvent, String> {
        let reports: Vec<Report> = planned.iter().map(|p| p.report.clone()).collect();
        let (nonce, floor) = match self.reserve_nonce().await {
            Ok(n) => n,
            Err(e) if e.is_transient() => return Err(self.unsent(event, &e).await),
            Err(e) => return Ok(self.fail(event, e.to_string()).await),
        };
        let fees = match self.submitter.fees().await {
            Ok(f) => {
                let mut fees = Fees {
                    max_fee: f.max_fee.min(self.cap()),
                    priority: f.priority.min(self.cap()),
                };
                if let Some(floor) = floor {
                    let outbid = floor.bumped(self.config.fee_bump_percent, self.cap());
                    fees.max_fee = fees.max_fee.max(outbid.max_fee);
                    fees.priority = fees.priority.max(outbid.priority);
                }
                fees
            }
            Err(e) => {
                self.release_nonce(nonce).await;
                if e.is_transient() {
                    return Err(self.unsent(event, &e).await);
                }
                return Ok(self.fail(event, e.to_string()).await);
            }
        };
        event.nonce = Some(nonce);
        tracing::Span::current().record("nonce", nonce);
        Ok(self.follow(event, &reports, &quorum.signatures, fees).await)
    }

    /// Signs, records `pending`, broadcasts, waits; replaces with higher fees
    /// when no receipt comes in time. Returns the final event.
    async fn follow(
        self: &Arc<Self>,
        mut event: SubmissionEvent,
        reports: &[Report],
        signatures: &[HubSignature],
        mut fees: Fees,
    ) -> SubmissionEvent {
        let Some(nonce) = event.nonce else {
            return self.fail(event, "no nonce".into()).await;
        };
        loop {
            let signed = match self
                .submitter
                .sign_tx(reports, signatures, nonce, fees)
                .await
            {
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
                .await_receipt(&event, self.config.receipt_timeout, Until::Included)
                .await
            {
                Waited::Mined(receipt) => {
                    self.metrics
                        .confirmation
                        .with_label_values(&[&self.chain])
                        .observe(started.elapsed().as_secs_f64());
                    return self.included(event, *receipt).await;
                }
                Waited::NonceTaken => return self.nonce_taken(event).await,
                Waited::TimedOut => {
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
                    self.metrics
                        .replacements
                        .with_label_values(&[&self.chain])
                        .inc();
                    fees = next;
                }
            }
        }
    }

    /// Waits (without replacing) until one of the broadcast hashes is mined
    /// or their nonce is taken by another transaction.
    async fn wait_only(&self, event: SubmissionEvent) -> SubmissionEvent {
        loop {
            match self
                .await_receipt(&event, self.config.receipt_timeout, Until::Final)
                .await
            {
                Waited::Mined(receipt) => return self.settle(event, &receipt).await,
                Waited::NonceTaken => return self.nonce_taken(event).await,
                Waited::TimedOut => {
                    warn!(submission = %event.id, nonce = event.nonce.unwrap_or_default(),
                          tx_hash = event.tx_hash.as_deref().unwrap_or_default(), "transaction still pending")
                }
            }
        }
    }

    async fn nonce_taken(&self, event: SubmissionEvent) -> SubmissionEvent {
        let nonce = event.nonce.unwrap_or_default();
        self.resync_nonce().await;
        self.fail(
            event,
            format!("nonce {nonce} was used by another transaction of the sender; none of ours was mined"),
        )
        .await
    }

    /// A transaction of `event` was mined: on a chain without confirmations
    /// that is final. Otherwise the inclusion is recorded (`pending` with its
    /// block, gas and the reports the hub skipped) and returned, so that the
    /// chain's next batch need not wait, and this node follows it to its
    /// confirmations in the background (a reorg that drops it: broadcast
    /// again, same nonce, followed again). A reverted transaction fails at
    /// once.
    async fn included(
        self: &Arc<Self>,
        event: SubmissionEvent,
        receipt: alloy::rpc::types::TransactionReceipt,
    ) -> SubmissionEvent {
        if self.confirmations == 0 || !receipt.status() {
            return self.settle(event, &receipt).await;
        }
        let mut included = self.outcome(event, &receipt);
        included.status = SubmissionStatus::Pending;
        info!(block = included.block.unwrap_or_default(), confirmations = self.confirmations,
              tx_hash = %receipt.transaction_hash, skipped = included.skipped.len(),
              "included; its confirmations are followed in the background");
        if let Err(e) = self.record(&included).await {
            warn!(error = %e, "cannot record the inclusion");
        }
        self.confirming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(included.id.clone());
        let (me, waiting) = (Arc::clone(self), included.clone());
        tokio::spawn(
            async move {
                let id = waiting.id.clone();
                match me.confirm(&waiting, receipt, true).await {
                    Some(receipt) => {
                        me.settle(waiting, &receipt).await;
                    }
                    None => {
                        me.wait_only(waiting).await;
                    }
                }
                me.confirming
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            .instrument(tracing::Span::current()),
        );
        included
    }

    /// Waits until `receipt`'s block has the chain's confirmations on top
    /// while the transaction stays in it, and returns the final receipt. The
    /// inclusion is recorded (`pending` with its block) so that readers and a
    /// successor see it. `None` when a reorg dropped the transaction: the
    /// submission is recorded as `pending` again (no block) and the same
    /// signed transaction, same nonce, is broadcast again.
    async fn confirm(
        &self,
        event: &SubmissionEvent,
        mut receipt: alloy::rpc::types::TransactionReceipt,
        announced_already: bool,
    ) -> Option<alloy::rpc::types::TransactionReceipt> {
        if self.confirmations == 0 {
            return Some(receipt);
        }
        let mut announced: Option<B256> = if announced_already {
            receipt.block_hash
        } else {
            None
        };
        loop {
            let (Some(block), Some(block_hash)) = (receipt.block_number, receipt.block_hash) else {
                return Some(receipt);
            };
            if announced != Some(block_hash) {
                announced = Some(block_hash);
                let mut included = event.clone();
                included.at_ms = now_ms();
                included.block = Some(block);
                included.tx_hash = Some(receipt.transaction_hash.to_string());
                info!(block, confirmations = self.confirmations, tx_hash = %receipt.transaction_hash,
                      "included; waiting for its confirmations");
                if let Err(e) = self.record(&included).await {
                    warn!(error = %e, "cannot record the inclusion");
                }
            }
            tokio::time::sleep(self.confirm_poll).await;
            let Ok(head) = self.submitter.block_number().await else {
                continue;
            };
            match self
                .submitter
                .find_receipt(&[receipt.transaction_hash])
                .await
            {
                Ok(Some(r)) if r.block_hash == Some(block_hash) => {
                    if head >= block + self.confirmations {
                        return Some(r);
                    }
                }
                Ok(Some(r)) => {
                    // Reorged into another block: count the confirmations again.
                    warn!(
                        old_block = block,
                        new_block = r.block_number.unwrap_or_default(),
                        "a reorg moved the transaction to another block"
                    );
                    self.metrics.reorged.with_label_values(&[&self.chain]).inc();
                    receipt = r;
                }
                Ok(None) => {
                    self.metrics.reorged.with_label_values(&[&self.chain]).inc();
                    let nonce = event.nonce.unwrap_or_default();
                    warn!(block, %block_hash, nonce,
                          "a reorg dropped the included transaction: pending again, broadcast again with the same nonce");
                    let mut dropped = event.clone();
                    dropped.at_ms = now_ms();
                    dropped.block = None;
                    dropped.error = Some(format!(
                        "reorged out of block {block} ({block_hash}); broadcast again with nonce {nonce}"
                    ));
                    if let Err(e) = self.record(&dropped).await {
                        warn!(error = %e, "cannot record the reorg");
                    }
                    if let Some(raw) = event
                        .raw_tx
                        .as_deref()
                        .and_then(|r| alloy::primitives::hex::decode(r).ok())
                        && let Err(e) = self.submitter.broadcast(&raw).await
                    {
                        warn!(error = %e, "re-broadcast after the reorg failed; watching for a receipt anyway");
                    }
                    return None;
                }
                Err(e) => warn!(error = %e, "receipt lookup failed while confirming"),
            }
        }
    }

    /// Polls for a receipt of any of the event's hashes until `timeout`,
    /// checking every second whether the nonce was consumed by another
    /// transaction (then, after a last look for our receipts, gives up).
    async fn await_receipt(
        &self,
        event: &SubmissionEvent,
        timeout: Duration,
        until: Until,
    ) -> Waited {
        let hashes: Vec<B256> = event
            .tx_hashes
            .iter()
            .filter_map(|h| h.parse().ok())
            .collect();
        let nonce = event.nonce;
        let own = event.sender == self.submitter.sender().to_string();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_nonce_check = tokio::time::Instant::now() + NONCE_CHECK;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.submitter.find_receipt(&hashes).await {
                Ok(Some(receipt)) if until == Until::Included => {
                    return Waited::Mined(Box::new(receipt));
                }
                Ok(Some(receipt)) => {
                    if let Some(receipt) = self.confirm(event, receipt, false).await {
                        return Waited::Mined(Box::new(receipt));
                    }
                    // A reorg dropped it: broadcast again, wait again.
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "receipt lookup failed"),
            }
            let now = tokio::time::Instant::now();
            if own && now >= next_nonce_check {
                next_nonce_check = now + NONCE_CHECK;
                if let (Some(n), Ok(mined)) = (nonce, self.submitter.mined_nonce().await)
                    && mined > n
                {
                    // Mined between the two lookups? Look once more.
                    return match self.submitter.find_receipt(&hashes).await {
                        Ok(Some(receipt)) if until == Until::Included => {
                            Waited::Mined(Box::new(receipt))
                        }
                        Ok(Some(receipt)) => match self.confirm(event, receipt, false).await {
                            Some(receipt) => Waited::Mined(Box::new(receipt)),
                            None => continue,
                        },
                        _ => Waited::NonceTaken,
                    };
                }
            }
            if now >= deadline {
                return Waited::TimedOut;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// `event` as `receipt` decides it: block, gas, hash, and `success` with
    /// the reports the hub skipped (matched to their feed by index), or
    /// `failed` when it reverted.
    fn outcome(
        &self,
        mut event: SubmissionEvent,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> SubmissionEvent {
        event.tx_hash = Some(receipt.transaction_hash.to_string());
        event.block = receipt.block_number;
        event.gas_used = Some(receipt.gas_used);
        event.at_ms = now_ms();
        event.error = None;
        if receipt.status() {
            event.status = SubmissionStatus::Success;
            // Matched by the feed index the hub names: rounds repeat across feeds.
            let pairs: BTreeMap<u16, Pair> = event
                .reports
                .iter()
                .map(|r| (r.feed_index, r.pair.clone()))
                .collect();
            event.skipped = Submitter::skipped(receipt)
                .into_iter()
                .filter_map(|(index, round, reason)| {
                    let pair = pairs.get(&index).cloned();
                    if pair.is_none() {
                        warn!(index, round, %reason, "the hub skipped a report of a feed index not in this submission");
                    }
                    Some(SkippedReport {
                        feed_index: index,
                        pair: pair?,
                        round,
                        reason,
                    })
                })
                .collect();
        } else {
            event.status = SubmissionStatus::Failed;
            event.error = Some("the transaction reverted".into());
        }
        event
    }

    async fn settle(
        &self,
        event: SubmissionEvent,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> SubmissionEvent {
        if event.sender == self.submitter.sender().to_string() {
            let mut state = self.nonce.lock().await;
            if let Some(n) = event.nonce
                && state.next.is_none_or(|x| x <= n)
            {
                state.next = Some(n + 1);
            }
        }
        self.metrics
            .gas_used
            .with_label_values(&[&self.chain])
            .observe(receipt.gas_used as f64);
        let event = self.outcome(event, receipt);
        self.metrics
            .submissions
            .with_label_values(&[&self.chain, event.status.as_str()])
            .inc();
        if let Err(e) = self.record(&event).await {
            error!(error = %e, "cannot record the outcome; the next start will settle it");
        }
        info!(
            status = event.status.as_str(),
            block = event.block.unwrap_or_default(),
            tx_hash = event.tx_hash.as_deref().unwrap_or_default(),
            gas_used = receipt.gas_used,
            skipped = event.skipped.len(),
            "submission settled"
        );
        event
    }

    async fn fail(&self, mut event: SubmissionEvent, error: String) -> SubmissionEvent {
        warn!(submission = %event.id, error = %error, "submission failed");
        event.status = SubmissionStatus::Failed;
        event.at_ms = now_ms();
        event.error = Some(error);
        self.metrics
            .submissions
            .with_label_values(&[&self.chain, "failed"])
            .inc();
        if let Err(e) = self.record(&event).await {
            error!(error = %e, "cannot record the failure");
        }
        event
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

    /// Whether a report of `event` is older than its feed's report-age bound
    /// at `now_s` (or will be within `margin_s`): the hub would skip it.
    fn stale(&self, event: &SubmissionEvent, now_s: u64, margin_s: u64) -> bool {
        event.reports.iter().any(|r| {
            let age = self.max_report_age.get(&r.pair).copied().unwrap_or(0);
            r.observed_at + u64::from(age) <= now_s + margin_s
        })
    }

    /// Finishes every submission the stream shows as unfinished (after a
    /// crash or a takeover). Returns how many it finished.
    pub async fn reconcile(self: &Arc<Self>) -> Result<usize, SubmitError> {
        let chain_id = self.submitter.chain_id();
        // Those this node follows to their confirmations already stay its own.
        let confirming = self
            .confirming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let unfinished: Vec<SubmissionEvent> = Self::latest_events(&self.js)
            .await?
            .into_iter()
            .filter(|e| {
                !confirming.contains(&e.id)
                    && e.is_on(chain_id, self.first)
                    && matches!(
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
            "finishing submissions left unfinished"
        );
        let sender = self.submitter.sender().to_string();
        let mined = self.submitter.mined_nonce().await?;
        let mut finished = 0;
        for event in &unfinished {
            let span = info_span!("reconcile", submission = %event.id, status = event.status.as_str(),
                                  node = %event.aggregator, tx_hash = event.tx_hash.as_deref().unwrap_or_default());
            let done = async {
                let own = event.sender == sender;
                if event.status == SubmissionStatus::Queued || event.tx_hashes.is_empty() {
                    // Never broadcast: whoever recorded it stopped before sending.
                    self.fail(
                        event.clone(),
                        "abandoned before broadcast (its node stopped)".into(),
                    )
                    .await;
                    return true;
                }
                let hashes: Vec<B256> = event
                    .tx_hashes
                    .iter()
                    .filter_map(|h| h.parse().ok())
                    .collect();
                match self.submitter.find_receipt(&hashes).await {
                    Ok(Some(receipt)) => {
                        if let Some(receipt) = self.confirm(event, receipt, false).await {
                            self.settle(event.clone(), &receipt).await;
                            return true;
                        }
                        // A reorg dropped it: broadcast again, followed below.
                    }
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "receipt lookup failed"),
                }
                let nonce = event.nonce.unwrap_or(u64::MAX);
                if own && nonce < mined {
                    // The nonce was used, but by none of our hashes: never re-send.
                    self.fail(
                        event.clone(),
                        format!("nonce {nonce} was used by another transaction"),
                    )
                    .await;
                    return true;
                }
                let now_s = now_ms() / 1000;
                if self.stale(event, now_s, 5) {
                    // The hub would skip these reports: never broadcast them again.
                    if own {
                        let fees = Fees {
                            max_fee: event.max_fee_per_gas.unwrap_or_default(),
                            priority: event.max_priority_fee_per_gas.unwrap_or_default(),
                        };
                        let mut state = self.nonce.lock().await;
                        state.reuse = Some((nonce, fees));
                        state.next = None;
                    }
                    self.fail(
                        event.clone(),
                        format!(
                            "abandoned: reports older than the hub's max report age are not \
                             broadcast again (fresh reports follow{}); if the earlier transaction \
                             is still mined, the hub skips them (ReportTooOld)",
                            if own { format!(" with nonce {nonce}") } else { String::new() }
                        ),
                    )
                    .await;
                    return true;
                }
                // Still pending: broadcast the signed bytes again (any node
                // may relay them) and follow them.
                if let Some(raw) = event
                    .raw_tx
                    .as_deref()
                    .and_then(|r| alloy::primitives::hex::decode(r).ok())
                    && let Err(e) = self.submitter.broadcast(&raw).await
                {
                    warn!(error = %e, "re-broadcast failed");
                }
                if !own {
                    // Another node's transaction: this node cannot replace it.
                    return match self
                        .await_receipt(event, self.config.receipt_timeout, Until::Final)
                        .await
                    {
                        Waited::Mined(receipt) => {
                            self.settle(event.clone(), &receipt).await;
                            true
                        }
                        _ => {
                            warn!(sender = %event.sender, "another node's transaction is still pending; left to its node");
                            false
                        }
                    };
                }
                {
                    let mut state = self.nonce.lock().await;
                    if state.next.is_none_or(|n| n <= nonce) {
                        state.next = Some(nonce + 1);
                    }
                }
                match self
                    .await_receipt(event, self.config.receipt_timeout, Until::Final)
                    .await
                {
                    Waited::Mined(receipt) => {
                        self.settle(event.clone(), &receipt).await;
                    }
                    Waited::NonceTaken => {
                        self.nonce_taken(event.clone()).await;
                    }
                    Waited::TimedOut => {
                        let signatures = event
                            .signatures
                            .as_deref()
                            .and_then(|s| alloy::primitives::hex::decode(s).ok())
                            .and_then(|b| unpack_signatures(&b));
                        let reports: Vec<Report> = event
                            .reports
                            .iter()
                            .filter_map(|r| {
                                Some(Report {
                                    feedIndex: r.feed_index,
                                    roundId: r.round,
                                    price: r.price_scaled.parse().ok()?,
                                    observedAt: u32::try_from(r.observed_at).ok()?,
                                })
                            })
                            .collect();
                        let fees = Fees {
                            max_fee: event.max_fee_per_gas.unwrap_or_default(),
                            priority: event.max_priority_fee_per_gas.unwrap_or_default(),
                        };
                        match signatures {
                            Some(sigs) if reports.len() == event.reports.len() => {
                                let bumped = fees.bumped(self.config.fee_bump_percent, self.cap());
                                self.follow(event.clone(), &reports, &sigs, bumped).await;
                            }
                            _ => {
                                self.wait_only(event.clone()).await;
                            }
                        }
                    }
                }
                true
            }
            .instrument(span)
            .await;
            finished += usize::from(done);
        }
        let reuse = self.nonce.lock().await.reuse.is_some();
        if !reuse {
            self.resync_nonce().await;
        }
        Ok(finished)
    }
}

/// What waiting for a receipt waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The first receipt of one of the hashes.
    Included,
    /// A receipt with the chain's confirmations on top (reorgs handled).
    Final,
}

/// How waiting for a receipt ended.
enum Waited {
    /// One of the hashes was mined.
    Mined(Box<alloy::rpc::types::TransactionReceipt>),
    /// The nonce was consumed by a transaction that is none of ours.
    NonceTaken,
    /// Nothing yet.
    TimedOut,
}
