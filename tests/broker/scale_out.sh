# SPDX-License-Identifier: Apache-2.0
#
# Scale-out on real Kafka, shared by 0400 (eager, the default) and 0410
# (cooperative-sticky): three swarmq-consumer processes in one group on
# 12-partition task topics; every instance gets partitions; a fourth joins
# and one leaves cleanly mid-run; every task id must get a result.
#
# run_scale_out STRATEGY EXACTLY_ONCE_RESULTS: the assignor to use, and 1
# when no task may run twice (0 reports the duplicates instead).
run_scale_out() {
        local strategy=$1 exactly_once_results=$2
        # A small admission window keeps most of the backlog in Kafka, where a new
        # instance can take its share (a large window lets the first instances
        # admit everything before the fourth one joins).
        common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X executor.threads=3
                -X shutdown.drain.timeout.ms=20000 -X admission.high.mark=300
                -X admission.low.mark=150
                -X "kafka.partition.assignment.strategy=$strategy")
        # c1 first: it creates the test's topics. An instance started
        # while they do not exist yet joins the group without them in its
        # metadata (librdkafka sends only known topics) and is given none
        # of their partitions until its next metadata refresh (README:
        # create topics before starting instances).
        start_consumer c1 "${common[@]}"
        wait_ready "$c1_http"
        start_consumer c2 "${common[@]}"
        start_consumer c3 "${common[@]}"
        wait_ready "$c2_http"
        wait_ready "$c3_http"

        # owned URL: partitions of the task topic an instance owns now.
        owned() {
                metric_sum "$1" '^swarmq_partitions_assigned\{lane="tasks"'
        }
        # owned_all URL: partitions of every input topic (tasks, critical,
        # retry) an instance owns now.
        owned_all() {
                metric_sum "$1" '^swarmq_partitions_assigned\{'
        }

        # The group settles (cooperative-sticky may take a few rounds): all
        # 12 task partitions owned, and every instance owning partitions.
        # (cooperative-sticky balances the total over the three input
        # topics, not each topic: one instance may hold no task partition.)
        spread() { # all 12 task partitions owned, every instance owning some
                a=$(owned "$c1_http") b=$(owned "$c2_http") c=$(owned "$c3_http")
                ta=$(owned_all "$c1_http") tb=$(owned_all "$c2_http") tc=$(owned_all "$c3_http")
                echo "tasks $a/$b/$c, all lanes $ta/$tb/$tc"
                ((a + b + c == 12 && ta > 0 && tb > 0 && tc > 0))
        }
        wait_until 60 "the partitions spread over 3 instances" -- spread
        log "task partitions owned: c1=$a c2=$b c3=$c (all lanes: $ta/$tb/$tc)"

        # 9,000 tasks of 3 ms on 3 x 2 ordinary slots: a few seconds of
        # work, in two halves. The second half goes in once the fourth
        # instance is assigned, so it has tasks of its own to run however
        # fast the others drained the first half (a loaded machine once
        # finished all 9,000 before the group settled with c4).
        submit_half() { # PREFIX
                producer "${producer_topic_args[@]}" -q submit --count 4500 \
                        --type sleep --payload 3 --id-prefix "$1" \
                        --priority-mix LOW:1,NORMAL:3,HIGH:1,CRITICAL:1 \
                        --ids-out "$work/$1.ids" || fail "submit failed"
        }
        submit_half first

        producer "${producer_topic_args[@]}" wait --count 1500 --timeout-ms 60000 \
                >/dev/null || fail "no progress"
        log "a fourth instance joins mid-run"
        start_consumer c4 "${common[@]}"
        wait_ready "$c4_http"
        log "c4 assigned: task partitions owned c4=$(owned "$c4_http")"
        submit_half second
        cat "$work/first.ids" "$work/second.ids" >"$work/all.ids"

        producer "${producer_topic_args[@]}" wait --count 4000 --timeout-ms 60000 \
                >/dev/null || fail "no progress after the join"
        log "c2 leaves cleanly mid-run (SIGTERM)"
        kill -TERM "$c2_pid"
        status=0
        sq_wait_exit "$c2_pid" 60 || status=$?
        assert_eq "c2 exit status" "$status" 0

        producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
                --timeout-ms 180000 --json >"$work/summary.json" ||
                fail "tasks missing after the join and the leave"
        assert_eq "distinct task ids with a result" \
                "$(json_get "$work/summary.json" 'j["distinct"]')" 9000
        dups=$(json_get "$work/summary.json" 'j["duplicates"]')
        if ((exactly_once_results)); then
                # Clean joins and leaves drain the moved partitions before giving
                # them up: no task runs twice.
                assert_eq "duplicate results" "$dups" 0
        else
                log "duplicates: $dups (allowed with $strategy on librdkafka 2.0.2)"
        fi

        for name in c1 c3 c4; do
                url_var=${name}_http
                done_here=$(metric_sum "${!url_var}" '^swarmq_tasks_total')
                log "$name finished $done_here tasks"
                if ((done_here == 0)) && [[ "$strategy" == cooperative-sticky ]]; then
                        # cooperative-sticky balances the three input
                        # topics together: a joiner can be given only
                        # critical and retry partitions, or keep none
                        # after the incremental rounds (a known limit of
                        # the non-default assignor, docs/architecture.md).
                        # What this test holds it to is above: nothing
                        # lost. Reported, not failed.
                        log "WARNING: $name ran no task under $strategy (owns $(owned_all "${!url_var}") partitions)"
                        continue
                fi
                ((done_here > 0)) || fail "$name ran no task"
        done
        stop_consumers c1 c3 c4
        log "passed"
}
