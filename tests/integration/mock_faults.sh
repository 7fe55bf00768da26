# SPDX-License-Identifier: Apache-2.0
#
# The injected-faults scenario on the mock cluster, shared by
# tests/integration/0030 (transport errors and request timeouts) and 0031
# (leader loss, a broker down, the coordinator moving). Sourced after
# lib.sh and tests/chaos/lib.sh; run
#   mock_faults_scenario ID_PREFIX FAULTS INJECT [CONSUMER_ARGS...]
# It starts a 3-broker fault broker and two instances (window 200, 3
# executors, a 6 s session timeout, plus CONSUMER_ARGS), submits
# CHAOS_TASKS (3,000; ops/chaos.sh runs it bigger) tasks of mixed duration
# with ids ID_PREFIX-..., waits for a tenth of them, then calls the
# function INJECT, which injects the test's FAULTS faults (with fault,
# waiting for progress between them; $n is the task count). Then: nothing
# is lost, duplicates stay within the bound below, both instances stay
# healthy and the group's committed offsets reach the end of the topic.
mock_faults_scenario() {
        local prefix=$1 faults=$2 inject=$3 window=200 t_start rate took
        shift 3
        n=${CHAOS_TASKS:-3000}
        start_fault_broker --brokers 3
        local common=(-b "$bootstrap" -X executor.threads=3 -X admission.high.mark=$window
                -X admission.low.mark=100 -X kafka.session.timeout.ms=6000 "$@")
        start_consumer c1 "${common[@]}"
        start_consumer c2 "${common[@]}"
        wait_ready "$c1_http"
        wait_ready "$c2_http"

        chaos_tasks "$work/tasks.jsonl" "$n" "$prefix"
        t_start=$SECONDS
        producer -q submit --file "$work/tasks.jsonl" || fail "submit failed"
        progress $((n / 10))

        "$inject"

        # Bound: each fault may re-run what the instances had admitted
        # (their windows), and a fault that cuts an instance off its
        # coordinator loses its group session: what it finished while its
        # commits could not land (at most the 6 s session timeout of its
        # share of the throughput) runs again on the new owner.
        check_results "$work/tasks.ids" 1000000000 180000
        rate=$((n / (SECONDS - t_start > 0 ? SECONDS - t_start : 1)))
        check_dup_bound "$faults faults" $((faults * 2 * window + 6 * rate))
        took=$(wait_drained 60 swarmq swarmq-tasks "$c1_http" "$c2_http")
        log "healthy, lag 0 and offsets committed to the end ${took}s after the last result"
        stop_consumers c1 c2
}
