#!/usr/bin/env bash
# The bff's load benchmark (issue 6), release build, real nats-server and
# anvil: GET /v1/prices/BTC-USD on the oracle-bff process against a bare axum
# server returning the same body, same load generator, same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-devstack -p oracle-bff -p oracle-fetchers -p oracle-aggregator
bin="${CARGO_TARGET_DIR:-$root/target}/release/oracle-devstack"
"$bin" bench-bff --connections "${CONNECTIONS:-32}" --duration "${DURATION:-10s}"
