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
# CI runs the heavier fuzz/invariant profile (foundry.toml [profile.ci]).
step "forge test (profile ${FOUNDRY_PROFILE:=$([ -n "${CI:-}" ] && echo ci || echo default)})"
(cd contracts && FOUNDRY_PROFILE="$FOUNDRY_PROFILE" forge test)
step "forge snapshot --check (gas targets, contracts/.gas-snapshot)"
(cd contracts && forge snapshot --match-contract Gas --check)
step "promtool: Prometheus config, alert rules and their unit tests (grafana/)"
promtool check config grafana/prometheus.yml
promtool check rules grafana/alerts.yml
promtool test rules grafana/alerts.test.yml
step "deployment files: Dockerfile, compose, Kubernetes (scripts/check-deploy.sh)"
scripts/check-deploy.sh
step "cargo build --bins (integration tests run the service binaries)"
cargo build --workspace --bins --locked
step "cargo test"
cargo test --workspace --locked
