#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Waiting retries survive a crash: the broker is a separate process
# (swarmq-mock-broker). 20 flaky tasks (succeed on attempt 2) and 10 that
# always fail (max_attempts 2) fail their first attempt on c1 with a 4 s
# backoff; while their retry records wait in swarmq-tasks-retry (the retry
# partitions paused), c1 is killed with SIGKILL. c2 starts in the same
# group: every task reaches its terminal result (20 SUCCEEDED with
# attempts=2, 10 DEAD_LETTERED with attempts=2, one dead letter each),
# and each dead-lettered task has a dead letter.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 3
common=(-b "$bootstrap" -X commit.interval.ms=200 -X kafka.session.timeout.ms=6000
        -X retry.backoff.initial.ms=4000 -X retry.backoff.jitter=none)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

producer -q submit --count 20 --id-prefix flaky --type fail --payload flaky \
        --header succeed_on_attempt=2 --max-attempts 3 --ids-out "$work/flaky.ids" ||
        fail "submit failed"
producer -q submit --count 10 --id-prefix doomed --type fail --payload doomed \
        --max-attempts 2 --ids-out "$work/doomed.ids" || fail "submit failed"
# --ids-out rewrites its file: one per submit, then all 30 ids in one.
cat "$work/flaky.ids" "$work/doomed.ids" >"$work/ids"
assert_eq "task ids to wait for" "$(sort -u "$work/ids" | wc -l)" 30

# Every first attempt failed and its retry record is in Kafka; the retry
# lane holds them (paused partitions, not due for 4 s).
retries_waiting() { # 30 retries scheduled, a retry partition waited
        retries=$(metric_sum "$c1_http" '^swarmq_retries_total')
        waits=$(metric_sum "$c1_http" '^swarmq_retry_waits_total')
        echo "retries $retries, retry waits $waits"
        ((retries == 30 && waits >= 1))
}
wait_until 30 "30 retries waiting" --every 0.05 -- retries_waiting
assert_eq "retries scheduled on c1" "$retries" 30
((waits >= 1)) || fail "no retry partition waited for its head"
assert_eq "results before the kill" "$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED"')" 0
killed_ms=$(date +%s%3N)
log "kill -9 c1 with $retries retries waiting"
kill -KILL "$c1_pid"
wait "$c1_pid" 2>/dev/null || true

start_consumer c2 "${common[@]}"
producer wait --ids-file "$work/ids" --timeout-ms 60000 --print --json \
        >"$work/wait.out" || fail "not every task reached a terminal result after the kill"
python3 - "$work/wait.out" <<'PY' || fail "terminal results are wrong"
import json, sys
last = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "task_id" in j:
        last.setdefault(j["task_id"], []).append(j)
bad = 0
for tid, rs in last.items():
    want = "SUCCEEDED" if tid.startswith("flaky") else "DEAD_LETTERED"
    if not any(r["status"] == want and r["attempts"] == 2 for r in rs):
        print("FAIL:", tid, [(r["status"], r["attempts"]) for r in rs]); bad += 1
print(f"{len(last)} tasks with a terminal result, {bad} wrong")
sys.exit(1 if bad or len(last) != 30 else 0)
PY
dlt=$(kcat -b "$bootstrap" -C -t swarmq-tasks-dlt -e -q -f '%k\n' | sort -u | grep -c '^doomed-') ||
        fail "kcat could not read the dead letters"
assert_eq "tasks dead-lettered" "$dlt" 10
log "ok: every waiting retry ran on c2 after the kill"
stop_consumers c2
