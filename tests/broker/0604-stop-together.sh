#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Instances stopped together while the group rebalances around them: three
# instances of one group run tasks (some longer than their drain), and all
# three get SIGTERM at once; four
# times, twice under at_least_once and twice under exactly_once. The first
# to leave starts a rebalance that the others are closing through: one can
# be handed partitions after it unsubscribed and revoke them again from
# within its close, when librdkafka no longer answers
# rd_kafka_rebalance_protocol() nor rd_kafka_consumer_group_metadata()
# (NULL; a strcmp() on the first crashed an instance in 0601 once, and the
# second crashed the exactly_once commit the same way).
#
# Each instance must exit 0, and every task submitted must have a result in
# the end: what a stop abandoned runs on the next cycle's instances, or on
# the one started last. How often the late assignment came up (one logged
# after "closing the consumer") is printed: it is a race this test does not
# force, and in its first runs it did not come up; librdkafka's NULL
# answers on a closed consumer are tested head-on in unit.test_kafka_conf.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=6
        -X executor.threads=2 -X commit.interval.ms=200)
: >"$work/all.ids"
late=0
for cycle in 1 2 3 4; do
        guarantee=at_least_once
        ((cycle > 2)) && guarantee=exactly_once
        names=()
        for i in 1 2 3; do
                name=s${cycle}c$i
                # Drains that end apart: the first to close starts a
                # rebalance the others serve while they drain (its
                # revocation drains too), and they close as it ends.
                start_consumer "$name" "${common[@]}" -X processing.guarantee=$guarantee \
                        -X shutdown.drain.timeout.ms=$((i == 1 ? 200 : 1000))
                names+=("$name")
        done
        for name in "${names[@]}"; do
                url=${name}_http
                wait_ready "${!url}"
        done
        # Tasks longer than any drain on every partition, and short ones.
        producer "${producer_topic_args[@]}" -q submit --count 6 --type sleep \
                --payload 1500 --id-prefix "long$cycle" --ids-out "$work/long$cycle.ids" ||
                fail "cycle $cycle: submit failed"
        producer "${producer_topic_args[@]}" -q submit --count 200 --type sleep \
                --payload 20 --id-prefix "cycle$cycle" --ids-out "$work/cycle$cycle.ids" ||
                fail "cycle $cycle: submit failed"
        cat "$work/long$cycle.ids" "$work/cycle$cycle.ids" >>"$work/all.ids"
        # Some running, some queued, some not fetched yet: stop them all.
        first_url=${names[0]}_http
        wait_until 30 "cycle $cycle: tasks finishing" -- \
                value_is -gt 0 metric_sum "${!first_url}" '^swarmq_tasks_total'
        log "cycle $cycle ($guarantee): SIGTERM to ${names[*]} at once"
        stop_consumers "${names[@]}"
        for name in "${names[@]}"; do
                n=$(awk '/closing the consumer/ { closing = 1 }
                        closing && /REBALANCE assigned/ { n++ }
                        END { print n + 0 }' "$work/$name.log")
                late=$((late + n))
        done
done
log "assignments that came after an instance began closing: $late"

# What the stops abandoned runs here (the long tasks of every cycle, each
# stopped by every drain since); every task has a result.
start_consumer last "${common[@]}" -X executor.threads=8
wait_ready "$last_http"
producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" --timeout-ms 120000 --json \
        >"$work/summary.json" || fail "results missing after four stops"
assert_eq "distinct tasks with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 824
stop_consumers last
log "passed"
