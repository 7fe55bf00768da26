# SPDX-License-Identifier: Apache-2.0
#
# Helpers of the pool and exec agent tests (0040-0049), sourced after
# lib.sh with one consumer c1 running: submit tasks by prefix, wait for
# their results, read fields of them, wait for a metric to reach a value.

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
        local pattern=$1 want=$2 i got
        for ((i = 0; i < 300; i++)); do
                got=$(metric_sum "$c1_http" "$pattern")
                [[ "$got" == "$want" ]] && return 0
                sleep 0.1
        done
        fail "metric $pattern: $got, expected $want"
}

# wait_no_process PATTERN: waits (5 s at most) until no process's command
# line matches PATTERN.
wait_no_process() {
        local i
        for ((i = 0; i < 50; i++)); do
                pgrep -f "$1" >/dev/null || return 0
                sleep 0.1
        done
        ps -eo pid,pgid,args | grep -F -- "$1" >&2 || true
        fail "processes matching $1 are still running"
}
