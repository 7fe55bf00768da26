# SPDX-License-Identifier: Apache-2.0
#
# The completed-offset map survives a crash, shared by integration 0010
# (the mock cluster) and broker 0600 (real Kafka 3.9): one partition, a
# slow task at its head and N quick ones behind it. The committed offset
# cannot pass the slow one, but the commit's metadata carries the N
# finished offsets. kill -9 the instance once that map is committed, start
# another: it skips the N (counted on /metrics), runs only the slow one
# again, and every task has exactly one result except the slow one.
#
# run_offset_map_kill9 N CONSUMER_ARGS...: N quick tasks; the consumer
# arguments name the broker and topics. The producer gets
# "${producer_topic_args[@]}".
run_offset_map_kill9() {
        local quick=$1 i done_cnt bytes skipped ran
        shift
        local common=("$@" -X executor.threads=4 -X commit.interval.ms=200
                -X kafka.session.timeout.ms=6000)
        local ptopics=("${producer_topic_args[@]}")
        start_consumer c1 "${common[@]}"
        wait_ready "$c1_http"

        producer "${ptopics[@]}" -q submit --type sleep --payload 60000 \
                --id-prefix head --ids-out "$work/head.ids" ||
                fail "submit of the head task failed"
        producer "${ptopics[@]}" -q submit --count "$quick" --type noop \
                --id-prefix quick --ids-out "$work/quick.ids" ||
                fail "submit failed"
        producer "${ptopics[@]}" wait --ids-file "$work/quick.ids" \
                --timeout-ms 60000 >/dev/null ||
                fail "the quick tasks did not finish behind the slow head"

        # The map in the last commit marks all N done (the head still runs).
        wait_until 30 "offsets the committed map marks done = $quick" -- \
                value_is -eq "$quick" metric_sum "$c1_http" '^swarmq_offset_map_done'
        assert_eq "offsets the committed map marks done" "$wait_seen" "$quick"
        bytes=$(metric_sum "$c1_http" '^swarmq_offset_map_bytes')
        log "committed map: $bytes bytes for $quick completions above the head"

        log "kill -9 c1"
        kill -KILL "$c1_pid"
        wait "$c1_pid" 2>/dev/null || true

        start_consumer c2 "${common[@]}" -X shutdown.drain.timeout.ms=1000
        wait_ready "$c2_http"
        wait_until 30 "records c2 skipped as already completed >= $quick" -- \
                value_is -ge "$quick" metric_sum "$c2_http" '^swarmq_completed_skipped_total'
        assert_eq "records c2 skipped as already completed" "$wait_seen" "$quick"
        grep -q "inherited completed-offset map" "$work/c2.log" ||
                fail "c2 did not log the map it inherited"

        # c2 runs the head again (it never finished); a task submitted now
        # also runs.
        producer "${ptopics[@]}" -q submit --type noop --id-prefix after \
                --ids-out "$work/after.ids" || fail "submit failed"
        producer "${ptopics[@]}" wait --ids-file "$work/after.ids" \
                --timeout-ms 60000 >/dev/null ||
                fail "a task submitted after the restart did not run"
        # One results partition: reading up to the last task's result sees
        # every result written before it, duplicates included.
        cat "$work/quick.ids" "$work/after.ids" >"$work/expect.ids"
        producer "${ptopics[@]}" wait --ids-file "$work/expect.ids" \
                --timeout-ms 10000 --json >"$work/summary.json" ||
                fail "results missing"
        assert_eq "distinct tasks with a result" \
                "$(json_get "$work/summary.json" 'j["distinct"]')" $((quick + 1))
        assert_eq "tasks run twice" \
                "$(json_get "$work/summary.json" 'j["duplicates"]')" 0
        ran=$(metric_sum "$c2_http" '^swarmq_tasks_total')
        assert_eq "tasks c2 finished (only the one submitted after the restart)" \
                "$ran" 1
        stop_consumers c2
}
