#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Under processing.guarantee=exactly_once the workflow owner's steps are
# transactions of one transactional producer per partition of
# topic.workflows (docs/workflows.md, "Exactly once, at least once"); on
# the mock cluster, with a fault: one instance owning the 3 partitions
# starts a transaction as swarmq-workflows-<group.id>-<partition> for
# each; then the broker refuses the next TxnOffsetCommit (UNKNOWN_MEMBER_ID,
# abortable), which is the owner's first step of a chain (the instance's
# own transactions commit every 30 s here, so none is in the way). The
# owner aborts that step, logs it naming the partition, reads the
# partition again and steps again: the chain echo "x" -> sha256 -> echo
# ends SUCCEEDED with sha256("x"), the instance healthy, and it stops
# cleanly. (The mock writes no transaction markers, so what the aborted
# transaction wrote is visible here: that a step is committed once is
# broker/0650's, with a read_committed reader on real Kafka.)
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

start_fault_broker --partitions 3
start_consumer c1 -b "$bootstrap" -X workflows.enable=true -X topics.partitions=3 \
        -X processing.guarantee=exactly_once -X commit.interval.ms=30000 \
        -X kafka.fetch.wait.max.ms=100 -X executor.threads=2
wait_ready "$c1_http"
owned() {
        curl -fsS "$c1_http/status" | python3 -c \
                'import json,sys; print(json.load(sys.stdin)["workflows"]["partitions_owned"])'
}
wait_until 30 "c1 owns topic.workflows' 3 partitions" -- value_is == 3 owned
wait_until 30 "c1 read the 3 partitions" -- value_is == 3 eval \
        "grep -c 'WORKFLOW topic=swarmq-workflows partition=[0-9] read to offset' '$work/c1.log'"
for p in 0 1 2; do
        grep -q "partition=$p: transactions started as swarmq-workflows-swarmq-$p " "$work/c1.log" ||
                fail "no transactional producer for partition $p: $(grep WORKFLOW "$work/c1.log")"
done
log "ok: one transactional producer per partition, swarmq-workflows-swarmq-{0,1,2}"

fault errors TxnOffsetCommit UNKNOWN_MEMBER_ID
cat >"$work/chain.json" <<'JSON'
{"id": "chain-eos",
 "workflow": {"chain": [{"type": "echo", "payload": "x"}, {"type": "sha256"},
                        {"type": "echo"}]}}
JSON
producer workflow "$work/chain.json" >/dev/null || fail "cannot submit the chain"
producer wait --id chain-eos --print --json --timeout-ms 60000 >"$work/wait.out" 2>&1 ||
        fail "chain-eos did not end: $(cat "$work/wait.out")"
want=$(printf x | sha256sum | cut -d' ' -f1)
grep -q "\"task_id\":\"chain-eos\".*\"status\":\"SUCCEEDED\"" "$work/wait.out" ||
        fail "chain-eos did not succeed: $(cat "$work/wait.out")"
grep -q "\"output\":\"$want\"" "$work/wait.out" ||
        fail "chain-eos's output is not sha256(x)=$want: $(cat "$work/wait.out")"
line=$(grep -m1 "workflow_id=chain-eos: its next tasks and state not written: .*its transaction aborted, topic=swarmq-workflows partition=[0-9] is read again" "$work/c1.log") ||
        fail "the refused step is not logged: $(grep WORKFLOW "$work/c1.log" | tail -n 5)"
log "ok: ${line#* WORKFLOW }"
grep -q "partition=[0-9]: reading its workflows again" "$work/c1.log" ||
        fail "the partition was not read again"
assert_eq "/healthz" "$(sq_http_status "$c1_http/healthz")" 200
stop_consumers c1
log "ok: the aborted step was taken again after reading its partition; chain-eos ended with sha256(x)"
