#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# SIGHUP changes exec and pool agents, as a user sees it on one consumer:
# - a reload that changes a pool agent's process settings (an env
#   variable, pool.min/pool.max) starts a new pool; a task already
#   running on the old pool's worker finishes there (SUCCEEDED, nothing
#   lost), new tasks run on the new workers (another pid), and once the
#   old pool has nothing left to run its worker exits ("drained and
#   stopped" in the log) and the pool metrics count the new workers;
# - the same reload adds an exec agent, whose tasks then run;
# - a reload that removes the exec agent stops its runtime: its tasks
#   are dead-lettered as having no agent, the instance keeps serving.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pool_lib.sh"

# A copy of its own: pool_stop waits until no process runs this path, and
# other tests (0024, 0042) run workers of the build's swarmq-worker at the
# same time.
worker=$work/swarmq-worker-0052
cp "$build/consumer/swarmq-worker" "$worker"
conf=$work/swarmq.properties
write_conf() { # $1: the pool's generation (1 or 2); $2: extra lines
        {
                echo "agent.echo.handler=echo"
                pool_agent pw "\"$worker\"" concurrency=2 \
                        "pool.min=$1" "pool.max=$1" "env.WORKER_GEN=$1"
                printf '%s\n' "$2"
        } >"$conf"
}
write_conf 1 ""
pool_start

# The first pool: one worker.
sub pid1 pw "pid"
pid1=$(results pid1 | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"].removeprefix("pid="))')
[[ "$pid1" =~ ^[0-9]+$ ]] || fail "the pid task's output is '$pid1', not a pid"
log "the first pool's worker: pid $pid1"

# A long task on it, then a reload that replaces the pool and adds an
# exec agent.
sub long pw "sleep 2500"
wait_metric '^swarmq_pool_busy_workers\{agent="pw"' 1
write_conf 2 'agent.ex.kind=exec
agent.ex.command=["/bin/cat"]'
kill -HUP "$c1_pid"
wait_metric '^swarmq_config_reloads_total\{result="ok"' 1
grep -q 'RUNTIME.*replaced pw, added ex' "$work/c1.log" ||
        fail "the reload does not say it replaced pw and added ex: $(grep RUNTIME "$work/c1.log")"
kill -0 "$pid1" 2>/dev/null || fail "the old worker $pid1 died before its task ended"

# New tasks: the new pool and the new exec agent.
sub pid2 pw "pid"
pid2=$(results pid2 | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"].removeprefix("pid="))')
[[ "$pid2" =~ ^[0-9]+$ && "$pid2" != "$pid1" ]] ||
        fail "a task after the reload ran on '$pid2', not on a new worker (old: $pid1)"
sub cat ex "through the new exec agent"
assert_eq "the exec agent's task" \
        "$(results cat | field /dev/stdin 'r["status"] + " " + r["agent"] + " " + r["output"]')" \
        "SUCCEEDED ex through the new exec agent"

# The long task finished on the old pool; then the old pool drained.
assert_eq "the task running across the reload" \
        "$(results long | field /dev/stdin 'r["status"] + " " + r["agent"]')" "SUCCEEDED pw"
wait_until 30 "the old pool drained" -- \
        grep -q 'RUNTIME.*agent=pw kind=pool: the runtime a reload retired drained and stopped' "$work/c1.log"
wait_until 10 "the old worker $pid1 gone" -- eval "! kill -0 $pid1 2>/dev/null"
wait_metric '^swarmq_pool_workers\{agent="pw"' 2
assert_eq "pw's workers started (1 old + 2 new)" \
        "$(metric_sum "$c1_http" '^swarmq_pool_workers_started_total\{agent="pw"')" 3

# A reload that removes the exec agent: it stops; its tasks have no agent.
write_conf 2 ""
kill -HUP "$c1_pid"
wait_metric '^swarmq_config_reloads_total\{result="ok"' 2
wait_until 30 "the exec agent's runtime stopped" -- \
        grep -q 'RUNTIME.*agent=ex kind=exec: the runtime a reload retired drained and stopped' "$work/c1.log"
sub gone ex "x"
assert_eq "a task for the removed agent" \
        "$(results gone | field /dev/stdin 'r["status"]')" "DEAD_LETTERED"
assert_eq "exec agents left in /metrics" \
        "$(metric_sum "$c1_http" '^swarmq_exec_running\{agent="ex"')" 0

pool_stop "$worker"
log "passed"
