//! A per-source request budget that is never exceeded: at most `requests` in
//! any sliding window of `per` (a log of send times, not a token bucket, which
//! would allow twice the budget across a window boundary), plus a pause the
//! source itself asked for (`Retry-After`, its limit headers).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The budget of one source.
#[derive(Debug)]
pub struct Limiter {
    requests: usize,
    per: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// The budget does not allow a request before the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When a request would have been allowed.
    pub until: Instant,
}

impl Limiter {
    /// At most `requests` per `per`.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests: requests.max(1) as usize,
            per,
            state: Mutex::new(State::default()),
        }
    }

    /// Waits for a slot in the budget, at most until `deadline`. On success the
    /// request is counted (the caller must send it) and the wait is returned.
    pub async fn acquire(&self, deadline: Instant) -> Result<Duration, Throttled> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            if now > deadline {
                // The cycle that wanted this request is over: do not send it late.
                return Err(Throttled { until: now });
            }
            let ready_at = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                while st
                    .sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.per)
                {
                    st.sent.pop_front();
                }
                let paused = st.paused_until.filter(|p| *p > now);
                let full = (st.sent.len() >= self.requests).then(|| st.sent[0] + self.per);
                match (paused, full) {
                    (None, None) => {
                        st.sent.push_back(now);
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
            l.acquire(far).await.unwrap();
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
        l.acquire(soon).await.unwrap();
        let err = l.acquire(soon).await.unwrap_err();
        assert!(err.until >= Instant::now() + Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_after_the_deadline() {
        let l = Limiter::new(100, Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(l.acquire(deadline).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let l = Limiter::new(100, Duration::from_secs(1));
        let start = Instant::now();
        l.pause_until(start + Duration::from_secs(2));
        l.pause_until(start + Duration::from_secs(1)); // an earlier pause does not shorten it
        let waited = l.acquire(start + Duration::from_secs(5)).await.unwrap();
        assert!(waited >= Duration::from_secs(2));
        assert!(Instant::now() >= start + Duration::from_secs(2));
    }
}
