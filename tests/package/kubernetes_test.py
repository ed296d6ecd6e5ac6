#!/usr/bin/python3
"""The Kubernetes manifests in packaging/kubernetes/ hang together and match the daemon.

No cluster needed: the YAML is loaded (python3-yaml) and cross-checked. Ports agree end to end
(ConfigMap metrics.listen -> container port -> Service targetPort -> ServiceMonitor and scrape
config); selectors select; the StatefulSet's environment is what polar-loadd reads, its shard
count equals its replicas, and the ConfigMap's config passes `polar-loadd --check-config` as the
last pod would run it (pod name in POLAR_LOADD_SHARD); the config and token mounts are where the
config says; the job label is the one the shipped alerts select.

    kubernetes_test.py SOURCE_DIR POLAR_LOADD_BINARY
"""
import os
import re
import subprocess
import sys
import tomllib

import yaml

src, binary = sys.argv[1], sys.argv[2]
kdir = os.path.join(src, "packaging", "kubernetes")
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


docs = {}
for name in sorted(os.listdir(kdir)):
    if not name.endswith(".yaml"):
        continue
    with open(os.path.join(kdir, name)) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            kind = doc.get("kind", "scrape_config" if "scrape_configs" in doc else None)
            check(kind not in docs, f"{name}: a second {kind}")
            docs[kind] = doc

for kind in ("ConfigMap", "Service", "StatefulSet", "ServiceMonitor", "scrape_config"):
    check(kind in docs, f"no {kind} in packaging/kubernetes/")
if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)

cm, svc, sts, sm, scrape = (docs[k] for k in
                            ("ConfigMap", "Service", "StatefulSet", "ServiceMonitor",
                             "scrape_config"))
pod = sts["spec"]["template"]
labels = pod["metadata"]["labels"]
container = pod["spec"]["containers"][0]


def selects(selector, target):
    return all(target.get(k) == v for k, v in selector.items())


# Selectors and names.
check(svc["spec"].get("clusterIP") == "None", "the Service is not headless (clusterIP: None)")
check(sts["spec"]["serviceName"] == svc["metadata"]["name"],
      "StatefulSet.serviceName is not the headless Service")
check(selects(sts["spec"]["selector"]["matchLabels"], labels),
      "the StatefulSet's selector does not select its pods")
check(selects(svc["spec"]["selector"], labels), "the Service does not select the pods")
check(selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]),
      "the ServiceMonitor does not select the Service")

# The config file, as mounted.
args = container["args"]
config_path = args[args.index("--config") + 1]
config_text = cm["data"][os.path.basename(config_path)]
config = tomllib.loads(config_text)
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
config_volume = [n for n, v in volumes.items()
                 if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
check(len(config_volume) == 1 and mounts.get(config_volume[0]) == os.path.dirname(config_path),
      f"the ConfigMap is not mounted where --config {config_path} reads it")
token_file = config["target"]["token_file"]
secret_volume = [n for n, v in volumes.items() if "secret" in v]
check(len(secret_volume) == 1 and mounts.get(secret_volume[0]) == os.path.dirname(token_file),
      f"no Secret mounted at {os.path.dirname(token_file)} for token_file {token_file}")
if secret_volume:
    items = volumes[secret_volume[0]]["secret"].get("items")
    check(items is None or any(i["path"] == os.path.basename(token_file) for i in items),
          "the Secret does not provide " + os.path.basename(token_file))

# Ports, end to end.
listen_port = int(config["metrics"]["listen"].rsplit(":", 1)[1])
check(not config["metrics"]["listen"].startswith("127."),
      "metrics.listen is loopback: Prometheus cannot reach the pod")
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
check(ports.get("metrics") == listen_port,
      f"containerPort metrics {ports.get('metrics')} != metrics.listen port {listen_port}")
svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
metrics_port = svc_ports.get("metrics", {})
target = metrics_port.get("targetPort")
check(target == "metrics" or target == listen_port,
      f"the Service's targetPort {target} is not the container's metrics port")
for probe in ("readinessProbe", "livenessProbe"):
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("path") == "/metrics" and get.get("port") in ("metrics", listen_port),
          f"{probe} does not ask /metrics on the metrics port")
endpoints = sm["spec"]["endpoints"]
check(len(endpoints) == 1 and endpoints[0]["port"] == "metrics"
      and endpoints[0].get("path", "/metrics") == "/metrics",
      "the ServiceMonitor does not scrape the Service's metrics port at /metrics")
job = scrape["scrape_configs"][0]
# `instance` is the pod's name in both, so each shard keeps its series across pod restarts.
check(any(r.get("sourceLabels") == ["__meta_kubernetes_pod_name"] and r.get("targetLabel") == "instance"
          for r in endpoints[0].get("relabelings", [])),
      "the ServiceMonitor does not set instance to the pod's name")
check(any(r.get("source_labels") == ["__meta_kubernetes_pod_name"]
          and r.get("target_label") == "instance" for r in job["relabel_configs"]),
      "the scrape config does not set instance to the pod's name")
keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
check(keep and keep[0]["regex"] == f"{svc['metadata']['name']};metrics",
      "the scrape config does not keep the Service's metrics endpoints")

# The job label the alerts select (grafana/rules): the Service name under the operator, job_name
# otherwise.
rules = open(os.path.join(src, "grafana", "rules", "polar-loadd-alerts.yml")).read()
jobs = set(re.findall(r'job="([^"]+)"', rules))
check(jobs == {svc["metadata"]["name"]} and job["job_name"] in jobs,
      f"the alerts select job {jobs}; the Service is {svc['metadata']['name']}, "
      f"the scrape job {job['job_name']}")

# The environment: only variables the daemon reads; the shard from the pod name; the count equal
# to the replicas.
daemon_source = "".join(
    open(os.path.join(d, f)).read() for d, _, files in os.walk(os.path.join(src, "daemon"))
    for f in files if f.endswith(".cc"))
env = {e["name"]: e for e in container["env"]}
for name in env:
    check(f'"{name}"' in daemon_source, f"the daemon does not read {name}")
shard = env.get("POLAR_LOADD_SHARD", {})
check(shard.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") in
      ("metadata.name", "metadata.labels['apps.kubernetes.io/pod-index']"),
      "POLAR_LOADD_SHARD does not come from the pod's name or index")
replicas = sts["spec"]["replicas"]
check(env.get("POLAR_LOADD_SHARDS", {}).get("value") == str(replicas),
      f"POLAR_LOADD_SHARDS {env.get('POLAR_LOADD_SHARDS')} != replicas {replicas}")
check(sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 10,
      "terminationGracePeriodSeconds must exceed the 10 s shutdown_grace")

# The config is valid as every pod runs it (the token file does not exist here; the Locust
# variable stands in for it), and the last pod really is the last shard.
for ordinal in range(replicas):
    pod_env = dict(os.environ, LOAD_TEST_API_TOKEN="polar_oat_k8s_test",
                   POLAR_LOADD_SHARD=f"{sts['metadata']['name']}-{ordinal}",
                   POLAR_LOADD_SHARDS=str(replicas))
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"k8s-{os.getpid()}.toml"),
              "w") as f:
        f.write(config_text)
        path = f.name
    out = subprocess.run([binary, "--check-config", "--config", path], env=pod_env,
                         capture_output=True, text=True)
    os.unlink(path)
    check(out.returncode == 0, f"pod {ordinal}: --check-config failed: {out.stdout}{out.stderr}")
    check(f"{ordinal}/{replicas}" in out.stdout + out.stderr,
          f"pod {ordinal}: --check-config does not say shard {ordinal}/{replicas}: "
          f"{out.stdout}{out.stderr}")
# One pod too many is refused.
bad_env = dict(os.environ, LOAD_TEST_API_TOKEN="x",
               POLAR_LOADD_SHARD=f"polar-loadd-{replicas}", POLAR_LOADD_SHARDS=str(replicas))
with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"k8s-{os.getpid()}.toml"), "w") as f:
    f.write(config_text)
    path = f.name
out = subprocess.run([binary, "--check-config", "--config", path], env=bad_env,
                     capture_output=True, text=True)
os.unlink(path)
check(out.returncode == 78, f"a pod past the shard count was accepted: {out.stdout}{out.stderr}")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"kubernetes manifests OK: {replicas} shards, port {listen_port}, job {job['job_name']}")
