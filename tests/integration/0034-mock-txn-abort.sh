#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# exactly_once recovers by itself from an abortable transaction error, on
# the mock cluster: while one instance runs 1,200 tasks, the broker refuses
# a TxnOffsetCommit with UNKNOWN_MEMBER_ID (what a real cluster answers
# when the group coordinator's node died and the member's session ended:
# seen in tests/broker/0711), then a Produce of results with INVALID_RECORD (a record
# of the transaction refused for good), then an EndTxn with
# NOT_COORDINATOR (retriable: tried again, not aborted). After each
# abortable one the instance logs the abort and the rewind naming the
# cause, counts it in swarmq_transactions_aborted_total{reason}, and keeps
# running: the same process, /healthz 200, every task with a result, its
# lag 0, and a clean stop (exit 0). The mock cluster writes no transaction markers, so a reader
# here sees the aborted transactions' results too: that each task's result
# is committed exactly once is 0089's (a spy on the transactions) and
# tests/broker/0711's (a read_committed reader on a real cluster).
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

n=1200
# Two brokers: broker 2 leads the results topic alone, so that a Produce
# error injected there meets the instance's results, not the submitter's
# tasks.
start_fault_broker --brokers 2 --partitions 4
fault leader swarmq-tasks all 1
fault leader swarmq-events all 1
fault leader swarmq-results all 2
start_consumer c1 -b "$bootstrap" -X processing.guarantee=exactly_once \
        -X commit.interval.ms=200 -X executor.threads=4
wait_ready "$c1_http"
pid=$c1_pid
# Four batches of 300 tasks; each fault waits for the next batch, whose
# first transaction meets it.
chaos_tasks "$work/tasks.jsonl" $n t34
split -l $((n / 4)) -d "$work/tasks.jsonl" "$work/batch."
batch() {
        producer -q submit --file "$work/batch.0$1" || fail "submit of batch $1 failed"
        progress $(((${1#0} + 1) * n / 4))
}
aborted() {
        metric_sum "$c1_http" "^swarmq_transactions_aborted_total\\{reason=\"$1\"\\}"
}
batch 0

# 1. The offsets of a transaction refused: the member is unknown.
fault errors TxnOffsetCommit UNKNOWN_MEMBER_ID
batch 1
wait_until 30 "an abort counted with reason=send_offsets" -- \
        value_is -ge 1 aborted send_offsets
grep -q 'TXN.*sending offsets to the transaction failed: .*[Uu]nknown member.*aborting the transaction and rewinding' "$work/c1.log" ||
        fail "no log line naming the refused offsets and the abort"
grep -q 'TXN.*rewound [0-9]* partitions to their last committed offsets .*[Uu]nknown member' "$work/c1.log" ||
        fail "no log line naming the rewind and its cause"

# 2. Records of a transaction refused for good (a result's Produce).
fault broker-errors 2 Produce INVALID_RECORD 0 1
batch 2
wait_until 30 "an abort counted with reason=produce" -- \
        value_is -ge 1 aborted produce
grep -q 'TXN.*a produce failed: a record to swarmq-results not delivered: Broker: Broker failed to validate record; aborting the transaction and rewinding' "$work/c1.log" ||
        fail "no log line naming the refused record and the abort"

# 3. A commit answered NOT_COORDINATOR: retriable, so tried again.
fault errors EndTxn NOT_COORDINATOR
batch 3
assert_eq "transactions aborted at their commit (NOT_COORDINATOR is retried)" "$(aborted commit)" 0

check_results "$work/tasks.ids" 1000000000 120000
# The mock cluster answers TxnOffsetCommit without committing (the group
# shows nothing committed): the instance's own lag says it is done.
health_and_lag() {
        echo "healthz $(sq_http_status "$c1_http/healthz") lag $(metric_sum "$c1_http" '^swarmq_consumer_lag')"
}
wait_until 60 "/healthz 200 and swarmq_consumer_lag 0" --every 0.5 -- \
        value_is == "healthz 200 lag 0" health_and_lag

kill -0 "$pid" 2>/dev/null || fail "the instance exited (pid $pid)"
assert_eq "the instance is the same process" "$c1_pid" "$pid"
assert_eq "/healthz" "$(sq_http_status "$c1_http/healthz")" 200
if grep -q 'a fatal error: stopping' "$work/c1.log"; then
        fail "the instance stopped on an abortable error: $(grep 'a fatal error' "$work/c1.log" | head -n 1)"
fi
log "aborted transactions: send_offsets $(aborted send_offsets), produce $(aborted produce), commit $(aborted commit); results read (aborted ones included, no markers on the mock): $((distinct + dups))"
stop_consumers c1
log "passed"
