#!/usr/bin/env bash
# The fetchers' cost benchmark (issue 4): a release build of oracle-fetchers
# polling 12 sources for 20 feeds every second against the simulator, with a
# real nats-server; prints CPU (% of one core) and resident memory.
# Extra arguments go to `oracle-devstack bench-fetchers` (e.g. --duration 30s).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
cargo build --release --locked -p oracle-fetchers -p oracle-devstack
target="${CARGO_TARGET_DIR:-$root/target}/release"
exec "$target/oracle-devstack" bench-fetchers --fetchers-bin "$target/oracle-fetchers" "$@"
