# SPDX-License-Identifier: Apache-2.0
#
# Shell helpers the benchmark scripts share (tests/bench/*.sh): the
# Release build they default to, a real broker of their own, one swarmq
# run's topics, tasks and instance, and stopping what a script started.
# Each script keeps its own options, measurements and tables. Source it
# after ops/lib.sh (sq_wait_line); it defines functions only. The caller
# sets $root (the source tree) and $bootstrap where a function says so,
# and defines die (its own "bench NAME: ..." error and exit 2).

# bench_workdir NAME: makes the scratch directory $work
# (/tmp/swarmq-NAME.XXXXXX), empties the array pids and $started_kafka,
# and sets bench_cleanup to run on exit. A script with more to stop sets
# an EXIT trap of its own that ends with bench_cleanup.
bench_workdir() {
        work=$(mktemp -d "/tmp/swarmq-$1.XXXXXX")
        pids=()
        started_kafka=
        trap bench_cleanup EXIT
}

# bench_cleanup: stops every process on pids (bench_stop_pids) and the
# broker bench_start_kafka started, and removes $work.
bench_cleanup() {
        bench_stop_pids
        bench_stop_kafka
        rm -rf "$work"
}

# bench_default_build: when $b (the build directory) is empty, installs
# what the build needs and makes a Release build with the tests in
# $root/build-bench, then sets $b to it. Progress goes to stderr.
bench_default_build() {
        [[ -z "$b" ]] || return 0
        "$root/ops/deps.sh" >&2
        "$root/ops/build.sh" "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DSWARMQ_TESTS=ON >&2
        b=$root/build-bench
}

# bench_start_kafka DIR [ARG...]: starts a real Kafka broker with its state
# in DIR (ops/kafka.sh start, ARGs passed on), sets $started_kafka to DIR
# (stop it with bench_stop_kafka) and $bootstrap to its address.
bench_start_kafka() {
        started_kafka=$1
        shift
        bootstrap=$(bash "$root/ops/kafka.sh" start --state-dir "$started_kafka" "$@" |
                sed -n 's/^bootstrap.servers=//p')
        [[ -n "$bootstrap" ]] || die "the Kafka broker did not start"
}

# bench_stop_kafka: stops the broker bench_start_kafka started, if any.
bench_stop_kafka() {
        [[ -z "${started_kafka:-}" ]] ||
                bash "$root/ops/kafka.sh" stop --state-dir "$started_kafka" >/dev/null 2>&1 || true
}

# bench_stop PID...: stops each process in the order given: SIGTERM, then
# waits until it is gone before asking the next. One that already exited
# is passed over quietly.
bench_stop() {
        local pid
        for pid in "$@"; do
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
}

# bench_stop_pids: bench_stop on the array pids, newest first (consumers
# before the broker they need to close), then empties it.
bench_stop_pids() {
        local i
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                bench_stop "${pids[i]}"
        done
        pids=()
}

# bench_make_topics BUILD PREFIX PARTITIONS [RESULTS_ARG...]: creates the six
# topics of one swarmq run on $bootstrap, PREFIX-tasks, -critical, -retry,
# -dlt, -results and -events, each with PARTITIONS partitions and a
# leader before anyone subscribes (an instance can miss a topic it creates
# itself until librdkafka's 5-minute metadata refresh). RESULTS_ARGs go to
# sweep_gen for the results topic only (-c message.timestamp.type=...).
bench_make_topics() {
        local build=$1 prefix=$2 partitions=$3 t
        shift 3
        for t in tasks critical retry dlt events; do
                "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$prefix-$t" -n 0 \
                        -p "$partitions" >/dev/null
        done
        "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$prefix-results" -n 0 \
                -p "$partitions" "$@" >/dev/null
}

# bench_submit BUILD PREFIX COUNT [RATE]: writes COUNT noop tasks of
# NORMAL priority to PREFIX-tasks with ids PREFIX-..., at RATE tasks/s
# (0: as fast as it goes, the default).
bench_submit() {
        local build=$1 prefix=$2 count=$3 rate=()
        if (($# > 3)); then
                rate=(--rate "$4")
        fi
        "$build/producer/swarmq-producer" -b "$bootstrap" --topic-tasks "$prefix-tasks" \
                --topic-critical "$prefix-critical" -q submit --count "$count" \
                "${rate[@]}" --type noop --priority NORMAL --id-prefix "$prefix"
}

# bench_start_swarmq BUILD ID GROUP PREFIX LOG [ARG...]: starts BUILD's
# swarmq-consumer in the background on $bootstrap as instance ID of group
# GROUP, on the six topics PREFIX-tasks ... PREFIX-events, logging
# warnings, with the further ARGs (-X KEY=VALUE ...); its stdout goes to
# LOG.out, its stderr to LOG.log. Its process id goes on the array pids
# at once (so the caller's cleanup stops it even when it never prints
# its address) and into $bench_pid; $bench_http is its HTTP address,
# once it printed it (60 s at most).
bench_start_swarmq() {
        local build=$1 id=$2 group=$3 p=$4 log=$5
        shift 5
        "$build/consumer/swarmq-consumer" -b "$bootstrap" --http-port auto -i "$id" -g "$group" \
                -X "topic.tasks=$p-tasks" -X "topic.critical=$p-critical" \
                -X "topic.retry=$p-retry" -X "topic.dlt=$p-dlt" \
                -X "topic.results=$p-results" -X "topic.events=$p-events" \
                -l warning "$@" >"$log.out" 2>"$log.log" &
        bench_pid=$!
        pids+=("$bench_pid")
        bench_http=$(sq_wait_line "$log.out" http.url 60)
}
