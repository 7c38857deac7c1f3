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
    /// Longest wait for the chain node on a client request. When it does not
    /// answer in time, the latest price is served from the cache marked
    /// `node_reachable: false`, other reads answer 503 `chain_unavailable`.
    #[serde(with = "humantime_serde")]
    pub chain_timeout: Duration,
    /// How long past its heartbeat the freshest feed may be before
    /// `/readyz` reports the service unready. A heartbeat update lands a
    /// round and a block after the heartbeat elapsed (longer while a broker
    /// node restarts); readiness is about an oracle that stopped updating,
    /// not one a few seconds late. Prices are marked `stale` without it.
    #[serde(with = "humantime_serde")]
    pub readiness_grace: Duration,
    /// Proxies (addresses or CIDR blocks, `10.0.0.0/8`) whose
    /// `X-Forwarded-For` is believed; from anyone else it is ignored and the
    /// peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// Concurrent `/v1/stream` clients in all (beyond: 503 `streams_full`).
    pub max_streams: usize,
    /// Concurrent `/v1/stream` clients per API key or client address
    /// (beyond: 429 `too_many_streams`).
    pub max_streams_per_client: usize,
    /// Requests per client address to the `/v1/admin` endpoints, checked
    /// before the token.
    pub admin_rate_limit: RateLimit,
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
            chain_timeout: Duration::from_millis(800),
            readiness_grace: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            max_streams: 20_000,
            max_streams_per_client: 16,
            admin_rate_limit: RateLimit {
                requests: 10,
                per: Duration::from_secs(60),
            },
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
        self.admin_rate_limit.validate("bff.admin_rate_limit")?;
        if self.chain_timeout.is_zero() || self.chain_timeout >= self.request_timeout {
            return Err(ConfigError::key(
                "bff.chain_timeout",
                "must be positive and shorter than bff.request_timeout",
            ));
        }
        if self.max_streams == 0 || self.max_streams_per_client == 0 {
            return Err(ConfigError::key(
                "bff.max_streams",
                "max_streams and max_streams_per_client must be positive",
            ));
        }
        for proxy in &self.trusted_proxies {
            parse_cidr(proxy)
                .map_err(|e| ConfigError::key("bff.trusted_proxies", format!("`{proxy}`: {e}")))?;
        }
        if self.chain_poll.is_zero() {
            return Err(ConfigError::key("bff.chain_poll", "must be positive"));
        }
        Ok(())
    }
}

/// An address block: `10.0.0.0/8`, `::1/128`, or one address (`10.1.2.3`).
pub fn parse_cidr(raw: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, len) = match raw.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (raw, None),
    };
    let addr: std::net::IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| "not an IP address".to_owned())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("prefix length must be 0-{max}"))?,
    };
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_with_and_without_a_prefix() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().1, 8);
        assert_eq!(parse_cidr("::1").unwrap().1, 128);
        assert_eq!(parse_cidr("192.168.1.1").unwrap().1, 32);
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
