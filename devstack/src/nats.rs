//! The broker of the local stack: one `nats-server` with JetStream, or a
//! cluster of several (`--nats-cluster 3`): real processes with routes
//! between them, one cluster name, each its own store directory and its own
//! monitoring port. Each node can be killed (SIGKILL), frozen (SIGSTOP) and
//! started again on the same ports and store, and the cluster says which node
//! leads the JetStream meta group: what a failover test needs to aim at.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{StackError, io, port_of, wait_ready};
use crate::process::{ChildProcess, Output};
use crate::tools;

/// The cluster name every node announces.
pub const CLUSTER_NAME: &str = "oracle";

/// Where one node listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    /// Client connections (`nats://127.0.0.1:{client}`).
    pub client: u16,
    /// Routes between the nodes of the cluster.
    pub cluster: u16,
    /// HTTP monitoring (`/healthz`, `/jsz`, `/varz`).
    pub monitor: u16,
}

impl NodePorts {
    /// The ports of a cluster of `size`: free ports, or (dev) consecutive
    /// client ports from `first_client`, with the routes at +2000 and the
    /// monitoring at +4000 (`14222` → routes `16222`, monitoring `18222`).
    pub fn plan(size: usize, first_client: Option<u16>) -> Result<Vec<NodePorts>, StackError> {
        (0..size)
            .map(|i| match first_client {
                Some(p) => {
                    let client = p
                        .checked_add(i as u16)
                        .filter(|c| c.checked_add(4000).is_some())
                        .ok_or_else(|| StackError::Config(format!("nats port {p} too high")))?;
                    Ok(NodePorts {
                        client,
                        cluster: client + 2000,
                        monitor: client + 4000,
                    })
                }
                None => {
                    let p = || tools::free_port().map_err(io("finding a free port"));
                    Ok(NodePorts {
                        client: p()?,
                        cluster: p()?,
                        monitor: p()?,
                    })
                }
            })
            .collect()
    }
}

/// One node of the broker.
#[derive(Debug)]
pub struct NatsNode {
    /// Its server name (`n1`, `n2`, ...), as the cluster reports leaders.
    pub name: String,
    /// Where it listens.
    pub ports: NodePorts,
    config_file: PathBuf,
    log: PathBuf,
    process: Option<ChildProcess>,
}

impl NatsNode {
    /// `nats://127.0.0.1:{client}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// Whether it runs (not killed).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Its process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildProcess::id)
    }
}

/// A running broker: one node, or a JetStream cluster.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsNode>,
    http: reqwest::Client,
}

/// The configuration file of node `i` of `ports`.
fn node_config(i: usize, ports: &[NodePorts], store: &Path) -> String {
    let me = ports[i];
    let mut text = String::new();
    let _ = writeln!(text, "server_name: n{}", i + 1);
    let _ = writeln!(text, "listen: 127.0.0.1:{}", me.client);
    let _ = writeln!(text, "http: 127.0.0.1:{}", me.monitor);
    let _ = writeln!(
        text,
        "jetstream {{\n  store_dir: {:?}\n  max_memory_store: 256MB\n  max_file_store: 8GB\n}}",
        store.display().to_string()
    );
    if ports.len() > 1 {
        let routes: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| format!("nats://127.0.0.1:{}", p.cluster))
            .collect();
        let _ = writeln!(
            text,
            "cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}",
            me.cluster,
            routes.join(", ")
        );
    }
    text
}

impl NatsCluster {
    /// Starts one node per entry of `ports` (each with its store under
    /// `data_dir/n{i}` and its log in `logs/nats-n{i}.log`) and waits until
    /// every node reports healthy (with JetStream in contact with its meta
    /// leader, in a cluster).
    pub async fn start(
        ports: &[NodePorts],
        data_dir: &Path,
        logs: &Path,
    ) -> Result<Self, StackError> {
        if ports.is_empty() {
            return Err(StackError::Config(
                "a broker needs at least one node".into(),
            ));
        }
        std::fs::create_dir_all(data_dir).map_err(io("creating the NATS data dir"))?;
        let mut nodes = Vec::with_capacity(ports.len());
        for i in 0..ports.len() {
            let name = format!("n{}", i + 1);
            let config_file = data_dir.join(format!("{name}.conf"));
            let store = data_dir.join(&name);
            std::fs::write(&config_file, node_config(i, ports, &store))
                .map_err(io("writing the nats-server config"))?;
            nodes.push(NatsNode {
                name: name.clone(),
                ports: ports[i],
                config_file,
                log: logs.join(format!("nats-{name}.log")),
                process: None,
            });
        }
        let mut cluster = Self {
            nodes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| StackError::Io(format!("http client: {e}")))?,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_healthy(i).await?;
        }
        Ok(cluster)
    }

    /// Starts a single node at `url` (dev and tests): its port from the URL.
    pub async fn single(url: &str, data_dir: &Path, logs: &Path) -> Result<Self, StackError> {
        let (_, client) = port_of(url, "nats.urls")?;
        let p = || tools::free_port().map_err(io("finding a free port"));
        let ports = NodePorts {
            client,
            cluster: p()?,
            monitor: p()?,
        };
        Self::start(&[ports], data_dir, logs).await
    }

    fn spawn(&mut self, i: usize) -> Result<(), StackError> {
        let node = &mut self.nodes[i];
        let child = ChildProcess::spawn(
            &format!("nats-server {}", node.name),
            &tools::find("nats-server")?,
            &["-c".into(), node.config_file.display().to_string()],
            &[],
            Output::File(node.log.clone()),
        )
        .map_err(io("nats-server"))?;
        node.process = Some(child);
        Ok(())
    }

    /// Waits until node `i` answers `/healthz` with 200: listening, and its
    /// JetStream current (in a cluster: in contact with the meta leader and
    /// caught up on its streams).
    async fn wait_healthy(&mut self, i: usize) -> Result<(), StackError> {
        let url = format!("http://127.0.0.1:{}/healthz", self.nodes[i].ports.monitor);
        let http = self.http.clone();
        let name = format!("nats-server {}", self.nodes[i].name);
        let Some(child) = self.nodes[i].process.as_mut() else {
            return Err(StackError::Io(format!("{name} is not running")));
        };
        wait_ready(child, &name, || async {
            let r = http.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NatsNode] {
        &self.nodes
    }

    /// Every node's client URL: what `nats.urls` lists.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsNode::url).collect()
    }

    /// The index of the node called `name` (`n2`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Kills node `i` at once (SIGKILL): a crash, its store left as is.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].process.take() {
            child.kill_now().await;
        }
    }

    /// Stops node `i` (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_node(&mut self, i: usize, grace: Duration) {
        if let Some(mut child) = self.nodes[i].process.take() {
            child.stop(grace).await;
        }
    }

    /// Starts node `i` again on the same ports and store, and waits until it
    /// is healthy (caught up with the cluster).
    pub async fn restart(&mut self, i: usize) -> Result<(), StackError> {
        if self.nodes[i].process.is_some() {
            return Err(StackError::Config(format!(
                "{} is running",
                self.nodes[i].name
            )));
        }
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    /// Freezes node `i` (SIGSTOP): its clients' connections stay open but
    /// nothing answers.
    pub fn pause(&self, i: usize) {
        if let Some(child) = &self.nodes[i].process {
            child.pause();
        }
    }

    /// Thaws node `i` (SIGCONT).
    pub fn resume(&self, i: usize) {
        if let Some(child) = &self.nodes[i].process {
            child.resume();
        }
    }

    /// The node that leads the JetStream meta group, as a live node's
    /// `/jsz` reports it; `None` during an election (or on a single node,
    /// where there is no meta group).
    pub async fn meta_leader(&self) -> Option<usize> {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let url = format!("http://127.0.0.1:{}/jsz", node.ports.monitor);
            let Ok(r) = self.http.get(&url).send().await else {
                continue;
            };
            let Ok(jsz) = r.json::<serde_json::Value>().await else {
                continue;
            };
            if let Some(leader) = jsz["meta_cluster"]["leader"].as_str() {
                return self.index_of(leader);
            }
        }
        None
    }

    /// Fails if a node that should run has exited.
    pub fn check_running(&mut self) -> Result<(), StackError> {
        for node in self.nodes.iter_mut() {
            if let Some(child) = node.process.as_mut() {
                child.check_running().map_err(io("nats-server"))?;
            }
        }
        Ok(())
    }

    /// The running nodes' processes (for log listings).
    pub fn processes(&self) -> impl Iterator<Item = &ChildProcess> {
        self.nodes.iter().filter_map(|n| n.process.as_ref())
    }

    /// Stops every node.
    pub async fn stop(&mut self, grace: Duration) {
        for i in 0..self.nodes.len() {
            self.stop_node(i, grace).await;
        }
    }
}

/// The server that leads stream `name` (its server name), as JetStream
/// reports it; `None` while it has no leader.
pub async fn stream_leader(js: &async_nats::jetstream::Context, name: &str) -> Option<String> {
    let mut stream = js.get_stream(name).await.ok()?;
    stream.info().await.ok()?.cluster.as_ref()?.leader.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_configs_route_to_the_other_nodes() {
        let ports = NodePorts::plan(3, Some(14222)).unwrap();
        assert_eq!(ports[2].client, 14224);
        assert_eq!(ports[0].cluster, 16222);
        assert_eq!(ports[1].monitor, 18223);
        let text = node_config(1, &ports, Path::new("/tmp/s"));
        assert!(text.contains("server_name: n2"), "{text}");
        assert!(text.contains("listen: 127.0.0.1:14223"), "{text}");
        assert!(text.contains("name: oracle"), "{text}");
        assert!(
            text.contains("routes: [nats://127.0.0.1:16222, nats://127.0.0.1:16224]"),
            "{text}"
        );
        let single = node_config(0, &ports[..1], Path::new("/tmp/s"));
        assert!(!single.contains("cluster"), "{single}");
    }
}
