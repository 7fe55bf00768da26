#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pool agents with the C reference worker (swarmq-worker) on the embedded
# broker: recycling after pool.recycle.tasks, a task's own deadline kills
# and replaces its worker (TIMED_OUT, not retried), a worker that crashes
# on every attempt FAILS the task after pool.task.retries, the output cap,
# a failure result, and a worker binary that does not exist (the task
# FAILS naming it once the acquire timeout passes).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pool_lib.sh"

# A copy of its own: pool_stop waits until no process runs this path, and
# other tests (0024, 0052) run workers of the build's swarmq-worker at the
# same time.
worker=$work/swarmq-worker-0042
cp "$build/consumer/swarmq-worker" "$worker"
pool() { # NAME [key=value...]: a pool agent running the C worker
        pool_agent "$1" "\"$worker\"" "${@:2}"
}
{
        pool rec pool.min=1 pool.max=1 concurrency=1 pool.recycle.tasks=5
        pool tmo pool.min=1 pool.max=1 concurrency=1 kill.grace.ms=200
        pool crash pool.min=1 pool.max=2 concurrency=2 pool.task.retries=2 \
                pool.backoff.ms=10
        pool cap pool.min=1 pool.max=1 output.max.bytes=100
        echo "agent.missing.kind=pool"
        echo "agent.missing.command=/nonexistent/sq-worker"
        echo "agent.missing.pool.acquire.timeout.ms=500"
} >"$work/swarmq.properties"

pool_start

# 1. Recycle: 12 tasks one at a time on a pool of one worker recycled
# every 5 tasks: at least 3 workers, none serving more than 5 tasks.
wait_metric '^swarmq_pool_workers\{agent="rec"' 1
sub rec rec pid --count 12
results rec >"$work/rec.jsonl"
assert_eq "recycle: statuses" "$(field "$work/rec.jsonl" 'r["status"]' | sort -u)" SUCCEEDED
field "$work/rec.jsonl" 'r["output"]' | sort | uniq -c >"$work/rec.pids"
cat "$work/rec.pids"
assert_eq "recycle: distinct workers" "$(wc -l <"$work/rec.pids")" 3
assert_eq "recycle: most tasks per worker" "$(awk '{print $1}' "$work/rec.pids" | sort -n | tail -1)" 5
wait_metric '^swarmq_pool_worker_exits_total\{agent="rec",reason="recycled"' 2

# 2. A task's deadline: TIMED_OUT, its worker killed and replaced.
wait_metric '^swarmq_pool_workers\{agent="tmo"' 1
tmopid=$(pgrep -P "$c1_pid" -f "$worker tmo$")
sub tmo tmo "sleep 30000" --timeout-ms 500
results tmo >"$work/tmo.jsonl"
assert_eq "deadline: status" "$(field "$work/tmo.jsonl" 'r["status"]')" DEAD_LETTERED
assert_eq "deadline: error" "$(field "$work/tmo.jsonl" 'r["error"]')" \
        "timed out: worker pid $tmopid of pool agent tmo killed (SIGTERM, then SIGKILL after 200 ms) and replaced"
wait_metric '^swarmq_pool_worker_exits_total\{agent="tmo",reason="timed_out"' 1
sub tmo2 tmo pid
results tmo2 >"$work/tmo2.jsonl"
after=$(field "$work/tmo2.jsonl" 'r["output"]')
[[ "$after" == pid=* && "$after" != "pid=$tmopid" ]] || fail "deadline: next task on $after"
kill -0 "$tmopid" 2>/dev/null && fail "the timed-out worker $tmopid is still running"
assert_eq "deadline: not retried" "$(metric_sum "$c1_http" '^swarmq_pool_task_retries_total\{agent="tmo"')" 0

# 3. A task that crashes its worker every time: 1 try + 2 retries, then
# FAILED with the exit status; three crashes counted, workers replaced.
sub crash crash crash
results crash >"$work/crash.jsonl"
assert_eq "crash: status" "$(field "$work/crash.jsonl" 'r["status"]')" DEAD_LETTERED
field "$work/crash.jsonl" 'r["error"]' | grep -Eq \
        '^worker pid [0-9]+ of pool agent crash exited with status 3 while running the task \(retried 2 times\)$' ||
        fail "crash: error $(field "$work/crash.jsonl" 'r["error"]')"
assert_eq "crash: retries" "$(metric_sum "$c1_http" '^swarmq_pool_task_retries_total\{agent="crash"')" 2
assert_eq "crash: crashes" \
        "$(metric_sum "$c1_http" '^swarmq_pool_worker_exits_total\{agent="crash",reason="crashed"')" 3
wait_metric '^swarmq_pool_workers\{agent="crash"' 1

# 4. Output cap and a failure result.
long=$(printf 'y%.0s' {1..300})
sub cap cap "echo $long"
sub capfail cap "fail no such record"
results cap >"$work/cap.jsonl"
results capfail >"$work/capfail.jsonl"
assert_eq "cap: output" "$(field "$work/cap.jsonl" 'r["output"]')" "$(printf 'y%.0s' {1..100})"
assert_eq "cap: error" "$(field "$work/cap.jsonl" 'r["error"]')" \
        "output truncated to 100 bytes (agent.cap.output.max.bytes; 200 bytes dropped)"
assert_eq "failure result" "$(field "$work/capfail.jsonl" 'r["status"] + " " + r["error"]')" \
        "DEAD_LETTERED no such record"

# 5. A missing worker binary: the task fails once the acquire timeout
# passes, naming the program.
sub missing missing pid
results missing >"$work/missing.jsonl"
assert_eq "missing binary" "$(field "$work/missing.jsonl" 'r["status"] + ": " + r["error"]')" \
        'DEAD_LETTERED: no worker of pool agent missing became free within 500 ms (0 workers, at most 4); last worker problem: cannot execute "/nonexistent/sq-worker": No such file or directory'

pool_stop "$worker"
log "passed"
