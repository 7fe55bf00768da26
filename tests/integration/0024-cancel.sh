#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cancelling tasks by id on the embedded broker, through the control topic
# (swarmq-producer cancel, and POST /admin/cancel with the bearer token):
#   run-exec  a running exec task (sh -c 'sleep 60'): its process group is
#             killed, CANCELLED at once (not after 60 s), no process left;
#   parked    queued behind it on the same agent (concurrency 1): ends
#             CANCELLED without starting when the slot frees;
#   run-pool  a running pool task (the C worker sleeping 60 s): its worker
#             is killed and replaced, CANCELLED at once;
#   nap       a running builtin sleep of 60 s, cancelled over HTTP: stops
#             at its next check;
#   later     a delayed task (4 s): CANCELLED when it comes due, never run;
#   early     cancelled before it is even submitted: CANCELLED on arrival;
#   done-1    finished before its cancel: keeps its SUCCEEDED result;
#   nope      unknown: the cancel is delivered and harmless.
# Every one of them has exactly one result on the results topic.
source "$(dirname "$0")/lib.sh"

marker=sq-marker-0024-$$
token=tok-0024-$$
cat >"$work/swarmq.properties" <<EOF
agent.slow.kind=exec
agent.slow.command=["/bin/sh", "-c", "sleep 60; : $marker"]
agent.slow.concurrency=1
agent.nap.kind=builtin
agent.nap.handler=sleep
agent.nap.capabilities=nap
agent.echo.kind=builtin
agent.echo.handler=echo
agent.pw.kind=pool
agent.pw.command=["$build/consumer/swarmq-worker", "pw"]
agent.pw.pool.min=1
agent.pw.pool.max=1
agent.pw.concurrency=1
EOF
start_consumer c1 --embedded-broker -c "$work/swarmq.properties" \
        -X http.admin.token="$token" -X retry.max.attempts=1 \
        -X kafka.fetch.wait.max.ms=100
wait_ready "$c1_http"

in_flight() { # in_flight AGENT: tasks running on it
        curl -fsS "$c1_http/metrics" |
                awk -v a="agent=\"$1\"" '/^swarmq_agent_in_flight\{/ && index($0, a) {print $2}'
}

producer -q submit --id-prefix done --type echo --payload d || fail "submit failed"
producer -q wait --id done-000001 --timeout-ms 20000 >/dev/null || fail "done-1 did not finish"
# run-exec first, running, then parked behind it: the two ids go to
# different partitions, so submitted together either could start first.
producer -q submit --id-prefix run-exec --type slow || fail "submit failed"
wait_until 30 "run-exec running" -- value_is == 1 in_flight slow
producer -q submit --id-prefix parked --type slow || fail "submit failed"
wait_until 30 "parked waiting for slow's slot" -- value_is == 1 \
        metric_sum "$c1_http" '^swarmq_agent_parked\{agent="slow"'
producer -q submit --id-prefix nap --type nap --payload 60000 || fail "submit failed"
producer -q submit --id-prefix run-pool --type pw --payload "sleep 60000" ||
        fail "submit failed"
producer -q submit --id-prefix later --type echo --payload l --delay-ms 4000 ||
        fail "submit failed"
wait_until 30 "run-exec, run-pool and nap running, later delayed" -- value_is == "1 1 1 1" \
        eval 'echo "$(in_flight slow) $(in_flight pw) $(in_flight nap) $(metric_sum "$c1_http" "^swarmq_tasks_delayed_total")"'
assert_eq "exec children running" "$(pgrep -fc "$marker")" 1

# The admin endpoint wants its token and an id.
post() { curl -s -o "$work/post.out" -w '%{http_code}' -X POST "$c1_http$1" "${@:2}"; }
assert_eq "cancel without a token" "$(post '/admin/cancel?id=nap-000001')" 401
assert_eq "cancel without an id" \
        "$(post /admin/cancel -H "Authorization: Bearer $token")" 400
assert_eq "cancel nap over HTTP" \
        "$(post '/admin/cancel?id=nap-000001' -H "Authorization: Bearer $token")" 202
assert_eq "its answer" "$(cat "$work/post.out")" \
        '{"action":"cancel","task_id":"nap-000001","state":"sent"}'

t0=$(date +%s%3N)
# The parked task is cancelled first, and the instance has its cancel
# before the others are sent: the exec task's cancel
# frees the slot parked-000001 waits for, and cancels of different ids go
# to different partitions of the control topic, so their order is not
# kept; cancelled together, the parked task could start before its own
# cancel arrived (and end CANCELLED by a kill: seen under load).
producer cancel parked-000001 2>"$work/cancel1.err" ||
        fail "cancel failed: $(cat "$work/cancel1.err")"
wait_until 30 "the instance has parked-000001's cancel" -- \
        grep -q "CANCEL.*task_id=parked-000001 cancelled" "$work/c1.log"
producer cancel run-exec-000001 run-pool-000001 later-000001 done-000001 \
        early-000001 nope \
        2>"$work/cancel.err" || fail "cancel failed: $(cat "$work/cancel.err")"
grep -q "6 cancels delivered" "$work/cancel.err" || fail "cancel said: $(cat "$work/cancel.err")"
# "Cancelled before it is submitted" means before the instance reads the
# task: the control topic and the task topic are read apart, so the task
# goes out once the instance has its cancel.
wait_until 30 "the instance has early-000001's cancel" -- \
        grep -q "CANCEL.*task_id=early-000001 cancelled" "$work/c1.log"
producer -q submit --id-prefix early --type echo --payload e || fail "submit failed"

ids=(run-exec-000001 run-pool-000001 parked-000001 nap-000001 later-000001 early-000001)
printf '%s\n' "${ids[@]}" >"$work/ids"
producer wait --ids-file "$work/ids" --timeout-ms 30000 >/dev/null ||
        fail "not every cancelled task has a result"
log "6 cancelled tasks ended $(($(date +%s%3N) - t0)) ms after the cancel (the exec task would sleep 60 s)"
wait_until 10 "no exec child left" -- value_is == 0 pgrep -fc "$marker"

producer replay --results >"$work/results.jsonl" 2>"$work/replay.err" ||
        fail "replay failed: $(cat "$work/replay.err")"
python3 - "$work/results.jsonl" <<'PY' || fail "the results are wrong"
import json, sys
rs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rs.setdefault(r["task_id"], []).append(r)
want = {
    "run-exec-000001": ("CANCELLED", "cancelled by its id: process group"),
    "run-pool-000001": ("CANCELLED", "cancelled by its id: worker pid"),
    # Parked behind run-exec on a concurrency-1 agent, its cancel recorded
    # before run-exec's is sent: run-exec's kill frees the slot, and the
    # parked task ends without starting.
    "parked-000001": ("CANCELLED", "cancelled by its id before it started"),
    "nap-000001": ("CANCELLED", "sleep: cancelled by its id"),
    "later-000001": ("CANCELLED", "cancelled by its id while it waited"),
    "early-000001": ("CANCELLED", "cancelled by its id before it started"),
    "done-000001": ("SUCCEEDED", None),
}
bad = 0
for tid, (status, error) in want.items():
    got = rs.get(tid, [])
    if len(got) != 1 or got[0]["status"] != status or \
            (error and error not in (got[0]["error"] or "")):
        print("FAIL:", tid, [(r["status"], r["error"]) for r in got]); bad += 1
    else:
        print(f"ok: {tid} {status} {got[0]['error']!r}")
if "nope" in rs:
    print("FAIL: a result for the unknown id"); bad += 1
started = [t for t in ("later-000001", "early-000001", "parked-000001")
           if rs.get(t) and rs[t][0]["started_at"] != 0]
if started:
    print("FAIL: started although cancelled first:", started); bad += 1
sys.exit(1 if bad else 0)
PY
assert_eq "CANCELLED counted" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="CANCELLED"')" 6
stop_consumers c1
log "ok: queued, parked, delayed, running exec, pool and builtin tasks cancelled once each"
