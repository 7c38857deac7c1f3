#!/usr/bin/env bash
# Runs the whole oracle locally: installs the tools, builds the services, then
# starts nats-server, one anvil per chain of config/dev.toml (`local`
# automining, `slow` with 2 s blocks; OracleHub and the adapters deployed on
# each for the signer quorum of config/dev-nodes.toml), the exchange
# simulator, the fetchers, the bff and one aggregator node process per signer
# (four, threshold 3), every node serving both chains. Ctrl-C stops
# everything. Extra arguments go to `oracle-devstack up` (e.g.
# --ephemeral-ports, --nodes 3, --block-time 12, --prometheus, --nats-cluster 3
# for a three-node JetStream cluster, --fetchers 2 --bffs 2 for replicas).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/bootstrap.sh"
cargo build --workspace --bins --locked
exec "${CARGO_TARGET_DIR:-$root/target}/debug/oracle-devstack" up --config config/dev.toml "$@"
