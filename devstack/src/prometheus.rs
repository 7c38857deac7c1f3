//! Prometheus for the local stack: `grafana/prometheus.yml` and
//! `grafana/alerts.yml` as committed, with the scrape targets moved to where
//! this stack's services really listen (free ports in tests).

use std::path::Path;

use oracle_common::config::Config;

use crate::error::{StackError, io, wait_ready};
use crate::nodes::NodeSpec;
use crate::process::{ChildProcess, Output};
use crate::tools;

/// Where Prometheus listens for `scripts/dev.sh --prometheus` (the
/// `prometheus` job of `grafana/prometheus.yml`).
pub const DEV_ADDR: &str = "127.0.0.1:19090";

/// Where the replicas of the fetchers and the bff serve their metrics.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Every fetcher replica (none: the one `config` names).
    pub fetchers: Vec<std::net::SocketAddr>,
    /// Every bff instance (none: the one `config` names).
    pub bffs: Vec<std::net::SocketAddr>,
}

/// `grafana/prometheus.yml` with every target of `config/dev.toml` replaced by
/// the addresses this stack gives the same service (`targets`, or `config`'s
/// own), the aggregator job's targets (the nodes of `config/dev-nodes.toml`)
/// by `nodes`' addresses, and Prometheus's own target by `prometheus_addr`.
/// Fails if the file does not scrape one of them: the committed file and the
/// dev config must agree.
pub fn config_for(
    config: &Config,
    targets: &Targets,
    nodes: &[NodeSpec],
    prometheus_addr: &str,
) -> Result<String, StackError> {
    let root = tools::workspace_root();
    let path = root.join("grafana/prometheus.yml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| StackError::Io(format!("reading {}: {e}", path.display())))?;
    let dev = Config::load(&root.join("config/dev.toml"))
        .map_err(|e| StackError::Config(format!("config/dev.toml: {e}")))?;
    // Each moved target is the inside of a quoted list item: `a", "b` makes
    // two items of one.
    let many = |addrs: &[std::net::SocketAddr], own: std::net::SocketAddr| {
        if addrs.is_empty() {
            own.to_string()
        } else {
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\", \"")
        }
    };
    let moves = [
        (
            "fetchers",
            dev.fetchers.metrics_addr.to_string(),
            many(&targets.fetchers, config.fetchers.metrics_addr),
        ),
        (
            "bff",
            dev.bff.metrics_addr.to_string(),
            many(&targets.bffs, config.bff.metrics_addr),
        ),
        (
            "prometheus",
            DEV_ADDR.to_owned(),
            prometheus_addr.to_owned(),
        ),
    ];
    let targets = |addrs: Vec<String>| {
        let quoted: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let dev_nodes = crate::nodes::dev_nodes(4)?;
    let dev_targets = targets(
        dev_nodes
            .iter()
            .map(|n| n.metrics_addr.to_string())
            .collect(),
    );
    if !text.contains(&dev_targets) {
        return Err(StackError::Config(format!(
            "grafana/prometheus.yml does not scrape the aggregator nodes at {dev_targets} (config/dev-nodes.toml)"
        )));
    }
    let mut out = text.replace(
        &dev_targets,
        &targets(nodes.iter().map(|n| n.metrics_addr.to_string()).collect()),
    );
    for (job, from, to) in moves {
        let quoted = format!("\"{from}\"");
        if !out.contains(&quoted) {
            return Err(StackError::Config(format!(
                "grafana/prometheus.yml does not scrape the {job} at {from} (config/dev.toml)"
            )));
        }
        out = out.replace(&quoted, &format!("\"{to}\""));
    }
    Ok(out)
}

/// Writes the configuration and the alert rules into `dir`, starts
/// `prometheus` listening on `addr`, and waits until it is ready.
pub async fn start(
    config: &Config,
    targets: &Targets,
    nodes: &[NodeSpec],
    addr: &str,
    dir: &Path,
) -> Result<ChildProcess, StackError> {
    let root = tools::workspace_root();
    std::fs::create_dir_all(dir).map_err(io("creating the prometheus dir"))?;
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config_for(config, targets, nodes, addr)?)
        .map_err(io("writing prometheus.yml"))?;
    std::fs::copy(root.join("grafana/alerts.yml"), dir.join("alerts.yml"))
        .map_err(io("copying grafana/alerts.yml"))?;
    let mut child = ChildProcess::spawn(
        "prometheus",
        &tools::find("prometheus")?,
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={addr}"),
            "--web.enable-lifecycle".into(),
        ],
        &[],
        Output::File(dir.join("prometheus.log")),
    )
    .map_err(io("prometheus"))?;
    let ready = format!("http://{addr}/-/ready");
    let client = reqwest::Client::new();
    wait_ready(&mut child, "prometheus", || async {
        let r = client.get(&ready).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await?;
    Ok(child)
}
