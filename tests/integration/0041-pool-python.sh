#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pool agents with the Python reference worker (consumer/workers/
# swarmq_worker.py) on the embedded broker: one worker serves many tasks
# (its pid in every output), the pool grows to pool.max on demand, a task
# that finds no free worker within pool.acquire.timeout.ms FAILS, kill -9
# of a worker mid-task gets the task retried on a new worker, and a worker
# that stops answering pings is replaced.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pool_lib.sh"

# The workers run a copy in this run's work directory: they are found by
# that path (this consumer's children, and "none left" at the end), and
# another run of this test (another checkout or build directory, CI and
# a developer at once) has workers with the same names.
worker=$work/swarmq_worker.py
cp "$src/consumer/workers/swarmq_worker.py" "$worker"
pool() { # NAME [key=value...]: a pool agent running the Python worker
        pool_agent "$1" "\"python3\", \"-u\", \"$worker\"" "${@:2}"
}
{
        pool reuse pool.min=1 pool.max=1 concurrency=1
        pool grow pool.min=1 pool.max=3 concurrency=3 pool.idle.timeout.ms=0
        pool acq pool.min=1 pool.max=1 concurrency=3 pool.acquire.timeout.ms=400
        pool kill pool.min=1 pool.max=1 concurrency=1 pool.task.retries=1
        pool hung pool.min=1 pool.max=1 concurrency=1 pool.ping.interval.ms=300 \
                pool.ping.timeout.ms=300
} >"$work/swarmq.properties"

pool_start

# 1. Reuse: 30 tasks, one worker, one pid, the worker's.
wait_metric '^swarmq_pool_workers\{agent="reuse"' 1
sub reuse reuse pid --count 30
results reuse >"$work/reuse.jsonl"
assert_eq "reuse: statuses" "$(field "$work/reuse.jsonl" 'r["status"]' | sort -u)" SUCCEEDED
assert_eq "reuse: distinct worker pids" "$(field "$work/reuse.jsonl" 'r["output"]' | sort -u | wc -l)" 1
wpid=$(pgrep -P "$c1_pid" -f "$worker reuse$")
assert_eq "reuse: the pid is the running worker's" \
        "$(field "$work/reuse.jsonl" 'r["output"]' | sort -u)" "pid=$wpid"
assert_eq "reuse: workers started" "$(metric_sum "$c1_http" '^swarmq_pool_workers_started_total\{agent="reuse"')" 1

# 2. Grow to max on demand: three slow tasks at once start two more
# workers. Which worker runs which task depends on how fast Python starts
# (on a loaded machine the first worker can finish a task, and take the
# next, before a new one is ready), so the growth is read from the pool's
# counters, not from the pids in the outputs.
wait_metric '^swarmq_pool_workers\{agent="grow"' 1
sub grow grow "sleep 1500" --count 3
results grow >"$work/grow.jsonl"
assert_eq "grow: statuses" "$(field "$work/grow.jsonl" 'r["status"]' | sort -u)" SUCCEEDED
wait_metric '^swarmq_pool_workers\{agent="grow"' 3
assert_eq "grow: workers started" \
        "$(metric_sum "$c1_http" '^swarmq_pool_workers_started_total\{agent="grow"')" 3
assert_eq "grow: every output names a live worker of the pool" \
        "$(comm -23 <(field "$work/grow.jsonl" 'r["output"].split("pid=")[1]' | sort -u) \
                <(pgrep -P "$c1_pid" -f "$worker grow$" | sort -u) | wc -l)" 0

# 3. Acquire timeout: the only worker is busy for 2 s; two more tasks wait
# 400 ms for it and fail.
wait_metric '^swarmq_pool_workers\{agent="acq"' 1
sub acqslow acq "sleep 2000"
wait_metric '^swarmq_pool_busy_workers\{agent="acq"' 1
sub acqwait acq pid --count 2
results acqwait >"$work/acqwait.jsonl"
assert_eq "acquire timeout: statuses" "$(field "$work/acqwait.jsonl" 'r["status"]' | sort -u)" DEAD_LETTERED
assert_eq "acquire timeout: error" "$(field "$work/acqwait.jsonl" 'r["error"]' | sort -u)" \
        "no worker of pool agent acq became free within 400 ms (1 workers, at most 1)"
results acqslow >"$work/acqslow.jsonl"
assert_eq "acquire timeout: the slow task" "$(field "$work/acqslow.jsonl" 'r["status"]')" SUCCEEDED

# 4. kill -9 of the worker in the middle of a task: the task is retried on
# a new worker and succeeds; the crash and the retry are counted.
wait_metric '^swarmq_pool_workers\{agent="kill"' 1
sub kill kill "sleep 2000"
wait_metric '^swarmq_pool_busy_workers\{agent="kill"' 1
victim=$(pgrep -P "$c1_pid" -f "$worker kill$")
[[ -n "$victim" ]] || fail "no kill worker running"
kill -KILL "$victim"
log "killed worker $victim mid-task"
results kill >"$work/kill.jsonl"
assert_eq "kill -9: status" "$(field "$work/kill.jsonl" 'r["status"]')" SUCCEEDED
newpid=$(field "$work/kill.jsonl" 'r["output"].split("pid=")[1]')
[[ "$newpid" != "$victim" ]] || fail "the retried task ran on the killed worker $victim"
assert_eq "kill -9: replacement is running" "$(pgrep -P "$c1_pid" -f "$worker kill$")" "$newpid"
assert_eq "kill -9: crashes counted" \
        "$(metric_sum "$c1_http" '^swarmq_pool_worker_exits_total\{agent="kill",reason="crashed"')" 1
assert_eq "kill -9: retries counted" \
        "$(metric_sum "$c1_http" '^swarmq_pool_task_retries_total\{agent="kill"')" 1

# 5. Hung worker: it answers the task, then reads nothing more; the next
# ping goes unanswered, and it is killed and replaced.
wait_metric '^swarmq_pool_workers\{agent="hung"' 1
sub hang hung hang
results hang >"$work/hang.jsonl"
hungpid=$(field "$work/hang.jsonl" 'r["output"].split("pid=")[1]')
wait_metric '^swarmq_pool_worker_exits_total\{agent="hung",reason="hung"' 1
sub hung2 hung pid
results hung2 >"$work/hung2.jsonl"
after=$(field "$work/hung2.jsonl" 'r["output"]')
[[ "$after" != "pid=$hungpid" && "$after" == pid=* ]] || fail "hung worker $hungpid still serves: $after"
kill -0 "$hungpid" 2>/dev/null && fail "hung worker $hungpid is still running"
log "ok: hung worker $hungpid replaced by ${after#pid=}"

pool_stop "$worker"
log "passed"
