# SPDX-License-Identifier: Apache-2.0
#
# Helpers of the pool and exec agent tests (0040-0049), sourced after
# lib.sh: write pool agents, start and stop consumer c1 for them, and with
# c1 running submit tasks by prefix, wait for their results, read fields
# of them, wait for a metric to reach a value. 0041 (the Python worker)
# and 0042 (the C worker) share the set-up and the teardown; their cases
# differ on purpose: each tests what its worker is there to show.

# pool_agent NAME COMMAND [key=value...]: prints the properties of a pool
# agent NAME whose workers run COMMAND (JSON array items, comma-separated)
# with NAME as their last argument.
pool_agent() {
        local name=$1 command=$2 kv
        shift 2
        echo "agent.$name.kind=pool"
        echo "agent.$name.command=[$command, \"$name\"]"
        for kv in "$@"; do echo "agent.$name.$kv"; done
}

# pool_start: starts c1 on the embedded broker with the agents of
# $work/swarmq.properties, one attempt per task, two executors (none
# reserved for critical tasks), and waits until it is ready.
pool_start() {
        start_consumer c1 --embedded-broker -c "$work/swarmq.properties" \
                -X retry.max.attempts=1 -X executor.threads=2 \
                -X executor.critical.reserved=0
        wait_ready "$c1_http"
}

# pool_stop WORKER: stops c1; no process running WORKER may be left.
pool_stop() {
        stop_consumers c1
        wait_no_process "$1"
}

# sub PREFIX TYPE PAYLOAD [submit args...]: ids go to $work/ids.PREFIX.
sub() {
        local prefix=$1 type=$2 payload=$3
        shift 3
        producer -q submit --id-prefix "$prefix" --type "$type" --payload "$payload" \
                --ids-out "$work/ids.$prefix" "$@" || fail "submit $prefix failed"
}

# results PREFIX: waits for every id of ids.PREFIX; prints one JSON result
# per line.
results() {
        producer wait --ids-file "$work/ids.$1" --timeout-ms 60000 --print --json \
                >"$work/wait.$1" || fail "tasks $1 got no result"
        # wait --print shows every result it read: keep ours.
        head -n -1 "$work/wait.$1" | python3 -c 'import json,sys
ids = set(open(sys.argv[1]).read().split())
for line in sys.stdin:
    if json.loads(line)["task_id"] in ids:
        sys.stdout.write(line)' "$work/ids.$1"
}

# field FILE EXPR: evaluates EXPR (Python, the result bound to r) on each
# result line of FILE.
field() {
        python3 -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line); print(eval(sys.argv[2]))' "$1" "$2"
}

# wait_metric PATTERN VALUE: waits (30 s at most) until the sum of the
# /metrics series matching PATTERN is VALUE.
wait_metric() {
        wait_until 30 "metric $1 = $2" -- value_is == "$2" metric_sum "$c1_http" "$1"
}

# wait_no_process PATTERN: waits (5 s at most) until no process's command
# line matches PATTERN.
wait_no_process() {
        wait_until 5 "no process matching $1 running" -- no_process "$1"
}
no_process() { # no_process PATTERN: prints the processes matching PATTERN
        ! pgrep -af -- "$1"
}
