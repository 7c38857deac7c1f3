#!/usr/bin/env bash
# The aggregator's speed benchmarks (issue 5), release build, real nats-server
# and anvil: observations per second through the consumer loop against a bare
# pull consumer, and the latency from an observation's PubAck to its round
# being readable from the contract.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-devstack
bin="${CARGO_TARGET_DIR:-$root/target}/release/oracle-devstack"
"$bin" bench-consumption --count "${COUNT:-300000}"
"$bin" bench-latency --iterations "${ITERATIONS:-200}" --tick "${TICK:-100ms}"
