//! When a feed must be updated on chain: no value yet, the heartbeat elapsed,
//! or the aggregate moved at least the deviation threshold from the on-chain value.

use oracle_common::config::FeedConfig;

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

/// Why an update is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The feed has no value yet.
    First,
    /// The heartbeat elapsed since the last update.
    Heartbeat,
    /// The price moved at least the deviation threshold.
    Deviation,
    /// Someone asked for an update now (`oracle.refresh`).
    OnDemand,
}

impl Reason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::First => "first",
            Reason::Heartbeat => "heartbeat",
            Reason::Deviation => "deviation",
            Reason::OnDemand => "on-demand",
        }
    }
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
    fn deviation_threshold_is_inclusive_both_ways() {
        let c = chain(100_000, 1_000);
        assert_eq!(decide(&feed(), &c, 100_499, 1_001), None);
        assert_eq!(decide(&feed(), &c, 100_500, 1_001), Some(Reason::Deviation));
        assert_eq!(decide(&feed(), &c, 99_501, 1_001), None);
        assert_eq!(decide(&feed(), &c, 99_500, 1_001), Some(Reason::Deviation));
    }
}
