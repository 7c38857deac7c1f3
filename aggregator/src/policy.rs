//! When a feed must be updated on chain: no value yet, the heartbeat elapsed,
//! or the aggregate moved at least the deviation threshold from the on-chain
//! value; and whether a reason another node gives holds against the chain.

use oracle_common::config::FeedConfig;
pub use oracle_common::wire::UpdateReason as Reason;

/// What the chain holds for a feed (as last read or written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnChain {
    /// Scaled price (0 before the first update).
    pub price: i128,
    /// Latest round (0 before the first update).
    pub round: u32,
    /// Observation time of the stored value, Unix seconds.
    pub observed_at: u64,
    /// When the value was stored, Unix seconds.
    pub updated_at: u64,
}

/// Deviation between two scaled prices in basis points (rounded down).
pub fn deviation_bps(old: i128, new: i128) -> u128 {
    if old == 0 {
        return u128::MAX;
    }
    let diff = (new - old).unsigned_abs();
    diff.saturating_mul(10_000) / old.unsigned_abs()
}

/// Whether `new_price` (scaled) must be pushed now, and why.
pub fn decide(feed: &FeedConfig, chain: &OnChain, new_price: i128, now_s: u64) -> Option<Reason> {
    if chain.round == 0 {
        return Some(Reason::First);
    }
    if now_s.saturating_sub(chain.updated_at) >= feed.heartbeat.as_secs() {
        return Some(Reason::Heartbeat);
    }
    if deviation_bps(chain.price, new_price) >= u128::from(feed.deviation_bps) {
        return Some(Reason::Deviation);
    }
    None
}

/// Whether `reason`, given by the leader for `new_price`, holds against what
/// this node reads on chain, its clock allowed `skew_s` of difference from the
/// leader's. An on-demand update holds for any verified aggregate: asking
/// for a fresh value is the point of the on-demand workflow.
pub fn holds(
    reason: Reason,
    feed: &FeedConfig,
    chain: &OnChain,
    new_price: i128,
    now_s: u64,
    skew_s: u64,
) -> bool {
    match reason {
        Reason::First => chain.round == 0,
        Reason::OnDemand => true,
        Reason::Heartbeat => {
            chain.round == 0
                || (now_s + skew_s).saturating_sub(chain.updated_at) >= feed.heartbeat.as_secs()
        }
        Reason::Deviation => {
            chain.round == 0
                || deviation_bps(chain.price, new_price) >= u128::from(feed.deviation_bps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn feed() -> FeedConfig {
        FeedConfig {
            pair: "BTC/USD".parse().unwrap(),
            decimals: 8,
            min_price: 1.into(),
            max_price: 1_000_000.into(),
            sources: vec!["a".parse().unwrap()],
            fallbacks: vec![],
            min_sources: 1,
            max_age: Duration::from_secs(10),
            deviation_bps: 50,
            heartbeat: Duration::from_secs(60),
            max_report_age: Duration::from_secs(120),
            adapter: None,
        }
    }

    fn chain(price: i128, updated_at: u64) -> OnChain {
        OnChain {
            price,
            round: 3,
            observed_at: updated_at,
            updated_at,
        }
    }

    #[test]
    fn first_value_is_always_pushed() {
        assert_eq!(
            decide(&feed(), &OnChain::default(), 1, 0),
            Some(Reason::First)
        );
    }

    #[test]
    fn heartbeat_triggers_without_movement() {
        let c = chain(100_000, 1_000);
        assert_eq!(decide(&feed(), &c, 100_000, 1_059), None);
        assert_eq!(decide(&feed(), &c, 100_000, 1_060), Some(Reason::Heartbeat));
    }

    #[test]
    fn a_reason_holds_only_when_the_chain_agrees() {
        let c = chain(100_000, 1_000);
        let f = feed();
        assert!(!holds(Reason::First, &f, &c, 100_000, 1_001, 0));
        assert!(holds(Reason::First, &f, &OnChain::default(), 1, 0, 0));
        assert!(!holds(Reason::Heartbeat, &f, &c, 100_000, 1_050, 2));
        assert!(
            holds(Reason::Heartbeat, &f, &c, 100_000, 1_058, 2),
            "within the clock skew"
        );
        assert!(!holds(Reason::Deviation, &f, &c, 100_499, 1_001, 0));
        assert!(holds(Reason::Deviation, &f, &c, 100_500, 1_001, 0));
        assert!(holds(Reason::OnDemand, &f, &c, 100_000, 1_001, 0));
    }

    #[test]
    fn deviation_threshold_is_inclusive_both_ways() {
        let c = chain(100_000, 1_000);
        assert_eq!(decide(&feed(), &c, 100_499, 1_001), None);
        assert_eq!(decide(&feed(), &c, 100_500, 1_001), Some(Reason::Deviation));
        assert_eq!(decide(&feed(), &c, 99_501, 1_001), None);
        assert_eq!(decide(&feed(), &c, 99_500, 1_001), Some(Reason::Deviation));
    }
}
