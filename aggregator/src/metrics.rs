//! The aggregator's Prometheus metrics, registered once in the process registry.

use oracle_common::config::{ChainConfig, FeedConfig};
use oracle_common::wire::{RefusalCode, SkipReason, SubmissionStatus};
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

/// Every metric the aggregator exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `oracle_aggregator_observations_consumed_total{pair,source}`.
    pub consumed: IntCounterVec,
    /// `oracle_aggregator_invalid_messages_total`: messages terminated as unreadable.
    pub invalid: IntCounter,
    /// `oracle_aggregator_quorum_failures_total{pair}`: evaluations without quorum.
    pub no_quorum: IntCounterVec,
    /// `oracle_aggregator_outliers_total{pair,source}`: observations rejected as outliers.
    pub outliers: IntCounterVec,
    /// `oracle_aggregator_sources{pair}`: sources in the latest aggregate.
    pub sources: IntGaugeVec,
    /// `oracle_aggregator_reports_total{chain,pair,reason}`: reports put into a batch.
    pub reports: IntCounterVec,
    /// `oracle_aggregator_rejected_total{chain,pair,reason}`: reports not applied: skipped by the
    /// hub (the reason is its error name), or withheld because the hub would skip them
    /// (`OutOfBounds`).
    pub rejected: IntCounterVec,
    /// `oracle_aggregator_submissions_total{chain,status}`: transactions by final status.
    pub submissions: IntCounterVec,
    /// `oracle_aggregator_submission_events_total{chain,status}`: lifecycle events recorded.
    pub submission_events: IntCounterVec,
    /// `oracle_aggregator_replacements_total{chain}`: transactions replaced with higher fees.
    pub replacements: IntCounterVec,
    /// `oracle_aggregator_signer_balance_wei{chain}`: the sender's balance (f64, wei).
    pub sender_balance: GaugeVec,
    /// `oracle_aggregator_deviation_bps{chain,pair}`: latest aggregate vs the on-chain value.
    pub deviation: prometheus::GaugeVec,
    /// `oracle_aggregator_confirmation_seconds{chain}`: send to receipt.
    pub confirmation: HistogramVec,
    /// `oracle_aggregator_gas_used{chain}`: gas of each submitted batch.
    pub gas_used: HistogramVec,
    /// `oracle_aggregator_parked{chain,pair}`: 1 while a feed waits for an operator
    /// after `retry_limit` failed submissions.
    pub parked: IntGaugeVec,
    /// `oracle_aggregator_leader`: 1 while this process holds the leader lease.
    pub leader: prometheus::IntGauge,
    /// `oracle_aggregator_onchain_round{chain,pair}`.
    pub round: IntGaugeVec,
    /// `oracle_aggregator_onchain_updated_timestamp_seconds{chain,pair}`.
    pub updated_at: IntGaugeVec,
    /// `oracle_aggregator_onchain_price{chain,pair}`: the hub's latest value, in quote units.
    pub onchain_price: GaugeVec,
    /// `oracle_aggregator_aggregate_price{pair}`: the latest off-chain median.
    pub aggregate_price: GaugeVec,
    /// `oracle_aggregator_pending_since_timestamp_seconds{chain}`: when the submission
    /// now waiting for a receipt was first broadcast (0 when none is).
    pub pending_since: GaugeVec,
    /// `oracle_aggregator_heartbeat_seconds{chain,pair}`: the feed's configured heartbeat.
    pub heartbeat: GaugeVec,
    /// `oracle_aggregator_deviation_threshold_bps{chain,pair}`: the configured deviation trigger.
    pub deviation_threshold: GaugeVec,
    /// `oracle_aggregator_min_sources{pair}`: the configured quorum.
    pub min_sources: IntGaugeVec,
    /// `oracle_aggregator_future_observations_total{pair,source}`: observations
    /// dated beyond the clock skew, rejected.
    pub future: IntCounterVec,
    /// `oracle_aggregator_fetch_requests_total{pair}`: requests to the fetchers
    /// for more sources when the quorum fell short.
    pub fetch_requests: IntCounterVec,
    /// `oracle_aggregator_proposals_total{chain,outcome}`: proposals this node made
    /// as leader (`signed`: the threshold was reached; `no_signer_quorum`).
    pub proposals: IntCounterVec,
    /// `oracle_aggregator_proposal_replies_total{outcome}`: other nodes'
    /// answers to this node's proposals (`signed`, `refused`, `invalid`).
    pub replies: IntCounterVec,
    /// `oracle_aggregator_proposal_seconds{chain}`: proposal to threshold signatures.
    pub proposal_seconds: HistogramVec,
    /// `oracle_aggregator_proposals_signed_total`: other nodes' proposals this
    /// node verified and signed.
    pub signed: IntCounter,
    /// `oracle_aggregator_proposals_refused_total{reason}`: other nodes'
    /// proposals this node refused, by reason.
    pub refused: IntCounterVec,
    /// `oracle_aggregator_verification_seconds`: verifying one proposal.
    pub verification: Histogram,
    /// `oracle_aggregator_evaluation_seconds{scope}`: one evaluation pass
    /// (window pruning, aggregate and update policy) over every feed (`all`,
    /// the tick) or over the feeds new observations touched (`touched`).
    pub evaluation: HistogramVec,
    /// `oracle_aggregator_signer_threshold{chain}`: signatures the hub needs.
    pub threshold: IntGaugeVec,
    /// `oracle_aggregator_leader_changes_total`: times this node took the lease.
    pub leader_changes: IntCounter,
    /// `oracle_aggregator_chain_up{chain}`: 1 while the chain's RPC answers.
    pub chain_up: IntGaugeVec,
    /// `oracle_aggregator_chain_head{chain}`: the latest block seen.
    pub chain_head: IntGaugeVec,
    /// `oracle_aggregator_pending_transactions{chain}`: this node's
    /// transactions waiting for a receipt or for their confirmations.
    pub pending_transactions: IntGaugeVec,
    /// `oracle_aggregator_min_sender_balance_wei{chain}`: the configured
    /// balance below which the sender must be topped up.
    pub min_sender_balance: GaugeVec,
    /// `oracle_aggregator_reorged_total{chain}`: included transactions a
    /// reorg dropped (their submissions went back to `pending`).
    pub reorged: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            consumed: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_observations_consumed_total",
                    "Observations read from ORACLE_OBS",
                ),
                &["pair", "source"],
            )?,
            invalid: IntCounter::new(
                "oracle_aggregator_invalid_messages_total",
                "Messages on ORACLE_OBS that could not be read (terminated)",
            )?,
            no_quorum: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_quorum_failures_total",
                    "Evaluations with too few fresh sources",
                ),
                &["pair"],
            )?,
            outliers: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_outliers_total",
                    "Observations rejected as outliers",
                ),
                &["pair", "source"],
            )?,
            sources: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_sources",
                    "Fresh sources in the latest evaluation",
                ),
                &["pair"],
            )?,
            reports: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_reports_total",
                    "Reports put into a batch, by trigger",
                ),
                &["chain", "pair", "reason"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_rejected_total",
                    "Reports not applied, by reason",
                ),
                &["chain", "pair", "reason"],
            )?,
            submissions: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_submissions_total",
                    "Batch transactions by final status",
                ),
                &["chain", "status"],
            )?,
            submission_events: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_submission_events_total",
                    "Submission lifecycle events recorded",
                ),
                &["chain", "status"],
            )?,
            replacements: IntCounterVec::new(
                Opts::new(
                "oracle_aggregator_replacements_total",
                "Transactions replaced with the same nonce and higher fees"),
                &["chain"],
            )?,
            sender_balance: GaugeVec::new(
                Opts::new(
                "oracle_aggregator_signer_balance_wei",
                "Balance of the account that sends transactions (wei)"),
                &["chain"],
            )?,
            deviation: prometheus::GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_deviation_bps",
                    "Latest aggregate's deviation from the on-chain value (bps)",
                ),
                &["chain", "pair"],
            )?,
            confirmation: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_aggregator_confirmation_seconds",
                    "Time from sending a batch to its receipt",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                &["chain"],
            )?,
            gas_used: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_aggregator_gas_used",
                    "Gas used by each batch transaction",
                )
                .buckets(prometheus::exponential_buckets(20_000.0, 2.0, 10)?),
                &["chain"],
            )?,
            parked: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_parked",
                    "1 while a feed waits for an operator after repeated failed submissions",
                ),
                &["chain", "pair"],
            )?,
            leader: prometheus::IntGauge::new(
                "oracle_aggregator_leader",
                "1 while this aggregator holds the leader lease and submits",
            )?,
            round: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_onchain_round",
                    "Latest on-chain round per feed",
                ),
                &["chain", "pair"],
            )?,
            updated_at: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_onchain_updated_timestamp_seconds",
                    "When the feed was last updated on chain (Unix seconds)",
                ),
                &["chain", "pair"],
            )?,
            onchain_price: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_onchain_price",
                    "The hub's latest value per feed, in quote units",
                ),
                &["chain", "pair"],
            )?,
            aggregate_price: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_aggregate_price",
                    "The latest off-chain aggregate (median) per feed, in quote units",
                ),
                &["pair"],
            )?,
            pending_since: GaugeVec::new(
                Opts::new(
                "oracle_aggregator_pending_since_timestamp_seconds",
                "When the submission waiting for a receipt was first broadcast (Unix seconds; 0 when none is)"),
                &["chain"],
            )?,
            heartbeat: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_heartbeat_seconds",
                    "The feed's configured heartbeat (maximum time between updates)",
                ),
                &["chain", "pair"],
            )?,
            deviation_threshold: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_deviation_threshold_bps",
                    "The feed's configured deviation trigger (bps)",
                ),
                &["chain", "pair"],
            )?,
            min_sources: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_min_sources",
                    "The feed's configured quorum (fresh sources needed)",
                ),
                &["pair"],
            )?,
            future: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_future_observations_total",
                    "Observations dated beyond the allowed clock skew, rejected",
                ),
                &["pair", "source"],
            )?,
            fetch_requests: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_fetch_requests_total",
                    "Requests to the fetchers for more sources when the quorum fell short",
                ),
                &["pair"],
            )?,
            proposals: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_proposals_total",
                    "Proposals made as leader, by outcome (signed: threshold reached)",
                ),
                &["chain", "outcome"],
            )?,
            replies: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_proposal_replies_total",
                    "Other nodes' answers to this node's proposals, by outcome",
                ),
                &["outcome"],
            )?,
            proposal_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_aggregator_proposal_seconds",
                    "Time from a proposal to holding the threshold of signatures",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["chain"],
            )?,
            signed: IntCounter::new(
                "oracle_aggregator_proposals_signed_total",
                "Other nodes' proposals this node verified and signed",
            )?,
            refused: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_proposals_refused_total",
                    "Other nodes' proposals this node refused to sign, by reason",
                ),
                &["reason"],
            )?,
            verification: Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_aggregator_verification_seconds",
                    "Time to verify one proposal (stream and chain reads included)",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )?,
            evaluation: HistogramVec::new(
                HistogramOpts::new(
                    "oracle_aggregator_evaluation_seconds",
                    "One evaluation pass over the feeds (every feed, or those observations touched)",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015,
                    0.02, 0.025, 0.05, 0.1, 0.25,
                ]),
                &["scope"],
            )?,
            threshold: IntGaugeVec::new(
                Opts::new(
                "oracle_aggregator_signer_threshold",
                "Signatures the hub needs per batch"),
                &["chain"],
            )?,
            leader_changes: IntCounter::new(
                "oracle_aggregator_leader_changes_total",
                "Times this node took the leader lease",
            )?,
            chain_up: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_chain_up",
                    "1 while the chain's RPC answers this node",
                ),
                &["chain"],
            )?,
            chain_head: IntGaugeVec::new(
                Opts::new("oracle_aggregator_chain_head", "Latest block seen per chain"),
                &["chain"],
            )?,
            pending_transactions: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_pending_transactions",
                    "This node's transactions awaiting a receipt or their confirmations",
                ),
                &["chain"],
            )?,
            min_sender_balance: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_min_sender_balance_wei",
                    "Configured sender balance below which it must be topped up (wei)",
                ),
                &["chain"],
            )?,
            reorged: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_reorged_total",
                    "Included transactions dropped by a reorg (back to pending)",
                ),
                &["chain"],
            )?,
        };
        registry.register(Box::new(m.consumed.clone()))?;
        registry.register(Box::new(m.invalid.clone()))?;
        registry.register(Box::new(m.no_quorum.clone()))?;
        registry.register(Box::new(m.outliers.clone()))?;
        registry.register(Box::new(m.sources.clone()))?;
        registry.register(Box::new(m.reports.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.submissions.clone()))?;
        registry.register(Box::new(m.submission_events.clone()))?;
        registry.register(Box::new(m.replacements.clone()))?;
        registry.register(Box::new(m.sender_balance.clone()))?;
        registry.register(Box::new(m.deviation.clone()))?;
        registry.register(Box::new(m.confirmation.clone()))?;
        registry.register(Box::new(m.gas_used.clone()))?;
        registry.register(Box::new(m.parked.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        registry.register(Box::new(m.round.clone()))?;
        registry.register(Box::new(m.updated_at.clone()))?;
        registry.register(Box::new(m.onchain_price.clone()))?;
        registry.register(Box::new(m.aggregate_price.clone()))?;
        registry.register(Box::new(m.pending_since.clone()))?;
        registry.register(Box::new(m.heartbeat.clone()))?;
        registry.register(Box::new(m.deviation_threshold.clone()))?;
        registry.register(Box::new(m.min_sources.clone()))?;
        registry.register(Box::new(m.future.clone()))?;
        registry.register(Box::new(m.fetch_requests.clone()))?;
        registry.register(Box::new(m.proposals.clone()))?;
        registry.register(Box::new(m.replies.clone()))?;
        registry.register(Box::new(m.proposal_seconds.clone()))?;
        registry.register(Box::new(m.signed.clone()))?;
        registry.register(Box::new(m.refused.clone()))?;
        registry.register(Box::new(m.verification.clone()))?;
        registry.register(Box::new(m.evaluation.clone()))?;
        registry.register(Box::new(m.threshold.clone()))?;
        registry.register(Box::new(m.leader_changes.clone()))?;
        registry.register(Box::new(m.chain_up.clone()))?;
        registry.register(Box::new(m.chain_head.clone()))?;
        registry.register(Box::new(m.pending_transactions.clone()))?;
        registry.register(Box::new(m.min_sender_balance.clone()))?;
        registry.register(Box::new(m.reorged.clone()))?;
        for outcome in ["signed", "refused", "invalid"] {
            m.replies.with_label_values(&[outcome]);
        }
        for code in RefusalCode::ALL {
            m.refused.with_label_values(&[code.as_str()]);
        }
        Ok(m)
    }

    /// Starts a chain's series, so dashboards and alerts see every chain from
    /// the first scrape, before anything was submitted.
    pub fn init_chain(&self, chain: &ChainConfig) {
        let c = chain.name.as_str();
        for outcome in ["signed", "no_signer_quorum"] {
            self.proposals.with_label_values(&[c, outcome]);
        }
        use SubmissionStatus::{Failed, Pending, Queued, Success};
        for status in [Success, Failed] {
            self.submissions.with_label_values(&[c, status.as_str()]);
        }
        for status in [Queued, Pending, Success, Failed] {
            self.submission_events
                .with_label_values(&[c, status.as_str()]);
        }
        self.replacements.with_label_values(&[c]);
        self.reorged.with_label_values(&[c]);
        self.pending_since.with_label_values(&[c]).set(0.0);
        self.pending_transactions.with_label_values(&[c]).set(0);
        self.chain_up.with_label_values(&[c]);
        self.min_sender_balance
            .with_label_values(&[c])
            .set(chain.min_sender_balance_eth * 1e18);
    }

    /// Exports a feed's configuration on `chain` (its policy there) and
    /// starts the feed's per-chain series at zero.
    pub fn init_chain_feed(&self, chain: &str, feed: &FeedConfig) {
        let pair = feed.pair.to_string();
        let l = [chain, pair.as_str()];
        self.heartbeat
            .with_label_values(&l)
            .set(feed.heartbeat.as_secs_f64());
        self.deviation_threshold
            .with_label_values(&l)
            .set(f64::from(feed.deviation_bps));
        self.parked.with_label_values(&l).set(0);
        // Withheld here (OutOfBounds) or skipped by the hub (its reason).
        for reason in [
            SkipReason::OutOfBounds,
            SkipReason::FeedPaused,
            SkipReason::UnexpectedRound,
            SkipReason::ObservationTooOld,
            SkipReason::ObservationInFuture,
            SkipReason::ReportTooOld,
            SkipReason::UnknownFeedIndex,
        ] {
            self.rejected
                .with_label_values(&[chain, &pair, reason.as_str()]);
        }
    }

    /// Exports a feed's chain-independent configuration and starts its
    /// per-feed series at zero.
    pub fn init_feed(&self, feed: &FeedConfig) {
        let pair = feed.pair.to_string();
        let l = [pair.as_str()];
        self.min_sources
            .with_label_values(&l)
            .set(i64::try_from(feed.min_sources).unwrap_or(i64::MAX));
        self.fetch_requests.with_label_values(&l);
        self.no_quorum.with_label_values(&l);
        self.sources.with_label_values(&l);
        for source in feed.sources.iter().chain(&feed.fallbacks) {
            self.outliers.with_label_values(&[&pair, source.as_str()]);
            self.consumed.with_label_values(&[&pair, source.as_str()]);
            self.future.with_label_values(&[&pair, source.as_str()]);
        }
    }
}
