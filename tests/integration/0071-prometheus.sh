#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A real Prometheus (Debian's prometheus 2.x) scrapes a consumer on the
# embedded broker with the shipped alert rules loaded:
# - promtool: the shipped config and rules check, the rules' unit tests
#   (ops/prometheus/alerts_test.yml) pass, the live /metrics text checks;
# - the target is up, swarmq's series are there with the right labels and
#   the values of the work done (tasks by status and agent, histograms,
#   dead letters, process memory);
# - every rule of alerts.yml is loaded and evaluates without error;
# - killing the consumer turns SwarmqInstanceDown pending.
source "$(dirname "$0")/lib.sh"

command -v prometheus >/dev/null && command -v promtool >/dev/null ||
        fail "prometheus/promtool missing: run bash ops/deps.sh --test"
command -v curl >/dev/null || fail "curl missing: run bash ops/deps.sh --test"
rules=$src/ops/prometheus/alerts.yml

promtool check config "$src/ops/prometheus/prometheus.yml" >"$work/check-config.out" 2>&1 ||
        fail "promtool check config: $(cat "$work/check-config.out")"
promtool check rules "$rules" >"$work/check-rules.out" 2>&1 ||
        fail "promtool check rules: $(cat "$work/check-rules.out")"
(cd "$src/ops/prometheus" && promtool test rules alerts_test.yml) \
        >"$work/test-rules.out" 2>&1 || fail "promtool test rules: $(cat "$work/test-rules.out")"
log "ok: promtool check config, check rules, test rules"

# Every alert in alerts.yml has a unit test.
alerts=$(sed -n 's/^ *- alert: *//p' "$rules" | sort)
tested=$(sed -n 's/^ *alertname: *//p' "$src/ops/prometheus/alerts_test.yml" | sort -u)
[[ "$alerts" == "$tested" ]] || fail "alerts without a unit test: $(comm -23 <(echo "$alerts") <(echo "$tested") | tr '\n' ' ')"
log "ok: $(echo "$alerts" | wc -l) alerts, each unit-tested"
# ... and each explained in the runbook its runbook_url points to.
for alert in $alerts; do
        grep -qx "### $alert" "$src/docs/operations.md" ||
                fail "docs/operations.md has no section '### $alert'"
        grep -q "operations.md#${alert,,}\"" "$rules" ||
                fail "$alert: runbook_url does not point at docs/operations.md#${alert,,}"
done
log "ok: every alert has a runbook section and a runbook_url to it"

start_consumer c1 --embedded-broker -X executor.threads=2 -X retry.max.attempts=1
wait_ready "$c1_http"
producer -q submit --count 200 --type sha256 --payload abc --id-prefix sha --ids-out "$work/sha.ids" ||
        fail "submit failed"
producer -q submit --count 20 --type fail --payload no --id-prefix fail --ids-out "$work/fail.ids" ||
        fail "submit failed"
# --ids-out rewrites its file: one per submit, then every id in one.
cat "$work"/{sha,fail}.ids >"$work/ids"
producer -q submit --raw-value 'not a task' --key bad-1 || fail "raw submit failed"
producer wait --ids-file "$work/ids" --timeout-ms 60000 >/dev/null || fail "not every task got a result"

sq_http_get "$c1_http/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" >"$work/check-metrics.out" 2>&1 ||
        fail "promtool check metrics on live /metrics: $(cat "$work/check-metrics.out")"
log "ok: promtool check metrics on the live /metrics ($(wc -l <"$work/metrics.txt") lines)"

target=${c1_http#http://}
free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: swarmq
    static_configs:
      - targets: ["$target"]
YML
prom_ready_or_gone() { # prometheus answers /-/ready, or it has exited
        ! kill -0 "$prom_pid" 2>/dev/null ||
                [[ "$(curl -s -o /dev/null -w '%{http_code}' "$prom/-/ready")" == 200 ]]
}
for ((try = 0; try < 5; try++)); do
        port=$(free_port)
        prometheus --config.file="$work/prometheus.yml" \
                --storage.tsdb.path="$work/tsdb" \
                --web.listen-address="127.0.0.1:$port" \
                >"$work/prometheus.log" 2>&1 &
        prom_pid=$!
        sq_pids+=("$prom_pid")
        prom=http://127.0.0.1:$port
        wait_until 30 "prometheus ready" -- prom_ready_or_gone
        kill -0 "$prom_pid" 2>/dev/null && break
        grep -q "address already in use" "$work/prometheus.log" ||
                fail "prometheus exited: $(tail -5 "$work/prometheus.log")"
done
log "prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') at $prom scraping $target"

# q EXPR PYEXPR: runs an instant query; PYEXPR sees the result list as r.
q() {
        curl -sf -G "$prom/api/v1/query" --data-urlencode "query=$1" >"$work/q.json" ||
                return 1
        python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); assert j["status"]=="success", j
r=j["data"]["result"]; print(eval(sys.argv[2]))' "$work/q.json" "$2"
}
# wait_q EXPR PYEXPR WANT: until the query's PYEXPR prints WANT (30 s).
wait_q() {
        wait_until 30 "$1 ($2) = $3" -- value_is == "$3" q "$1" "$2"
        assert_eq "$1 ($2)" "$wait_seen" "$3"
}

wait_q 'up{job="swarmq"}' 'r[0]["value"][1] if r else None' 1
curl -sf "$prom/api/v1/targets" >"$work/targets.json" || fail "GET /api/v1/targets failed"
assert_eq "target health" "$(json_get "$work/targets.json" '[t["health"] for t in j["data"]["activeTargets"]]')" "['up']"
assert_eq "target scrape url" "$(json_get "$work/targets.json" 'j["data"]["activeTargets"][0]["scrapeUrl"]')" "http://$target/metrics"

wait_q 'swarmq_tasks_total{status="SUCCEEDED",agent="sha256"}' \
        'int(sum(float(s["value"][1]) for s in r))' 200
assert_eq "labels of a tasks series" \
        "$(q 'swarmq_tasks_total{status="SUCCEEDED",agent="sha256",priority="NORMAL"}' \
                'sorted(r[0]["metric"].items())')" \
        "[('__name__', 'swarmq_tasks_total'), ('agent', 'sha256'), ('instance', '$target'), ('job', 'swarmq'), ('priority', 'NORMAL'), ('status', 'SUCCEEDED')]"
wait_q 'sum(swarmq_tasks_total{status="DEAD_LETTERED",agent="fail"})' 'r[0]["value"][1]' 20
wait_q 'swarmq_dead_letters_total{reason="DECODE_ERROR"}' 'r[0]["value"][1]' 1
wait_q 'swarmq_task_duration_seconds_bucket{agent="sha256",le="+Inf"}' 'r[0]["value"][1]' 200
wait_q 'sum(swarmq_schedule_latency_seconds_count)' 'r[0]["value"][1]' 220
wait_q 'count(swarmq_consumer_lag{topic="swarmq-tasks"})' 'r[0]["value"][1]' 12
assert_eq "histogram_quantile over the scraped buckets is a number" \
        "$(q 'histogram_quantile(0.99, sum by (le) (rate(swarmq_task_duration_seconds_bucket[1m])))' \
                'len(r)')" 1
assert_eq "process_resident_memory_bytes > 1 MB" \
        "$(q 'process_resident_memory_bytes{job="swarmq"} > 1e6' 'len(r)')" 1
assert_eq "swarmq_build_info instance label" \
        "$(q 'swarmq_build_info' 'r[0]["metric"]["instance"]')" "$target"

# The rules: every alert of alerts.yml loaded, evaluated, healthy.
rules_evaluated() { # saves the rules, prints whether all were evaluated
        curl -sf "$prom/api/v1/rules" >"$work/rules.json" &&
                json_get "$work/rules.json" 'all(r["lastEvaluation"] > "2000" for g in j["data"]["groups"] for r in g["rules"])'
}
wait_until 30 "every alert rule evaluated" -- value_is == True rules_evaluated
assert_eq "alert rules loaded" \
        "$(json_get "$work/rules.json" '"\n".join(sorted(r["name"] for g in j["data"]["groups"] for r in g["rules"]))')" \
        "$alerts"
assert_eq "rules evaluating without error" \
        "$(json_get "$work/rules.json" 'sorted({r["health"] for g in j["data"]["groups"] for r in g["rules"]})')" "['ok']"
assert_eq "alerts firing or pending on a healthy instance" \
        "$(json_get "$work/rules.json" '[r["name"] for g in j["data"]["groups"] for r in g["rules"] if r["state"] != "inactive"]')" "[]"

# Figures for the record.
log "scrape_duration_seconds: $(q 'scrape_duration_seconds{job="swarmq"}' 'r[0]["value"][1]') s," \
        "samples: $(q 'scrape_samples_scraped{job="swarmq"}' 'r[0]["value"][1]')," \
        "rss: $(q 'process_resident_memory_bytes{job="swarmq"}' 'r[0]["value"][1]') bytes"

# The instance goes away: SwarmqInstanceDown becomes pending (it fires
# after 1 min; pending is enough to show the rule sees the outage).
kill -KILL "$c1_pid"
wait_q 'up{job="swarmq"}' 'r[0]["value"][1] if r else None' 0
alerts_now() { # saves the alerts, prints (name, state) of each
        curl -sf "$prom/api/v1/alerts" >"$work/alerts.json" || true
        json_get "$work/alerts.json" '[(a["labels"]["alertname"], a["state"]) for a in j["data"]["alerts"]]'
}
wait_until 30 "SwarmqInstanceDown pending" -- \
        value_is == "[('SwarmqInstanceDown', 'pending')]" alerts_now
assert_eq "alerts after killing the consumer" \
        "$(json_get "$work/alerts.json" '[(a["labels"]["alertname"], a["labels"]["instance"], a["state"]) for a in j["data"]["alerts"]]')" \
        "[('SwarmqInstanceDown', '$target', 'pending')]"
kill -TERM "$prom_pid"
sq_wait_exit "$prom_pid" 30 || fail "prometheus did not stop on SIGTERM"
log "PASS"
