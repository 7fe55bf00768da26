#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One /status snapshot shows one configuration, even while SIGHUPs land:
# the config file alternates between two versions (flag.work_stealing 25%
# with agent "one" at concurrency 2, then 50% with 3), 150 reloads one
# after the other, while a client reads /status as fast as it can. Every
# snapshot's flag rollout, its config section and its agent's capacity
# must come from the same version. (0060 once saw the reloaded flag next
# to the old config under ASan: the reload published them one by one.)
source "$(dirname "$0")/lib.sh"

conf=$work/c1.properties
write_conf() { # $1: the flag's rollout, $2: agent one's concurrency
        printf 'flag.work_stealing = %s\nagent.one.handler = echo\nagent.one.capabilities = echo\nagent.one.concurrency = %s\n' \
                "$1" "$2" >"$conf.tmp"
        mv "$conf.tmp" "$conf"
}
write_conf 25% 2
start_consumer c1 --embedded-broker -c "$conf"
wait_ready "$c1_http"

python3 - "$c1_http" "$c1_pid" "$conf" <<'PY' || fail "a /status snapshot mixed two configurations"
import os, signal, sys, threading, urllib.request, json

url, pid, conf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
versions = {"25%": ("25%", "25%", "2", 2), "50%": ("50%", "50%", "3", 3)}
RELOADS = 150

def get(path):
    with urllib.request.urlopen(url + path, timeout=30) as r:
        return r.read().decode()

def reloads_ok():
    for line in get("/metrics").splitlines():
        if line.startswith('swarmq_config_reloads_total{result="ok"}'):
            return int(float(line.split()[-1]))
    return 0

stop = threading.Event()
applied = threading.Condition()
seen, torn, last = {}, [], [None]

def reader():
    while not stop.is_set():
        j = json.loads(get("/status"))
        flag = j["flags"]["work_stealing"]
        shown = (flag, j["config"].get("flag.work_stealing"),
                 j["config"].get("agent.one.concurrency"),
                 [a["capacity"] for a in j["agents"] if a["name"] == "one"][0])
        if shown[0] not in versions or shown != versions[shown[0]]:
            torn.append(shown)
        seen[flag] = seen.get(flag, 0) + 1
        with applied:
            last[0] = shown
            applied.notify()

t = threading.Thread(target=reader)
t.start()
try:
    for i in range(RELOADS):
        rollout, conc = ("50%", 3) if i % 2 == 0 else ("25%", 2)
        with open(conf + ".tmp", "w") as f:
            f.write(f"flag.work_stealing = {rollout}\nagent.one.handler = echo\n"
                    f"agent.one.capabilities = echo\nagent.one.concurrency = {conc}\n")
        os.replace(conf + ".tmp", conf)
        os.kill(pid, signal.SIGHUP)
        # The next version only once the reader saw this one whole, so
        # every reload changes what runs while the reader reads.
        with applied:
            if not applied.wait_for(lambda: last[0] == versions[rollout], 60):
                sys.exit(f"reload {i + 1} never showed on /status: {last[0]}")
finally:
    stop.set()
    t.join()
print(f"{RELOADS} reloads, snapshots per flag value: {seen}, torn: {len(torn)}")
for s in torn[:5]:
    print("torn snapshot (flag, config flag, config concurrency, capacity):", s)
# The reader saw both versions, so the check could have failed.
sys.exit(1 if torn or len(seen) != 2 else 0)
PY
log "ok: every /status snapshot showed one configuration across 150 reloads"
# Counted after the reload published the snapshot the reader saw.
wait_until 10 "reloads counted = 150" -- \
        value_is -eq 150 metric_sum "$c1_http" '^swarmq_config_reloads_total\{result="ok"'
log "ok: reloads counted = 150"
stop_consumers c1
