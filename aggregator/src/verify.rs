//! The follower side of the signer quorum. Every node subscribes to
//! `oracle.proposal` (no queue group) and signs a proposal only if it holds
//! against its own view:
//!
//! - it is for one of this node's chains and that chain's hub (the proposal
//!   names the chain id: each chain has its own proposals and its own
//!   EIP-712 domain), not past its deadline, computed at
//!   a time this node's clock accepts, and proposed by the lease holder;
//! - every cited observation is loaded from `ORACLE_OBS` by sequence (from
//!   this node's own window when it still holds it, else a direct get) and is
//!   genuine: its subject, pair and source agree, the source serves the feed,
//!   no source is cited twice;
//! - each is inside the feed's window as of the proposal's computation time
//!   and not from the future;
//! - the outlier rules over exactly the cited set give the same used and
//!   rejected observations, and the exact same median and confidence;
//! - against what this node reads on chain: the round is the latest + 1, the
//!   price is inside the bounds, the observation time is what an honest
//!   leader would submit, and the stated reason (first, heartbeat, deviation)
//!   holds;
//! - this node's own newest-per-source median (its window, brought up to
//!   date with the cited observations it just verified, which its consumer
//!   may not have delivered yet) lies within `max_disagreement_bps` of the
//!   proposed price, so that a leader cannot cherry-pick sources: a source
//!   left out is still in this node's window.
//!
//! A refusal carries typed reasons ([`RefusalCode`]); it is answered, logged,
//! counted (`oracle_aggregator_proposals_refused_total{reason}`) and recorded
//! on `oracle.refusal.{node}` in `ORACLE_REPORTS`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Bytes;
use async_nats::jetstream;
use futures::StreamExt;
use oracle_common::chain::{HubSignature, Report, batch_digest};
use oracle_common::wire::{
    Observation, PROPOSAL_SUBJECT, Proposal, ProposalReply, ProposedReport, Refusal, RefusalCode,
    RefusalRecord, SCHEMA_VERSION, WireMessage, obs_subject, refusal_subject,
};
use oracle_common::{Pair, now_ms};
use rust_decimal::Decimal;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::evaluate::report_values;
use crate::feeds::{FeedSpec, Views};
use crate::lane::{Chain, Connected};
use crate::leader::LeaseView;
use crate::metrics::Metrics;
use crate::policy;
use crate::signing::ReportSigner;
use crate::window::{Entry, Rules, Window, aggregate_of, is_fresh};

/// Longest deadline a proposal may set after its computation time.
const MAX_PROPOSAL_SPAN_MS: u64 = 60_000;
/// Proposals verified at once (each one reads the stream and the chain).
const CONCURRENT_VERIFICATIONS: usize = 8;

/// Everything a node needs to verify proposals.
#[derive(Debug)]
pub struct Verifier {
    /// This node's name.
    pub node: String,
    /// This node's one report key.
    pub signer: Arc<dyn ReportSigner>,
    /// The chains this node serves, once connected (each with its hub,
    /// feeds and chain access).
    pub chains: Arc<Connected>,
    /// This node's windows.
    pub views: Arc<Views>,
    /// `ORACLE_OBS`, for direct gets of cited observations.
    pub obs_stream: jetstream::stream::Stream,
    /// The outlier rules (the same on every node).
    pub rules: Rules,
    /// Clock difference allowed between nodes and for observation times.
    pub max_clock_skew: Duration,
    /// How far this node's own median may be from the proposed price.
    pub max_disagreement_bps: u32,
    /// Who holds the leader lease.
    pub lease: LeaseView,
    /// Metrics.
    pub metrics: Metrics,
    /// Core NATS, for replies.
    pub nats: async_nats::Client,
    /// JetStream, for refusal records.
    pub js: jetstream::Context,
}

/// A failure of one report's verification.
type Refused = Refusal;

impl Verifier {
    /// Answers proposals until `shutdown`.
    pub async fn serve(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), String> {
        let mut proposals = self
            .nats
            .subscribe(PROPOSAL_SUBJECT)
            .await
            .map_err(|e| format!("subscribe {PROPOSAL_SUBJECT}: {e}"))?;
        info!(node = %self.node, signer = %self.signer.address(), "verifying proposals on {PROPOSAL_SUBJECT}");
        let slots = Arc::new(Semaphore::new(CONCURRENT_VERIFICATIONS));
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                msg = proposals.next() => match msg {
                    Some(m) => m,
                    None => return Err(format!("{PROPOSAL_SUBJECT} subscription ended")),
                },
            };
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return Ok(());
            };
            let verifier = Arc::clone(&self);
            tokio::spawn(async move {
                verifier.handle(msg).await;
                drop(permit);
            });
        }
    }

    async fn handle(&self, msg: async_nats::Message) {
        let proposal = match Proposal::decode(&msg.payload) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "unreadable proposal");
                self.metrics
                    .refused
                    .with_label_values(&[RefusalCode::Malformed.as_str()])
                    .inc();
                return;
            }
        };
        if proposal.leader == self.node {
            return; // the leader signs its own proposals when it makes them
        }
        let started = std::time::Instant::now();
        let outcome = self.verify(&proposal).await;
        self.metrics
            .verification
            .observe(started.elapsed().as_secs_f64());
        let reply = ProposalReply {
            v: SCHEMA_VERSION,
            proposal: proposal.id.clone(),
            node: self.node.clone(),
            signer: self.signer.address(),
            signature: outcome
                .as_ref()
                .ok()
                .map(|s| Bytes::from(s.to_bytes().to_vec())),
            refusals: outcome.clone().err().unwrap_or_default(),
        };
        if let Some(to) = msg.reply
            && let Err(e) = self.nats.publish(to, reply.encode().into()).await
        {
            warn!(proposal = %proposal.id, error = %e, "cannot answer a proposal");
        }
        match outcome {
            Ok(_) => {
                self.metrics.signed.inc();
                debug!(proposal = %proposal.id, leader = %proposal.leader, reports = proposal.reports.len(), "signed");
            }
            Err(refusals) => self.record_refusal(&proposal, refusals).await,
        }
    }

    async fn record_refusal(&self, proposal: &Proposal, refusals: Vec<Refusal>) {
        let codes: BTreeSet<&str> = refusals.iter().map(|r| r.code.as_str()).collect();
        for code in &codes {
            self.metrics.refused.with_label_values(&[code]).inc();
        }
        let summary: Vec<String> = refusals
            .iter()
            .map(|r| match &r.pair {
                Some(pair) => format!("{pair}: {} ({})", r.code, r.detail),
                None => format!("{} ({})", r.code, r.detail),
            })
            .collect();
        warn!(proposal = %proposal.id, leader = %proposal.leader, reasons = %summary.join("; "),
              "refused to sign a proposal");
        let record = RefusalRecord {
            v: SCHEMA_VERSION,
            proposal: proposal.id.clone(),
            leader: proposal.leader.clone(),
            node: self.node.clone(),
            signer: self.signer.address(),
            at_ms: now_ms(),
            reports: proposal
                .reports
                .iter()
                .map(|r| (r.pair.clone(), r.round, r.price_scaled.clone()))
                .collect(),
            refusals,
        };
        // The answer went out already; the record is retried through a
        // stream leader election (the id keeps one copy).
        let msg_id = format!("refusal:{}:{}", self.node, proposal.id);
        if let Err(e) = oracle_common::bus::publish_durably(
            &self.js,
            refusal_subject(&self.node),
            &msg_id,
            record.encode().into(),
            oracle_common::bus::PUBLISH_PATIENCE,
        )
        .await
        {
            warn!(error = %e, "refusal not stored in ORACLE_REPORTS");
        }
    }

    /// Verifies `p` against this node's view; its signature over the batch
    /// digest, or why not.
    pub async fn verify(&self, p: &Proposal) -> Result<HubSignature, Vec<Refusal>> {
        let whole = |code, detail: String| vec![Refusal::whole(code, detail)];
        let now = now_ms();
        let skew = self.max_clock_skew.as_millis() as u64;
        let Some(chain) = self.chains.get(p.chain_id).filter(|c| c.hub == p.hub) else {
            return Err(whole(
                RefusalCode::WrongChain,
                format!(
                    "for chain {} hub {}, this node serves (connected) {}",
                    p.chain_id,
                    p.hub,
                    self.chains.describe()
                ),
            ));
        };
        if now > p.deadline_ms {
            return Err(whole(
                RefusalCode::Expired,
                format!("deadline passed {} ms ago", now - p.deadline_ms),
            ));
        }
        if p.computed_at_ms > now + skew {
            return Err(whole(
                RefusalCode::Expired,
                format!(
                    "computed {} ms ahead of this node's clock",
                    p.computed_at_ms - now
                ),
            ));
        }
        if p.deadline_ms.saturating_sub(p.computed_at_ms) > MAX_PROPOSAL_SPAN_MS {
            return Err(whole(
                RefusalCode::Malformed,
                "the deadline is too far after the computation".into(),
            ));
        }
        if p.reports.is_empty() {
            return Err(whole(RefusalCode::Malformed, "no reports".into()));
        }
        let mut pairs = BTreeSet::new();
        if let Some(twice) = p.reports.iter().find(|r| !pairs.insert(&r.pair)) {
            return Err(whole(
                RefusalCode::Malformed,
                format!("{} is proposed twice", twice.pair),
            ));
        }
        if !self.lease.is_holder(&p.leader).await {
            return Err(whole(
                RefusalCode::NotLeader,
                format!("{} does not hold the leader lease", p.leader),
            ));
        }
        // This node's own view, as of now.
        let own: BTreeMap<Pair, Window> = {
            let windows = self.views.lock();
            p.reports
                .iter()
                .filter_map(|r| windows.get(&r.pair).map(|w| (r.pair.clone(), w.clone())))
                .collect()
        };
        let checks = p
            .reports
            .iter()
            .map(|r| self.verify_report(&chain, p, r, own.get(&r.pair), now));
        let results = futures::future::join_all(checks).await;
        let mut planned = Vec::with_capacity(p.reports.len());
        let mut refusals = Vec::new();
        for result in results {
            match result {
                Ok(report) => planned.push(report),
                Err(refusal) => refusals.push(refusal),
            }
        }
        if !refusals.is_empty() {
            return Err(refusals);
        }
        let digest = batch_digest(&planned, chain.chain_id, chain.hub);
        self.signer
            .sign(digest)
            .await
            .map_err(|e| whole(RefusalCode::Unavailable, format!("signing failed: {e}")))
    }

    /// Verifies one report; the on-chain report it stands for.
    async fn verify_report(
        &self,
        chain: &Chain,
        p: &Proposal,
        r: &ProposedReport,
        own: Option<&Window>,
        now: u64,
    ) -> Result<Report, Refused> {
        let refuse = |code, detail: String| Refusal::of(r, code, detail);
        let Some(spec) = chain
            .specs
            .get(&r.pair)
            .filter(|s| s.hub.index == r.feed_index)
        else {
            return Err(refuse(
                RefusalCode::UnknownFeed,
                format!(
                    "{} at index {} is not a feed of this node",
                    r.pair, r.feed_index
                ),
            ));
        };
        let feed = &spec.config;
        let skew = self.max_clock_skew.as_millis() as u64;
        // The cited observations, each genuine, fresh and not from the future.
        let mut cited: Vec<Entry> = Vec::with_capacity(r.used.len() + r.rejected.len());
        let mut sources = BTreeSet::new();
        for &seq in r.used.iter().chain(&r.rejected) {
            let entry = self.load(r, seq, own).await?;
            let obs = &entry.obs;
            if !feed.sources.contains(&obs.source) && !feed.fallbacks.contains(&obs.source) {
                return Err(refuse(
                    RefusalCode::ObservationNotGenuine,
                    format!("#{seq} is from {}, not a source of {}", obs.source, r.pair),
                ));
            }
            if !sources.insert(obs.source.clone()) {
                return Err(refuse(
                    RefusalCode::ObservationNotGenuine,
                    format!("{} is cited twice", obs.source),
                ));
            }
            if obs.observed_at_ms > now + skew || obs.observed_at_ms > p.computed_at_ms + skew {
                return Err(refuse(
                    RefusalCode::ObservationInFuture,
                    format!(
                        "#{seq} ({}) is dated {} ms ahead",
                        obs.source,
                        obs.observed_at_ms.saturating_sub(now.min(p.computed_at_ms))
                    ),
                ));
            }
            if !is_fresh(feed, obs, p.computed_at_ms) {
                return Err(refuse(
                    RefusalCode::ObservationStale,
                    format!(
                        "#{seq} ({}) is {} ms old, the window is {:?}",
                        obs.source,
                        p.computed_at_ms.saturating_sub(obs.observed_at_ms),
                        feed.max_age
                    ),
                ));
            }
            cited.push(entry);
        }
        // The same rules over exactly the cited set give exactly the proposal.
        let agg = aggregate_of(feed, cited.clone(), p.computed_at_ms, &self.rules, vec![])
            .map_err(|e| {
                refuse(
                    RefusalCode::AggregateMismatch,
                    format!("the cited observations give no aggregate: {e}"),
                )
            })?;
        let used: BTreeSet<u64> = agg.used.iter().map(|e| e.seq).collect();
        let rejected: BTreeSet<u64> = agg.rejected.iter().map(|(e, _)| e.seq).collect();
        if used != r.used.iter().copied().collect()
            || rejected != r.rejected.iter().copied().collect()
        {
            return Err(refuse(
                RefusalCode::AggregateMismatch,
                format!("the outlier rules keep {used:?} and reject {rejected:?}"),
            ));
        }
        if agg.price != r.price || agg.confidence != r.confidence {
            return Err(refuse(
                RefusalCode::AggregateMismatch,
                format!(
                    "the cited observations give median {} and confidence {}, proposed {} and {}",
                    agg.price, agg.confidence, r.price, r.confidence
                ),
            ));
        }
        // Against the chain as this node reads it.
        let chain = chain
            .submitter
            .read_index(r.feed_index)
            .await
            .map_err(|e| {
                refuse(
                    RefusalCode::Unavailable,
                    format!("cannot read the hub: {e}"),
                )
            })?;
        let (scaled, observed_at, round) = report_values(spec, &agg, &chain)
            .map_err(|why| refuse(RefusalCode::OutOfBounds, why))?;
        if round != r.round {
            return Err(refuse(
                RefusalCode::RoundMismatch,
                format!(
                    "the hub holds round {}, so the next is {round}, proposed {}",
                    chain.round, r.round
                ),
            ));
        }
        if scaled.to_string() != r.price_scaled || observed_at != r.observed_at {
            return Err(refuse(
                RefusalCode::AggregateMismatch,
                format!(
                    "expected scaled price {scaled} observed at {observed_at}, proposed {} at {}",
                    r.price_scaled, r.observed_at
                ),
            ));
        }
        let now_s = now / 1000;
        if observed_at + u64::from(spec.hub.max_report_age) < now_s {
            return Err(refuse(
                RefusalCode::ObservationStale,
                format!(
                    "observed at {observed_at}, older than the hub's max report age {} s",
                    spec.hub.max_report_age
                ),
            ));
        }
        if !policy::holds(r.reason, feed, &chain, scaled, now_s, skew / 1000 + 1) {
            return Err(refuse(
                RefusalCode::PolicyNotMet,
                format!(
                    "{} does not hold: the hub holds {} (round {}, updated at {})",
                    r.reason.as_str(),
                    chain.price,
                    chain.round,
                    chain.updated_at
                ),
            ));
        }
        self.check_own_view(spec, r, own, &cited, now)?;
        Ok(Report {
            feedIndex: r.feed_index,
            roundId: r.round,
            price: scaled,
            observedAt: u32::try_from(observed_at).unwrap_or(u32::MAX),
        })
    }

    /// This node's own newest-per-source median (its window with the verified
    /// `cited` observations) must lie near the proposal.
    fn check_own_view(
        &self,
        spec: &FeedSpec,
        r: &ProposedReport,
        own: Option<&Window>,
        cited: &[Entry],
        now: u64,
    ) -> Result<(), Refused> {
        let refuse = |code, detail: String| Refusal::of(r, code, detail);
        let mut view = own
            .ok_or_else(|| refuse(RefusalCode::NoOwnView, "no window for the feed".into()))?
            .clone();
        let skew = self.max_clock_skew.as_millis() as u64;
        for e in cited {
            // Older or equal ones are ignored: the window keeps the newest.
            let _ = view.insert(e.seq, e.obs.clone(), now, skew);
        }
        let mine = view
            .aggregate(&spec.config, now, &self.rules)
            .map_err(|e| refuse(RefusalCode::NoOwnView, e.to_string()))?;
        if r.price <= Decimal::ZERO {
            return Err(refuse(RefusalCode::Malformed, "price not positive".into()));
        }
        let bps = ((mine.price - r.price).abs() * Decimal::from(10_000) / r.price).round_dp(1);
        if bps > Decimal::from(self.max_disagreement_bps) {
            return Err(refuse(
                RefusalCode::Disagreement,
                format!(
                    "this node's median of {} sources is {} ({bps} bps away; at most {})",
                    mine.used.len(),
                    mine.price,
                    self.max_disagreement_bps
                ),
            ));
        }
        Ok(())
    }

    /// The observation at `seq`: from this node's window when it holds it,
    /// else from the stream; checked to be an observation of `r`'s feed.
    async fn load(
        &self,
        r: &ProposedReport,
        seq: u64,
        own: Option<&Window>,
    ) -> Result<Entry, Refused> {
        let refuse = |code, detail: String| Refusal::of(r, code, detail);
        if let Some(entry) = own.and_then(|w| w.by_seq(seq)) {
            return Ok(entry.clone());
        }
        let msg = self.obs_stream.direct_get(seq).await.map_err(|e| {
            use async_nats::jetstream::stream::DirectGetErrorKind;
            match e.kind() {
                DirectGetErrorKind::NotFound => refuse(
                    RefusalCode::ObservationMissing,
                    format!("#{seq} is not in ORACLE_OBS"),
                ),
                _ => refuse(RefusalCode::Unavailable, format!("cannot read #{seq}: {e}")),
            }
        })?;
        let obs = Observation::decode(&msg.payload).map_err(|e| {
            refuse(
                RefusalCode::ObservationNotGenuine,
                format!("#{seq} is not an observation: {e}"),
            )
        })?;
        if obs.pair != r.pair || msg.subject.as_str() != obs_subject(&obs.pair, &obs.source) {
            return Err(refuse(
                RefusalCode::ObservationNotGenuine,
                format!(
                    "#{seq} on {} is an observation of {} from {}",
                    msg.subject, obs.pair, obs.source
                ),
            ));
        }
        Ok(Entry { seq, obs })
    }
}
