//! Per-feed windows of observations and the aggregate computed from them: the
//! newest observation per source no older than `max_age`, a quorum of distinct
//! sources, and the exact decimal median.

use std::collections::BTreeMap;

use oracle_common::SourceId;
use oracle_common::config::FeedConfig;
use oracle_common::wire::Observation;
use rust_decimal::Decimal;

/// The newest observation of each source for one feed.
#[derive(Debug, Default, Clone)]
pub struct Window {
    newest: BTreeMap<SourceId, Observation>,
}

/// The aggregate of one feed at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Exact median of the used prices.
    pub price: Decimal,
    /// The observations used, one per source.
    pub used: Vec<Observation>,
    /// The newest `observed_at_ms` among them.
    pub observed_at_ms: u64,
}

/// Why a feed has no aggregate now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quorum not reached: {have} fresh sources of {need} needed; missing or stale: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
pub struct NoQuorum {
    /// Fresh sources present.
    pub have: usize,
    /// Sources needed.
    pub need: usize,
    /// Configured sources with no fresh observation.
    pub missing: Vec<SourceId>,
}

impl Window {
    /// Keeps `obs` if it is newer than what the window holds for its source.
    /// Returns whether it was kept.
    pub fn insert(&mut self, obs: Observation) -> bool {
        match self.newest.get(&obs.source) {
            Some(current) if current.observed_at_ms >= obs.observed_at_ms => false,
            _ => {
                self.newest.insert(obs.source.clone(), obs);
                true
            }
        }
    }

    /// Drops observations older than the feed's `max_age` (bounded memory).
    pub fn prune(&mut self, feed: &FeedConfig, now_ms: u64) {
        let max_age = feed.max_age.as_millis() as u64;
        self.newest
            .retain(|_, o| now_ms.saturating_sub(o.observed_at_ms) <= max_age);
    }

    /// The aggregate of the fresh observations of the feed's sources.
    pub fn aggregate(&self, feed: &FeedConfig, now_ms: u64) -> Result<Aggregate, NoQuorum> {
        let max_age = feed.max_age.as_millis() as u64;
        let mut used = Vec::with_capacity(feed.sources.len());
        let mut missing = Vec::new();
        // Primaries, then fallbacks (only polled when primaries fail); only
        // primaries are reported missing.
        let primaries = feed.sources.iter().map(|s| (s, true));
        for (source, primary) in primaries.chain(feed.fallbacks.iter().map(|s| (s, false))) {
            match self.newest.get(source) {
                Some(o) if now_ms.saturating_sub(o.observed_at_ms) <= max_age => {
                    used.push(o.clone())
                }
                _ if primary => missing.push(source.clone()),
                _ => {}
            }
        }
        if used.len() < feed.min_sources {
            return Err(NoQuorum {
                have: used.len(),
                need: feed.min_sources,
                missing,
            });
        }
        let mut prices: Vec<Decimal> = used.iter().map(|o| o.price).collect();
        let price = median(&mut prices).ok_or(NoQuorum {
            have: 0,
            need: feed.min_sources,
            missing: Vec::new(),
        })?;
        let observed_at_ms = used.iter().map(|o| o.observed_at_ms).max().unwrap_or(0);
        Ok(Aggregate {
            price,
            used,
            observed_at_ms,
        })
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

    #[test]
    fn uses_newest_per_source_inside_max_age() {
        let f = feed(&["a", "b", "c"], 2);
        let mut w = Window::default();
        assert!(w.insert(obs("a", "100", 1_000)));
        assert!(w.insert(obs("a", "101", 2_000)));
        assert!(
            !w.insert(obs("a", "99", 1_500)),
            "older observation must not replace newer"
        );
        w.insert(obs("b", "103", 2_000));
        w.insert(obs("c", "500", 1_000));
        // At 12_000 with max_age 10 s, c (age 11 s) is stale; a and b (age 10 s) are fresh.
        let agg = w.aggregate(&f, 12_000).unwrap();
        assert_eq!(agg.used.len(), 2);
        assert_eq!(agg.price, d("102"));
        assert_eq!(agg.observed_at_ms, 2_000);
    }

    #[test]
    fn no_quorum_names_missing_sources() {
        let f = feed(&["a", "b", "c"], 2);
        let mut w = Window::default();
        w.insert(obs("a", "100", 1_000));
        w.insert(obs("b", "100", 1_000));
        let err = w.aggregate(&f, 20_000).unwrap_err();
        assert_eq!(err.have, 0);
        assert_eq!(err.missing.len(), 3);
        let err = {
            w.insert(obs("a", "100", 19_000));
            w.aggregate(&f, 20_000).unwrap_err()
        };
        assert_eq!(err.have, 1);
        assert_eq!(
            err.missing,
            vec!["b".parse().unwrap(), "c".parse().unwrap()]
        );
        assert!(err.to_string().contains("b, c"));
    }

    #[test]
    fn sources_outside_the_feed_are_ignored() {
        let f = feed(&["a", "b"], 2);
        let mut w = Window::default();
        w.insert(obs("a", "100", 1_000));
        w.insert(obs("z", "1", 1_000));
        assert!(w.aggregate(&f, 1_000).is_err());
    }

    #[test]
    fn fallbacks_count_towards_quorum() {
        let mut f = feed(&["a", "b"], 2);
        f.fallbacks = vec!["c".parse().unwrap()];
        let mut w = Window::default();
        w.insert(obs("a", "100", 1_000));
        w.insert(obs("c", "102", 1_000));
        let agg = w.aggregate(&f, 1_000).unwrap();
        assert_eq!(agg.price, d("101"));
        // Only primaries are reported missing.
        w = Window::default();
        w.insert(obs("a", "100", 1_000));
        assert_eq!(
            w.aggregate(&f, 1_000).unwrap_err().missing,
            vec!["b".parse().unwrap()]
        );
    }

    #[test]
    fn prune_bounds_memory() {
        let f = feed(&["a", "b"], 1);
        let mut w = Window::default();
        w.insert(obs("a", "100", 1_000));
        w.insert(obs("b", "100", 50_000));
        w.prune(&f, 55_000);
        assert_eq!(w.newest.len(), 1);
    }
}
