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
#   mock          the mock cluster with injected faults (transport errors,
#                 request timeouts, leader loss, broker down, coordinator
#                 moves): tests/integration/0030 and 0031 with --tasks
#
# DESIGN: real-Kafka scenarios share one broker (ops/kafka.sh, state in
# <build>/chaos/kafka unless --kafka-state) and use topics and a group of
# their own. A background sampler (tests/chaos/sampler.py) records the
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
scenarios=kill,broker,mock
build=$root/build
kafka_state=
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
  --scenario LIST    comma-separated: kill, broker, mock (default $scenarios)
  --tasks N          tasks per scenario (default $tasks)
  --instances N      swarmq-consumer instances (default $instances)
  --kills N          kill -9 count in the kill scenario (default $kills)
  --window N         admission.high.mark per instance (default $window)
  --build-dir DIR    where the binaries are (default $build; built by
                     ops/build.sh DIR)
  --kafka-state DIR  use the broker of this ops/kafka.sh state directory
                     (started when not running; restarted in place by the
                     broker scenario) instead of <build>/chaos/kafka
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
        --write) write=1 && shift ;;
        --keep-broker) keep_broker=1 && shift ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/chaos.sh --help)" ;;
        esac
done
for v in tasks instances window drain_timeout; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer, not '${!v}'"
done
[[ "$kills" =~ ^[0-9]+$ ]] || die "--kills must be a number, not '$kills'"
[[ "$broker_signals" =~ ^(TERM|KILL)(,(TERM|KILL))*$ ]] ||
        die "--broker-signals must list TERM or KILL, not '$broker_signals'"
IFS=, read -r -a scenario_list <<<"$scenarios"
for s in "${scenario_list[@]}"; do
        [[ "$s" == kill || "$s" == broker || "$s" == mock ]] ||
                die "unknown scenario '$s' (kill, broker, mock)"
done
[[ -x "$build/consumer/swarmq-consumer" ]] ||
        die "no swarmq-consumer in $build (run: bash ops/build.sh $build)"
kafka_state=${kafka_state:-$build/chaos/kafka}

set -- "$build" "$root"
# shellcheck source=../tests/integration/lib.sh
source "$root/tests/integration/lib.sh"
# shellcheck source=../tests/chaos/lib.sh
source "$root/tests/chaos/lib.sh"
chaos_python
started_broker=0
# Everything this run started ends with it: the instances and samplers
# (sq_cleanup), and the broker unless it was running before or is kept.
chaos_cleanup() {
        sq_cleanup
        if ((started_broker && !keep_broker)); then
                bash "$src/ops/kafka.sh" stop --state-dir "$kafka_state" \
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
        local i
        for ((i = 0; i < 300; i++)); do
                [[ -s "$work/$1.samples" ]] && return 0
                sleep 0.1
        done
        fail "the results sampler wrote nothing in 30 s"
}

sampler_stop() {
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
}

event() {
        echo "$(now) $2" >>"$work/$1.events"
}

# setup_real NAME: a broker, topics and group of this scenario, instances
# c1..cN started and ready, the tasks file written.
setup_real() {
        local name=$1 i
        if ! bash "$src/ops/kafka.sh" status --state-dir "$kafka_state" >/dev/null; then
                started_broker=1
                bash "$src/ops/kafka.sh" start --state-dir "$kafka_state" >/dev/null ||
                        fail "cannot start the broker (ops/kafka.sh start --state-dir $kafka_state)"
        fi
        bootstrap=$(bash "$src/ops/kafka.sh" env --state-dir "$kafka_state" |
                sed -n 's/^bootstrap.servers=//p')
        local prefix="chaos-$name-$$-$RANDOM"
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
