//! Dev-only: starts the real local stack for `scripts/dev.sh` and for the
//! integration tests — `nats-server` with JetStream (one, or a cluster),
//! `anvil`, the hub deployed with the dev signer set, the exchange simulator,
//! and the three services.
//!
//! Layout:
//! - [`tools`]: finding `nats-server` and `anvil` (installed by `scripts/bootstrap.sh`), free ports.
//! - [`process`]: child processes that cannot outlive the stack.
//! - [`error`]: [`StackError`] and waiting with a deadline.
//! - [`nats`]: the broker, one node or a JetStream cluster, nodes killed and restarted at will.
//! - [`deploy`]: deploying `OracleHub` and registering feeds.
//! - [`nodes`]: the aggregator nodes of the signer quorum, one key each.
//! - [`simulator`]: the exchanges' real wire formats on loopback, with moving prices.
//! - [`stack`]: putting it all together, [`Stack::start`].
//! - [`prometheus`]: Prometheus with `grafana/prometheus.yml`, scraping the stack.
//! - [`bench`]: the fetchers' cost benchmark.
//! - [`bench_aggregator`]: the aggregator's consumption and latency benchmarks.
//! - [`bench_bff`]: the client API's load benchmark.

pub mod bench;
pub mod bench_aggregator;
pub mod bench_bff;
pub mod deploy;
pub mod error;
pub mod nats;
pub mod nodes;
pub mod process;
pub mod prometheus;
pub mod simulator;
pub mod stack;
pub mod tools;

pub use error::{StackError, eventually};
pub use nats::NatsCluster;
pub use stack::{Mode, Options, Stack, start_anvil, start_anvil_with, start_nats};

/// The value of metric `name` in an in-process service's `registry`
/// (counters and gauges), summed over the series that carry `label_value` as
/// one of their label values (`None`: every series); 0 when there is none.
pub fn metric_value(
    registry: &::prometheus::Registry,
    name: &str,
    label_value: Option<&str>,
) -> f64 {
    use ::prometheus::proto::MetricType;
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            let kind = f.get_field_type();
            f.get_metric()
                .iter()
                .filter(move |m| {
                    label_value.is_none_or(|v| m.get_label().iter().any(|l| l.value() == v))
                })
                .map(move |m| match kind {
                    MetricType::GAUGE => m.get_gauge().get_value(),
                    _ => m.get_counter().get_value(),
                })
        })
        .sum()
}

/// Every message body of a JetStream stream, in order (empty if the stream
/// does not exist yet). For tests and tools that inspect what was recorded.
pub async fn read_stream(js: &async_nats::jetstream::Context, name: &str) -> Vec<Vec<u8>> {
    let Ok(mut stream) = js.get_stream(name).await else {
        return vec![];
    };
    let Ok(info) = stream.info().await else {
        return vec![];
    };
    let state = info.state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m.payload.to_vec());
        }
    }
    out
}
