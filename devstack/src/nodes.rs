//! The local signer quorum: the aggregator nodes of `config/dev-nodes.toml`,
//! each with its name, its one signer key, its own sender key and its metrics
//! address. A node is the shared configuration plus its own section, given
//! to its process through the environment (never a file every service reads).

use std::net::SocketAddr;
use std::path::Path;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use oracle_common::config::{Config, Secret};
use serde::Deserialize;

use crate::stack::StackError;

/// One aggregator node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Its name (`aggregator.consumer`): durable consumer and lease holder id.
    pub name: String,
    /// Its one report signer key.
    pub signer_key: Secret,
    /// The key of the account that sends its transactions.
    pub sender_key: Secret,
    /// Where its `/metrics` listen.
    pub metrics_addr: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodesFile {
    nodes: Vec<NodeSpec>,
}

impl NodeSpec {
    /// The signer's address.
    pub fn signer(&self) -> Result<Address, StackError> {
        let key: PrivateKeySigner = self.signer_key.expose().parse().map_err(|_| {
            StackError::Config(format!(
                "node {}: signer_key is not a private key",
                self.name
            ))
        })?;
        Ok(key.address())
    }

    /// The node's configuration: `base` with its own aggregator section.
    pub fn config(&self, base: &Config) -> Config {
        let mut c = base.clone();
        c.aggregator.consumer = self.name.clone();
        c.aggregator.signer_key = self.signer_key.clone();
        c.aggregator.sender_key = self.sender_key.clone();
        c.aggregator.metrics_addr = self.metrics_addr;
        c
    }

    /// The environment that makes a process reading the shared config file
    /// this node.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("ORACLE__AGGREGATOR__CONSUMER".into(), self.name.clone()),
            (
                "ORACLE__AGGREGATOR__SIGNER_KEY".into(),
                self.signer_key.expose().to_owned(),
            ),
            (
                "ORACLE__AGGREGATOR__SENDER_KEY".into(),
                self.sender_key.expose().to_owned(),
            ),
            (
                "ORACLE__AGGREGATOR__METRICS_ADDR".into(),
                self.metrics_addr.to_string(),
            ),
        ]
    }
}

/// Reads the nodes of a file like `config/dev-nodes.toml`, checking that
/// names, signers and senders are all distinct.
pub fn load(path: &Path) -> Result<Vec<NodeSpec>, StackError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StackError::Config(format!("reading {}: {e}", path.display())))?;
    let file: NodesFile = toml::from_str(&text)
        .map_err(|e| StackError::Config(format!("{}: {e}", path.display())))?;
    if file.nodes.is_empty() {
        return Err(StackError::Config(format!(
            "{} lists no node",
            path.display()
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut keys = std::collections::BTreeSet::new();
    for node in &file.nodes {
        if !names.insert(node.name.clone()) {
            return Err(StackError::Config(format!(
                "node {} is listed twice",
                node.name
            )));
        }
        for key in [&node.signer_key, &node.sender_key] {
            if !keys.insert(key.expose().to_owned()) {
                return Err(StackError::Config(format!(
                    "node {}: a key is used twice (each node has its own signer and sender)",
                    node.name
                )));
            }
        }
    }
    Ok(file.nodes)
}

/// The dev quorum of `config/dev-nodes.toml`, its first `count` nodes.
pub fn dev_nodes(count: usize) -> Result<Vec<NodeSpec>, StackError> {
    let mut nodes = load(&crate::tools::workspace_root().join("config/dev-nodes.toml"))?;
    if count == 0 || count > nodes.len() {
        return Err(StackError::Config(format!(
            "config/dev-nodes.toml has {} nodes; asked for {count}",
            nodes.len()
        )));
    }
    nodes.truncate(count);
    Ok(nodes)
}

/// `config` set up to deploy the hub for `nodes`: their signers, the
/// configured threshold (a majority when unset, never more than the nodes).
pub fn with_signers(config: &Config, nodes: &[NodeSpec]) -> Result<Config, StackError> {
    let mut c = config.clone();
    c.deploy.signers = nodes
        .iter()
        .map(NodeSpec::signer)
        .collect::<Result<_, _>>()?;
    let n = nodes.len();
    let threshold = c.deploy.threshold.map_or(n / 2 + 1, usize::from).min(n);
    c.deploy.threshold = Some(u8::try_from(threshold).unwrap_or(u8::MAX));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_quorum_is_four_nodes_with_their_own_keys() {
        let nodes = dev_nodes(4).unwrap();
        let signers: std::collections::BTreeSet<Address> =
            nodes.iter().map(|n| n.signer().unwrap()).collect();
        assert_eq!(signers.len(), 4);
        let base = Config::load(&crate::tools::workspace_root().join("config/dev.toml")).unwrap();
        assert!(
            base.aggregator.signer_key.is_empty(),
            "dev.toml holds no signer key"
        );
        assert!(
            base.aggregator.sender_key.is_empty(),
            "dev.toml holds no sender key"
        );
        let deploy = with_signers(&base, &nodes).unwrap();
        assert_eq!(deploy.deploy.threshold, Some(3));
        assert_eq!(deploy.deploy.signers.len(), 4);
        let c = nodes[1].config(&base);
        assert_eq!(c.aggregator.consumer, "node-2");
        assert!(dev_nodes(5).is_err());
    }
}
