#!/usr/bin/env bash
# The bff's load benchmark (issue 6), release build, real nats-server and
# anvil: GET /v1/prices/BTC-USD on the oracle-bff process against a bare axum
# server returning the same body, same load generator, same run (API keys and
# a rate limit on in the bff); then 10,000 concurrent SSE clients: delivery
# time of each new round and the bff's memory per client.
# BENCH=http|sse|all (default all), CONNECTIONS, DURATION, CLIENTS, SSE_DURATION.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-devstack -p oracle-bff -p oracle-fetchers -p oracle-aggregator
bin="${CARGO_TARGET_DIR:-$root/target}/release/oracle-devstack"
case "${BENCH:-all}" in
  all|http) "$bin" bench-bff --connections "${CONNECTIONS:-32}" --duration "${DURATION:-10s}" ;;&
  all|sse) "$bin" bench-sse --clients "${CLIENTS:-10000}" --duration "${SSE_DURATION:-60s}" ;;
  http) ;;
  *) echo "BENCH must be all, http or sse" >&2; exit 2 ;;
esac
