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
scenarios=kill,broker,cluster,mock
build=$root/build
kafka_state=
cluster_state=
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
  --scenario LIST    comma-separated: kill, broker, cluster, mock, oversized
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
  --cluster-faults L the cluster scenario's faults, in order (default
                     $cluster_faults; each of leader, rolling, two-down)
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
        --rate) submit_rate=${2:?} && shift 2 ;;
        --down-stall) down_stall=${2:?} && shift 2 ;;
        --write) write=1 && shift ;;
        --keep-broker) keep_broker=1 && shift ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/chaos.sh --help)" ;;
        esac
done
for v in tasks instances window drain_timeout submit_rate down_stall; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer, not '${!v}'"
done
[[ "$kills" =~ ^[0-9]+$ ]] || die "--kills must be a number, not '$kills'"
[[ "$broker_signals" =~ ^(TERM|KILL)(,(TERM|KILL))*$ ]] ||
        die "--broker-signals must list TERM or KILL, not '$broker_signals'"
[[ "$cluster_faults" =~ ^(leader|rolling|two-down)(,(leader|rolling|two-down))*$ ]] ||
        die "--cluster-faults must list leader, rolling or two-down, not '$cluster_faults'"
IFS=, read -r -a scenario_list <<<"$scenarios"
for s in "${scenario_list[@]}"; do
        [[ "$s" == kill || "$s" == broker || "$s" == cluster || "$s" == mock ||
                "$s" == oversized ]] ||
                die "unknown scenario '$s' (kill, broker, cluster, mock, oversized)"
done
[[ -x "$build/consumer/swarmq-consumer" ]] ||
        die "no swarmq-consumer in $build (run: bash ops/build.sh $build)"
kafka_state=${kafka_state:-$build/chaos/kafka}
cluster_state=${cluster_state:-$build/chaos/kafka3}

set -- "$build" "$root"
# shellcheck source=../tests/integration/lib.sh
source "$root/tests/integration/lib.sh"
# shellcheck source=../tests/chaos/lib.sh
source "$root/tests/chaos/lib.sh"
chaos_python
started_broker=0
started_cluster=0
# Everything this run started ends with it: the instances and samplers
# (sq_cleanup), and the brokers unless they were running before or are
# kept.
chaos_cleanup() {
        sq_cleanup
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
                -X commit.interval.ms=$commit_ms -X kafka.session.timeout.ms=6000
                -X shutdown.drain.timeout.ms=10000)
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

# finish NAME FAULTS BOUND_EXTRA: checks and a summary row.
finish() {
        local name=$1 faults=$2 t_start=$3 rec drain bound rate elapsed
        local t_last
        check_results "$work/$name.ids" 1000000000 600000 "${producer_topic_args[@]}"
        t_last=$SECONDS
        elapsed=$((t_last - t_start))
        ((elapsed > 0)) || elapsed=1
        rate=$((tasks / elapsed))
        # Per fault: every instance's admission window, plus what all the
        # instances finish in one commit interval.
        bound=$((faults * (instances * window + rate * commit_ms / 1000)))
        ((faults > 0)) || bound=0
        ((dups <= bound)) || fail "$name: duplicates $dups exceed the bound $bound"
        urls_now
        drain=$(wait_drained "$drain_timeout" "$group" "$t_tasks" "${urls[@]}")
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
        finish broker "$nsig" "$t_start"
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

# submitter: delivers the task pool in one-second batches of $submit_rate
# until $work/submit.stop appears, each batch waiting up to 10 minutes for
# its acknowledgements (swarmq-producer's default, 30 s, is shorter than a
# two-broker outage: it exits 1 naming the tasks still in flight); each delivered batch's ids are appended
# to $work/cluster.ids (the client's warnings go to $work/submit.log; a
# failed submit is written to $work/submit.err and ends the loop: the
# scenario fails on it). The pause between batches is
# the submit rate, not a wait for an event.
submitter() {
        local f t0 left
        for f in "$work"/cluster.batch.*; do
                [[ -f "$work/submit.stop" ]] && break
                t0=$EPOCHREALTIME
                if ! producer "${producer_topic_args[@]}" -q submit \
                        --flush-timeout-ms 600000 --file "$f" \
                        2>>"$work/submit.log"; then
                        echo "submit of $f failed (see $work/submit.log)" \
                                >>"$work/submit.err"
                        return 1
                fi
                sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$f" >>"$work/cluster.ids"
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
