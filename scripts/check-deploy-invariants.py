#!/usr/bin/env python3
"""Checks of the deployment files that no schema expresses (run by
scripts/check-deploy.sh with the Python of .tools/deploy-venv, for PyYAML).

  compose         deploy/compose.yaml: each aggregator node holds exactly one
                  signer key and one sender key of its own (secrets, files,
                  consumer names all distinct), fetcher ids distinct, every
                  service on the three NATS servers, every name it refers to
                  defined and every bind-mounted path present; Prometheus
                  scrapes every service under the job names of
                  grafana/prometheus.yml.
  k8s             deploy/k8s: the same for the node StatefulSets (one Secret
                  each, one replica, consumer from the pod name), the node
                  files identical but for the node number, the disruption
                  budget leaving the quorum, kustomization.yaml listing every
                  manifest.
  prom-k8s DIR    writes deploy/prometheus/kubernetes.yml into DIR with its
                  kubernetes_sd_configs (checked here) replaced by file_sd_configs,
                  because Debian's promtool is built without Kubernetes discovery;
                  promtool then checks the rest.

Exit status 1 and one line per problem when a check fails.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SECRET_PREFIX = "file:/run/secrets/"
HEX_KEY = re.compile(r"0x[0-9a-fA-F]{64}")
ORACLE_JOBS = {"fetchers", "aggregator", "bff"}
CREATED_ON_USE = {"./backups"}


class Problems:
    def __init__(self):
        self.items = []

    def __call__(self, cond, message):
        if not cond:
            self.items.append(message)
        return cond

    def finish(self, passed):
        if self.items:
            for item in self.items:
                print(f"  - {item}")
            return 1
        for line in passed:
            print(f"  {line}")
        return 0


def env_map(env):
    """A compose environment (mapping or list of KEY=VALUE) as a dict."""
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def command_of(service):
    cmd = service.get("command")
    if isinstance(cmd, str):
        cmd = cmd.split()
    return cmd or []


def secret_names(service):
    return [s if isinstance(s, str) else s.get("source") for s in service.get("secrets") or []]


def check_compose():
    check = Problems()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose.get("services", {})
    top_secrets = compose.get("secrets", {})

    nats = sorted(name for name, s in services.items() if str(s.get("image", "")).startswith("nats:"))
    check(len(nats) == 3, f"expected 3 NATS servers, found {nats}")
    nats_urls = "[" + ",".join(f'"nats://{n}:4222"' for n in nats) + "]"

    nodes = {n: s for n, s in services.items() if command_of(s)[:1] == ["oracle-aggregator"]}
    fetchers = {n: s for n, s in services.items() if command_of(s)[:1] == ["oracle-fetchers"]}
    bffs = {n: s for n, s in services.items() if command_of(s)[:1] == ["oracle-bff"]}
    check(len(nodes) == 4, f"expected 4 aggregator nodes, found {sorted(nodes)}")
    check(len(fetchers) == 2, f"expected 2 fetchers, found {sorted(fetchers)}")
    check(len(bffs) == 2, f"expected 2 bffs, found {sorted(bffs)}")

    signer_secrets, sender_secrets, consumers, key_files = [], [], [], []
    for name, svc in sorted(nodes.items()):
        env = env_map(svc.get("environment"))
        secrets = secret_names(svc)
        check(
            not any(k.upper().startswith("ORACLE__AGGREGATOR__SIGNER_KEYS") for k in env),
            f"{name}: a list of signer keys (signer_keys) is refused by the node",
        )
        signer = env.get("ORACLE__AGGREGATOR__SIGNER_KEY", "")
        sender = env.get("ORACLE__AGGREGATOR__SENDER_KEY", "")
        for what, value, bucket in (("SIGNER", signer, signer_secrets), ("SENDER", sender, sender_secrets)):
            if check(
                value.startswith(SECRET_PREFIX),
                f"{name}: ORACLE__AGGREGATOR__{what}_KEY must be {SECRET_PREFIX}<secret>, not {value!r}",
            ):
                secret = value[len(SECRET_PREFIX):]
                bucket.append(secret)
                check(secret in secrets, f"{name}: {what.lower()} secret {secret!r} is not mounted in the service")
                check(secret in top_secrets, f"{name}: secret {secret!r} is not defined under secrets:")
                key_files.append(str((top_secrets.get(secret) or {}).get("file")))
        check(
            sorted(secrets) == sorted(s for s in (signer.removeprefix(SECRET_PREFIX), sender.removeprefix(SECRET_PREFIX))),
            f"{name}: mounts {secrets}; a node gets exactly its own signer and sender secrets",
        )
        consumers.append(env.get("ORACLE__AGGREGATOR__CONSUMER"))
        check(env.get("ORACLE__AGGREGATOR__CONSUMER") == name, f"{name}: consumer must be the service name")
        check(env.get("ORACLE__AGGREGATOR__METRICS_ADDR") == "0.0.0.0:9102", f"{name}: metrics_addr must be 0.0.0.0:9102")
    all_keys = signer_secrets + sender_secrets
    check(len(set(all_keys)) == len(all_keys), f"a secret serves two nodes or roles: {sorted(all_keys)}")
    check(len(set(key_files)) == len(key_files), f"two key secrets read the same file: {sorted(key_files)}")
    check(len(set(consumers)) == len(consumers), f"consumer names repeat: {consumers}")

    fetcher_ids = [env_map(s.get("environment")).get("ORACLE__FETCHERS__ID") for s in fetchers.values()]
    check(None not in fetcher_ids and len(set(fetcher_ids)) == len(fetcher_ids), f"fetcher ids must be set and distinct: {fetcher_ids}")

    for name, svc in sorted({**nodes, **fetchers, **bffs}.items()):
        env = env_map(svc.get("environment"))
        check(env.get("ORACLE__NATS__URLS") == nats_urls, f"{name}: ORACLE__NATS__URLS must be {nats_urls}")
        check(env.get("ORACLE__NATS__REPLICAS") == "3", f"{name}: ORACLE__NATS__REPLICAS must be 3")
        for key, value in env.items():
            check(not HEX_KEY.search(value), f"{name}: {key} holds what looks like a private key; use a secret file")

    # References the schema cannot see: services, volumes, networks and
    # secrets named where they are used exist; bind-mounted files exist.
    top_volumes = set(compose.get("volumes") or {})
    top_networks = set(compose.get("networks") or {})
    bind_sources = set()
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, (dict, list)) else []:
            check(dep in services, f"{name}: depends_on {dep!r}, no such service")
        for net in svc.get("networks") or []:
            check(net in top_networks, f"{name}: network {net!r} is not defined")
        for secret in secret_names(svc):
            check(secret in top_secrets, f"{name}: secret {secret!r} is not defined")
        for vol in svc.get("volumes") or []:
            source = (vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")) or ""
            if source.startswith((".", "/")):
                bind_sources.add(source)
                # Docker creates a missing directory of the short syntax: the
                # backups folder appears on first use.
                check(
                    source in CREATED_ON_USE or (DEPLOY / source).exists(),
                    f"{name}: bind mount source {source} does not exist",
                )
            else:
                check(source in top_volumes, f"{name}: volume {source!r} is not defined")

    # Prometheus: the dashboards' job names, every service a target.
    ports = {"fetchers": 9101, "aggregator": 9102, "bff": 9103}
    members = {"fetchers": fetchers, "aggregator": nodes, "bff": bffs}
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    dev = yaml.safe_load((ROOT / "grafana" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    dev_jobs = {j["job_name"] for j in dev.get("scrape_configs", [])}
    check(set(jobs) == dev_jobs, f"job names {sorted(jobs)} differ from grafana/prometheus.yml's {sorted(dev_jobs)}")
    for job, port in ports.items():
        targets = sorted(t for sc in jobs.get(job, {}).get("static_configs", []) for t in sc.get("targets", []))
        wanted = sorted(f"{n}:{port}" for n in members[job])
        check(targets == wanted, f"prometheus job {job}: targets {targets}, services {wanted}")

    return check.finish(
        [
            f"nodes {', '.join(sorted(nodes))}: one signer and one sender secret each, all distinct; consumers unique",
            f"fetcher ids {sorted(fetcher_ids)} distinct; every service on {', '.join(nats)} with 3 replicas",
            "prometheus.yml: job names as grafana/prometheus.yml, every fetcher, node and bff a target",
            f"services, volumes, networks, secrets referenced exist; {len(bind_sources)} bind-mount sources present",
        ]
    )


def load_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def check_k8s():
    check = Problems()
    k8s = DEPLOY / "k8s"
    docs = {p.name: load_docs(p) for p in sorted(k8s.glob("*.yaml"))}

    kustomization = docs.pop("kustomization.yaml")[0]
    docs.pop("nats-values.yaml", None)
    optional = {n for n in docs if n.startswith("optional-")}
    listed = set(kustomization.get("resources", []))
    manifests = set(docs) - optional
    check(listed == manifests, f"kustomization resources {sorted(listed)} differ from the manifests {sorted(manifests)}")

    objects = [(name, d) for name, ds in docs.items() if name not in optional for d in ds]
    sts = [(n, d) for n, d in objects if d.get("kind") == "StatefulSet"]
    nodes = [
        (n, d)
        for n, d in sts
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "aggregator"
    ]
    check(len(nodes) == 4, f"expected 4 aggregator node StatefulSets, found {[d['metadata']['name'] for _, d in nodes]}")

    secrets_used, consumers = [], []
    for fname, d in nodes:
        name = d["metadata"]["name"]
        spec = d["spec"]
        pod = spec["template"]["spec"]
        check(spec.get("replicas") == 1, f"{name}: one replica per node StatefulSet (one key per pod)")
        check(spec.get("updateStrategy", {}).get("type") == "OnDelete", f"{name}: updateStrategy must be OnDelete")
        secret_vols = [v for v in pod.get("volumes", []) if "secret" in v or "projected" in v]
        if check(len(secret_vols) == 1 and "secret" in secret_vols[0], f"{name}: exactly one (non-projected) secret volume"):
            vol = secret_vols[0]
            secret = vol["secret"]["secretName"]
            secrets_used.append(secret)
            check(secret == f"{name}-keys", f"{name}: mounts Secret {secret}, expected {name}-keys")
            items = sorted(i["key"] for i in vol["secret"].get("items", []))
            check(items == ["sender", "signer"], f"{name}: secret items {items}, expected signer and sender")
        containers = pod["containers"]
        check(len(containers) == 1, f"{name}: one container")
        c = containers[0]
        env = {e["name"]: e for e in c.get("env", [])}
        check(not any(k.upper().startswith("ORACLE__AGGREGATOR__SIGNER_KEYS") for k in env), f"{name}: signer_keys is refused")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        keys_path = mounts.get(secret_vols[0]["name"]) if secret_vols else None
        for var, item in (("ORACLE__AGGREGATOR__SIGNER_KEY", "signer"), ("ORACLE__AGGREGATOR__SENDER_KEY", "sender")):
            e = env.get(var, {})
            check(
                e.get("value") == f"file:{keys_path}/{item}",
                f"{name}: {var} must be file:{keys_path}/{item} (a file of its own Secret), got {e}",
            )
        consumer = env.get("ORACLE__AGGREGATOR__CONSUMER", {})
        check(
            consumer.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
            f"{name}: ORACLE__AGGREGATOR__CONSUMER must come from the pod name",
        )
        consumers.append(name)
        for e in c.get("env", []):
            check(not HEX_KEY.search(str(e.get("value", ""))), f"{name}: {e['name']} holds what looks like a private key")
    check(len(set(secrets_used)) == len(secrets_used), f"a Secret is mounted by two nodes: {secrets_used}")
    check(len(set(consumers)) == len(consumers), f"node names repeat: {consumers}")

    # The node files are one template: identical but for the node number.
    texts = {}
    for fname, _ in nodes:
        m = re.search(r"node-(\d+)", fname)
        n = m.group(1) if m else "?"
        text = (k8s / fname).read_text()
        texts[fname] = re.sub(rf"node-{n}\b", "node-N", text).replace(f"node {n} of", "node N of")
    check(len(set(texts.values())) <= 1, f"node manifests differ beyond the node number: {sorted(texts)}")

    pdbs = [d for _, d in objects if d.get("kind") == "PodDisruptionBudget"]
    node_pdb = [
        p for p in pdbs if p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "aggregator"
    ]
    if check(len(node_pdb) == 1, "one PodDisruptionBudget for the aggregator nodes"):
        check(node_pdb[0]["spec"].get("minAvailable") == 3, "aggregator PodDisruptionBudget: minAvailable must be 3 (3 of 4 sign)")
    for comp in ("fetchers", "bff"):
        check(
            any(p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == comp for p in pdbs),
            f"no PodDisruptionBudget for {comp}",
        )
    return check.finish(
        [
            f"{len(nodes)} node StatefulSets, 1 replica each, each mounting only its own Secret ({', '.join(secrets_used)})",
            "node manifests identical but for the node number; PDB minAvailable 3; kustomization lists every manifest",
        ]
    )


def prom_k8s(out_dir):
    check = Problems()
    src = yaml.safe_load((DEPLOY / "prometheus" / "kubernetes.yml").read_text())
    out = Path(out_dir)
    jobs = set()
    for job in src.get("scrape_configs", []):
        jobs.add(job["job_name"])
        for sd in job.pop("kubernetes_sd_configs", []):
            check(sd.get("role") == "pod", f"{job['job_name']}: kubernetes_sd role must be pod")
            check(set(sd) <= {"role", "namespaces"}, f"{job['job_name']}: unexpected kubernetes_sd keys {sorted(set(sd))}")
            check(sd.get("namespaces", {}).get("names") == ["oracle"], f"{job['job_name']}: namespace must be oracle")
        job["file_sd_configs"] = [{"files": ["targets.json"]}]
    check(ORACLE_JOBS <= jobs, f"jobs {sorted(jobs)} lack some of {sorted(ORACLE_JOBS)}")
    (out / "kubernetes.yml").write_text(yaml.safe_dump(src, sort_keys=False))
    (out / "targets.json").write_text("[]\n")
    (out / "alerts.yml").write_text((ROOT / "grafana" / "alerts.yml").read_text())
    return check.finish([])


def main(argv):
    if argv[:1] == ["compose"]:
        return check_compose()
    if argv[:1] == ["k8s"]:
        return check_k8s()
    if argv[:1] == ["prom-k8s"] and len(argv) == 2:
        return prom_k8s(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
