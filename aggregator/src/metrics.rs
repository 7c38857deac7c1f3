//! The aggregator's Prometheus metrics, registered once in the process registry.

use oracle_common::config::FeedConfig;
use oracle_common::wire::{RefusalCode, SkipReason, SubmissionStatus};
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry,
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
    /// `oracle_aggregator_reports_total{pair,reason}`: reports put into a batch.
    pub reports: IntCounterVec,
    /// `oracle_aggregator_rejected_total{pair,reason}`: reports not applied: skipped by the
    /// hub (the reason is its error name), or withheld because the hub would skip them
    /// (`OutOfBounds`).
    pub rejected: IntCounterVec,
    /// `oracle_aggregator_submissions_total{status}`: transactions by final status.
    pub submissions: IntCounterVec,
    /// `oracle_aggregator_submission_events_total{status}`: lifecycle events recorded.
    pub submission_events: IntCounterVec,
    /// `oracle_aggregator_replacements_total`: transactions replaced with higher fees.
    pub replacements: IntCounter,
    /// `oracle_aggregator_signer_balance_wei`: the sender's balance (f64, wei).
    pub sender_balance: prometheus::Gauge,
    /// `oracle_aggregator_deviation_bps{pair}`: latest aggregate vs the on-chain value.
    pub deviation: prometheus::GaugeVec,
    /// `oracle_aggregator_confirmation_seconds`: send to receipt.
    pub confirmation: Histogram,
    /// `oracle_aggregator_gas_used`: gas of each submitted batch.
    pub gas_used: Histogram,
    /// `oracle_aggregator_parked{pair}`: 1 while a feed waits for an operator
    /// after `retry_limit` failed submissions.
    pub parked: IntGaugeVec,
    /// `oracle_aggregator_leader`: 1 while this process holds the leader lease.
    pub leader: prometheus::IntGauge,
    /// `oracle_aggregator_onchain_round{pair}`.
    pub round: IntGaugeVec,
    /// `oracle_aggregator_onchain_updated_timestamp_seconds{pair}`.
    pub updated_at: IntGaugeVec,
    /// `oracle_aggregator_onchain_price{pair}`: the hub's latest value, in quote units.
    pub onchain_price: GaugeVec,
    /// `oracle_aggregator_aggregate_price{pair}`: the latest off-chain median.
    pub aggregate_price: GaugeVec,
    /// `oracle_aggregator_pending_since_timestamp_seconds`: when the submission
    /// now waiting for a receipt was first broadcast (0 when none is).
    pub pending_since: Gauge,
    /// `oracle_aggregator_heartbeat_seconds{pair}`: the feed's configured heartbeat.
    pub heartbeat: GaugeVec,
    /// `oracle_aggregator_deviation_threshold_bps{pair}`: the configured deviation trigger.
    pub deviation_threshold: GaugeVec,
    /// `oracle_aggregator_min_sources{pair}`: the configured quorum.
    pub min_sources: IntGaugeVec,
    /// `oracle_aggregator_future_observations_total{pair,source}`: observations
    /// dated beyond the clock skew, rejected.
    pub future: IntCounterVec,
    /// `oracle_aggregator_fetch_requests_total{pair}`: requests to the fetchers
    /// for more sources when the quorum fell short.
    pub fetch_requests: IntCounterVec,
    /// `oracle_aggregator_proposals_total{outcome}`: proposals this node made
    /// as leader (`signed`: the threshold was reached; `no_signer_quorum`).
    pub proposals: IntCounterVec,
    /// `oracle_aggregator_proposal_replies_total{outcome}`: other nodes'
    /// answers to this node's proposals (`signed`, `refused`, `invalid`).
    pub replies: IntCounterVec,
    /// `oracle_aggregator_proposal_seconds`: proposal to threshold signatures.
    pub proposal_seconds: Histogram,
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
    /// `oracle_aggregator_signer_threshold`: signatures the hub needs.
    pub threshold: prometheus::IntGauge,
    /// `oracle_aggregator_leader_changes_total`: times this node took the lease.
    pub leader_changes: IntCounter,
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
                &["pair", "reason"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_rejected_total",
                    "Reports not applied, by reason",
                ),
                &["pair", "reason"],
            )?,
            submissions: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_submissions_total",
                    "Batch transactions by final status",
                ),
                &["status"],
            )?,
            submission_events: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_submission_events_total",
                    "Submission lifecycle events recorded",
                ),
                &["status"],
            )?,
            replacements: IntCounter::new(
                "oracle_aggregator_replacements_total",
                "Transactions replaced with the same nonce and higher fees",
            )?,
            sender_balance: prometheus::Gauge::new(
                "oracle_aggregator_signer_balance_wei",
                "Balance of the account that sends transactions (wei)",
            )?,
            deviation: prometheus::GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_deviation_bps",
                    "Latest aggregate's deviation from the on-chain value (bps)",
                ),
                &["pair"],
            )?,
            confirmation: Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_aggregator_confirmation_seconds",
                    "Time from sending a batch to its receipt",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            )?,
            gas_used: Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_aggregator_gas_used",
                    "Gas used by each batch transaction",
                )
                .buckets(prometheus::exponential_buckets(20_000.0, 2.0, 10)?),
            )?,
            parked: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_parked",
                    "1 while a feed waits for an operator after repeated failed submissions",
                ),
                &["pair"],
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
                &["pair"],
            )?,
            updated_at: IntGaugeVec::new(
                Opts::new(
                    "oracle_aggregator_onchain_updated_timestamp_seconds",
                    "When the feed was last updated on chain (Unix seconds)",
                ),
                &["pair"],
            )?,
            onchain_price: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_onchain_price",
                    "The hub's latest value per feed, in quote units",
                ),
                &["pair"],
            )?,
            aggregate_price: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_aggregate_price",
                    "The latest off-chain aggregate (median) per feed, in quote units",
                ),
                &["pair"],
            )?,
            pending_since: Gauge::new(
                "oracle_aggregator_pending_since_timestamp_seconds",
                "When the submission waiting for a receipt was first broadcast (Unix seconds; 0 when none is)",
            )?,
            heartbeat: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_heartbeat_seconds",
                    "The feed's configured heartbeat (maximum time between updates)",
                ),
                &["pair"],
            )?,
            deviation_threshold: GaugeVec::new(
                Opts::new(
                    "oracle_aggregator_deviation_threshold_bps",
                    "The feed's configured deviation trigger (bps)",
                ),
                &["pair"],
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
                &["outcome"],
            )?,
            replies: IntCounterVec::new(
                Opts::new(
                    "oracle_aggregator_proposal_replies_total",
                    "Other nodes' answers to this node's proposals, by outcome",
                ),
                &["outcome"],
            )?,
            proposal_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "oracle_aggregator_proposal_seconds",
                    "Time from a proposal to holding the threshold of signatures",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
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
            threshold: prometheus::IntGauge::new(
                "oracle_aggregator_signer_threshold",
                "Signatures the hub needs per batch",
            )?,
            leader_changes: IntCounter::new(
                "oracle_aggregator_leader_changes_total",
                "Times this node took the leader lease",
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
        for outcome in ["signed", "no_signer_quorum"] {
            m.proposals.with_label_values(&[outcome]);
        }
        for outcome in ["signed", "refused", "invalid"] {
            m.replies.with_label_values(&[outcome]);
        }
        for code in RefusalCode::ALL {
            m.refused.with_label_values(&[code.as_str()]);
        }
        // Every status from the first scrape, before anything was submitted.
        use SubmissionStatus::{Failed, Pending, Queued, Success};
        for status in [Success, Failed] {
            m.submissions.with_label_values(&[status.as_str()]);
        }
        for status in [Queued, Pending, Success, Failed] {
            m.submission_events.with_label_values(&[status.as_str()]);
        }
        Ok(m)
    }

    /// Exports a feed's configuration and starts its per-feed series at zero,
    /// so dashboards and alerts see every feed from the first scrape.
    pub fn init_feed(&self, feed: &FeedConfig) {
        let pair = feed.pair.to_string();
        let l = [pair.as_str()];
        self.heartbeat
            .with_label_values(&l)
            .set(feed.heartbeat.as_secs_f64());
        self.deviation_threshold
            .with_label_values(&l)
            .set(f64::from(feed.deviation_bps));
        self.min_sources
            .with_label_values(&l)
            .set(i64::try_from(feed.min_sources).unwrap_or(i64::MAX));
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
            self.rejected.with_label_values(&[&pair, reason.as_str()]);
        }
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
