//! `[bff]`: the client API's listeners, limits, keys and timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, RateLimit, Secret};

/// The client API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BffConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_addr: SocketAddr,
    /// How long `POST /v1/prices/{pair}/refresh` waits for inclusion before
    /// answering 202 with the submission id.
    #[serde(with = "humantime_serde")]
    pub refresh_wait: Duration,
    /// Submissions kept in memory for `/v1/submissions` (the oldest are
    /// dropped beyond this; `ORACLE_SUBMISSIONS` keeps the full record).
    pub max_submissions: usize,
    /// Bearer token of the `/v1/admin` endpoints; unset disables them. Set it
    /// through `ORACLE__BFF__ADMIN_TOKEN`, not in a file.
    pub admin_token: Option<Secret>,
    /// How often the price cache polls the chain head for new events.
    #[serde(with = "humantime_serde")]
    pub chain_poll: Duration,
    /// API keys accepted in `X-API-Key` on the `/v1` client endpoints; empty
    /// leaves them open. Secrets (`file:` works).
    pub api_keys: Vec<Secret>,
    /// Requests per API key (or per client IP without one); unset: no limit.
    pub rate_limit: Option<RateLimit>,
    /// Origins allowed by CORS (`*` for any); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest time to produce a response (streams: to start one); must
    /// exceed `refresh_wait`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for BffConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9103)),
            refresh_wait: Duration::from_secs(12),
            max_submissions: 100_000,
            admin_token: None,
            chain_poll: Duration::from_millis(500),
            api_keys: Vec::new(),
            rate_limit: None,
            cors_origins: Vec::new(),
            max_body_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl BffConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(limit) = self.rate_limit {
            limit.validate("bff.rate_limit")?;
        }
        if self.request_timeout <= self.refresh_wait {
            return Err(ConfigError::key(
                "bff.request_timeout",
                "must be longer than bff.refresh_wait",
            ));
        }
        if self.chain_poll.is_zero() {
            return Err(ConfigError::key("bff.chain_poll", "must be positive"));
        }
        Ok(())
    }
}
