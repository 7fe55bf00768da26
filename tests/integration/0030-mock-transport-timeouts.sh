#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Injected faults on the mock cluster, part 1: transport errors
# (connections closed under Produce, Fetch, OffsetCommit, Heartbeat) and
# request timeouts (brokers answering Produce, Fetch and OffsetCommit long
# after the clients' request timeout), while two instances run 3,000 tasks (CHAOS_TASKS; ops/chaos.sh runs it bigger)
# of mixed duration. Nothing is lost, duplicates stay within the admission
# windows, both instances stay healthy and the group's committed offsets
# reach the end of the topic.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

n=${CHAOS_TASKS:-3000}
window=200
start_fault_broker --brokers 3
common=(-b "$bootstrap" -X executor.threads=3 -X admission.high.mark=$window
        -X admission.low.mark=100 -X kafka.socket.timeout.ms=2000
        -X kafka.request.timeout.ms=2000 -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
start_consumer c2 "${common[@]}"
wait_ready "$c1_http"
wait_ready "$c2_http"

chaos_tasks "$work/tasks.jsonl" $n t30
t_start=$SECONDS
producer -q submit --file "$work/tasks.jsonl" || fail "submit failed"
progress $((n / 10))

# Transport errors: the next requests of each kind find their connection
# closed; librdkafka reconnects and retries.
fault errors Produce _TRANSPORT 5
fault errors Fetch _TRANSPORT 5
fault errors OffsetCommit _TRANSPORT 3
fault errors Heartbeat _TRANSPORT 2
progress $((2 * n / 5))

# Request timeouts: every broker answers the next requests 4 s late, past
# the 2 s request timeout, so they time out and are sent again.
for b in 1 2 3; do
        fault broker-errors $b Produce NO_ERROR 4000 2
        fault broker-errors $b Fetch NO_ERROR 4000 1
        fault broker-errors $b OffsetCommit NO_ERROR 4000 1
done
progress $((2 * n / 3))

# Bound: each fault may re-run what the instances had admitted (their
# windows), and a fault that cuts an instance off its coordinator loses
# its group session: what it finished while its commits could not land
# (at most the 6 s session timeout of its share of the throughput) runs
# again on the new owner.
check_results "$work/tasks.ids" 1000000000 180000
rate=$((n / (SECONDS - t_start > 0 ? SECONDS - t_start : 1)))
check_dup_bound "4 faults" $((4 * 2 * window + 6 * rate))
took=$(wait_drained 60 swarmq swarmq-tasks "$c1_http" "$c2_http")
log "healthy, lag 0 and offsets committed to the end ${took}s after the last result"
stop_consumers c1 c2
log "passed"
