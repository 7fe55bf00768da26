#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The chaos suite: swarmq-consumer instances run tasks of mixed duration
# while something breaks, then every task id must have a result (lost = 0),
# duplicates must stay within their bound, and no instance may be stuck.
#
# Scenarios:
#   kill          real Kafka: kill -9 a random instance --kills times,
#                 restarting it each time
#   broker        real Kafka: the broker stopped mid-run with SIGTERM and
#                 started again on the same port and data, then once more
#                 with SIGKILL (ops/kafka.sh restart)
#   cluster       real Kafka, three brokers (ops/kafka.sh start --brokers 3,
#                 replication factor 3, min.insync.replicas 2), tasks
#                 submitted at a steady rate throughout: (a) the broker
#                 leading most of the scenario's partitions killed with
#                 SIGKILL and started again, (b) a rolling restart of all
#                 three (SIGTERM, each back in sync before the next), (c)
#                 two brokers down at once (SIGKILL) until task writes are
#                 seen stopped for --down-stall seconds, then both back
#   partition     real Kafka (a broker of its own with a second listener,
#                 ops/kafka.sh --listen-ip), three instances, one of them
#                 (c3) in a network namespace this run creates, tasks at a
#                 steady rate: (a) c3 cut off (its veth pair's host end
#                 down: packets silently dropped) for --cut-short seconds,
#                 less than the session timeout: no rebalance; (b) cut off
#                 for --cut-long seconds, more than it: c1 and c2 take its
#                 partitions, c3 notices (assignment lost), drops what it
#                 cannot commit and rejoins after the heal; needs root
#   mock          the mock cluster with injected faults (transport errors,
#                 request timeouts, leader loss, broker down, coordinator
#                 moves): tests/integration/0030 and 0031 with --tasks
#   oversized     poison pills in bulk: 1 % of --tasks have an output too
#                 large for a result record; the instance stays up and
#                 every task gets one terminal result
#                 (tests/integration/0078 with --tasks)
#
# DESIGN: real-Kafka scenarios share one broker (ops/kafka.sh, state in
# <build>/chaos/kafka unless --kafka-state) and use topics and a group of
# their own; the cluster scenario has its own three-broker cluster
# (<build>/chaos/kafka3 unless --cluster-state). A background sampler (tests/chaos/sampler.py) records the
# results topic's size every 0.25 s; each fault's time goes to an events
# file, and tests/chaos/recovery.py turns both into recovery times (fault
# to throughput back at half its rate before the fault). Checks, after
# each scenario: `swarmq-producer wait --ids-file` (none missing,
# duplicates within bound), then every instance's /healthz 200 and
# swarmq_consumer_lag 0 and the group's committed offsets at the end of
# the topic (tests/chaos/group_lag.py), within --drain-timeout. Progress
# gates read the results topic; the only fixed waits are none: faults fire
# when the results reach a count.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tasks=100000
instances=3
kills=20
window=500
commit_ms=1000
session_ms=6000
scenarios=kill,broker,cluster,mock
build=$root/build
kafka_state=
cluster_state=
partition_state=
exactly_once=0
cut_short=2
cut_long=20
session_s=6
cluster_faults=leader,rolling,two-down
submit_rate=200
down_stall=10
write=0
keep_broker=0
drain_timeout=120
broker_signals=TERM,KILL

usage() {
        cat <<EOF2
Usage: ops/chaos.sh [options]

Runs swarmq through crashes and outages and checks that nothing is lost.
Prints a progress line per fault and a summary table; exit 0 when every
scenario passed, 1 on a failure (what failed is named), 2 on bad usage.

Options:
  --scenario LIST    comma-separated: kill, broker, cluster, partition, mock,
                     oversized
                     (default $scenarios)
  --tasks N          tasks per scenario (default $tasks)
  --instances N      swarmq-consumer instances (default $instances)
  --kills N          kill -9 count in the kill scenario (default $kills)
  --window N         admission.high.mark per instance (default $window)
  --build-dir DIR    where the binaries are (default $build; built by
                     ops/build.sh DIR)
  --kafka-state DIR  use the broker of this ops/kafka.sh state directory
                     (started when not running; restarted in place by the
                     broker scenario) instead of <build>/chaos/kafka
  --cluster-state DIR  the cluster scenario's three-broker cluster (an
                     ops/kafka.sh state directory; started with --brokers 3
                     when not running) instead of <build>/chaos/kafka3
  --partition-state DIR  the partition scenario's broker (an ops/kafka.sh
                     state directory; started afresh, with --listen-ip,
                     and stopped at the end) instead of
                     <build>/chaos/kafka-part
  --cut-short S      partition: the short cut, in seconds (default
                     $cut_short; less than --session)
  --cut-long S       partition: the long cut (default $cut_long; more
                     than --session)
  --session S        partition: kafka.session.timeout.ms of the instances,
                     in seconds (default $session_s)
  --cluster-faults L the cluster scenario's faults, in order (default
                     $cluster_faults; each of leader, rolling, two-down,
                     kill-storm: --kills kill -9 of random instances, one
                     every second or so, each restarted at once under its
                     instance.id)
  --exactly-once     kill, cluster: the instances run with
                     processing.guarantee=exactly_once, and a read_committed
                     reader must see each task's result exactly once
                     (duplicate bound 0)
  --rate N           cluster: tasks submitted per second while the faults
                     run (default $submit_rate; the run lasts as long as
                     the faults, --tasks is not used)
  --down-stall S     cluster, two-down: how long task writes must be seen
                     stopped before the two brokers come back (default
                     $down_stall)
  --drain-timeout S  seconds for lag to drain after the last result
                     (default $drain_timeout)
  --broker-signals L the broker scenario's outages, in order (default
                     $broker_signals; each of TERM or KILL)
  --write            append the figures to docs/reliability.md
  --keep-broker      leave running a broker this run started (by default
                     it is stopped and its data removed at the end)
  -h, --help         this help

Needs Java and Maven for the real broker (bash ops/deps.sh --test) and the
test venv (ops/venv.sh) for the samplers.
EOF2
}

die() {
        echo "chaos.sh: $*" >&2
        exit 2
}

while (($#)); do
        case "$1" in
        --scenario) scenarios=${2:?} && shift 2 ;;
        --tasks) tasks=${2:?} && shift 2 ;;
        --instances) instances=${2:?} && shift 2 ;;
        --kills) kills=${2:?} && shift 2 ;;
        --window) window=${2:?} && shift 2 ;;
        --build-dir) build=${2:?} && shift 2 ;;
        --kafka-state) kafka_state=${2:?} && shift 2 ;;
        --drain-timeout) drain_timeout=${2:?} && shift 2 ;;
        --broker-signals) broker_signals=${2:?} && shift 2 ;;
        --cluster-state) cluster_state=${2:?} && shift 2 ;;
        --cluster-faults) cluster_faults=${2:?} && shift 2 ;;
        --partition-state) partition_state=${2:?} && shift 2 ;;
        --cut-short) cut_short=${2:?} && shift 2 ;;
        --cut-long) cut_long=${2:?} && shift 2 ;;
        --session) session_s=${2:?} && shift 2 ;;
        --rate) submit_rate=${2:?} && shift 2 ;;
        --down-stall) down_stall=${2:?} && shift 2 ;;
        --write) write=1 && shift ;;
        --exactly-once) exactly_once=1 && shift ;;
        --keep-broker) keep_broker=1 && shift ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/chaos.sh --help)" ;;
        esac
done
for v in tasks instances window drain_timeout submit_rate down_stall cut_short \
        cut_long session_s; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer, not '${!v}'"
done
[[ "$kills" =~ ^[0-9]+$ ]] || die "--kills must be a number, not '$kills'"
((cut_short < session_s && cut_long > session_s)) ||
        die "--cut-short ($cut_short) must be less than --session ($session_s) and --cut-long ($cut_long) more"
[[ "$broker_signals" =~ ^(TERM|KILL)(,(TERM|KILL))*$ ]] ||
        die "--broker-signals must list TERM or KILL, not '$broker_signals'"
[[ "$cluster_faults" =~ ^(leader|rolling|two-down|kill-storm)(,(leader|rolling|two-down|kill-storm))*$ ]] ||
        die "--cluster-faults must list leader, rolling, two-down or kill-storm, not '$cluster_faults'"
IFS=, read -r -a scenario_list <<<"$scenarios"
for s in "${scenario_list[@]}"; do
        [[ "$s" == kill || "$s" == broker || "$s" == cluster || "$s" == mock ||
                "$s" == oversized || "$s" == partition ]] ||
                die "unknown scenario '$s' (kill, broker, cluster, partition, mock, oversized)"
done
[[ -x "$build/consumer/swarmq-consumer" ]] ||
        die "no swarmq-consumer in $build (run: bash ops/build.sh $build)"
kafka_state=${kafka_state:-$build/chaos/kafka}
cluster_state=${cluster_state:-$build/chaos/kafka3}
partition_state=${partition_state:-$build/chaos/kafka-part}

set -- "$build" "$root"
# shellcheck source=../tests/integration/lib.sh
source "$root/tests/integration/lib.sh"
# shellcheck source=../tests/chaos/lib.sh
source "$root/tests/chaos/lib.sh"
chaos_python
started_broker=0
started_cluster=0
started_partition_broker=0
part_ns=
# Everything this run started ends with it: the instances and samplers
# (sq_cleanup), and the brokers unless they were running before or are
# kept.
chaos_cleanup() {
        sq_cleanup
        partition_net_down
        if ((started_partition_broker)); then
                bash "$src/ops/kafka.sh" stop --state-dir "$partition_state" \
                        >/dev/null 2>&1 || true
        fi
        if ((started_broker && !keep_broker)); then
                bash "$src/ops/kafka.sh" stop --state-dir "$kafka_state" \
                        >/dev/null 2>&1 || true
        fi
        if ((started_cluster && !keep_broker)); then
                bash "$src/ops/kafka.sh" stop --state-dir "$cluster_state" \
                        >/dev/null 2>&1 || true
        fi
}
trap chaos_cleanup EXIT
rows=()
t_suite=$SECONDS

# now: epoch seconds with milliseconds.
now() {
        printf '%s\n' "$EPOCHREALTIME"
}

sampler_start() {
        "$python" "$src/tests/chaos/sampler.py" --bootstrap "$bootstrap" \
                --topic "$t_results" --out "$work/$1.samples" &
        sampler_pid=$!
        sq_pids+=("$sampler_pid")
        : >"$work/$1.events"
        wait_until 30 "the results sampler's first sample" -- \
                test -s "$work/$1.samples"
}

sampler_stop() {
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
}

event() {
        echo "$(now) $2" >>"$work/$1.events"
}

# setup_real NAME [STATE BROKERS]: a broker (or the cluster of STATE with
# BROKERS nodes), topics and group of this scenario, instances c1..cN
# started and ready, the tasks file written.
setup_real() {
        local name=$1 state=${2:-$kafka_state} nodes=${3:-1} i
        if ! bash "$src/ops/kafka.sh" status --state-dir "$state" >/dev/null; then
                if ((nodes == 1)); then
                        started_broker=1
                else
                        started_cluster=1
                fi
                bash "$src/ops/kafka.sh" start --state-dir "$state" \
                        --brokers "$nodes" >/dev/null ||
                        fail "cannot start the broker(s) (ops/kafka.sh start --state-dir $state --brokers $nodes)"
        fi
        bootstrap=$(bash "$src/ops/kafka.sh" env --state-dir "$state" |
                sed -n 's/^bootstrap.servers=//p')
        prefix="chaos-$name-$$-$RANDOM"
        t_tasks=$prefix-tasks
        t_results=$prefix-results
        group=$prefix-group
        consumer_topic_args=(-g "$group" -X "topic.tasks=$t_tasks"
                -X "topic.critical=$prefix-critical" -X "topic.results=$t_results"
                -X "topic.events=$prefix-events" -X "topic.dlt=$prefix-dlt"
                -X "topic.retry=$prefix-retry")
        producer_topic_args=(--topic-tasks "$t_tasks" --topic-critical "$prefix-critical"
                --topic-results "$t_results" --topic-events "$prefix-events")
        common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X executor.threads=3
                -X admission.high.mark=$window -X admission.low.mark=$((window / 2))
                -X commit.interval.ms=$commit_ms -X kafka.session.timeout.ms=$session_ms
                -X shutdown.drain.timeout.ms=10000)
        if ((exactly_once)); then
                # Each instance's results, events and offsets in one
                # transaction per commit interval (its transactional.id
                # from its instance.id: a restarted instance fences its
                # dead predecessor).
                common+=(-X processing.guarantee=exactly_once)
        fi
        names=()
        urls=()
        for ((i = 1; i <= instances; i++)); do
                start_consumer "c$i" "${common[@]}"
                names+=("c$i")
        done
        for n in "${names[@]}"; do
                local u=${n}_http
                wait_ready "${!u}"
        done
        chaos_tasks "$work/$name.jsonl" "$tasks" "$name"
        log "$name: $instances instances on $bootstrap, $tasks tasks, topics $prefix-*"
}

# restart_stopped: an instance that stopped on its own, restarted as its
# supervisor would (systemd's Restart=on-failure, a Kubernetes
# Deployment), only where that is by design: under exactly_once an
# instance stops on a fatal producer error (fenced by a newer instance
# with its transactional.id: "a fatal error: stopping"), and its tasks
# run again from the last committed offsets. An abortable transaction
# error (offsets refused with Unknown member when the group coordinator's
# broker was down, a record refused) is recovered from in place
# (consumer/instance/commit.c: abort, rewind, carry on), so an instance
# that stops on one, or any other instance that stops on its own, fails
# the run, naming why.
instances_restarted=0
restart_stopped() {
        local n pid_var rc why
        for n in "${names[@]}"; do
                pid_var=${n}_pid
                [[ -e /proc/${!pid_var} && "$(ps -o stat= -p "${!pid_var}" 2>/dev/null)" != Z* ]] &&
                        continue
                rc=0
                wait "${!pid_var}" 2>/dev/null || rc=$?
                # The whole line is matched (a refusal lists every
                # partition it names: it can run to kilobytes), a cut of
                # it shown.
                why=$(grep -E ' (CRIT|ALERT|EMERG) ' "$work/$n.log" | tail -n 1)
                if ((!exactly_once)) || [[ "$why" != *" TXN "*"a fatal error: stopping"* ]]; then
                        [[ -n "$why" ]] || why="no reason logged"
                        fail "$n stopped on its own (exit status $rc): ${why:0:400}"
                fi
                why=${why#* TXN    }
                why=${why:0:300}
                instances_restarted=$((instances_restarted + 1))
                mv "$work/$n.log" "$work/$n-stopped-$instances_restarted.log"
                log "$n stopped on its own (exit status $rc: $why...); restarted, as its supervisor would"
                start_consumer "$n" "${common[@]}"
        done
}

urls_now() {
        local n u
        urls=()
        for n in "${names[@]}"; do
                u=${n}_http
                urls+=("${!u}")
        done
}

# gate N: waits until N distinct task ids have results.
gate() {
        producer "${producer_topic_args[@]}" wait --count "$1" \
                --timeout-ms 600000 >/dev/null ||
                fail "results stopped short of $1 within 600 s"
}

# finish NAME FAULTS T_START [UNCOMMITTED_MS]: checks and a summary row.
# UNCOMMITTED_MS: how long, per fault, finished work may go uncommitted
# beyond one commit interval (default 0).
finish() {
        local name=$1 faults=$2 t_start=$3 extra_ms=${4:-0} rec drain bound rate elapsed
        local t_last
        check_results "$work/$name.ids" 1000000000 600000 "${producer_topic_args[@]}"
        if ((exactly_once)); then
                # What the kills left behind: results of transactions that
                # never committed, which a read_uncommitted reader counts.
                local seen
                seen=$(kcat -b "$bootstrap" -C -t "$t_results" -e -q \
                        -X isolation.level=read_uncommitted -f 'x\n' 2>/dev/null | wc -l)
                log "$name: a read_committed reader saw $distinct results for $distinct tasks;" \
                        "a read_uncommitted one sees $seen records (aborted transactions' included)"
        fi
        restart_stopped
        ((instances_restarted == 0)) ||
                log "$name: $instances_restarted instance stop(s) on a fatal transaction error, each restarted"
        t_last=$SECONDS
        elapsed=$((t_last - t_start))
        ((elapsed > 0)) || elapsed=1
        rate=$((tasks / elapsed))
        # Per fault: every instance's admission window, plus what all the
        # instances finish in one commit interval (and UNCOMMITTED_MS).
        bound=$((faults * (instances * window + rate * (commit_ms + extra_ms) / 1000)))
        ((faults > 0)) || bound=0
        # Exactly once: a read_committed reader sees each result once.
        ((!exactly_once)) || bound=0
        ((dups <= bound)) || fail "$name: duplicates $dups exceed the bound $bound"
        urls_now
        drain=$(wait_drained "$drain_timeout" "$group" "$t_tasks" "${urls[@]}")
        if ((exactly_once)); then
                local u aborts=0
                for u in "${urls[@]}"; do
                        aborts=$((aborts + $(metric_sum "$u" '^swarmq_transactions_aborted_total')))
                done
                log "$name: transactions aborted on an abortable error and recovered from in place (instances running at the end): $aborts"
        fi
        sampler_stop
        rec=$("$python" "$src/tests/chaos/recovery.py" --samples "$work/$name.samples" \
                --events "$work/$name.events")
        echo "$rec" >"$work/$name.recovery.json"
        local med max measured
        # "-": no fault had a throughput before it and after it to compare
        # (a short run can end before the rate comes back).
        med=$(echo "$rec" | "$python" -c 'import json,sys; v=json.load(sys.stdin)["median_s"]; print("-" if v is None else v)')
        max=$(echo "$rec" | "$python" -c 'import json,sys; v=json.load(sys.stdin)["max_s"]; print("-" if v is None else v)')
        measured=$(echo "$rec" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["measured"])')
        stop_consumers "${names[@]}"
        rows+=("$(printf '| %s | %d | %d | %s | 0 | %d | %d | %s (%s of %s) | %s | %s | %s |' \
                "$name" "$tasks" "$instances" "$faults" "$dups" "$bound" \
                "$med" "$measured" "$faults" "$max" "$drain" "$elapsed")")
        log "$name: PASSED: lost 0, duplicates $dups (bound $bound), recovery median ${med}s max ${max}s ($measured of $faults faults measured), drained ${drain}s after the last result, ${elapsed}s, ~$rate tasks/s"
}

scenario_kill() {
        local t_start k victim pid_var step
        setup_real kill
        sampler_start kill
        t_start=$SECONDS
        producer "${producer_topic_args[@]}" -q submit --file "$work/kill.jsonl" ||
                fail "submit failed"
        step=$((tasks / (kills + 1)))
        for ((k = 1; k <= kills; k++)); do
                gate $((k * step))
                victim=c$((RANDOM % instances + 1))
                pid_var=${victim}_pid
                event kill "kill-$k-$victim"
                kill -KILL "${!pid_var}"
                wait "${!pid_var}" 2>/dev/null || true
                mv "$work/$victim.log" "$work/$victim-killed-$k.log"
                start_consumer "$victim" "${common[@]}"
                # The next fault lands on a recovered group.
                pid_var=${victim}_http
                wait_ready "${!pid_var}"
                log "kill: $k/$kills: kill -9 $victim at $((k * step)) results, restarted"
        done
        finish kill "$kills" "$t_start"
}

scenario_broker() {
        local t_start sig k=0 nsig
        nsig=$(echo "$broker_signals" | tr , '\n' | wc -l)
        setup_real broker
        sampler_start broker
        t_start=$SECONDS
        producer "${producer_topic_args[@]}" -q submit --file "$work/broker.jsonl" ||
                fail "submit failed"
        for sig in ${broker_signals//,/ }; do
                k=$((k + 1))
                gate $((k * tasks / (nsig + 1)))
                event broker "broker-$sig"
                log "broker: SIG$sig to the broker at $((k * tasks / (nsig + 1))) results"
                bash "$src/ops/kafka.sh" restart --signal "$sig" \
                        --state-dir "$kafka_state" >/dev/null ||
                        fail "the broker did not come back after SIG$sig"
                log "broker: back on $(bash "$src/ops/kafka.sh" env --state-dir "$kafka_state")"
        done
        # A broker restart takes the group coordinator away from every
        # instance at once: once the broker is back, acknowledgements flow
        # (tasks finish) while commits still fail ("Waiting for
        # coordinator") until the group is whole again, up to a session
        # timeout, when the partitions may move and that work runs again.
        # (The faster an instance drains the backlog the outage left, the
        # more: 2,369 duplicates seen with fetch.wait.max.ms=100, against
        # a bound of 2,011 from the commit interval alone.)
        finish broker "$nsig" "$t_start" "$session_ms"
}

# --- the three-broker cluster -------------------------------------------

# cluster_partitions: one line per partition of this scenario's topics:
# "TOPIC PARTITION LEADER ISR_COUNT", from a metadata request (kcat -L).
cluster_partitions() {
        kcat -b "$bootstrap" -L -m 5 2>/dev/null | awk -v p="$prefix-" '
                /^  topic "/ { t = $2; gsub(/"/, "", t); mine = (index(t, p) == 1) }
                mine && /^    partition / {
                        part = $2; sub(/,/, "", part)
                        leader = $4; sub(/,/, "", leader)
                        isrs = $NF; n = split(isrs, a, ",")
                        print t, part, leader, n
                }'
}

# most_leader: the node leading most of this scenario's partitions.
most_leader() {
        cluster_partitions | awk '{ n[$3]++ } END {
                best = ""; for (b in n) if (best == "" || n[b] > n[best]) best = b
                print best }'
}

# in_sync: prints what is not yet so and fails unless every partition of
# this scenario's topics has a leader and all 3 replicas in sync.
in_sync() {
        local out
        out=$(cluster_partitions)
        [[ -n "$out" ]] || { echo "no metadata"; return 1; }
        awk '$3 == -1 || $4 < 3 { bad++ } END {
                if (bad) { print bad " partitions without a leader or with fewer than 3 in sync"; exit 1 }
                print NR " partitions, 3 in sync each" }' <<<"$out"
}

# submitted_count: how many tasks the paced submitter has delivered.
submitted_count() {
        wc -l <"$work/cluster.ids" 2>/dev/null || echo 0
}

# writes_stalled S: succeeds once the submitter has delivered nothing for S
# seconds (tracked across calls in stall_since and stall_count).
writes_stalled() {
        local c
        c=$(submitted_count)
        if [[ "$c" != "$stall_count" ]]; then
                stall_count=$c
                stall_since=$SECONDS
        fi
        echo "$c submitted, unchanged for $((SECONDS - stall_since)) s"
        ((SECONDS - stall_since >= $1))
}

# submitter [NAME]: delivers the task pool ($work/NAME.batch.*, NAME
# cluster by default) in one-second batches of $submit_rate
# until $work/submit.stop appears, each batch waiting up to 10 minutes for
# its acknowledgements (swarmq-producer's default, 30 s, is shorter than a
# two-broker outage: it exits 1 naming the tasks still in flight); each delivered batch's ids are appended
# to $work/NAME.ids (the client's warnings go to $work/submit.log; a
# failed submit is written to $work/submit.err and ends the loop: the
# scenario fails on it). The pause between batches is
# the submit rate, not a wait for an event.
submitter() {
        local name=${1:-cluster} f t0 left
        for f in "$work/$name".batch.*; do
                [[ -f "$work/submit.stop" ]] && break
                t0=$EPOCHREALTIME
                if ! producer "${producer_topic_args[@]}" -q submit \
                        --flush-timeout-ms 600000 --file "$f" \
                        2>>"$work/submit.log"; then
                        echo "submit of $f failed (see $work/submit.log)" \
                                >>"$work/submit.err"
                        return 1
                fi
                sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$f" >>"$work/$name.ids"
                left=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { d = 1 - (b - a); print (d > 0 ? d : 0) }')
                sleep "$left"
        done
}

# node_restart ID SIGNAL: stops node ID with SIGNAL and starts it again
# (ops/kafka.sh waits until it answers and lists itself).
node_restart() {
        bash "$src/ops/kafka.sh" restart --state-dir "$cluster_state" \
                --node "$1" --signal "$2" >/dev/null ||
                fail "node $1 did not come back after SIG$2"
}

# settle: every partition back with 3 replicas in sync, and the results
# moving again: what an operator checks before the next step.
settle() {
        restart_stopped
        wait_until 180 "all partitions of $prefix-* in sync on 3 brokers" \
                --every 0.5 -- in_sync
        local c
        c=$(results_count)
        wait_until 120 "results moving again after $1" --every 0.5 -- \
                value_is -gt "$c" results_count
}

# results_count: the results topic's size at the sampler's last sample.
results_count() {
        tail -n 1 "$work/cluster.samples" | cut -d' ' -f2
}

scenario_cluster() {
        local t_start fault victim a b c down_at healed_at lead faults=0
        local pool saved_tasks rec
        setup_real cluster "$cluster_state" 3
        wait_until 120 "the scenario's topics in sync on 3 brokers" \
                --every 0.5 -- in_sync
        log "cluster: $(cluster_partitions | wc -l) partitions, replicas 3" \
                "(min.insync.replicas 2): $wait_seen"
        # A pool big enough for 15 minutes at the rate; the run submits
        # only while the faults last.
        pool=$((submit_rate * 900))
        chaos_tasks "$work/cluster.pool.jsonl" "$pool" cluster
        split -l "$submit_rate" -a 5 -d "$work/cluster.pool.jsonl" \
                "$work/cluster.batch."
        : >"$work/cluster.ids"
        rm -f "$work/submit.stop" "$work/submit.err" "$work/submit.log" \
                "$work/cluster.down_s"
        sampler_start cluster
        t_start=$SECONDS
        submitter &
        submitter_pid=$!
        sq_pids+=("$submitter_pid")
        # Some load before the first fault.
        gate $((submit_rate * 5))
        for fault in ${cluster_faults//,/ }; do
                case $fault in
                leader)
                        lead=$(most_leader)
                        [[ -n "$lead" ]] || fail "no leader found for $prefix-*"
                        event cluster "leader-kill-n$lead"
                        log "cluster: SIGKILL to node $lead (leads" \
                                "$(cluster_partitions | awk -v l="$lead" '$3 == l' | wc -l)" \
                                "of $(cluster_partitions | wc -l) partitions)"
                        node_restart "$lead" KILL
                        log "cluster: node $lead back"
                        faults=$((faults + 1))
                        settle "the leader kill"
                        ;;
                rolling)
                        for victim in 1 2 3; do
                                event cluster "rolling-n$victim"
                                log "cluster: rolling restart, node $victim (SIGTERM)"
                                node_restart "$victim" TERM
                                faults=$((faults + 1))
                                settle "the restart of node $victim"
                        done
                        ;;
                kill-storm)
                        local k victim_name pid_var
                        for ((k = 1; k <= kills; k++)); do
                                victim_name=c$((RANDOM % instances + 1))
                                pid_var=${victim_name}_pid
                                event cluster "kill-$k-$victim_name"
                                kill -KILL "${!pid_var}"
                                wait "${!pid_var}" 2>/dev/null || true
                                mv "$work/$victim_name.log" "$work/$victim_name-killed-$k.log"
                                start_consumer "$victim_name" "${common[@]}"
                                log "cluster: kill storm $k/$kills: kill -9 $victim_name, restarted"
                                faults=$((faults + 1))
                                # About a second of load between kills.
                                c=$(results_count)
                                wait_until 60 "results moving after kill $k" --every 0.2 -- \
                                        value_is -ge $((c + submit_rate)) results_count
                        done
                        local n u
                        for n in "${names[@]}"; do
                                u=${n}_http
                                wait_ready "${!u}"
                        done
                        settle "the kill storm"
                        ;;
                two-down)
                        lead=$(most_leader)
                        a=$lead
                        b=$((lead % 3 + 1))
                        event cluster "two-down-n$a-n$b"
                        down_at=$EPOCHREALTIME
                        log "cluster: SIGKILL to nodes $a and $b at once"
                        bash "$src/ops/kafka.sh" halt --state-dir "$cluster_state" \
                                --node "$a" --signal KILL >/dev/null &
                        bash "$src/ops/kafka.sh" halt --state-dir "$cluster_state" \
                                --node "$b" --signal KILL >/dev/null
                        wait $! 2>/dev/null || true
                        stall_count=-1
                        stall_since=$SECONDS
                        wait_until 120 "task writes stopped for ${down_stall} s with two of three brokers down" \
                                --every 0.5 -- writes_stalled "$down_stall"
                        log "cluster: writes stopped: $wait_seen"
                        [[ ! -s "$work/submit.err" ]] ||
                                fail "a submit failed while two brokers were down: $(tail -n 3 "$work/submit.err")"
                        bash "$src/ops/kafka.sh" start --state-dir "$cluster_state" \
                                >/dev/null || fail "nodes $a and $b did not come back"
                        healed_at=$EPOCHREALTIME
                        awk -v x="$down_at" -v y="$healed_at" \
                                'BEGIN { printf "%.1f\n", y - x }' >"$work/cluster.down_s"
                        log "cluster: nodes $a and $b back after" \
                                "$(<"$work/cluster.down_s") s down"
                        faults=$((faults + 1))
                        c=$(submitted_count)
                        wait_until 120 "task writes resumed" --every 0.5 -- \
                                value_is -gt "$c" submitted_count
                        settle "two brokers down"
                        ;;
                esac
        done
        # Ten more seconds of load after the last fault, so its recovery
        # (the rate back and holding) can be measured.
        c=$(results_count)
        wait_until 120 "ten seconds of results after the last fault" \
                --every 0.5 -- value_is -ge $((c + submit_rate * 10)) results_count
        touch "$work/submit.stop"
        wait "$submitter_pid" ||
                fail "the submitter failed: $(tail -n 3 "$work/submit.err")"
        [[ ! -s "$work/submit.err" ]] ||
                fail "a submit reported errors: $(tail -n 3 "$work/submit.err")"
        saved_tasks=$tasks
        tasks=$(submitted_count)
        log "cluster: $tasks tasks submitted at ~$submit_rate/s through $faults faults"
        finish cluster "$faults" "$t_start"
        # Per fault: recovery from the fault to the results rate back at
        # half the baseline, and the longest stretch without a new result.
        # Two down: the outage is part of it; also shown from the moment
        # both brokers were back.
        "$python" - "$work/cluster.recovery.json" "$work/cluster.down_s" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
down = float(open(sys.argv[2]).read()) if os.path.exists(sys.argv[2]) else None
print(f"  cluster faults (baseline {r['baseline_per_s']} results/s):")
for e in r["events"]:
    extra = ""
    if e["event"].startswith("two-down") and down is not None and e["recovery_s"] is not None:
        extra = f" ({down} s down, {round(e['recovery_s'] - down, 1)} s after both were back)"
    print(f"  fault {e['event']}: recovery {e['recovery_s']} s{extra}, longest stall {e['stall_s']} s")
PY
        tasks=$saved_tasks
}

# --- network partitions ---------------------------------------------------

# partition_net_up: a network namespace with one end of a veth pair
# (10.213.N.2/30) and the other end in this namespace (10.213.N.1/30):
# what runs in the namespace reaches this machine only through the pair.
# Cutting the host end (ip link set ... down) drops every packet silently,
# as a real partition does (no reset, no unreachable error): the
# namespace's TCP connections stall until their timeouts.
partition_net_up() {
        local n=$(($$ % 250 + 1))
        ((EUID == 0)) || fail "partition: needs root (ip netns, ip link)"
        command -v ip >/dev/null || fail "partition: needs iproute2 (apt-get install -y iproute2)"
        part_ns=sqpart$$
        part_if=sqh$$
        part_peer=sqn$$
        part_ip_host=10.213.$n.1
        part_ip_ns=10.213.$n.2
        ip netns add "$part_ns" || fail "partition: cannot create network namespace $part_ns"
        ip link add "$part_if" type veth peer name "$part_peer" &&
                ip link set "$part_peer" netns "$part_ns" &&
                ip addr add "$part_ip_host/30" dev "$part_if" &&
                ip link set "$part_if" up &&
                ip -n "$part_ns" addr add "$part_ip_ns/30" dev "$part_peer" &&
                ip -n "$part_ns" link set "$part_peer" up &&
                ip -n "$part_ns" link set lo up ||
                fail "partition: cannot set up the veth pair $part_if/$part_peer"
}

partition_net_down() {
        [[ -n "${part_ns:-}" ]] || return 0
        ip link del "$part_if" 2>/dev/null || true
        ip netns del "$part_ns" 2>/dev/null || true
        part_ns=
}

# start_ns_consumer NAME [args...]: start_consumer, inside the namespace,
# its HTTP server on the namespace's address (reachable from here while
# the link is up).
start_ns_consumer() {
        local name=$1 pid b h
        shift
        ip netns exec "$part_ns" "$consumer_bin" --http-port auto -i "$name" \
                -X "http.bind=$part_ip_ns" "$@" \
                >"$work/$name.out" 2>"$work/$name.log" &
        pid=$!
        sq_pids+=("$pid")
        printf -v "${name}_pid" '%s' "$pid"
        b=$(sq_wait_line "$work/$name.out" bootstrap.servers 30) ||
                fail "consumer $name (in $part_ns) did not start"
        h=$(sq_wait_line "$work/$name.out" http.url 10) ||
                fail "consumer $name printed no http.url"
        printf -v "${name}_http" '%s' "$h"
}

# assigned_total URL: the partitions an instance was assigned so far (a
# counter: it grows with every assignment, so a rebalance shows).
assigned_total() {
        metric_sum "$1" '^swarmq_partitions_assigned_total'
}

# assigned_now URL: the partitions an instance owns now.
assigned_now() {
        metric_sum "$1" '^swarmq_partitions_assigned\{'
}

# log_has NAME TEXT: instance NAME's log has TEXT.
log_has() {
        grep -qF -- "$2" "$work/$1.log"
}

# link_cut, link_heal: the pair's host end down (every packet between the
# namespace and the brokers silently dropped) and up again. How long it
# stays down is the experiment's length, a fixed pause, not a wait.
link_cut() {
        ip link set "$part_if" down || fail "partition: cannot cut $part_if"
}
link_heal() {
        ip link set "$part_if" up || fail "partition: cannot heal $part_if"
}

since_s() {
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

scenario_partition() {
        local t_start pool c t0 before1 before2 before3 state=$partition_state
        local bootstrap_ns cut_at taken lost_at healed_at back faults=0 saved_tasks
        partition_net_up
        # A broker of its own: it needs a listener on the pair's host end.
        bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true
        bash "$src/ops/kafka.sh" start --state-dir "$state" \
                --listen-ip "$part_ip_host" >/dev/null ||
                fail "cannot start the broker (ops/kafka.sh start --state-dir $state --listen-ip $part_ip_host)"
        started_partition_broker=1
        bootstrap=$(bash "$src/ops/kafka.sh" env --state-dir "$state" |
                sed -n 's/^bootstrap.servers=//p')
        bootstrap_ns=$(sed -n 's/^bootstrap.servers=//p' "$state/bootstrap-listen-ip")
        prefix="chaos-partition-$$-$RANDOM"
        t_tasks=$prefix-tasks
        t_results=$prefix-results
        group=$prefix-group
        consumer_topic_args=(-g "$group" -X "topic.tasks=$t_tasks"
                -X "topic.critical=$prefix-critical" -X "topic.results=$t_results"
                -X "topic.events=$prefix-events" -X "topic.dlt=$prefix-dlt"
                -X "topic.retry=$prefix-retry" -X "topic.control=$prefix-control")
        producer_topic_args=(--topic-tasks "$t_tasks" --topic-critical "$prefix-critical"
                --topic-results "$t_results" --topic-events "$prefix-events")
        local opts=("${consumer_topic_args[@]}" -X executor.threads=3
                -X admission.high.mark=$window -X admission.low.mark=$((window / 2))
                -X commit.interval.ms=$commit_ms
                -X kafka.session.timeout.ms=$((session_s * 1000))
                -X shutdown.drain.timeout.ms=10000)
        names=(c1 c2 c3)
        start_consumer c1 -b "$bootstrap" "${opts[@]}"
        start_consumer c2 -b "$bootstrap" "${opts[@]}"
        start_ns_consumer c3 -b "$bootstrap_ns" "${opts[@]}"
        wait_ready "$c1_http"
        wait_ready "$c2_http"
        wait_ready "$c3_http"
        wait_until 60 "c3 (in $part_ns) owns partitions" -- \
                value_is -gt 0 assigned_now "$c3_http"
        log "partition: c1, c2 on $bootstrap, c3 in network namespace $part_ns" \
                "on $bootstrap_ns; session.timeout.ms=$((session_s * 1000))"
        # Load for the whole run at --rate (the cluster scenario's paced
        # submitter): a pool for 10 minutes, of which the run submits what
        # its faults take.
        pool=$((submit_rate * 600))
        chaos_tasks "$work/partition.pool.jsonl" "$pool" partition
        split -l "$submit_rate" -a 5 -d "$work/partition.pool.jsonl" \
                "$work/partition.batch."
        : >"$work/partition.ids"
        rm -f "$work/submit.stop" "$work/submit.err" "$work/submit.log"
        sampler_start partition
        t_start=$SECONDS
        submitter partition &
        submitter_pid=$!
        sq_pids+=("$submitter_pid")
        gate $((submit_rate * 3))

        # (a) A cut shorter than the session timeout: no rebalance.
        before1=$(assigned_total "$c1_http")
        before2=$(assigned_total "$c2_http")
        before3=$(assigned_total "$c3_http")
        event partition "short-cut-${cut_short}s"
        log "partition: c3 cut off for ${cut_short} s (session timeout ${session_s} s)"
        link_cut
        sleep "$cut_short"
        link_heal
        faults=$((faults + 1))
        c=$(metric_sum "$c3_http" '^swarmq_tasks_total')
        wait_until 60 "c3 finishing tasks again after the short cut" --every 0.5 -- \
                value_is -gt "$c" metric_sum "$c3_http" '^swarmq_tasks_total'
        # The observation window: a session timeout more, in which a
        # rebalance the cut caused would have shown (the coordinator
        # evicts a member one session timeout after its last heartbeat).
        sleep "$session_s"
        assert_eq "short cut: c1 assignments (no rebalance)" "$(assigned_total "$c1_http")" "$before1"
        assert_eq "short cut: c2 assignments (no rebalance)" "$(assigned_total "$c2_http")" "$before2"
        assert_eq "short cut: c3 assignments (no rebalance)" "$(assigned_total "$c3_http")" "$before3"
        ! log_has c3 "assignment lost" || fail "short cut: c3 lost its assignment"

        # (b) A cut longer than the session timeout: the group takes c3's
        # partitions, c3 notices, drops what it cannot commit, and rejoins
        # when the link is back.
        before1=$(assigned_total "$c1_http")
        event partition "long-cut-${cut_long}s"
        log "partition: c3 cut off for ${cut_long} s (session timeout ${session_s} s)"
        cut_at=$EPOCHREALTIME
        link_cut
        wait_until $((cut_long + 30)) "c1 takes over partitions while c3 is cut off" \
                --every 0.2 -- value_is -gt "$before1" assigned_total "$c1_http"
        taken=$(since_s "$cut_at")
        log "partition: c1 and c2 took c3's partitions ${taken} s after the cut"
        wait_until $((cut_long + 30)) "c3 notices it lost its assignment" --every 0.2 -- \
                log_has c3 "assignment lost"
        lost_at=$(since_s "$cut_at")
        log "partition: c3 noticed ${lost_at} s after the cut: $(grep -F 'assignment lost' "$work/c3.log" | head -n 1 | cut -d' ' -f2-)"
        local left
        left=$(awk -v c="$cut_long" -v t="$(since_s "$cut_at")" 'BEGIN { d = c - t; print (d > 0 ? d : 0) }')
        sleep "$left"
        link_heal
        healed_at=$EPOCHREALTIME
        faults=$((faults + 1))
        wait_until 120 "c3 owns partitions again after the heal" --every 0.2 -- \
                value_is -gt 0 assigned_now "$c3_http"
        back=$(since_s "$healed_at")
        log "partition: c3 rejoined and owns $(assigned_now "$c3_http") partitions ${back} s after the heal"
        echo "$taken $lost_at $back" >"$work/partition.times"

        # Ten more seconds of load, then the pool stops.
        c=$(results_count_part)
        wait_until 120 "ten seconds of results after the heal" --every 0.5 -- \
                value_is -ge $((c + submit_rate * 10)) results_count_part
        touch "$work/submit.stop"
        wait "$submitter_pid" ||
                fail "the submitter failed: $(tail -n 3 "$work/submit.err")"
        saved_tasks=$tasks
        tasks=$(wc -l <"$work/partition.ids")
        log "partition: $tasks tasks submitted at ~$submit_rate/s; c3 dropped" \
                "$(metric_sum "$c3_http" '^swarmq_tasks_dropped_total') jobs it could not commit"
        finish partition "$faults" "$t_start"
        tasks=$saved_tasks
        log "partition: long cut: partitions taken over after ${taken} s, c3 noticed after ${lost_at} s, rejoined ${back} s after the heal"
}

# results_count_part: the results topic's size at the sampler's last
# sample.
results_count_part() {
        tail -n 1 "$work/partition.samples" | cut -d' ' -f2
}

scenario_mock() {
        local t s out
        for t in 0030-mock-transport-timeouts 0031-mock-leader-coordinator; do
                log "mock: $t with $tasks tasks"
                s=$SECONDS
                out=$(CHAOS_TASKS=$tasks bash "$src/tests/integration/$t.sh" \
                        "$build" "$src" 2>&1) || {
                        echo "$out" | tail -40 >&2
                        fail "mock: $t failed"
                }
                echo "$out" | grep -E '^\[0.*(ok:|healthy)' | sed 's/^/  /'
                local line d f
                line=$(echo "$out" | grep 'within the bound')
                d=$(echo "$line" | sed -n 's/.*duplicates \([0-9]*\) within the bound \([0-9]*\).*/\1 \2/p')
                f=$(echo "$out" | grep -c 'fault:')
                rows+=("$(printf '| mock %s | %d | 2 | %d | 0 | %s | %s | - | - | %s | %d |' \
                        "${t#00*-mock-}" "$tasks" "$f" "${d% *}" "${d#* }" \
                        "$(echo "$out" | sed -n 's/.*to the end \([0-9.]*\)s.*/\1/p')" \
                        $((SECONDS - s)))")
        done
}

scenario_oversized() {
        local s=$SECONDS out line d
        log "oversized: tests/integration/0078 with $tasks tasks, 1 % of them oversized"
        out=$(CHAOS_TASKS=$tasks bash "$src/tests/integration/0078-oversized-outputs.sh" \
                "$build" "$src" 2>&1) || {
                echo "$out" | tail -40 >&2
                fail "oversized: 0078 failed"
        }
        echo "$out" | grep -E '^\[0.*(ok:|healthy|submitted)' | sed 's/^/  /'
        line=$(echo "$out" | grep 'have a result, lost 0')
        d=$(echo "$line" | sed -n 's/.*duplicates \([0-9]*\) (bound \([0-9]*\)).*/\1 \2/p')
        rows+=("$(printf '| oversized outputs (1 %%) | %d | 1 | %d | 0 | %s | %s | - | - | %s | %d |' \
                "$tasks" $((tasks / 100)) "${d% *}" "${d#* }" \
                "$(echo "$out" | sed -n 's/.*to the end \([0-9.]*\)s.*/\1/p')" \
                $((SECONDS - s)))")
}

for s in "${scenario_list[@]}"; do
        "scenario_$s"
done

header='| scenario | tasks | instances | faults | lost | duplicates | dup bound | recovery median s | recovery max s | drain s | elapsed s |'
sep='|---|---|---|---|---|---|---|---|---|---|---|'
echo
echo "$header"
echo "$sep"
printf '%s\n' "${rows[@]}"
machine="$(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
cmdline="bash ops/chaos.sh --scenario $scenarios --tasks $tasks --instances $instances --kills $kills --window $window --broker-signals $broker_signals"
[[ ",$scenarios," != *,cluster,* ]] ||
        cmdline+=" --cluster-faults $cluster_faults --rate $submit_rate --down-stall $down_stall"
[[ ",$scenarios," != *,partition,* ]] ||
        cmdline+=" --cut-short $cut_short --cut-long $cut_long --session $session_s --rate $submit_rate"
((!exactly_once)) || cmdline+=" --exactly-once"
echo
echo "machine: $machine"
echo "command: $cmdline ($((SECONDS - t_suite)) s)"
if ((write)); then
        {
                echo
                echo "### $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$root" rev-parse --short HEAD)"
                echo
                echo "Command: \`$cmdline\`  "
                echo "Machine: $machine"
                echo
                echo "$header"
                echo "$sep"
                printf '%s\n' "${rows[@]}"
        } >>"$root/docs/reliability.md"
        echo "chaos.sh: figures appended to docs/reliability.md"
fi
