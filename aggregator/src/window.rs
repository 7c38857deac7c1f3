//! Per-feed windows of observations and the aggregate computed from them: the
//! newest observation per source no older than `max_age` and not from the
//! future; outliers dropped by distance from the median (k·MAD, never closer
//! than a floor in bps, and a hard maximum spread); a quorum of distinct
//! surviving sources; the exact decimal median of the survivors; and a
//! confidence interval, the larger distance from the median to the 25th or
//! 75th percentile (Pyth's rule, computed with statrs on f64: it never touches
//! the price itself).
//!
//! Every observation keeps its `ORACLE_OBS` sequence, so that an aggregate
//! names exactly its inputs and another node can recompute it from them
//! ([`aggregate_of`] over a cited set gives what [`Window::aggregate`] gave).

use std::collections::BTreeMap;

use oracle_common::SourceId;
use oracle_common::config::FeedConfig;
use oracle_common::wire::Observation;
use rust_decimal::Decimal;

/// An observation and its place in `ORACLE_OBS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Stream sequence.
    pub seq: u64,
    /// The observation.
    pub obs: Observation,
}

/// The newest observation of each source for one feed.
#[derive(Debug, Default, Clone)]
pub struct Window {
    newest: BTreeMap<SourceId, Entry>,
}

/// The aggregate of one feed at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Exact median of the used prices.
    pub price: Decimal,
    /// Half-width of the interval the middle half of the sources lie in.
    pub confidence: Decimal,
    /// The observations used, one per source (in source order).
    pub used: Vec<Entry>,
    /// Fresh observations dropped as outliers, with the reason.
    pub rejected: Vec<(Entry, String)>,
    /// The newest `observed_at_ms` among the used ones, never later than the
    /// time of the aggregate.
    pub observed_at_ms: u64,
}

/// The outlier rules (from `[aggregator]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Drop a price farther than `k` MADs from the median…
    pub k: Decimal,
    /// …but never closer than this many bps.
    pub min_outlier_bps: u32,
    /// Drop a price farther than this from the median, in bps.
    pub max_spread_bps: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            k: Decimal::from(5),
            min_outlier_bps: 10,
            max_spread_bps: 200,
        }
    }
}

impl Rules {
    /// The rules of an `[aggregator]` section.
    pub fn from_config(c: &oracle_common::config::AggregatorConfig) -> Self {
        Self {
            k: Decimal::from_f64_retain(c.outlier_k).unwrap_or(Decimal::from(5)),
            min_outlier_bps: c.min_outlier_bps,
            max_spread_bps: c.max_spread_bps,
        }
    }
}

/// Splits prices into survivors and outliers (by index) around their median.
pub fn outliers(prices: &[Decimal], rules: &Rules) -> (Vec<usize>, Vec<(usize, String)>) {
    let Some(m) = median(&mut prices.to_vec()) else {
        return (vec![], vec![]);
    };
    let mut deviations: Vec<Decimal> = prices.iter().map(|p| (*p - m).abs()).collect();
    let mad = median(&mut deviations.clone()).unwrap_or(Decimal::ZERO);
    let bps = |b: u32| m * Decimal::from(b) / Decimal::from(10_000);
    let threshold = (rules.k * mad).max(bps(rules.min_outlier_bps));
    let hard = bps(rules.max_spread_bps);
    let (mut keep, mut drop) = (vec![], vec![]);
    for (i, d) in deviations.drain(..).enumerate() {
        if d > hard {
            drop.push((
                i,
                format!(
                    "{} bps from the median {m}, beyond the max spread",
                    (d / m * Decimal::from(10_000)).round_dp(1)
                ),
            ));
        } else if d > threshold {
            drop.push((
                i,
                format!("{d} from the median {m}, beyond {} x MAD ({mad})", rules.k),
            ));
        } else {
            keep.push(i);
        }
    }
    (keep, drop)
}

/// The larger distance from the median to the 25th or 75th percentile.
pub fn confidence(prices: &[Decimal], median: Decimal) -> Decimal {
    use statrs::statistics::{Data, OrderStatistics};
    let values: Vec<f64> = prices
        .iter()
        .filter_map(rust_decimal::prelude::ToPrimitive::to_f64)
        .collect();
    if values.len() < 2 {
        return Decimal::ZERO;
    }
    let mut data = Data::new(values);
    let (p25, p75) = (data.percentile(25), data.percentile(75));
    let m = rust_decimal::prelude::ToPrimitive::to_f64(&median).unwrap_or(0.0);
    let half = (m - p25).abs().max((p75 - m).abs());
    Decimal::from_f64_retain(half)
        .unwrap_or(Decimal::ZERO)
        .round_dp(12)
}

/// Why a feed has no aggregate now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quorum not reached: {have} fresh sources of {need} needed; missing or stale: {}; outliers: {}",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        rejected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
pub struct NoQuorum {
    /// Fresh sources that survived the outlier rules.
    pub have: usize,
    /// Sources needed.
    pub need: usize,
    /// Primary sources with no fresh observation.
    pub missing: Vec<SourceId>,
    /// Sources whose fresh observation was rejected as an outlier.
    pub rejected: Vec<SourceId>,
}

/// An observation the window refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Dated later than this node's clock allows.
    #[error("dated {ahead_ms} ms in the future")]
    Future {
        /// How far ahead of the clock, ms.
        ahead_ms: u64,
    },
    /// Not newer than what the window holds for its source.
    #[error("not newer than the window's observation of its source")]
    NotNewer,
}

/// The aggregate of exactly `fresh` (one entry per source, all inside the
/// feed's window at `at_ms`): outliers removed, the quorum counted on the
/// survivors. What [`Window::aggregate`] computes from the window, and what a
/// verifying node recomputes from the observations a proposal cites.
pub fn aggregate_of(
    feed: &FeedConfig,
    mut fresh: Vec<Entry>,
    at_ms: u64,
    rules: &Rules,
    missing: Vec<SourceId>,
) -> Result<Aggregate, NoQuorum> {
    fresh.sort_by(|a, b| a.obs.source.cmp(&b.obs.source));
    let prices: Vec<Decimal> = fresh.iter().map(|e| e.obs.price).collect();
    let (keep, drop) = outliers(&prices, rules);
    if keep.len() < feed.min_sources {
        return Err(NoQuorum {
            have: keep.len(),
            need: feed.min_sources,
            missing,
            rejected: drop
                .iter()
                .map(|(i, _)| fresh[*i].obs.source.clone())
                .collect(),
        });
    }
    let used: Vec<Entry> = keep.iter().map(|i| fresh[*i].clone()).collect();
    let rejected = drop
        .into_iter()
        .map(|(i, why)| (fresh[i].clone(), why))
        .collect();
    let mut survivors: Vec<Decimal> = used.iter().map(|e| e.obs.price).collect();
    let price = median(&mut survivors).ok_or(NoQuorum {
        have: 0,
        need: feed.min_sources,
        missing: Vec::new(),
        rejected: Vec::new(),
    })?;
    let observed_at_ms = used
        .iter()
        .map(|e| e.obs.observed_at_ms)
        .max()
        .unwrap_or(0)
        .min(at_ms);
    Ok(Aggregate {
        price,
        confidence: confidence(&survivors, price),
        used,
        rejected,
        observed_at_ms,
    })
}

/// Whether an observation is inside a feed's window at `at_ms`: not older
/// than `max_age`.
pub fn is_fresh(feed: &FeedConfig, obs: &Observation, at_ms: u64) -> bool {
    at_ms.saturating_sub(obs.observed_at_ms) <= feed.max_age.as_millis() as u64
}

impl Window {
    /// Keeps `obs` (sequence `seq`) if it is newer than what the window holds
    /// for its source and not dated beyond `now_ms + skew_ms`.
    pub fn insert(
        &mut self,
        seq: u64,
        obs: Observation,
        now_ms: u64,
        skew_ms: u64,
    ) -> Result<(), Refused> {
        if obs.observed_at_ms > now_ms + skew_ms {
            return Err(Refused::Future {
                ahead_ms: obs.observed_at_ms - now_ms,
            });
        }
        match self.newest.get(&obs.source) {
            Some(current) if current.obs.observed_at_ms >= obs.observed_at_ms => {
                Err(Refused::NotNewer)
            }
            _ => {
                self.newest.insert(obs.source.clone(), Entry { seq, obs });
                Ok(())
            }
        }
    }

    /// The window's entry with stream sequence `seq`, if it still holds it.
    pub fn by_seq(&self, seq: u64) -> Option<&Entry> {
        self.newest.values().find(|e| e.seq == seq)
    }

    /// How many of the feed's sources have an observation fetched at or after `since_ms`.
    pub fn fetched_since(&self, feed: &FeedConfig, since_ms: u64) -> usize {
        feed.sources
            .iter()
            .chain(feed.fallbacks.iter())
            .filter(|s| {
                self.newest
                    .get(*s)
                    .is_some_and(|e| e.obs.fetched_at_ms >= since_ms)
            })
            .count()
    }

    /// Drops observations older than the feed's `max_age` (bounded memory).
    pub fn prune(&mut self, feed: &FeedConfig, now_ms: u64) {
        self.newest.retain(|_, e| is_fresh(feed, &e.obs, now_ms));
    }

    /// The aggregate of the fresh observations of the feed's sources, outliers
    /// removed; the quorum counts the survivors.
    pub fn aggregate(
        &self,
        feed: &FeedConfig,
        now_ms: u64,
        rules: &Rules,
    ) -> Result<Aggregate, NoQuorum> {
        let mut fresh = Vec::with_capacity(feed.sources.len() + feed.fallbacks.len());
        let mut missing = Vec::new();
        // Primaries, then fallbacks (only polled when primaries fail); only
        // primaries are reported missing.
        let primaries = feed.sources.iter().map(|s| (s, true));
        for (source, primary) in primaries.chain(feed.fallbacks.iter().map(|s| (s, false))) {
            match self.newest.get(source) {
                Some(e) if is_fresh(feed, &e.obs, now_ms) => fresh.push(e.clone()),
                _ if primary => missing.push(source.clone()),
                _ => {}
            }
        }
        aggregate_of(feed, fresh, now_ms, rules, missing)
    }
}

/// The exact median: the middle value, or the mean of the two middle values
/// (exact in decimal arithmetic). `None` for no values.
pub fn median(values: &mut [Decimal]) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[mid])
    } else {
        Some((values[mid - 1] + values[mid]) / Decimal::TWO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::time::Duration;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn feed(sources: &[&str], min: usize) -> FeedConfig {
        FeedConfig {
            pair: "BTC/USD".parse().unwrap(),
            decimals: 8,
            min_price: 1.into(),
            max_price: 1_000_000.into(),
            sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
            fallbacks: vec![],
            min_sources: min,
            max_age: Duration::from_secs(10),
            deviation_bps: 50,
            heartbeat: Duration::from_secs(60),
            max_report_age: Duration::from_secs(120),
            adapter: None,
        }
    }

    fn obs(source: &str, price: &str, at: u64) -> Observation {
        Observation {
            v: 1,
            pair: "BTC/USD".parse().unwrap(),
            source: source.parse().unwrap(),
            price: d(price),
            bid: None,
            ask: None,
            observed_at_ms: at,
            fetched_at_ms: at,
            fetcher: "t".into(),
            fallback_rank: 0,
            trigger: None,
            market_quote: None,
        }
    }

    #[test]
    fn median_is_exact() {
        assert_eq!(median(&mut [d("3"), d("1"), d("2")]), Some(d("2")));
        assert_eq!(median(&mut [d("1.1"), d("1.2")]), Some(d("1.15")));
        assert_eq!(
            median(&mut [d("97123.41"), d("97123.40"), d("97123.45"), d("97123.44")]),
            Some(d("97123.425"))
        );
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn median_ignores_order() {
        let base = [d("5"), d("1"), d("4"), d("2"), d("3"), d("9")];
        let expected = median(&mut base.clone());
        let mut rotated = base;
        for _ in 0..base.len() {
            rotated.rotate_left(1);
            assert_eq!(median(&mut rotated.clone()), expected);
        }
    }

    /// Inserts with a clock far enough ahead that nothing is from the future.
    fn put(w: &mut Window, o: Observation) -> bool {
        let seq = o.observed_at_ms * 100 + u64::from(o.source.as_str().as_bytes()[0]);
        w.insert(seq, o, u64::MAX / 2, 0).is_ok()
    }

    #[test]
    fn uses_newest_per_source_inside_max_age() {
        let f = feed(&["a", "b", "c"], 2);
        let mut w = Window::default();
        assert!(put(&mut w, obs("a", "100", 1_000)));
        assert!(put(&mut w, obs("a", "101", 2_000)));
        assert!(
            !put(&mut w, obs("a", "99", 1_500)),
            "older observation must not replace newer"
        );
        put(&mut w, obs("b", "103", 2_000));
        put(&mut w, obs("c", "500", 1_000));
        // At 12_000 with max_age 10 s, c (age 11 s) is stale; a and b (age 10 s) are fresh.
        let agg = w.aggregate(&f, 12_000, &Rules::default()).unwrap();
        assert_eq!(agg.used.len(), 2);
        assert_eq!(agg.price, d("102"));
        assert_eq!(agg.observed_at_ms, 2_000);
    }

    #[test]
    fn no_quorum_names_missing_sources() {
        let f = feed(&["a", "b", "c"], 2);
        let mut w = Window::default();
        put(&mut w, obs("a", "100", 1_000));
        put(&mut w, obs("b", "100", 1_000));
        let err = w.aggregate(&f, 20_000, &Rules::default()).unwrap_err();
        assert_eq!(err.have, 0);
        assert_eq!(err.missing.len(), 3);
        let err = {
            put(&mut w, obs("a", "100", 19_000));
            w.aggregate(&f, 20_000, &Rules::default()).unwrap_err()
        };
        assert_eq!(err.have, 1);
        assert_eq!(
            err.missing,
            vec!["b".parse().unwrap(), "c".parse().unwrap()]
        );
        assert!(err.to_string().contains("b, c"));
        assert!(err.rejected.is_empty());
    }

    #[test]
    fn sources_outside_the_feed_are_ignored() {
        let f = feed(&["a", "b"], 2);
        let mut w = Window::default();
        put(&mut w, obs("a", "100", 1_000));
        put(&mut w, obs("z", "1", 1_000));
        assert!(w.aggregate(&f, 1_000, &Rules::default()).is_err());
    }

    #[test]
    fn fallbacks_count_towards_quorum() {
        let mut f = feed(&["a", "b"], 2);
        f.fallbacks = vec!["c".parse().unwrap()];
        let mut w = Window::default();
        put(&mut w, obs("a", "100", 1_000));
        put(&mut w, obs("c", "102", 1_000));
        let agg = w.aggregate(&f, 1_000, &Rules::default()).unwrap();
        assert_eq!(agg.price, d("101"));
        // Only primaries are reported missing.
        w = Window::default();
        put(&mut w, obs("a", "100", 1_000));
        assert_eq!(
            w.aggregate(&f, 1_000, &Rules::default())
                .unwrap_err()
                .missing,
            vec!["b".parse().unwrap()]
        );
    }

    #[test]
    fn an_outlier_is_rejected_with_its_reason() {
        let f = feed(&["a", "b", "c", "d"], 3);
        let mut w = Window::default();
        for (s, p) in [
            ("a", "100.00"),
            ("b", "100.02"),
            ("c", "99.98"),
            ("d", "150"),
        ] {
            put(&mut w, obs(s, p, 1_000));
        }
        let agg = w.aggregate(&f, 1_000, &Rules::default()).unwrap();
        assert_eq!(agg.price, d("100.00"));
        assert_eq!(agg.rejected.len(), 1);
        assert_eq!(agg.rejected[0].0.obs.source.as_str(), "d");
        assert!(
            agg.rejected[0].1.contains("max spread"),
            "{}",
            agg.rejected[0].1
        );
        // Outliers do not count towards the quorum.
        let f4 = feed(&["a", "b", "c", "d"], 4);
        assert_eq!(
            w.aggregate(&f4, 1_000, &Rules::default()).unwrap_err().have,
            3
        );
    }

    #[test]
    fn identical_prices_do_not_make_every_difference_an_outlier() {
        let f = feed(&["a", "b", "c", "d"], 4);
        let mut w = Window::default();
        for (s, p) in [("a", "100"), ("b", "100"), ("c", "100"), ("d", "100.05")] {
            put(&mut w, obs(s, p, 1_000));
        }
        // MAD is 0; the 10 bps floor keeps d (5 bps away).
        let agg = w.aggregate(&f, 1_000, &Rules::default()).unwrap();
        assert_eq!(agg.used.len(), 4);
    }

    #[test]
    fn confidence_is_the_wider_half_of_the_interquartile_range() {
        let prices = [d("100"), d("101"), d("102"), d("103"), d("110")];
        let c = confidence(&prices, d("102"));
        assert!(c > Decimal::ZERO && c <= d("8"), "{c}");
        assert_eq!(confidence(&[d("100")], d("100")), Decimal::ZERO);
        assert_eq!(
            confidence(&[d("100"), d("100"), d("100")], d("100")),
            Decimal::ZERO
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn price() -> impl Strategy<Value = Decimal> {
            (9_000_000i64..11_000_000).prop_map(|c| Decimal::new(c, 2))
        }

        /// Honest venues agree within ±0.5% of one another.
        fn honest_price() -> impl Strategy<Value = Decimal> {
            (9_950_000i64..10_050_000).prop_map(|c| Decimal::new(c, 2))
        }

        proptest! {
            #[test]
            fn median_is_order_independent_and_within_range(mut v in prop::collection::vec(price(), 1..15)) {
                let m = median(&mut v.clone()).unwrap();
                let (lo, hi) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
                prop_assert!(lo <= m && m <= hi);
                v.reverse();
                prop_assert_eq!(median(&mut v.clone()).unwrap(), m);
                v.rotate_left(1);
                prop_assert_eq!(median(&mut v).unwrap(), m);
            }

            #[test]
            fn wild_minority_does_not_move_the_result_beyond_the_honest_range(
                honest in prop::collection::vec(honest_price(), 5..9),
                wild in prop::collection::vec(prop_oneof![1i64..1_000, 1_000_000_000i64..9_000_000_000].prop_map(|c| Decimal::new(c, 2)), 1..3),
            ) {
                let f = feed(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"], 3);
                let mut w = Window::default();
                let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"];
                for (i, p) in honest.iter().chain(wild.iter()).enumerate() {
                    put(&mut w, obs(names[i], &p.to_string(), 1_000));
                }
                let agg = w.aggregate(&f, 1_000, &Rules::default()).unwrap();
                let (lo, hi) = (*honest.iter().min().unwrap(), *honest.iter().max().unwrap());
                prop_assert!(lo <= agg.price && agg.price <= hi, "{} outside {lo}..{hi}", agg.price);
                // The wild values are far beyond the max spread: always rejected.
                for p in &wild {
                    prop_assert!(agg.rejected.iter().any(|(e, _)| e.obs.price == *p), "{p} not rejected");
                }
            }

            #[test]
            fn aggregate_is_order_independent(prices in prop::collection::vec(price(), 3..8)) {
                let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
                let f = feed(&names[..prices.len()], 2);
                let mut forward = Window::default();
                let mut backward = Window::default();
                for (i, p) in prices.iter().enumerate() {
                    put(&mut forward, obs(names[i], &p.to_string(), 1_000));
                }
                for (i, p) in prices.iter().enumerate().rev() {
                    put(&mut backward, obs(names[i], &p.to_string(), 1_000));
                }
                let summary = |w: &Window| match w.aggregate(&f, 1_000, &Rules::default()) {
                    Ok(a) => Ok((a.price, a.confidence, a.used.len())),
                    Err(e) => Err(e.have),
                };
                prop_assert_eq!(summary(&forward), summary(&backward));
            }
        }
    }

    #[test]
    fn an_observation_from_the_future_is_refused_not_kept() {
        let f = feed(&["a", "b"], 2);
        let mut w = Window::default();
        // Ten seconds ahead of a clock at 1_000_000 with a 2 s skew: refused.
        assert_eq!(
            w.insert(1, obs("a", "100", 1_010_000), 1_000_000, 2_000),
            Err(Refused::Future { ahead_ms: 10_000 })
        );
        // Inside the skew: kept, and the aggregate's time never runs ahead of now.
        w.insert(2, obs("a", "100", 1_001_500), 1_000_000, 2_000)
            .unwrap();
        w.insert(3, obs("b", "102", 999_000), 1_000_000, 2_000)
            .unwrap();
        let agg = w.aggregate(&f, 1_000_000, &Rules::default()).unwrap();
        assert_eq!(agg.observed_at_ms, 1_000_000);
        assert_eq!(w.by_seq(3).unwrap().obs.source.as_str(), "b");
        assert!(w.by_seq(1).is_none());
    }

    #[test]
    fn a_cited_set_gives_the_window_aggregate_and_names_its_inputs() {
        let f = feed(&["a", "b", "c", "d"], 3);
        let mut w = Window::default();
        for (s, p) in [
            ("a", "100.00"),
            ("b", "100.02"),
            ("c", "99.98"),
            ("d", "150"),
        ] {
            put(&mut w, obs(s, p, 1_000));
        }
        let agg = w.aggregate(&f, 1_000, &Rules::default()).unwrap();
        let cited: Vec<Entry> = agg
            .used
            .iter()
            .cloned()
            .chain(agg.rejected.iter().map(|(e, _)| e.clone()))
            .rev()
            .collect();
        let again = aggregate_of(&f, cited, 1_000, &Rules::default(), vec![]).unwrap();
        assert_eq!(again, agg);
        // Leaving the outlier out changes nothing but the rejected list; leaving
        // an honest source out changes the price.
        let honest: Vec<Entry> = agg.used.clone();
        let without = aggregate_of(&f, honest, 1_000, &Rules::default(), vec![]).unwrap();
        assert_eq!(without.price, agg.price);
        assert!(without.rejected.is_empty());
        let partial: Vec<Entry> = agg.used[..2]
            .iter()
            .cloned()
            .chain(agg.rejected.iter().map(|(e, _)| e.clone()))
            .collect();
        assert!(aggregate_of(&f, partial, 1_000, &Rules::default(), vec![]).is_err());
    }

    #[test]
    fn prune_bounds_memory() {
        let f = feed(&["a", "b"], 1);
        let mut w = Window::default();
        put(&mut w, obs("a", "100", 1_000));
        put(&mut w, obs("b", "100", 50_000));
        w.prune(&f, 55_000);
        assert_eq!(w.newest.len(), 1);
    }
}
