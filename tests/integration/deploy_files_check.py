#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Static checks of the deploy files, run by 0073-deploy-files.sh:

    deploy_files_check.py SRC CONSUMER_BIN

docker-compose.yml, ops/Dockerfile, ops/k8s/*.yaml and the Prometheus and
Grafana files they mount must agree with each other and with the binary:
the configuration each deployment gives swarmq is fed to
`swarmq-consumer --dump-config` (which rejects unknown keys), and every
grace period is compared with the drain deadline the binary reports.
Prints one line per check; exits 1 if any failed. DEPLOY_CHECK_SKIP_LIBS=1
skips the (slower) library-to-package check.
"""
import base64
import os
import re
import subprocess
import sys
import tempfile

import yaml

src, consumer = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def dump_config(env=None, config_text=None):
    """The effective configuration as the binary sees it."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("SWARMQ_")}
    full_env.update(env or {})
    args = [consumer, "--dump-config"]
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as fp:
        if config_text is not None:
            fp.write(config_text)
            fp.flush()
            args += ["-c", fp.name]
        r = subprocess.run(args, env=full_env, capture_output=True, text=True)
    if not check(r.returncode == 0,
                 f"swarmq-consumer --dump-config accepts it "
                 f"({r.stderr.strip() or 'exit 0'})"):
        return {}
    return dict(line.split("=", 1) for line in r.stdout.splitlines()
                if "=" in line)


def seconds(text):
    """Compose/systemd durations: 60s, 1m30s, 90, 1min."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    total = 0
    for num, unit in re.findall(r"(\d+)\s*(ms|min|s|m|h)", text):
        total += int(num) * {"ms": 0.001, "s": 1, "m": 60, "min": 60,
                             "h": 3600}[unit]
    return total


def mem_bytes(text):
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]i?)?[bB]?", str(text).strip())
    mult = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    return int(m.group(1)) * mult[(m.group(2) or "")[:1].lower() or None]


# Stopping takes the drain deadline, then commit, consumer close and the
# producer's final flush (shutdown.close.timeout.ms): a grace period needs
# both.

# ---------------------------------------------------------------- compose
compose = yaml.safe_load(open(f"{src}/docker-compose.yml"))
services = compose["services"]
consumers = sorted(s for s in services if s.startswith("consumer-"))
check(set(services) >= {"kafka", "prometheus", "grafana"} and
      len(consumers) == 3, f"compose services: {sorted(services)}")
check(not any("zookeeper" in s for s in services), "compose: no ZooKeeper")

kafka = services["kafka"]
kenv = kafka["environment"]
check(kafka["image"] == "apache/kafka:3.9.1",
      f"kafka image {kafka['image']} is the official apache/kafka:3.9.1")
check(set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"},
      "kafka runs in KRaft mode (process.roles=broker,controller)")
check("KAFKA_CONTROLLER_QUORUM_VOTERS" in kenv and
      "KAFKA_CONTROLLER_LISTENER_NAMES" in kenv, "kafka has a KRaft quorum")
try:
    raw = base64.urlsafe_b64decode(kenv["CLUSTER_ID"] + "==")
    cid_ok = len(kenv["CLUSTER_ID"]) == 22 and len(raw) == 16
except Exception:
    cid_ok = False
check(cid_ok, f"kafka CLUSTER_ID {kenv.get('CLUSTER_ID')} is a base64 UUID")
advertised = {l.split("://", 1)[1] for l in
              kenv["KAFKA_ADVERTISED_LISTENERS"].split(",")}

host_ports = []
for name, svc in services.items():
    check("healthcheck" in svc and svc["healthcheck"].get("test"),
          f"compose {name} has a health check")
    for p in svc.get("ports", []):
        host_ports.append(str(p).split(":")[0])
    for v in svc.get("volumes", []):
        host = v.split(":")[0]
        if host.startswith("./"):
            check(os.path.exists(os.path.join(src, host)),
                  f"compose {name} mounts {host}, which exists")
check(len(host_ports) == len(set(host_ports)),
      f"compose host ports are distinct: {host_ports}")

instance_ids, targets = set(), set()
for name in consumers:
    svc = services[name]
    env = {k: str(v) for k, v in svc["environment"].items()}
    build = svc["build"]
    check(build["dockerfile"] == "ops/Dockerfile" and build["context"] == "."
          and os.path.exists(f"{src}/ops/Dockerfile"),
          f"compose {name} is built from ops/Dockerfile")
    conf = dump_config(env)
    if not conf:
        continue
    instance_ids.add(conf["instance.id"])
    check(conf.get("kafka.bootstrap.servers") in advertised,
          f"compose {name} bootstrap {conf.get('kafka.bootstrap.servers')} "
          f"is a listener kafka advertises {sorted(advertised)}")
    check(conf["http.bind"] == "0.0.0.0",
          f"compose {name} binds HTTP on 0.0.0.0 inside the container")
    port = conf["http.port"]
    check(any(str(p).endswith(":" + port) for p in svc.get("ports", [])),
          f"compose {name} publishes its HTTP port {port}")
    test = " ".join(svc["healthcheck"]["test"])
    check("/healthz" in test and f"/{port} " in test + " ",
          f"compose {name} health check asks /healthz on port {port}")
    check(svc["depends_on"]["kafka"]["condition"] == "service_healthy",
          f"compose {name} waits for a healthy kafka")
    drain = int(conf["shutdown.drain.timeout.ms"]) / 1000
    close = int(conf["shutdown.close.timeout.ms"]) / 1000
    grace = seconds(svc.get("stop_grace_period", "10s"))
    check(grace >= drain + close,
          f"compose {name} stop_grace_period {grace:g} s >= drain "
          f"{drain:g} s + close {close:g} s")
    limit = int(conf["memory.limit.bytes"])
    check(limit == 0 or mem_bytes(svc["mem_limit"]) > limit,
          f"compose {name} mem_limit {svc.get('mem_limit')} is above "
          f"memory.limit.bytes {limit}")
    targets.add(f"{name}:{port}")
check(len(instance_ids) == len(consumers),
      f"compose consumers have distinct instance ids {sorted(instance_ids)}")

prom = services["prometheus"]
check(any(v.startswith("./ops/prometheus:/etc/prometheus") for v in
          prom["volumes"]) and
      "--config.file=/etc/prometheus/prometheus.yml" in prom["command"],
      "compose prometheus runs ops/prometheus/prometheus.yml")
pconf = yaml.safe_load(open(f"{src}/ops/prometheus/prometheus.yml"))
(job,) = [j for j in pconf["scrape_configs"] if j["job_name"] == "swarmq"]
scraped = {t for sc in job["static_configs"] for t in sc["targets"]}
check(scraped == targets,
      f"prometheus.yml scrapes exactly the consumers {sorted(targets)}")
for rf in pconf["rule_files"]:
    check(os.path.exists(f"{src}/ops/prometheus/{rf}"),
          f"prometheus.yml rule file {rf} exists")

graf = services["grafana"]
provider = yaml.safe_load(open(
    f"{src}/ops/grafana/provisioning/dashboards/swarmq.yml"))["providers"][0]
mounts = dict(v.split(":")[:2] for v in graf["volumes"])
check(mounts.get("./ops/grafana/provisioning") == "/etc/grafana/provisioning",
      "compose grafana mounts the provisioning directory")
check(mounts.get("./ops/grafana/dashboards") == provider["options"]["path"],
      f"compose grafana mounts the dashboards where the provider reads them "
      f"({provider['options']['path']})")
ds = yaml.safe_load(open(
    f"{src}/ops/grafana/provisioning/datasources/prometheus.yml"))
url = ds["datasources"][0]["url"]
check(url == "http://prometheus:9090" and any(
    str(p).endswith(":9090") for p in prom["ports"]),
    f"grafana's data source {url} is the compose prometheus")

# ---------------------------------------------------------------- Dockerfile
docker = open(f"{src}/ops/Dockerfile").read()
lines = [l for l in re.sub(r"\\\n", " ", docker).splitlines()
         if l.strip() and not l.lstrip().startswith("#")]
froms = [l.split()[1] for l in lines if l.startswith("FROM ")]
check(len(froms) >= 2 and all(f == "debian:bookworm-slim" for f in froms),
      f"Dockerfile is multi-stage on debian:bookworm-slim: {froms}")
last = lines[max(i for i, l in enumerate(lines) if l.startswith("FROM "))
             + 1:]
users = [l.split()[1] for l in last if l.startswith("USER ")]
check(users and users[-1].split(":")[0] not in ("0", "root"),
      f"runtime stage runs as a non-root user: {users}")
health = [l for l in last if l.startswith("HEALTHCHECK ")]
check(health and "/healthz" in health[0], "runtime stage has a HEALTHCHECK "
      "on /healthz")
check(any(l.startswith("STOPSIGNAL SIGTERM") for l in last),
      "runtime stage stops with SIGTERM")
envs = dict(re.findall(r"(SWARMQ_\w+)=(\S+)", " ".join(
    l for l in last if l.startswith("ENV "))))
dconf = dump_config(envs)
check(dconf.get("http.bind") == "0.0.0.0" and any(
    l == f"EXPOSE {dconf.get('http.port')}" for l in last),
    f"image listens on 0.0.0.0 and EXPOSEs its port {dconf.get('http.port')}")
ignore = open(f"{src}/ops/Dockerfile.dockerignore").read().split()
check("build-*" in ignore and ".git" in ignore,
      "Dockerfile.dockerignore keeps build trees and .git out of the context")

# Runtime packages: their dependency closure must hold every library the
# installed binaries load (what `cmake --install` puts in the image).
runtime = re.sub(r"\\\n", " ", docker.rsplit("\nFROM ", 1)[1])
inst = re.search(r"apt-get install (.*?)(&&|$)", runtime, re.M)
runtime_pkgs = [w for w in (inst.group(1).split() if inst else [])
                if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w)]
check(bool(runtime_pkgs), f"runtime stage installs {runtime_pkgs}")
libs_check = not os.environ.get("DEPLOY_CHECK_SKIP_LIBS")
r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                    "--no-suggests", "--no-conflicts", "--no-breaks",
                    "--no-replaces", "--no-enhances"] + runtime_pkgs,
                   capture_output=True, text=True) if libs_check else None
closure = set()
for line in r.stdout.splitlines() if r else []:
    line = line.strip()
    if ":" in line:
        line = line.split(":", 1)[1].strip()
    closure.add(line.strip("<>").split(":")[0])
closure.add("libc6")
with tempfile.TemporaryDirectory() as prefix:
    if not libs_check:
        print("skip: libraries of the installed binaries "
              "(DEPLOY_CHECK_SKIP_LIBS)")
    build = os.path.dirname(os.path.dirname(consumer))
    if libs_check:
        subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                       check=True, capture_output=True)
    binaries = ("bin/swarmq-consumer", "bin/swarmq-producer") \
        if libs_check else ()
    loads = {b: subprocess.run(["ldd", f"{prefix}/{b}"], capture_output=True,
                               text=True).stdout for b in binaries}

    def candidates(path):
        return (path, os.path.realpath(path),
                re.sub(r"^/lib/", "/usr/lib/", path),
                re.sub(r"^/usr/lib/", "/lib/", path))

    # Which package owns each candidate path: one dpkg -S for them all
    # (one per path took 30 s on a loaded machine). Its lines are
    # "pkg[, pkg...]: path"; a path no package owns is on stderr.
    paths = sorted({c for out in loads.values()
                    for _, path in re.findall(r"(\S+) => (\S+)", out)
                    if path != "not" for c in candidates(path)})
    owners = {}
    if paths:
        q = subprocess.run(["dpkg", "-S"] + paths, capture_output=True,
                           text=True)
        for line in q.stdout.splitlines():
            pkgs, _, path = line.partition(": ")
            owners[path.strip()] = {p.strip().split(":")[0]
                                    for p in pkgs.split(",")}
    for binary in binaries:
        out = loads[binary]
        missing, own = [], []
        for m in re.finditer(r"(\S+) => (\S+)", out):
            soname, path = m.groups()
            if path == "not":
                missing.append(soname)
                continue
            if path.startswith(prefix):
                own.append(soname)
                continue
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.so", soname):
                # CI's sanitizer build links these; the image's release
                # build does not.
                continue
            pkgs = next((owners[c] for c in candidates(path)
                         if c in owners), None)
            if not pkgs or not pkgs & closure:
                missing.append(f"{soname} ({pkgs})")
        check(not missing, f"{binary}: every library comes from the runtime "
              f"packages {runtime_pkgs} or is installed with it {own}"
              + (f"; missing {missing}" if missing else ""))

# ---------------------------------------------------------------- k8s
docs = []
for name in sorted(os.listdir(f"{src}/ops/k8s")):
    if name.endswith(".yaml") and name != "kustomization.yaml":
        docs += [(name, d) for d in yaml.safe_load_all(
            open(f"{src}/ops/k8s/{name}")) if d]
kinds = {d["kind"]: d for _, d in docs}
check(set(kinds) == {"ConfigMap", "Deployment", "Service",
                     "PodDisruptionBudget"},
      f"k8s kinds: {sorted(kinds)}")
kust = yaml.safe_load(open(f"{src}/ops/k8s/kustomization.yaml"))
check(sorted(kust["resources"]) == sorted({n for n, _ in docs}),
      "kustomization.yaml lists every manifest")
dep, cm = kinds["Deployment"], kinds["ConfigMap"]
svc, pdb = kinds["Service"], kinds["PodDisruptionBudget"]
pod = dep["spec"]["template"]
labels = pod["metadata"]["labels"]


def selects(selector):
    return all(labels.get(k) == v for k, v in selector.items())


check(selects(dep["spec"]["selector"]["matchLabels"]),
      "Deployment selector matches its pods")
check(selects(svc["spec"]["selector"]), "Service selects the pods")
check(selects(pdb["spec"]["selector"]["matchLabels"]) and
      ("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]),
      "PodDisruptionBudget covers the pods")
(container,) = pod["spec"]["containers"]
env = {e["name"]: e for e in container["env"]}
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
vols = {v["name"]: v for v in pod["spec"]["volumes"]}
cfg_vol = [n for n, v in vols.items()
           if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
(key,) = cm["data"]
check(cfg_vol and env["SWARMQ_CONFIG"]["value"] ==
      f"{mounts[cfg_vol[0]]}/{key}",
      f"SWARMQ_CONFIG {env['SWARMQ_CONFIG']['value']} is the mounted "
      f"ConfigMap file")
check(env["SWARMQ_INSTANCE_ID"].get("valueFrom", {}).get("fieldRef", {})
      .get("fieldPath") == "metadata.name", "instance.id is the pod name")
kconf = dump_config(config_text=cm["data"][key])
if kconf:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(kconf["http.bind"] == "0.0.0.0" and
          str(ports.get("http")) == kconf["http.port"],
          f"pods listen on 0.0.0.0:{kconf['http.port']} (port 'http')")
    live, ready = container["livenessProbe"], container["readinessProbe"]
    check(live["httpGet"]["path"] == "/healthz" and
          live["httpGet"]["port"] in ("http", ports.get("http")),
          "liveness probe: GET /healthz")
    check(ready["httpGet"]["path"] == "/readyz" and
          ready["httpGet"]["port"] in ("http", ports.get("http")),
          "readiness probe: GET /readyz")
    drain = int(kconf["shutdown.drain.timeout.ms"]) / 1000
    close = int(kconf["shutdown.close.timeout.ms"]) / 1000
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    check(grace >= drain + close,
          f"terminationGracePeriodSeconds {grace} >= drain {drain:g} s + "
          f"close {close:g} s")
    limit = int(kconf["memory.limit.bytes"])
    check(limit == 0 or mem_bytes(container["resources"]["limits"]["memory"])
          > limit, "container memory limit is above memory.limit.bytes")
sc = {**pod["spec"].get("securityContext", {}),
      **container.get("securityContext", {})}
check(sc.get("runAsNonRoot") and sc.get("runAsUser", 0) != 0 and
      sc.get("allowPrivilegeEscalation") is False,
      "pods run as non-root without privilege escalation")
strategy = dep["spec"]["strategy"]["rollingUpdate"]
check(strategy["maxUnavailable"] == 0,
      "rolling update keeps every replica until its successor is up")

print(f"{len(failures)} failed" if failures else "all deploy checks passed")
sys.exit(1 if failures else 0)
