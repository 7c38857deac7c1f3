//! `[nats]`: the NATS servers (a cluster: every node's URL), and the
//! JetStream streams' retention, deduplication window and replicas.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// NATS connection and JetStream streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// The servers, `nats://host:4222` each (every node of a cluster, so that
    /// a client reconnects to another when one goes away).
    pub urls: Vec<String>,
    /// How long the observation stream keeps messages.
    #[serde(with = "humantime_serde")]
    pub obs_max_age: Duration,
    /// Window in which the stream drops a repeated `Nats-Msg-Id`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Stream replicas: 1 on a single server, 3 on a cluster of three or more.
    /// Streams are created, or updated, to this at start-up.
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            urls: vec!["nats://127.0.0.1:4222".into()],
            obs_max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }
}

impl NatsConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::key(
                "nats.urls",
                "must name at least one server",
            ));
        }
        for (i, url) in self.urls.iter().enumerate() {
            let url = url.trim();
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| url.starts_with(s));
            if !scheme_ok || url.parse::<async_nats::ServerAddr>().is_err() {
                return Err(ConfigError::key(
                    format!("nats.urls[{i}]"),
                    format!("{url:?} is not a server URL like nats://host:4222"),
                ));
            }
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::key("nats.replicas", "must be between 1 and 5"));
        }
        if self.duplicate_window.is_zero() {
            return Err(ConfigError::key(
                "nats.duplicate_window",
                "must be positive",
            ));
        }
        Ok(())
    }

    /// The servers, one per line-free comma-separated string (for logs).
    pub fn describe(&self) -> String {
        self.urls.join(",")
    }
}
