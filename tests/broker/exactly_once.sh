# SPDX-License-Identifier: Apache-2.0
#
# The exactly-once scenario on real Kafka, shared by tests/broker/0610 (the
# instance is killed -9 and restarted) and 0611 (a second instance with the
# same instance.id fences it). Sourced after tests/integration/lib.sh;
# call use_real_kafka first, then
#   exactly_once_scenario COMMIT_MS DISRUPT WHEN
# It starts c1 with processing.guarantee=exactly_once (3 partitions, 4
# executors, a 6 s session, a transaction committed every COMMIT_MS),
# submits 3,000 tasks of 3 ms, calls the function DISRUPT (the test's
# fault), then a read_committed reader (swarmq-producer wait: librdkafka's
# default isolation.level) must see every task's result exactly once:
# none missing WHEN, 3,000 distinct, 3,000 in all. $common holds c1's
# arguments for DISRUPT.
exactly_once_scenario() {
        local commit_ms=$1 disrupt=$2 when=$3
        common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=3
                -X processing.guarantee=exactly_once -X commit.interval.ms="$commit_ms"
                -X executor.threads=4 -X kafka.session.timeout.ms=6000)
        start_consumer c1 "${common[@]}"
        wait_ready "$c1_http"

        producer "${producer_topic_args[@]}" -q submit --count 3000 --type sleep \
                --payload 3 --ids-out "$work/all.ids" || fail "submit failed"
        "$disrupt"
        producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
                --timeout-ms 180000 --json >"$work/summary.json" ||
                fail "tasks missing $when"
        assert_eq "distinct task ids with a committed result" \
                "$(json_get "$work/summary.json" 'j["distinct"]')" 3000
        [[ "$(json_get "$work/summary.json" 'j["total"]')" == 3000 ]] ||
                eos_show_duplicates
        assert_eq "committed results in all (exactly once)" \
                "$(json_get "$work/summary.json" 'j["total"]')" 3000
}

# eos_show_duplicates: prints, for the first task ids with more than one
# committed result, each result (partition and offset in the results
# topic, instance, start time, source offset) and the committed events of
# that id (event ids start with the writing incarnation's nonce), so a
# failure says which run produced what.
eos_show_duplicates() {
        local id
        kcat -b "$bootstrap" -C -t "$t_results" -X isolation.level=read_committed \
                -e -q -f '%k %p %o\n' 2>/dev/null | sort >"$work/committed.where"
        awk '{ print $1 }' "$work/committed.where" | uniq -d | head -5 >"$work/dup.ids"
        producer "${producer_topic_args[@]}" replay --results >"$work/results.jsonl" 2>/dev/null
        producer "${producer_topic_args[@]}" replay --events >"$work/events.jsonl" 2>/dev/null
        while read -r id; do
                log "duplicate $id: results at (key partition offset):" \
                        "$(grep "^$id " "$work/committed.where" | tr '\n' ';')"
                grep -F "\"$id\"" "$work/results.jsonl" | sed 's/^/    result /'
                grep -F "\"$id\"" "$work/events.jsonl" | sed 's/^/    event  /'
        done <"$work/dup.ids"
}
