#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Dedup: the same task id submitted again after it succeeded is not run
# again. One result for it, swarmq_duplicates_dropped_total says 1, the
# events topic carries a duplicate_dropped event for it, and its offset is
# committed like any other (a task submitted after it still runs). With
# dedup off (dedup.max.entries=0) the same sequence runs it twice.
source "$(dirname "$0")/lib.sh"

ran() { # ran URL N: N runs finished and acknowledged, none in flight
        local runs flight
        runs=$(metric_sum "$1" '^swarmq_tasks_total')
        flight=$(metric_sum "$1" '^swarmq_tasks_in_flight')
        echo "$runs runs, $flight in flight"
        ((runs >= $2 && flight == 0))
}

run() {
        local name=$1 expect_runs=$2 expect_dropped=$3
        shift 3
        start_consumer "$name" --embedded-broker -X embedded.partitions=1 "$@"
        local http_var=${name}_http
        local http=${!http_var}
        wait_ready "$http"
        echo '{"id":"dup-1","type":"echo","payload":"first"}' |
                producer -q submit --stdin || fail "submit failed"
        producer wait --id dup-1 --timeout-ms 30000 >/dev/null || fail "dup-1 did not run"
        # Its result is acknowledged (its window slot freed) before the copy.
        wait_until 30 "$name: dup-1 acknowledged" -- ran "$http" 1
        echo '{"id":"dup-1","type":"echo","payload":"second"}' |
                producer -q submit --stdin || fail "submit failed"
        echo '{"id":"after-1","type":"echo","payload":"x"}' |
                producer -q submit --stdin || fail "submit failed"
        # Both copies and after-1 run on 4 executors at once, so after-1's
        # result can come first: wait until the instance has finished
        # (and the broker acknowledged) every run it will make, then read.
        wait_until 30 "$name: every run acknowledged" -- ran "$http" $((expect_runs + 1))
        producer wait --id dup-1 --id after-1 --timeout-ms 30000 --json \
                >"$work/$name.json" || fail "results missing"
        # wait stops at the first result of each id, and after-1's can
        # come before dup-1's second: count dup-1's results in the whole
        # topic (every run is acknowledged by now).
        assert_eq "$name: results for dup-1" \
                "$(producer replay --results --task-id dup-1 | grep -c '"dup-1"' || true)" \
                "$expect_runs"
        assert_eq "$name: tasks run" \
                "$(metric_sum "$http" '^swarmq_tasks_total')" $((expect_runs + 1))
        assert_eq "$name: duplicates dropped (metric)" \
                "$(metric_sum "$http" '^swarmq_duplicates_dropped_total')" "$expect_dropped"
        assert_eq "$name: duplicate_dropped events for dup-1" \
                "$(producer replay --events --task-id dup-1 | grep -c '"duplicate_dropped"' || true)" \
                "$expect_dropped"
        stop_consumers "$name"
}

run c1 1 1
run c2 2 0 -X dedup.max.entries=0
log "passed"
