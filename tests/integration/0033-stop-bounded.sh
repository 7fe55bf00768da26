#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A stop ends in bounded time when the brokers misbehave: SIGTERM while
# every Produce is refused with a retriable error (finished tasks' results
# cannot be delivered, so their jobs never complete) and the group
# coordinator answers OffsetCommit 4 s late, past the 2 s request timeout.
# The instance exits 0 within shutdown.drain.timeout.ms (4 s) +
# shutdown.close.timeout.ms (4 s) + the life of a commit already sent
# (3 tries of 2 s) + 6 s of slack, saying in its log that the close
# deadline passed. Before the bound it waited the drain timeout twice
# (again in the close's revocation), each synchronous commit to its end
# and a fixed 10 s flush: about 33 s (integration.0030 once saw an
# instance not stop within 60 s of SIGTERM under injected faults).
# Nothing is lost: once the faults are cleared, a second instance runs
# what the first could not commit, and every task has a result.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

n=30
start_fault_broker --brokers 3
common=(-b "$bootstrap" -X executor.threads=3 -X kafka.session.timeout.ms=6000
        -X kafka.socket.timeout.ms=2000 -X kafka.request.timeout.ms=2000
        -X kafka.retry.backoff.ms=500 -X shutdown.drain.timeout.ms=4000
        -X shutdown.close.timeout.ms=4000)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

# Tasks of 300 ms, so some are still running at the SIGTERM.
for ((i = 1; i <= n; i++)); do
        printf '{"id":"stop-%03d","type":"sleep","payload":"300"}\n' "$i"
done >"$work/tasks.jsonl"
sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$work/tasks.jsonl" >"$work/tasks.ids"
producer -q submit --file "$work/tasks.jsonl" || fail "submit failed"

# From now on no record is delivered (librdkafka retries for ever, every
# 500 ms per request; 3,000 refusals outlast the test).
for i in 1 2 3; do
        fault errors Produce NOT_ENOUGH_REPLICAS 1000
done
wait_until 30 "c1 finished 3 tasks (their results undeliverable)" -- \
        value_is -ge 3 metric_sum "$c1_http" '^swarmq_tasks_total'
for b in 1 2 3; do
        fault broker-errors $b OffsetCommit NO_ERROR 4000 10
done

t0=$EPOCHREALTIME
kill -TERM "$c1_pid"
rc=0
sq_wait_exit "$c1_pid" 60 || rc=$?
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
assert_eq "c1's exit status after SIGTERM" "$rc" 0
log "c1 stopped ${took} s after SIGTERM"
awk -v t="$took" 'BEGIN { exit !(t <= 20) }' ||
        fail "c1 took ${took} s to stop; the bound is 20 s (drain 4 + close 4 + a commit in flight 6 + 6)"
grep -q 'shutdown.close.timeout.ms=4000' "$work/c1.log" ||
        fail "c1's log does not say the close deadline passed"

# Nothing lost: the faults end, c2 runs what c1 did not commit.
fault clear Produce
start_consumer c2 "${common[@]}"
check_results "$work/tasks.ids" 1000000000 60000
stop_consumers c2
log "passed"
