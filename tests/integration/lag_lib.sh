# SPDX-License-Identifier: Apache-2.0
#
# The lag-while-paused scenario, shared by tests/integration/0008 (the
# mock cluster) and tests/broker/0605 (real Kafka). Sourced after lib.sh;
# run lag_paused_scenario TASKS_TOPIC CONSUMER_ARGS... (the producer CLI
# gets "${producer_topic_args[@]}" when set). It starts consumer c1 with
# the admin token, a window of 2 and a short refresh interval, and checks
#   1. POST /admin/pause, 60 tasks submitted: the lag of the tasks
#      partitions sums to 60 on /status and /metrics (the high watermarks
#      too), nothing is admitted; resume: everything runs, the lag goes
#      back to 0.
#   2. the admission window (high mark 2) full of two 10 s sleep tasks,
#      40 more tasks submitted: the lane is paused and the lag counts at
#      least those 40; once all have run, it is 0 again.
# SQ_TEST_LAG_REFRESH_MS overrides the refresh interval (0 shows that the
# scenario fails without the refresher).

status_get() { # status_get EXPR: evaluates EXPR on a fresh /status
        sq_http_get "$c1_http/status" >"$work/status.json"
        json_get "$work/status.json" "$1"
}
# The tasks lane's partitions on /status.
tasks_parts='[p for p in j["partitions"] if p["lane"] == "tasks"]'
lag_sum="sum(p[\"lag\"] or 0 for p in $tasks_parts)"
high_sum="sum(p[\"high_watermark\"] or 0 for p in $tasks_parts)"
lag_none="sum(1 for p in $tasks_parts if p[\"lag\"] is None)"
all_paused="len($tasks_parts) > 0 and all(p[\"paused\"] for p in $tasks_parts)"
metric_lag() {
        metric_sum "$c1_http" "^swarmq_consumer_lag\\{topic=\"$lag_topic\","
}
# wait_for WHAT CMD OP WANT [SECONDS]: polls until $(CMD) OP WANT holds
# (OP: -eq or -ge), or fails showing the last value.
wait_for() {
        local what=$1 cmd=$2 op=$3 want=$4 limit=${5:-30}
        wait_until "$limit" "$what $op $want" -- value_is "$op" "$want" eval "$cmd"
        log "ok: $what = $wait_seen ($op $want)"
}
lag_producer() { # the producer CLI on this test's topics
        producer ${producer_topic_args[@]+"${producer_topic_args[@]}"} "$@"
}
# lag_ran IDS_FILE N WHEN: the N tasks of IDS_FILE all have a result,
# then the lag on /status and /metrics comes down to 0.
lag_ran() {
        lag_producer wait --ids-file "$1" --timeout-ms 60000 \
                --json >"$work/ran.json" || fail "tasks did not run $3"
        assert_eq "results $3" "$(json_get "$work/ran.json" 'j["arrived"]')" "$2"
        wait_for "/status lag $3" "status_get '$lag_sum'" -eq 0
        wait_for "/metrics lag $3" metric_lag -eq 0
}
post() { # post PATH: prints the HTTP status of an authorised POST
        curl -s -o "$work/post.body" -w '%{http_code}' -X POST \
                -H "Authorization: Bearer $token" "$c1_http$1"
}

# A window of 2 pauses and resumes the lane every task or two; a short
# fetch.wait.max.ms keeps those cycles (and the refresher's queries, which
# wait behind the long-poll fetch on the same connection) quick.
lag_paused_scenario() {
        local refresh_ms=${SQ_TEST_LAG_REFRESH_MS:-300}
        lag_topic=$1
        shift
        token=tok-$RANDOM$RANDOM
        printf '%s\n' "$token" >"$work/token"
        # gate: a task that runs until the test creates $work/release (at
        # most 60 s: none outlives a failed test for long), so the window
        # stays full for as long as the test looks at it.
        start_consumer c1 "$@" -X http.admin.token.file="$work/token" \
                -X commit.interval.ms=200 -X lag.refresh.interval.ms="$refresh_ms" \
                -X admission.high.mark=2 -X admission.low.mark=1 -X executor.threads=4 \
                -X kafka.fetch.wait.max.ms=50 -X agent.gate.kind=exec \
                -X "agent.gate.command=[\"/bin/sh\", \"-c\", \"i=0; while [ ! -e '$work/release' ] && [ \$i -lt 1200 ]; do /bin/sleep 0.05; i=\$((i + 1)); done\"]"
        wait_ready "$c1_http"

        # 1. Admin pause.
        assert_eq "pause" "$(post /admin/pause)" 202
        wait_for "tasks partitions paused" \
                "[[ \$(status_get '$all_paused') == True ]] && echo 1 || echo 0" -eq 1
        lag_producer -q submit --count 60 --type noop --id-prefix p \
                --ids-out "$work/p.ids" ||
                fail "submit failed"
        wait_for "/status lag of the paused tasks partitions" "status_get '$lag_sum'" -eq 60
        assert_eq "/status high watermarks of the tasks partitions" "$(status_get "$high_sum")" 60
        assert_eq "every tasks partition still paused" "$(status_get "$all_paused")" True
        wait_for "/metrics swarmq_consumer_lag of $lag_topic" metric_lag -eq 60
        assert_eq "tasks received while paused" "$(status_get 'j["tasks"]["received"]')" 0
        assert_eq "resume" "$(post /admin/resume)" 202
        lag_ran "$work/p.ids" 60 "after resume"

        # 2. Backpressure: two gate tasks fill the window (high mark 2),
        # the lane pauses, 40 more tasks wait in Kafka behind it. The gate
        # tasks run until released: a fixed-length task could end while
        # a loaded machine was still reading the lag.
        lag_producer -q submit --count 2 --type gate --id-prefix s \
                --ids-out "$work/s.ids" || fail "submit failed"
        wait_for "window full" "status_get 'j[\"admission\"][\"window\"][\"tasks\"]'" -eq 2
        wait_for "tasks lane paused by the window" \
                "[[ \$(status_get 'any(p[\"paused\"] for p in $tasks_parts)') == True ]] && echo 1 || echo 0" -eq 1
        lag_producer -q submit --count 40 --type noop --id-prefix w \
                --ids-out "$work/w.ids" ||
                fail "submit failed"
        wait_for "/status lag behind the full window" "status_get '$lag_sum'" -ge 40
        wait_for "/metrics lag behind the full window" metric_lag -ge 40
        assert_eq "window while the lag is read" \
                "$(status_get 'j["admission"]["window"]["tasks"]')" 2
        touch "$work/release"
        cat "$work/s.ids" "$work/w.ids" >"$work/sw.ids"
        lag_ran "$work/sw.ids" 42 "after the window drained"

        stop_consumers c1
}
