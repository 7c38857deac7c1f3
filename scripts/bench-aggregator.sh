#!/usr/bin/env bash
# The aggregator's benchmarks, release build, real nats-server and anvil:
# observations per second through a node's real service loop (ingest,
# evaluate, ack) against a bare pull consumer, and the latency from an
# observation's PubAck to its round being readable from the contract on each
# chain of config/dev.toml (an automining one, one with a 2 s block time) with
# a quorum of oracle-aggregator node processes (3 of 4 signing, default config),
# and one node's evaluation time per cycle with 500 feeds x 12 sources.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-devstack -p oracle-aggregator
bin="${CARGO_TARGET_DIR:-$root/target}/release/oracle-devstack"
# BENCHES picks some: BENCHES=evaluation scripts/bench-aggregator.sh
for bench in ${BENCHES:-consumption latency evaluation}; do
  case "$bench" in
    consumption) "$bin" bench-consumption --count "${COUNT:-300000}" --rounds "${ROUNDS:-2}" ;;
    latency) "$bin" bench-latency --iterations "${ITERATIONS:-200}" --nodes "${NODES:-4}" ;;
    evaluation) "$bin" bench-evaluation --feeds "${FEEDS:-500}" --duration "${DURATION:-60s}" ;;
    *) echo "unknown benchmark $bench (consumption, latency, evaluation)" >&2; exit 2 ;;
  esac
done
