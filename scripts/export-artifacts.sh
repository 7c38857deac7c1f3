#!/usr/bin/env bash
# Rebuilds the contracts and refreshes the checked-in artifacts in
# contracts/artifacts/ (ABI + bytecode) that the Rust `sol!` bindings use.
# A Rust test (oracle-common, artifact_is_fresh) fails when they are stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root/contracts"
"$root/.tools/bin/forge" build --quiet
node "$root/scripts/export-artifacts.mjs" "$root/contracts/out" "$root/contracts/artifacts"
echo "artifacts written to contracts/artifacts/"
