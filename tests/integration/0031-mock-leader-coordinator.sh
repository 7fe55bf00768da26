#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Injected faults on the mock cluster, part 2: leader loss (the task
# partitions, then the results partitions, leaderless for a while, then led
# by another broker), a broker going down and up, and the group
# coordinator moving between brokers (with NOT_COORDINATOR answers), while
# two instances run 3,000 tasks (CHAOS_TASKS; ops/chaos.sh runs it bigger) of mixed duration. Nothing is lost,
# duplicates stay within the admission windows, both instances stay healthy
# and the group's committed offsets reach the end of the topic.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

n=${CHAOS_TASKS:-3000}
window=200
start_fault_broker --brokers 3
common=(-b "$bootstrap" -X executor.threads=3 -X admission.high.mark=$window
        -X admission.low.mark=100 -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
start_consumer c2 "${common[@]}"
wait_ready "$c1_http"
wait_ready "$c2_http"

chaos_tasks "$work/tasks.jsonl" $n t31
t_start=$SECONDS
producer -q submit --file "$work/tasks.jsonl" || fail "submit failed"
progress $((n / 10))

# Leader loss on the task partitions: fetches stop, the instances keep
# polling and stay healthy; then broker 2 leads them all.
fault leader swarmq-tasks all -1
sleep 2 # the outage lasts 2 s (the experiment, not a synchronisation)
fault leader swarmq-tasks all 2
progress $((3 * n / 10))

# Leader loss on the results partitions: results cannot be acknowledged,
# so no offset may be committed past them; then broker 3 leads them.
fault leader swarmq-results all -1
sleep 2
fault leader swarmq-results all 3
progress $((n / 2))

# The group coordinator moves (twice), with NOT_COORDINATOR answers.
fault coordinator group swarmq 2
fault errors OffsetCommit NOT_COORDINATOR 2
fault errors Heartbeat NOT_COORDINATOR 2
progress $((2 * n / 3))
fault coordinator group swarmq 3

# A broker leading partitions goes down and comes back.
fault down 1
sleep 2
fault up 1
progress $((5 * n / 6))

# Bound: each fault may re-run what the instances had admitted (their
# windows), and a fault that cuts an instance off its coordinator loses
# its group session: what it finished while its commits could not land
# (at most the 6 s session timeout of its share of the throughput) runs
# again on the new owner.
check_results "$work/tasks.ids" 1000000000 180000
rate=$((n / (SECONDS - t_start > 0 ? SECONDS - t_start : 1)))
check_dup_bound "5 faults" $((5 * 2 * window + 6 * rate))
took=$(wait_drained 60 swarmq swarmq-tasks "$c1_http" "$c2_http")
log "healthy, lag 0 and offsets committed to the end ${took}s after the last result"
stop_consumers c1 c2
log "passed"
