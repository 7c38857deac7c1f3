//! Shared building blocks of the oracle services.
//!
//! Layout:
//! - [`pair`], [`source`]: domain identifiers (`BTC/USD`, `kraken`).
//! - [`wire`]: versioned JSON schemas that travel on NATS, the subjects and
//!   stream names they travel on, and the `Nats-Msg-Id` rule.
//! - [`price`]: exact decimal prices and their scaling to on-chain integers.
//! - [`config`]: the TOML configuration with environment overrides and
//!   validation that names the offending key.
//! - [`chain`]: contract bindings generated from the checked-in artifact and
//!   the EIP-712 batch signing that the contract verifies.
//! - [`bus`]: connecting to the NATS cluster and probing it for readiness.
//! - [`streams`]: JetStream streams created or updated to the configuration.
//! - [`telemetry`]: logging set-up, the `/metrics` endpoint, shutdown signals.
#![forbid(unsafe_code)]

pub mod bus;
pub mod chain;
pub mod config;
pub mod pair;
pub mod price;
pub mod source;
pub mod streams;
pub mod telemetry;
pub mod wire;

pub use pair::Pair;
pub use source::SourceId;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
