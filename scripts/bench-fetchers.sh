#!/usr/bin/env bash
# The fetchers' cost benchmark (issue 12): a release build of oracle-fetchers
# polling 12 sources as primaries for 500 feeds (BENCH_FEEDS=N for another
# count: the 20 real bases, then generated ones) every second against the
# simulator enforcing each venue's documented public budget, with a real
# nats-server; prints requests/s per venue against its budget and the 429s
# refused, each feed's observation age p99, CPU (% of one core) and resident
# memory. Extra arguments go to `oracle-devstack bench-fetchers`
# (e.g. --warmup 10s --duration 60s).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-fetchers -p oracle-devstack
target="${CARGO_TARGET_DIR:-$root/target}/release"
export BENCH_FEEDS="${BENCH_FEEDS:-500}"
exec "$target/oracle-devstack" bench-fetchers --fetchers-bin "$target/oracle-fetchers" "$@"
