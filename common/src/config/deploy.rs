//! `[deploy]`: the signer set, threshold, skew and owner `oracle-deploy`
//! deploys the hub with.

use std::time::Duration;

use serde::Deserialize;

/// Deploying the hub and its adapters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Authorized signers, one per aggregator node; when empty, the address of
    /// `aggregator.signer_key` alone (a single-node deployment).
    pub signers: Vec<alloy::primitives::Address>,
    /// Distinct signatures per batch; when unset, a majority of the signers.
    pub threshold: Option<u8>,
    /// How far a report's observation time may run ahead of the block.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// Who owns the hub; when unset, the deployer. A different owner must
    /// accept the transfer (two-step).
    pub owner: Option<alloy::primitives::Address>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            signers: Vec::new(),
            threshold: None,
            max_future_skew: Duration::from_secs(60),
            owner: None,
        }
    }
}
