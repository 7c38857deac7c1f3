#!/usr/bin/env bash
# Static checks of the deployment files (docs/deployment.md), no Docker engine
# or cluster needed:
#   hadolint           Dockerfile (.hadolint.yaml)
#   ShellCheck         the image's probe script and this script
#   compose schema     deploy/compose.yaml against the Compose Specification's
#                      JSON schema (deploy/schema/compose-spec.json, or the copy
#                      check-jsonschema ships when that file is absent)
#   compose invariants one signer + one sender key per node, distinct; ids, NATS
#                      URLs, Prometheus targets (scripts/check-deploy-invariants.py)
#   nats-server -t     deploy/nats/nats.conf
#   promtool           deploy/prometheus/*.yml with grafana/alerts.yml
#   kubernetes-validate deploy/k8s manifests, strict, Kubernetes $K8S_VERSION
#   kustomize          the rendered deploy/k8s (kubectl kustomize), validated likewise
#   k8s invariants     one Secret per node StatefulSet, PDB, kustomization complete
# Installs its Python tools (pinned in scripts/check-deploy-requirements.txt)
# into .tools/deploy-venv once; later runs reuse them. nats-server and promtool
# come from scripts/bootstrap.sh. Prints one line per check and exits 1 if
# any failed. Called by scripts/test.sh; safe to run by hand.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.30.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.tools/deploy-venv"
requirements="$root/scripts/check-deploy-requirements.txt"

say() { printf '[check-deploy] %s\n' "$*"; }
die() { printf '[check-deploy] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- tools -----------------------------------------------------------------
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
  say "installing hadolint, check-jsonschema, kubernetes-validate, shellcheck into .tools/deploy-venv"
  rm -rf "$venv"
  python3 -m venv "$venv" \
    || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements" \
    || die "pip could not install scripts/check-deploy-requirements.txt (is PyPI reachable?)"
  touch "$stamp"
fi
py="$venv/bin/python"

tool() { # the first of: .tools/bin/NAME, NAME on PATH; empty if neither
  if [[ -x "$root/.tools/bin/$1" ]]; then echo "$root/.tools/bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  fi
  return 0
}
nats_server="$(tool nats-server)"
promtool="$(tool promtool)"
kubectl="$(tool kubectl)"

# ---- running checks ----------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=()
ok=0

# check NAME COMMAND...: runs it, prints PASS/FAIL and, on failure, its
# output; ok is 1 when it passed. Never fails itself (set -e).
check() {
  local name="$1"; shift
  if "$@" >"$tmp/out" 2>&1; then
    printf '  PASS  %s\n' "$name"
    passed=$((passed + 1))
    ok=1
  else
    printf '  FAIL  %s\n' "$name"
    sed 's/^/        /' "$tmp/out"
    failed+=("$name")
    ok=0
  fi
}

# check_verbose NAME COMMAND...: check, and on success also the command's
# output (its summary of what it checked).
check_verbose() {
  check "$@"
  if ((ok)); then sed 's/^/      /' "$tmp/out"; fi
}

missing() { echo "$1 not found: run scripts/bootstrap.sh"; return 1; }

# kubernetes-validate only warns on a kind it has no schema for (a typo in
# `kind`, a CRD): treat any warning as a failure.
kube_validate() {
  "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet "$@" >"$tmp/kv" 2>&1
  local rc=$?
  cat "$tmp/kv"
  [[ $rc -eq 0 ]] && ! grep -q '^WARN' "$tmp/kv"
}

nats_conf() {
  [[ -n "$nats_server" ]] || missing nats-server
  # The servers name themselves through SERVER_NAME (deploy/compose.yaml).
  (cd "$tmp" && SERVER_NAME=nats-1 "$nats_server" -c "$root/deploy/nats/nats.conf" -t)
}

prometheus_compose() {
  [[ -n "$promtool" ]] || missing promtool
  mkdir -p "$tmp/prom-compose"
  # As compose mounts them: the config with grafana/alerts.yml beside it.
  cp deploy/prometheus/prometheus.yml grafana/alerts.yml "$tmp/prom-compose/"
  "$promtool" check config "$tmp/prom-compose/prometheus.yml"
}

prometheus_k8s() {
  [[ -n "$promtool" ]] || missing promtool
  mkdir -p "$tmp/prom-k8s"
  "$py" scripts/check-deploy-invariants.py prom-k8s "$tmp/prom-k8s"
  "$promtool" check config "$tmp/prom-k8s/kubernetes.yml"
}

kustomize_render() {
  # config/default.toml lies outside deploy/k8s, hence the load restrictor.
  "$kubectl" kustomize --load-restrictor LoadRestrictionsNone deploy/k8s >"$tmp/rendered.yaml" \
    && kube_validate "$tmp/rendered.yaml"
}

# Kubernetes manifests: every YAML file in deploy/k8s except the kustomization,
# the Helm values of the NATS chart, and optional files needing CRDs
# (optional-*.yaml, e.g. a Prometheus Operator ServiceMonitor).
manifests=()
for f in deploy/k8s/*.yaml; do
  case "$(basename "$f")" in
    kustomization.yaml | nats-values.yaml | optional-*.yaml) ;;
    *) manifests+=("$f") ;;
  esac
done

say "checking the deployment files"
check "hadolint: Dockerfile" "$venv/bin/hadolint" --no-color --config .hadolint.yaml Dockerfile
check "shellcheck: deploy/docker/oracle-probe, scripts/check-deploy.sh" \
  "$venv/bin/shellcheck" deploy/docker/oracle-probe scripts/check-deploy.sh
# The vendored schema (deploy/schema/README.md); without it, the copy that
# the pinned check-jsonschema ships.
if [[ -f deploy/schema/compose-spec.json ]]; then
  check "compose schema: deploy/compose.yaml (deploy/schema/compose-spec.json)" \
    "$venv/bin/check-jsonschema" --schemafile deploy/schema/compose-spec.json deploy/compose.yaml
else
  check "compose schema: deploy/compose.yaml (check-jsonschema's vendor.compose-spec)" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
fi
check_verbose "compose invariants: keys, ids, NATS, Prometheus targets" \
  "$py" scripts/check-deploy-invariants.py compose
check "nats-server -t: deploy/nats/nats.conf" nats_conf
check "promtool: deploy/prometheus/prometheus.yml + grafana/alerts.yml" prometheus_compose
check "promtool: deploy/prometheus/kubernetes.yml (discovery checked apart)" prometheus_k8s
check "kubernetes-validate --strict, Kubernetes $K8S_VERSION: ${#manifests[@]} manifests in deploy/k8s" \
  kube_validate "${manifests[@]}"
if [[ -n "$kubectl" ]]; then
  check "kustomize: deploy/k8s rendered, kubernetes-validate --strict $K8S_VERSION" kustomize_render
else
  say "SKIP  kustomize render: kubectl not installed (the manifests were validated one by one)"
fi
check_verbose "k8s invariants: one Secret per node, PDB, kustomization" \
  "$py" scripts/check-deploy-invariants.py k8s

if ((${#failed[@]})); then
  say "${#failed[@]} of $((passed + ${#failed[@]})) checks FAILED:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
say "all $passed checks passed"
