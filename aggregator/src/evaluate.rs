//! Evaluating one feed: the aggregate of a window, the update policy against
//! the on-chain baseline, and, when an update is due, the report to propose
//! with exactly the observations it was computed from. Pure: the ingest loop
//! records metrics and logs from the result, and the verifier uses
//! [`report_values`] to recompute what an honest leader would propose.

use oracle_common::chain::Report;
use oracle_common::price;
use oracle_common::wire::{ProposedReport, UpdateReason};

use crate::feeds::FeedSpec;
use crate::policy::{self, OnChain};
use crate::window::{Aggregate, Entry, NoQuorum, Rules, Window};

/// A feed due for an update, with everything the proposal and the report
/// record need.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What goes into the proposal.
    pub report: ProposedReport,
    /// What goes on chain.
    pub planned: Report,
    /// The observations used.
    pub used: Vec<Entry>,
    /// The fresh observations rejected, with the reason.
    pub rejected: Vec<(Entry, String)>,
    /// When the aggregate was computed, Unix ms.
    pub computed_at_ms: u64,
    /// Higher goes first when a batch is full.
    pub urgency: u128,
}

/// What evaluating a feed decided.
#[derive(Debug, Clone)]
pub enum Decision {
    /// No quorum of sources.
    NoQuorum(NoQuorum),
    /// An aggregate, but no update due.
    NotDue(Aggregate),
    /// Due, but the hub would skip it (it is never sent): why.
    Withheld(Aggregate, String),
    /// Due: propose it.
    Due(Box<Candidate>),
}

/// The on-chain values of a report of `agg`: the scaled price, the
/// observation time (never before the stored one, which the hub requires),
/// and the round (the stored one + 1). `Err` when the price cannot be scaled
/// or lies outside the hub's bounds.
pub fn report_values(
    spec: &FeedSpec,
    agg: &Aggregate,
    chain: &OnChain,
) -> Result<(i128, u64, u32), String> {
    let scaled = price::to_scaled(agg.price, u32::from(spec.config.decimals))
        .map_err(|e| format!("the aggregate cannot be represented on chain: {e}"))?;
    if scaled <= spec.hub.min_price || scaled >= spec.hub.max_price {
        return Err(format!(
            "aggregate {} outside the feed's sanity bounds ({}, {} scaled)",
            agg.price, spec.hub.min_price, spec.hub.max_price
        ));
    }
    let observed_at = (agg.observed_at_ms / 1000).max(chain.observed_at);
    let round = chain
        .round
        .checked_add(1)
        .ok_or_else(|| "the feed's round cannot advance (u32::MAX)".to_owned())?;
    Ok((scaled, observed_at, round))
}

/// Evaluates one feed at `now_ms`: `forced` asks for an update whatever the
/// policy says (a refresh or an operator's retry).
pub fn evaluate(
    spec: &FeedSpec,
    window: &Window,
    chain: &OnChain,
    now_ms: u64,
    rules: &Rules,
    forced: bool,
) -> Decision {
    match window.aggregate(&spec.config, now_ms, rules) {
        Ok(agg) => decide(spec, agg, chain, now_ms, forced),
        Err(e) => Decision::NoQuorum(e),
    }
}

/// The decision for an aggregate already computed (one per feed, shared by
/// every chain, each with its own policy and on-chain state).
pub fn decide(
    spec: &FeedSpec,
    agg: Aggregate,
    chain: &OnChain,
    now_ms: u64,
    forced: bool,
) -> Decision {
    let decimals = u32::from(spec.config.decimals);
    let Ok(scaled) = price::to_scaled(agg.price, decimals) else {
        return Decision::Withheld(agg, "the aggregate cannot be represented on chain".into());
    };
    let reason = policy::decide(&spec.config, chain, scaled, now_ms / 1000)
        .or(forced.then_some(UpdateReason::OnDemand));
    let Some(reason) = reason else {
        return Decision::NotDue(agg);
    };
    let (scaled, observed_at, round) = match report_values(spec, &agg, chain) {
        Ok(v) => v,
        Err(why) => return Decision::Withheld(agg, why),
    };
    let urgency = match reason {
        UpdateReason::First => u128::MAX,
        UpdateReason::Heartbeat => u128::MAX - 1,
        UpdateReason::OnDemand => u128::MAX - 2,
        UpdateReason::Deviation => policy::deviation_bps(chain.price, scaled),
    };
    let report = ProposedReport {
        pair: spec.config.pair.clone(),
        feed_index: spec.hub.index,
        round,
        price: agg.price,
        price_scaled: scaled.to_string(),
        confidence: agg.confidence,
        observed_at,
        reason,
        used: agg.used.iter().map(|e| e.seq).collect(),
        rejected: agg.rejected.iter().map(|(e, _)| e.seq).collect(),
    };
    let planned = Report {
        feedIndex: spec.hub.index,
        roundId: round,
        price: scaled,
        observedAt: u32::try_from(observed_at).unwrap_or(u32::MAX),
    };
    Decision::Due(Box::new(Candidate {
        report,
        planned,
        used: agg.used,
        rejected: agg.rejected,
        computed_at_ms: now_ms,
        urgency,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submitter::FeedOnHub;
    use oracle_common::wire::Observation;
    use rust_decimal::Decimal;
    use std::time::Duration;

    fn spec() -> FeedSpec {
        FeedSpec {
            config: oracle_common::config::FeedConfig {
                pair: "BTC/USD".parse().unwrap(),
                decimals: 8,
                min_price: 1.into(),
                max_price: 1_000_000.into(),
                sources: ["a", "b", "c"].iter().map(|s| s.parse().unwrap()).collect(),
                fallbacks: vec![],
                min_sources: 2,
                max_age: Duration::from_secs(10),
                deviation_bps: 50,
                heartbeat: Duration::from_secs(60),
                max_report_age: Duration::from_secs(120),
                adapter: None,
            },
            hub: FeedOnHub {
                index: 4,
                decimals: 8,
                min_price: 100_000_000,
                max_price: 100_000_000_000_000,
                max_report_age: 120,
            },
        }
    }

    fn window(prices: &[(&str, i64)], at_ms: u64) -> Window {
        let mut w = Window::default();
        for (i, (s, cents)) in prices.iter().enumerate() {
            let obs = Observation {
                v: 1,
                pair: "BTC/USD".parse().unwrap(),
                source: s.parse().unwrap(),
                price: Decimal::new(*cents, 2),
                bid: None,
                ask: None,
                observed_at_ms: at_ms,
                fetched_at_ms: at_ms,
                fetcher: "t".into(),
                fallback_rank: 0,
                trigger: None,
                market_quote: None,
            };
            w.insert(i as u64 + 10, obs, at_ms, 0).unwrap();
        }
        w
    }

    #[test]
    fn the_first_value_is_due_with_its_inputs_cited() {
        let w = window(
            &[("a", 9_700_000), ("b", 9_700_200), ("c", 9_700_100)],
            5_000_000,
        );
        let Decision::Due(c) = evaluate(
            &spec(),
            &w,
            &OnChain::default(),
            5_000_100,
            &Rules::default(),
            false,
        ) else {
            panic!("not due");
        };
        assert_eq!(c.report.reason, UpdateReason::First);
        assert_eq!((c.report.round, c.report.feed_index), (1, 4));
        assert_eq!(c.report.price_scaled, "9700100000000");
        assert_eq!(c.report.used, vec![10, 11, 12]);
        assert_eq!(c.report.observed_at, 5_000);
        assert_eq!(c.planned.price, 9_700_100_000_000);
    }

    #[test]
    fn quiet_feeds_are_not_due_unless_forced_and_bounds_withhold() {
        let w = window(&[("a", 9_700_000), ("b", 9_700_000)], 5_000_000);
        let chain = OnChain {
            price: 9_700_000_000_000,
            round: 7,
            observed_at: 4_990,
            updated_at: 4_990,
        };
        let r = Rules::default();
        assert!(matches!(
            evaluate(&spec(), &w, &chain, 5_000_000, &r, false),
            Decision::NotDue(_)
        ));
        let Decision::Due(c) = evaluate(&spec(), &w, &chain, 5_000_000, &r, true) else {
            panic!("forced but not due");
        };
        assert_eq!(
            (c.report.reason, c.report.round),
            (UpdateReason::OnDemand, 8)
        );
        let mut tight = spec();
        tight.hub.max_price = 9_700_000_000_000;
        assert!(matches!(
            evaluate(&tight, &w, &OnChain::default(), 5_000_000, &r, false),
            Decision::Withheld(..)
        ));
        let maxed = OnChain {
            round: u32::MAX,
            ..chain
        };
        assert!(matches!(
            evaluate(&spec(), &w, &maxed, 5_000_000, &r, true),
            Decision::Withheld(..)
        ));
    }
}
