#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Work stealing: two agents able to run the same tasks, one slot each.
# One task is long (4 s) and runs; then five short ones (0.3 s) arrive
# together. Every task that parked
# behind the long one is taken over by the other agent as soon as it is
# idle: the long task's agent runs only the long task, the other agent
# runs the five short ones, and swarmq_tasks_stolen_total counts the moves.
# With flag.work_stealing=off (a second instance) the parked tasks wait for
# the long task's agent and nothing is counted. One partition, so the tasks
# arrive in the order submitted.
source "$(dirname "$0")/lib.sh"

cat >"$work/swarmq.properties" <<CONF
executor.threads=7
executor.critical.reserved=1
agent.a.handler=sleep
agent.a.capabilities=w
agent.a.concurrency=1
agent.b.handler=sleep
agent.b.capabilities=w
agent.b.concurrency=1
CONF

python3 - "$work" <<'PY'
import json, sys
with open(f"{sys.argv[1]}/long.jsonl", "w") as f:
    print(json.dumps({"id": "st-2", "type": "sleep", "capabilities": ["w"],
                      "payload": "4000"}), file=f)
with open(f"{sys.argv[1]}/short.jsonl", "w") as f:
    for i in (1, 3, 4, 5, 6):
        print(json.dumps({"id": f"st-{i}", "type": "sleep",
                          "capabilities": ["w"], "payload": "300"}), file=f)
PY
# run_case NAME FLAG: one instance on its own embedded broker, the six
# tasks; writes "long=AGENT long_ran=N" (tasks the long task's agent ran)
# to $work/NAME.summary.
run_case() {
        local name=$1 flag=$2 url_var=${1}_http
        start_consumer "$name" --embedded-broker -c "$work/swarmq.properties" \
                -X embedded.partitions=1 -X "flag.work_stealing=$flag"
        wait_ready "${!url_var}"
        # The long task first, and running, before the short ones arrive
        # together: the first short one takes the idle agent, the others
        # park, some behind the long task (selection spreads parked work
        # over the shortest queues). Submitting all six at once would
        # leave the order in which executors pick agents to the scheduler
        # of a loaded machine.
        producer -q submit -f "$work/long.jsonl" --ids-out "$work/$name.ids" ||
                fail "submit failed"
        wait_until 30 "the long task started (agent in flight = 1)" --every 0.05 -- \
                value_is -eq 1 metric_sum "${!url_var}" '^swarmq_agent_in_flight'
        producer -q submit -f "$work/short.jsonl" --ids-out "$work/$name.short.ids" ||
                fail "submit failed"
        cat "$work/$name.short.ids" >>"$work/$name.ids"
        producer wait --ids-file "$work/$name.ids" --print --json --timeout-ms 60000 \
                >"$work/$name.out" || fail "not every task got a result"
        python3 - "$work/$name.out" >"$work/$name.summary" <<'PY' || fail "results are wrong"
import collections, json, sys
res = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("task_id", "").startswith("st-"):
        res[r["task_id"]] = r
assert len(res) == 6 and all(r["status"] == "SUCCEEDED" for r in res.values()), res
long_agent = res["st-2"]["agent"]
ran = collections.Counter(r["agent"] for r in res.values())
print(f"long={long_agent} long_ran={ran[long_agent]} agents={dict(ran)}")
PY
        log "$name: $(cat "$work/$name.summary")"
}

run_case on on
out=$(cat "$work/on.summary")
assert_eq "tasks the long task's agent ran (stealing on)" "$(sed -n "s/.*long_ran=\([0-9]*\).*/\1/p" <<<"$out")" 1
stolen=$(metric_sum "$on_http" '^swarmq_tasks_stolen_total')
((stolen >= 1)) || fail "swarmq_tasks_stolen_total is $stolen with stealing on"
log "ok: metric: stolen (on) = $stolen"
stop_consumers on

run_case off off
out=$(cat "$work/off.summary")
long_ran=$(sed -n "s/.*long_ran=\([0-9]*\).*/\1/p" <<<"$out")
((long_ran >= 2)) || fail "stealing off, yet the long task's agent ran only $long_ran"
log "ok: the long task's agent ran $long_ran tasks (stealing off)"
assert_eq "metric: stolen (off)" "$(metric_sum "$off_http" '^swarmq_tasks_stolen_total')" 0
stop_consumers off
log "passed"
