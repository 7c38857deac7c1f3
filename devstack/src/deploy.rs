//! Deploying the contracts for the local stack with the `oracle-deploy`
//! library, paid and owned by anvil's account 0.

use oracle_common::config::Config;
pub use oracle_deploy::{DeployError, Deployment};

/// anvil's account 0, the owner of the dev deployment. A well-known test key:
/// never use it anywhere else.
pub const DEV_OWNER_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Deploys the hub and adapters for `config` on `rpc_url` with the dev owner key.
pub async fn deploy(rpc_url: &str, config: &Config) -> Result<Deployment, DeployError> {
    let owner = DEV_OWNER_KEY.parse().map_err(|_| DeployError::Config {
        key: "devstack",
        message: "the dev owner key does not parse".into(),
    })?;
    oracle_deploy::deploy(config, rpc_url, owner).await
}
