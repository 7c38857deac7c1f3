//! A circuit breaker per source: after `failures` failed polls in a row the
//! source is skipped for a cool-down, then a single probe request decides
//! whether it is closed again or opened for another cool-down.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The breaker's state, as exported in `oracle_fetchers_circuit_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests flow.
    Closed,
    /// Requests are skipped until the cool-down ends.
    Open,
    /// One probe request is allowed.
    HalfOpen,
}

impl State {
    /// 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker of one source.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// Whether a request may go out now (a half-open breaker lets exactly one).
    pub fn allow(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if Instant::now() >= *until => {
                *inner = Inner::HalfOpen { probing: true };
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { probing } if !*probing => {
                *probing = true;
                true
            }
            Inner::HalfOpen { .. } => false,
        }
    }

    /// Records the outcome of an allowed request.
    pub fn record(&self, success: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner = match (&*inner, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 < self.threshold => Inner::Closed {
                failures: failures + 1,
            },
            (_, false) => Inner::Open {
                until: Instant::now() + self.cooldown,
            },
        };
    }

    /// Gives back an allowed request that was never sent (a half-open breaker
    /// may probe again).
    pub fn release(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Inner::HalfOpen { probing } = &mut *inner {
            *probing = false;
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        match &*self.inner.lock().unwrap_or_else(|p| p.into_inner()) {
            Inner::Closed { .. } => State::Closed,
            Inner::Open { until } if Instant::now() >= *until => State::HalfOpen,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_probes_once() {
        let b = Breaker::new(3, Duration::from_secs(30));
        b.record(false);
        b.record(false);
        b.record(true); // a success resets the count
        for _ in 0..3 {
            assert!(b.allow());
            b.record(false);
        }
        assert_eq!(b.state(), State::Open);
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.allow(), "one probe after the cool-down");
        assert!(!b.allow(), "only one probe at a time");
        b.record(false);
        assert_eq!(b.state(), State::Open, "a failed probe opens it again");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.allow());
        b.record(true);
        assert_eq!(b.state(), State::Closed);
        assert!(b.allow() && b.allow());
    }
}
