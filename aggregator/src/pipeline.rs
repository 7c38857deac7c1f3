//! The leader's pipeline: one task beside the ingest loop, which never waits
//! for it. On a takeover it finishes what the stream shows as unfinished and
//! re-reads the chain; for each batch the ingest loop hands it, it proposes
//! the batch to the signer quorum, records the reports on `ORACLE_REPORTS`,
//! submits the transaction and follows it to a final status, then reports
//! back what the chain now holds for each feed of the batch.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream;
use oracle_common::chain::Report;
use oracle_common::wire::{
    ErrorCode, RefusalCode, RejectedInput, ReportMessage, SubmissionEvent, UsedInput, WireMessage,
    report_subject,
};
use oracle_common::{Pair, now_ms};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::evaluate::Candidate;
use crate::feeds::Specs;
use crate::lifecycle::{Lifecycle, Planned, Quorum};
use crate::metrics::Metrics;
use crate::policy::OnChain;
use crate::proposal::{Proposer, Signed, SignerSet, Unsigned};

/// What the ingest loop asks of the pipeline.
#[derive(Debug)]
pub enum Command {
    /// This node became the leader: settle what was left, re-read the chain.
    TakeOver,
    /// Propose and submit a batch.
    Batch(Batch),
}

/// A batch of due feeds.
#[derive(Debug)]
pub struct Batch {
    /// The ingest loop's id for it.
    pub id: u64,
    /// The reports, most urgent first.
    pub candidates: Vec<Candidate>,
    /// The failed submission an operator retries with it, if any.
    pub retry_of: Option<String>,
    /// The lease revision the leader holds.
    pub lease_revision: u64,
}

/// What the pipeline reports back.
#[derive(Debug)]
pub enum Done {
    /// The takeover is finished; what the chain holds now.
    TookOver(BTreeMap<Pair, OnChain>),
    /// A batch is finished.
    Batch(Box<BatchDone>),
}

/// How a batch ended.
#[derive(Debug)]
pub struct BatchDone {
    /// The batch.
    pub id: u64,
    /// Its feeds.
    pub pairs: Vec<Pair>,
    /// The submission's final event, when one was made.
    pub event: Option<SubmissionEvent>,
    /// Why no transaction was sent, when none was.
    pub unsent: Option<(ErrorCode, String)>,
    /// What the chain holds now for each feed of the batch (the applied value,
    /// or a fresh read for the others).
    pub chain: BTreeMap<Pair, OnChain>,
}

impl BatchDone {
    /// Why nothing was sent, as answered to a refresh or retry waiting on
    /// the batch (no reason recorded: the signers did not reach a quorum).
    pub fn why_unsent(&self) -> (ErrorCode, String) {
        self.unsent
            .clone()
            .unwrap_or((ErrorCode::NoSignerQuorum, String::new()))
    }
}

/// The pipeline's parts: one pipeline per chain.
#[derive(Debug)]
pub struct Pipeline {
    /// The chain's configured name.
    pub chain: String,
    /// Proposes to the quorum.
    pub proposer: Proposer,
    /// Sends and follows transactions (shared with the confirmations it
    /// follows in the background).
    pub lifecycle: std::sync::Arc<Lifecycle>,
    /// For report records.
    pub js: jetstream::Context,
    /// The feeds.
    pub specs: Specs,
    /// Metrics.
    pub metrics: Metrics,
}

impl Pipeline {
    /// Serves commands until `shutdown` or until the ingest loop goes away.
    pub async fn run(
        self,
        mut commands: mpsc::Receiver<Command>,
        done: mpsc::Sender<Done>,
        shutdown: CancellationToken,
    ) {
        loop {
            let command = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = commands.recv() => match c { Some(c) => c, None => return },
            };
            let outcome = match command {
                Command::TakeOver => Done::TookOver(self.take_over().await),
                Command::Batch(batch) => {
                    let span =
                        info_span!("batch", batch = batch.id, feeds = batch.candidates.len());
                    Done::Batch(Box::new(self.batch(batch).instrument(span).await))
                }
            };
            if done.send(outcome).await.is_err() {
                return;
            }
        }
    }

    async fn take_over(&self) -> BTreeMap<Pair, OnChain> {
        match self.lifecycle.reconcile().await {
            Ok(0) => {}
            Ok(n) => info!(finished = n, "settled the submissions left unfinished"),
            Err(e) => warn!(error = %e, "cannot settle unfinished submissions now"),
        }
        self.refresh_signer_set().await;
        let mut chain = BTreeMap::new();
        for (pair, spec) in self.specs.iter() {
            match self.lifecycle.submitter().read_index(spec.hub.index).await {
                Ok(c) => {
                    chain.insert(pair.clone(), c);
                }
                Err(e) => warn!(pair = %pair, error = %e, "cannot read the feed on takeover"),
            }
        }
        chain
    }

    async fn refresh_signer_set(&self) {
        match self.lifecycle.submitter().signer_set().await {
            Ok((signers, threshold)) => {
                self.metrics
                    .threshold
                    .with_label_values(&[&self.chain])
                    .set(threshold as i64);
                if let Ok(mut set) = self.proposer.signer_set.write() {
                    *set = SignerSet { signers, threshold };
                }
            }
            Err(e) => warn!(error = %e, "cannot read the hub's signer set"),
        }
    }

    /// A batch that sent no transaction, and why; the chain is read again.
    async fn unsent(&self, id: u64, pairs: Vec<Pair>, code: ErrorCode, why: String) -> BatchDone {
        BatchDone {
            id,
            chain: self.reread(&pairs).await,
            pairs,
            event: None,
            unsent: Some((code, why)),
        }
    }

    async fn batch(&self, batch: Batch) -> BatchDone {
        let pairs: Vec<Pair> = batch
            .candidates
            .iter()
            .map(|c| c.report.pair.clone())
            .collect();
        let mut candidates = batch.candidates;
        let mut signed = self.propose(&candidates, batch.lease_revision).await;
        if let Err(unsigned) = &signed
            && let Some(kept) = without_refused(&candidates, unsigned)
        {
            // Some nodes refused some reports: the others may still carry.
            info!(
                dropped = candidates.len() - kept.len(),
                "proposing again without the refused reports"
            );
            candidates = kept;
            signed = self.propose(&candidates, batch.lease_revision).await;
        }
        let signed = match signed {
            Ok(s) => s,
            Err(unsigned) => {
                let why = unsigned.describe();
                warn!(proposal = %unsigned.proposal.id, reason = %why, "no signer quorum: nothing sent");
                return self
                    .unsent(batch.id, pairs, ErrorCode::NoSignerQuorum, why)
                    .await;
            }
        };
        let id = crate::proposal::new_id();
        self.record_reports(&candidates, &signed, &id).await;
        let planned: Vec<Planned> = candidates
            .iter()
            .map(|c| Planned {
                pair: c.report.pair.clone(),
                report: c.planned.clone(),
            })
            .collect();
        let quorum = Quorum {
            proposal: signed.proposal.id.clone(),
            signers: signed.signers.clone(),
            signatures: signed.signatures.clone(),
        };
        let event = match self
            .lifecycle
            .submit(id, &planned, &quorum, batch.retry_of)
            .await
        {
            Ok(event) => event,
            // Nothing sent: the broker did not store the submission, or the
            // chain's node did not answer. Not the feeds' fault (no parking);
            // they stay due and are proposed again after the back-off.
            Err(why) => {
                return self
                    .unsent(batch.id, pairs, ErrorCode::ChainError, why)
                    .await;
            }
        };
        let mut chain = BTreeMap::new();
        let mut reread = Vec::new();
        for c in &candidates {
            let pair = &c.report.pair;
            if event.included(pair) {
                info!(pair = %pair, round = c.planned.roundId, price = %c.report.price, reason = c.report.reason.as_str(),
                      tx_hash = event.tx_hash.as_deref().unwrap_or_default(), block = event.block.unwrap_or_default(),
                      submission = %event.id, "feed updated");
                chain.insert(pair.clone(), applied(&c.planned, now_ms() / 1000));
            } else {
                reread.push(pair.clone());
            }
        }
        for s in &event.skipped {
            warn!(pair = %s.pair, round = s.round, reason = %s.reason, submission = %event.id, "the hub skipped a report");
            self.metrics
                .rejected
                .with_label_values(&[&self.chain, &s.pair.to_string(), s.reason.as_str()])
                .inc();
        }
        // Feeds dropped from the batch, or not applied: re-seed from the chain.
        reread.extend(
            pairs
                .iter()
                .filter(|p| !candidates.iter().any(|c| &c.report.pair == *p))
                .cloned(),
        );
        chain.extend(self.reread(&reread).await);
        BatchDone {
            id: batch.id,
            pairs,
            event: Some(event),
            unsent: None,
            chain,
        }
    }

    async fn propose(
        &self,
        candidates: &[Candidate],
        revision: u64,
    ) -> Result<Signed, Box<Unsigned>> {
        let reports = candidates.iter().map(|c| c.report.clone()).collect();
        let planned: Vec<Report> = candidates.iter().map(|c| c.planned.clone()).collect();
        let computed_at = candidates
            .iter()
            .map(|c| c.computed_at_ms)
            .max()
            .unwrap_or_else(now_ms);
        self.proposer
            .propose(reports, &planned, computed_at, revision)
            .await
    }

    /// What the chain holds for `pairs` now.
    async fn reread(&self, pairs: &[Pair]) -> BTreeMap<Pair, OnChain> {
        let mut out = BTreeMap::new();
        for pair in pairs {
            let Some(spec) = self.specs.get(pair) else {
                continue;
            };
            match self.lifecycle.submitter().read_index(spec.hub.index).await {
                Ok(c) => {
                    out.insert(pair.clone(), c);
                }
                Err(e) => warn!(pair = %pair, error = %e, "cannot re-read the feed"),
            }
        }
        out
    }

    /// Publishes each report of the batch, with its chain, inputs and
    /// signers, on `oracle.report.{PAIR}` before the transaction is sent.
    async fn record_reports(&self, candidates: &[Candidate], signed: &Signed, submission: &str) {
        let signers: Vec<String> = signed.signers.iter().map(|a| a.to_string()).collect();
        for c in candidates {
            let Some(spec) = self.specs.get(&c.report.pair) else {
                continue;
            };
            let message = ReportMessage {
                v: <ReportMessage as WireMessage>::VERSION,
                pair: c.report.pair.clone(),
                chain: self.chain.clone(),
                chain_id: self.proposer.chain_id,
                feed_index: c.report.feed_index,
                round: c.report.round,
                price: c.report.price,
                price_scaled: c.report.price_scaled.clone(),
                decimals: spec.config.decimals,
                confidence: c.report.confidence,
                observed_at: c.report.observed_at,
                computed_at_ms: c.computed_at_ms,
                reason: c.report.reason,
                proposal: signed.proposal.id.clone(),
                leader: signed.proposal.leader.clone(),
                signers: signers.clone(),
                submission_id: submission.to_owned(),
                used: c
                    .used
                    .iter()
                    .map(|e| UsedInput {
                        seq: e.seq,
                        observation: e.obs.clone(),
                    })
                    .collect(),
                rejected: c
                    .rejected
                    .iter()
                    .map(|(e, why)| RejectedInput {
                        seq: e.seq,
                        observation: e.obs.clone(),
                        reason: why.clone(),
                    })
                    .collect(),
            };
            // Retried through a stream leader election; the id keeps one copy.
            let msg_id = format!(
                "report:{}:{}:{}:{submission}",
                self.chain, message.pair, message.round
            );
            if let Err(e) = oracle_common::bus::publish_durably(
                &self.js,
                report_subject(&message.pair),
                &msg_id,
                message.encode().into(),
                oracle_common::bus::PUBLISH_PATIENCE,
            )
            .await
            {
                warn!(pair = %message.pair, error = %e, "report not stored in ORACLE_REPORTS");
            }
            self.metrics
                .reports
                .with_label_values(&[
                    &self.chain,
                    &message.pair.to_string(),
                    message.reason.as_str(),
                ])
                .inc();
        }
    }
}

/// The chain state after `report` was applied at about `now_s`.
fn applied(report: &Report, now_s: u64) -> OnChain {
    OnChain {
        price: report.price,
        round: report.roundId,
        observed_at: u64::from(report.observedAt),
        updated_at: now_s,
    }
}

/// The candidates no node refused by report, when some were refused that way
/// and some remain; `None` when a new proposal would not help (whole
/// refusals, silence, or nothing left).
fn without_refused(candidates: &[Candidate], unsigned: &Unsigned) -> Option<Vec<Candidate>> {
    let mut refused: BTreeSet<Pair> = BTreeSet::new();
    for refusals in unsigned.refusals.values() {
        for r in refusals {
            match (&r.pair, r.code) {
                // These concern the proposal or the node, not one report.
                (_, RefusalCode::Expired | RefusalCode::NotLeader | RefusalCode::WrongChain) => {
                    return None;
                }
                (Some(pair), _) => {
                    refused.insert(pair.clone());
                }
                (None, _) => return None,
            }
        }
    }
    if refused.is_empty() {
        return None;
    }
    let kept: Vec<Candidate> = candidates
        .iter()
        .filter(|c| !refused.contains(&c.report.pair))
        .cloned()
        .collect();
    (!kept.is_empty()).then_some(kept)
}
