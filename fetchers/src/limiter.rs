//! A per-source request budget that is never exceeded: at most `units` in
//! any sliding window of `per` (a log of send times and costs, not a token
//! bucket, which would allow twice the budget across a window boundary), plus
//! a pause the source itself asked for (`Retry-After`, its limit headers). A
//! request costs what the venue counts it as: 1 for a plain request, its
//! weight where the venue weighs endpoints.
//!
//! The window is kept [`MARGIN_DIVISOR`]th longer than the venue's: the venue
//! counts arrival times, and a request can spend longer on its way than the
//! one before it (a busy moment, a new connection), so sends spaced by exactly
//! the window could arrive closer than it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The window is lengthened by `per / MARGIN_DIVISOR` (5%: 50 ms of a second).
pub const MARGIN_DIVISOR: u32 = 20;

/// The budget of one source.
#[derive(Debug)]
pub struct Limiter {
    units: u64,
    per: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Send times and costs within the window.
    sent: VecDeque<(Instant, u64)>,
    /// The sum of the costs in `sent`.
    used: u64,
    paused_until: Option<Instant>,
}

/// The budget does not allow a request before the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When a request would have been allowed.
    pub until: Instant,
}

impl Limiter {
    /// At most `units` per `per`.
    pub fn new(units: u32, per: Duration) -> Self {
        Self {
            units: u64::from(units.max(1)),
            per: per + per / MARGIN_DIVISOR,
            state: Mutex::new(State::default()),
        }
    }

    /// Waits until a request of `cost` units fits the budget, at most until
    /// `deadline`. On success the request is counted (the caller must send it)
    /// and the wait is returned. A cost above the whole budget counts as the
    /// whole budget.
    pub async fn acquire(&self, cost: u32, deadline: Instant) -> Result<Duration, Throttled> {
        let cost = u64::from(cost.max(1)).min(self.units);
        let started = Instant::now();
        loop {
            let now = Instant::now();
            if now > deadline {
                // The cycle that wanted this request is over: do not send it late.
                return Err(Throttled { until: now });
            }
            let ready_at = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                while let Some(&(t, c)) = st.sent.front() {
                    if now.duration_since(t) < self.per {
                        break;
                    }
                    st.sent.pop_front();
                    st.used -= c;
                }
                let paused = st.paused_until.filter(|p| *p > now);
                // When full: the time the oldest sends leave the window and
                // free enough units for this one.
                let full = (st.used + cost > self.units).then(|| {
                    let mut freed = self.units - st.used;
                    let mut at = now;
                    for &(t, c) in &st.sent {
                        freed += c;
                        at = t + self.per;
                        if freed >= cost {
                            break;
                        }
                    }
                    at
                });
                match (paused, full) {
                    (None, None) => {
                        st.sent.push_back((now, cost));
                        st.used += cost;
                        return Ok(now - started);
                    }
                    (a, b) => a.max(b).unwrap_or(now),
                }
            };
            if ready_at > deadline {
                return Err(Throttled { until: ready_at });
            }
            tokio::time::sleep_until(ready_at).await;
        }
    }

    /// Sends nothing before `until` (keeps the later of two pauses).
    pub fn pause_until(&self, until: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_in_any_window() {
        let l = Limiter::new(3, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(60);
        let mut times = Vec::new();
        for _ in 0..10 {
            l.acquire(1, far).await.unwrap();
            times.push(Instant::now());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 3,
                "{in_window} requests within 1 s of request {i}"
            );
        }
        // 10 requests at 3/s need at least 3 s.
        assert!(times[9].duration_since(times[0]) >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_instead_of_waiting_past_the_deadline() {
        let l = Limiter::new(1, Duration::from_secs(10));
        let soon = Instant::now() + Duration::from_secs(1);
        l.acquire(1, soon).await.unwrap();
        let err = l.acquire(1, soon).await.unwrap_err();
        assert!(err.until >= Instant::now() + Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_after_the_deadline() {
        let l = Limiter::new(100, Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(l.acquire(1, deadline).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let l = Limiter::new(100, Duration::from_secs(1));
        let start = Instant::now();
        l.pause_until(start + Duration::from_secs(2));
        l.pause_until(start + Duration::from_secs(1)); // an earlier pause does not shorten it
        let waited = l.acquire(1, start + Duration::from_secs(5)).await.unwrap();
        assert!(waited >= Duration::from_secs(2));
        assert!(Instant::now() >= start + Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_requests_never_exceed_the_units_in_any_window() {
        // Binance-like: 20 units per second, single requests 2, lists 4.
        let l = Limiter::new(20, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(60);
        let mut log = Vec::new();
        for i in 0..40u32 {
            let cost = if i % 3 == 0 { 4 } else { 2 };
            l.acquire(cost, far).await.unwrap();
            log.push((Instant::now(), cost));
        }
        for (i, (t, _)) in log.iter().enumerate() {
            let in_window: u32 = log[i..]
                .iter()
                .filter(|(u, _)| u.duration_since(*t) < Duration::from_secs(1))
                .map(|(_, c)| c)
                .sum();
            assert!(
                in_window <= 20,
                "{in_window} units within 1 s of request {i}"
            );
        }
        // 40 requests of 2.7 units on average at 20/s need more than 4 s.
        let total: u32 = log.iter().map(|(_, c)| c).sum();
        assert!(total > 100);
        assert!(log[39].0.duration_since(log[0].0) >= Duration::from_secs(4));
        // A cost above the whole budget still gets through, alone.
        let l = Limiter::new(3, Duration::from_secs(1));
        l.acquire(15, far).await.unwrap();
        let before = Instant::now();
        l.acquire(1, far).await.unwrap();
        assert!(Instant::now() >= before + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_are_spaced_a_margin_beyond_the_venues_window() {
        // Kraken-like, 1 per second: the venue sees arrivals, so the next send
        // waits 5% longer than the window.
        let l = Limiter::new(1, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(60);
        l.acquire(1, far).await.unwrap();
        let first = Instant::now();
        l.acquire(1, far).await.unwrap();
        assert_eq!(Instant::now() - first, Duration::from_millis(1050));
    }
}
