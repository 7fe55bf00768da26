#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Grafana dashboard and the alert rules query only what swarmq really
# exports: every PromQL expression of ops/grafana/dashboards/*.json and
# ops/prometheus/alerts.yml parses (promtool) and names only metrics, labels
# and label values found on a live consumer's /metrics after real work
# (ops/grafana/check_queries.py). The checker must also catch a misspelt
# metric, a histogram used without its suffix and a wrong label value.
# The consumer runs a schedule, a rate limit and a flag at 50% so those
# panels have their metrics. The provisioning files agree with the dashboard (data source uid, paths),
# and the dashboard's panels have unique ids and do not overlap.
source "$(dirname "$0")/lib.sh"

python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
check=("$python" "$src/ops/grafana/check_queries.py")
dash=$src/ops/grafana/dashboards/swarmq.json
rules=$src/ops/prometheus/alerts.yml

# A schedule, a rate limit and a partial rollout, so the panels of the
# schedules, rate limits and A/B row have their metrics.
start_consumer c1 --embedded-broker -X schedule.tick.every.ms=1000 \
        -X schedule.tick.type=noop -X ratelimit.hash.type=sha256 \
        -X ratelimit.hash.rate=100000 -X flag.ranked_selection=50%
wait_ready "$c1_http"
producer -q submit --count 50 --type sha256 --payload abc --ids-out "$work/sha.ids" || fail "submit failed"
producer -q submit --count 5 --type fail --payload no --ids-out "$work/fail.ids" || fail "submit failed"
producer -q submit --count 5 --type sleep --payload 1 --priority CRITICAL --ids-out "$work/sleep.ids" ||
        fail "submit failed"
# --ids-out rewrites its file: one per submit, then every id in one.
cat "$work"/{sha,fail,sleep}.ids >"$work/ids"
producer -q submit --raw-value 'not a task' --key bad-1 || fail "raw submit failed"
producer wait --ids-file "$work/ids" --timeout-ms 60000 >/dev/null || fail "not every task got a result"
sq_http_get "$c1_http/metrics" >"$work/metrics.txt"
stop_consumers c1

"${check[@]}" --metrics "$work/metrics.txt" "$src"/ops/grafana/dashboards/*.json "$rules" \
        >"$work/check.out" 2>&1 || fail "queries name what /metrics lacks: $(cat "$work/check.out")"
log "$(cat "$work/check.out")"

# The checker can fail: three planted mistakes, three problems named.
sed -e 's/swarmq_lane_depth{/swarmq_lane_dept{/' \
        -e 's/status=\\"SUCCEEDED\\"/status=\\"succeeded\\"/' \
        -e 's/swarmq_selection_seconds_bucket/swarmq_selection_seconds/' \
        "$dash" >"$work/bad.json"
if "${check[@]}" --metrics "$work/metrics.txt" "$work/bad.json" >"$work/bad.out" 2>&1; then
        fail "the checker accepted a dashboard with planted mistakes"
fi
grep -q 'metric swarmq_lane_dept is not exported' "$work/bad.out" || fail "misspelt metric not caught: $(cat "$work/bad.out")"
grep -q 'status="succeeded"' "$work/bad.out" || fail "wrong label value not caught: $(cat "$work/bad.out")"
grep -q 'metric swarmq_selection_seconds is not exported' "$work/bad.out" ||
        fail "histogram without suffix not caught: $(cat "$work/bad.out")"
log "ok: planted mistakes caught ($(tail -n 1 "$work/bad.out"))"

"$python" - "$src" <<'PY' || fail "provisioning or dashboard layout is wrong (see above)"
import json, sys, yaml, glob, os
src = sys.argv[1]
errors = []
ds = yaml.safe_load(open(f"{src}/ops/grafana/provisioning/datasources/prometheus.yml"))
assert ds["apiVersion"] == 1
(source,) = ds["datasources"]
if source["type"] != "prometheus" or source["url"] != "http://prometheus:9090":
    errors.append(f"data source: {source}")
prov = yaml.safe_load(open(f"{src}/ops/grafana/provisioning/dashboards/swarmq.yml"))
(provider,) = prov["providers"]
if provider["type"] != "file" or not provider["options"]["path"].startswith("/var/lib/grafana/dashboards"):
    errors.append(f"dashboard provider: {provider}")
for path in glob.glob(f"{src}/ops/grafana/dashboards/*.json"):
    d = json.load(open(path))
    name = os.path.basename(path)
    var = {v["name"]: v for v in d["templating"]["list"]}
    if var["datasource"]["current"]["value"] != source["uid"]:
        errors.append(f"{name}: $datasource defaults to {var['datasource']['current']['value']}, "
                      f"provisioned uid is {source['uid']}")
    ids, boxes = set(), []
    def walk(panels):
        for p in panels:
            if p["id"] in ids:
                errors.append(f"{name}: panel id {p['id']} twice")
            ids.add(p["id"])
            g = p["gridPos"]
            if g["x"] + g["w"] > 24:
                errors.append(f"{name}: panel {p['id']} wider than the grid")
            for q in boxes:
                h = q["gridPos"]
                if g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and \
                   g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]:
                    errors.append(f"{name}: panels {q['id']} and {p['id']} overlap")
            boxes.append(p)
            if p["type"] != "row" and p.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"{name}: panel {p['id']} does not use $datasource")
            walk(p.get("panels", []))
    walk(d["panels"])
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for topic in ("throughput", "duration", "latency", "lag", "lane", "agent", "dead", "memory"):
        if topic not in titles:
            errors.append(f"{name}: no panel about {topic}")
    print(f"{name}: {len(ids)} panels")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
log "PASS"
