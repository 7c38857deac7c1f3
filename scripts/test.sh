#!/usr/bin/env bash
# Runs every test of the project: formatting and lints (Rust and Solidity),
# the Rust unit and integration tests (which start real nats-server and anvil
# processes), and the Foundry tests. Installs the tools it needs first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/bootstrap.sh"
export PATH="$root/.tools/bin:$PATH"

for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 \
    || { echo "cargo $component is missing: rustup component add $component" >&2; exit 1; }
done

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
step "forge fmt --check"
(cd contracts && forge fmt --check)
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "forge test"
(cd contracts && forge test)
step "cargo test"
cargo test --workspace --locked
