//! `[fetchers]`: polling, retries, fallbacks, breakers and publishing.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The fetchers service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchersConfig {
    /// This process's name, carried in every observation.
    pub id: String,
    /// How often every source is polled.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Attempts per poll of one source (1 = no retry).
    pub max_attempts: usize,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Largest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// When, within a cycle, to decide on fallbacks if primaries have not all
    /// answered; default half the poll interval.
    #[serde(with = "humantime_serde::option")]
    pub fallback_after: Option<Duration>,
    /// Consecutive failed polls of a source that open its circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips its source before one probe request.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Observations that may wait for NATS before new ones are dropped.
    pub publish_buffer: usize,
    /// Where `/metrics` and `/healthz` listen.
    pub metrics_addr: SocketAddr,
    /// How far ahead of this host's clock an exchange's data timestamp may be;
    /// a quote dated later is refused (`future_timestamp`), never published.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
}

impl Default for FetchersConfig {
    fn default() -> Self {
        Self {
            id: "fetchers-1".into(),
            poll_interval: Duration::from_secs(1),
            max_attempts: 3,
            retry_min_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(2),
            fallback_after: None,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            publish_buffer: 10_000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9101)),
            max_clock_skew: Duration::from_secs(2),
        }
    }
}

impl FetchersConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_interval.is_zero() {
            return Err(ConfigError::key(
                "fetchers.poll_interval",
                "must be positive",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(ConfigError::key(
                "fetchers.breaker_failures",
                "must be at least 1",
            ));
        }
        if self.publish_buffer == 0 {
            return Err(ConfigError::key(
                "fetchers.publish_buffer",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::key(
                "fetchers.max_attempts",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
