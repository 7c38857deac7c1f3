//! `[chain]`: the JSON-RPC endpoint and the deployed hub.

use serde::Deserialize;

use super::ConfigError;

/// The chain and the deployed contract.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// Address of the deployed `OracleHub`; required by the aggregator and the bff.
    pub hub_address: Option<alloy::primitives::Address>,
    /// The chain id the RPC must report; checked at start-up when set.
    pub chain_id: Option<u64>,
}

impl ChainConfig {
    /// Checks what the aggregator and the bff need: an http(s) RPC and the
    /// hub's address, which it returns.
    pub fn require(&self) -> Result<alloy::primitives::Address, ConfigError> {
        let url = self.rpc_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::key(
                "chain.rpc_url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        self.hub_address.ok_or_else(|| {
            ConfigError::key("chain.hub_address", "is required (the deployed OracleHub)")
        })
    }
}
