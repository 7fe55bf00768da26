#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The parallel-consumer key sweep, side by side on one broker: the same
# records (tests/bench/sweep_gen.c: COUNT JSON `sleep` tasks of 0..MAX_MS ms
# on one partition, one seed) run by swarmq-consumer and by Confluent's
# parallel-consumer 0.5.3.3 (tests/bench/parallel-consumer/), in the modes
# PARTITION, KEY with 10, 100 and 10,000 keys, and UNORDERED, at each
# concurrency, with the same commit interval. Usually run by ops/bench.sh.
#
#   tests/bench/keysweep.sh --bootstrap B --build DIR [--count N]
#       [--modes partition,key10,key100,key10000,unordered]
#       [--concurrency 16,100] [--commit-ms MS] [--seed S] [--max-ms M]
#       [--rounds R] [--peer on|off] [-X KEY=VALUE]...
#
# --bootstrap must be a real Kafka broker (the records' topic is created
# with CreateTopics, which the mock cluster does not answer). -X passes a
# configuration key to every swarmq-consumer run. --peer off (or no
# java/javac/mvn: exit 77 of the harness) runs swarmq only, and says so.
# --rounds R runs every row R times, each round's rows one after the
# other, and reports medians (a ratio: the median of its per-round
# ratios). Prints the markdown table on stdout, progress on stderr.
#
# Each run reads the records in a group of its own. Wall time, the same
# span for both: from the start of the first task to the moment the last
# result is on the broker. swarmq: the earliest started_at of its results
# to the last result's broker append time (its results topic is created
# with message.timestamp.type=LogAppendTime); parallel-consumer: from its
# first call of the user function to the acknowledgement of its last
# result. Neither counts start-up or the group join. Floor: the sum of the
# sleeps for PARTITION, sum / concurrency for UNORDERED, and for KEY the
# larger of the longest key chain (one key's sleeps) and sum / concurrency.
# Bare threads (tests/bench/sweep_floor.c, run in each round just before
# swarmq): the same sleeps by that many plain threads in the same
# ordering, no Kafka; what this machine gives right now, since a sleep of
# N ms takes longer than N ms, more so on a loaded machine. A second
# table gives, per row, the bare threads' mean overshoot per sleep and the
# floor recomputed with the sleeps as long as they took in that run (the
# arithmetic floor stays the goal's definition; this one shows how much of
# the distance to it is the machine's).
# CPU, in CPU-seconds per run (all threads): swarmq-consumer's utime +
# stime from /proc/PID/stat, from its start to the last result (start-up
# and group join included; read just before its SIGTERM);
# parallel-consumer's JVM from its first call of the user function to its
# last acknowledgement (the harness's getProcessCpuTime; the JVM's start-up
# and the class loading before excluded).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/ops/lib.sh"

bootstrap= build= count=10000 modes=partition,key10,key100,key10000,unordered
concurrency=16,100 commit_ms=100 seed=42 max_ms=5 peer=on rounds=1
extra=()
die() { echo "keysweep: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --modes) modes=${2:?}; shift 2 ;;
        --concurrency) concurrency=${2:?}; shift 2 ;;
        --commit-ms) commit_ms=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --max-ms) max_ms=${2:?}; shift 2 ;;
        --peer) peer=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required"
[[ -x "$build/consumer/swarmq-consumer" ]] ||
        die "no swarmq-consumer in --build '$build' (build it first)"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$commit_ms" =~ ^[1-9][0-9]*$ ]] || die "--commit-ms must be a positive integer"
[[ "$peer" == on || "$peer" == off ]] || die "--peer must be on or off, not '$peer'"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
[[ "$max_ms" =~ ^[0-9]+$ ]] || die "--max-ms must be a whole number of milliseconds, not '$max_ms'"
IFS=, read -ra mode_list <<<"$modes"
IFS=, read -ra conc_list <<<"$concurrency"
for m in "${mode_list[@]}"; do
        [[ "$m" =~ ^(partition|unordered|key[1-9][0-9]*)$ ]] ||
                die "unknown mode '$m' (partition, key<N>, unordered)"
done
for c in "${conc_list[@]}"; do
        [[ "$c" =~ ^[1-9][0-9]*$ ]] && ((c <= 1024)) ||
                die "concurrency must be 1 to 1024, not '$c'"
done

if [[ "$peer" == on ]]; then
        rc=0
        bash "$here/parallel-consumer/run.sh" prepare || rc=$?
        if ((rc == 77)); then
                echo "keysweep: SKIPPED parallel-consumer (no java/javac/mvn): swarmq only" >&2
                peer=off
        elif ((rc)); then
                echo "keysweep: the parallel-consumer harness did not build" >&2
                exit 1
        fi
fi

work=$(mktemp -d /tmp/swarmq-keysweep.XXXXXX)
run_id=sweep-$(date +%s)-$$
consumer_pid=
cleanup() {
        if [[ -n "$consumer_pid" ]]; then
                kill -TERM "$consumer_pid" 2>/dev/null || true
                wait "$consumer_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT

# The records: one topic per key count; PARTITION and UNORDERED read the
# one with the most keys (their key does not matter). Same seed and count,
# so every topic holds the same sleeps.
declare -A topic_of sum_of chain_of distinct_of
gen() { # KEYS
        local keys=$1 line
        [[ -n "${topic_of[$keys]:-}" ]] && return 0
        line=$("$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$run_id-k$keys" \
                -n "$count" -K "$keys" -S "$seed" -m "$max_ms" \
                -i "$work/k$keys.ids") || { echo "keysweep: sweep_gen failed" >&2; exit 1; }
        echo "keysweep: $line" >&2
        topic_of[$keys]=$run_id-k$keys
        sum_of[$keys]=$(sed 's/.* sum_ms=\([0-9]*\).*/\1/' <<<"$line")
        chain_of[$keys]=$(sed 's/.* longest_chain_ms=\([0-9]*\).*/\1/' <<<"$line")
        distinct_of[$keys]=$(sed 's/.* distinct_keys=\([0-9]*\).*/\1/' <<<"$line")
}
keys_of() { # MODE: the key count whose topic the mode reads
        case $1 in
        key*) echo "${1#key}" ;;
        *) echo 10000 ;;
        esac
}

# cpu_of PID: the CPU-seconds (user + system, all threads) the running
# process PID has used, from /proc/PID/stat (utime and stime, fields 14
# and 15, in clock ticks; counted after the ")" that ends the command name).
clk_tck=$(getconf CLK_TCK)
cpu_of() {
        sed 's/.*) //' "/proc/$1/stat" |
                awk -v hz="$clk_tck" '{ printf "%.2f\n", ($12 + $13) / hz }'
}

# swarmq_run MODE KEYS CONC ROUND: prints the wall seconds and the
# CPU-seconds of swarmq-consumer.
swarmq_run() {
        local mode=$1 keys=$2 conc=$3 ordering p t t_first t_last cpu
        case $mode in
        key*) ordering=key ;;
        *) ordering=$mode ;;
        esac
        p=$run_id-sq-$mode-$conc-r$4
        # Its topics exist (and have leaders) before it starts: one created by
        # the instance itself can be missed by its own subscription, which
        # then waits for librdkafka's 5-minute metadata refresh. The results
        # topic stamps each record with its broker append time (the end of
        # the span, whatever timestamp swarmq gives its records).
        for t in critical events dlt retry; do
                "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$p-$t" -n 0 >/dev/null
        done
        "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$p-results" -n 0 \
                -c message.timestamp.type=LogAppendTime >/dev/null
        "$build/consumer/swarmq-consumer" -b "$bootstrap" --http-port auto \
                -i "$p" -g "$p" -l warning \
                -X "topic.tasks=${topic_of[$keys]}" -X "topic.critical=$p-critical" \
                -X "topic.results=$p-results" -X "topic.events=$p-events" \
                -X "topic.dlt=$p-dlt" -X "topic.retry=$p-retry" \
                -X topics.partitions=1 -X "ordering=$ordering" \
                -X "executor.threads=$conc" -X executor.critical.reserved=0 \
                -X "commit.interval.ms=$commit_ms" "${extra[@]}" \
                >"$work/$p.out" 2>"$work/$p.log" &
        consumer_pid=$!
        if ! "$build/producer/swarmq-producer" -b "$bootstrap" \
                --topic-results "$p-results" -q wait \
                --ids-file "$work/k$keys.ids" --timeout-ms 900000 >/dev/null; then
                echo "keysweep: swarmq $mode c=$conc: not every task got a result" >&2
                tail -5 "$work/$p.log" >&2
                exit 1
        fi
        cpu=$(cpu_of "$consumer_pid") || {
                echo "keysweep: swarmq $mode c=$conc: no /proc/$consumer_pid/stat to read its CPU from" >&2
                exit 1
        }
        kill -TERM "$consumer_pid"
        wait "$consumer_pid" || { echo "keysweep: swarmq-consumer ($p) did not stop cleanly" >&2; exit 1; }
        consumer_pid=
        "$build/producer/swarmq-producer" -b "$bootstrap" \
                --topic-results "$p-results" replay --results --with-coordinates \
                >"$work/$p.results"
        t_first=$(sed -n 's/.*"started_at":\([0-9]*\).*/\1/p' "$work/$p.results" |
                sort -n | head -1)
        t_last=$(sed -n 's/.*"_timestamp":\([0-9]*\).*/\1/p' "$work/$p.results" |
                sort -n | tail -1)
        rm -f "$work/$p.results"
        [[ -n "$t_first" && -n "$t_last" ]] || {
                echo "keysweep: swarmq $mode c=$conc: no started_at or timestamp in its results" >&2
                exit 1
        }
        awk -v a="$t_first" -v z="$t_last" -v c="$cpu" 'BEGIN { printf "%.3f %s\n", (z - a) / 1000, c }'
}

# bare_run MODE KEYS CONC: prints the wall seconds of the bare threads,
# their mean overshoot per sleep in ms, and the floor in seconds with the
# sleeps as long as they took.
bare_run() {
        local ordering line
        case $1 in
        key*) ordering=key ;;
        *) ordering=$1 ;;
        esac
        line=$("$build/tests/bench/sweep_floor" -o "$ordering" -c "$3" -n "$count" \
                -K "$2" -S "$seed" -m "$max_ms") || {
                echo "keysweep: sweep_floor failed" >&2
                exit 1
        }
        [[ "$line" =~ \ seconds=([0-9.]+)\ sleep_overshoot_us=(-?[0-9]+)\ measured_floor_s=([0-9.]+) ]] || {
                echo "keysweep: sweep_floor printed no seconds, sleep_overshoot_us and measured_floor_s: '$line'" >&2
                exit 1
        }
        awk -v s="${BASH_REMATCH[1]}" -v o="${BASH_REMATCH[2]}" -v f="${BASH_REMATCH[3]}" \
                'BEGIN { printf "%.3f %.3f %.3f\n", s, o / 1000, f }'
}

# pc_run MODE KEYS CONC ROUND: prints the wall seconds and the JVM's
# CPU-seconds over them.
pc_run() {
        local mode=$1 keys=$2 conc=$3 ordering p line
        case $mode in
        key*) ordering=KEY ;;
        partition) ordering=PARTITION ;;
        *) ordering=UNORDERED ;;
        esac
        p=$run_id-pc-$mode-$conc-r$4
        # Its result topic exists before it starts, as swarmq's does.
        "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$p-out" -n 0 >/dev/null
        line=$(bash "$here/parallel-consumer/run.sh" --bootstrap "$bootstrap" \
                --topic "${topic_of[$keys]}" --group "$p" --out-topic "$p-out" \
                --ordering "$ordering" --concurrency "$conc" \
                --commit-ms "$commit_ms" --count "$count" 2>"$work/$p.log") || {
                echo "keysweep: parallel-consumer $mode c=$conc failed:" >&2
                tail -5 "$work/$p.log" >&2
                exit 1
        }
        [[ "$line" =~ \ seconds=([0-9.]+)\ cpu_seconds=([0-9.]+) ]] || {
                echo "keysweep: parallel-consumer $mode c=$conc printed no seconds and cpu_seconds: '$line'" >&2
                exit 1
        }
        awk -v s="${BASH_REMATCH[1]}" -v c="${BASH_REMATCH[2]}" \
                'BEGIN { printf "%.3f %.2f\n", s, c }'
}

floor_of() { # MODE KEYS CONC: prints the floor in seconds
        awk -v m="$1" -v s="${sum_of[$2]}" -v l="${chain_of[$2]}" -v c="$3" 'BEGIN {
                f = s / c
                if (m == "partition") f = s
                else if (m ~ /^key/ && l > f) f = l
                printf "%.3f\n", f / 1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# median of the numbers given (the lower middle one for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# med MAP ROW: the median over the rounds of MAP[ROW:round].
med() {
        local -n map=$1
        local vals=() r
        for ((r = 1; r <= rounds; r++)); do vals+=("${map[$2:$r]}"); done
        median "${vals[@]}"
}
# medratio A B ROW: the median over the rounds of A[ROW:r] / B[ROW:r].
medratio() {
        local -n a=$1 b=$2
        local vals=() r
        for ((r = 1; r <= rounds; r++)); do vals+=("$(ratio "${a[$3:$r]}" "${b[$3:$r]}")"); done
        median "${vals[@]}"
}
sec() { awk -v s="$1" 'BEGIN { printf "%.2f", s }'; }

echo "keysweep: $count records per mode, sleep 0..$max_ms ms, seed $seed, commit interval $commit_ms ms, modes $modes, concurrency $concurrency, $rounds round(s), parallel-consumer $peer" >&2
# Figures per round, keyed "mode/conc:round".
declare -A sq_s pc_s bare_s floor_s sq_cpu pc_cpu over_ms mfloor_s
for mode in "${mode_list[@]}"; do
        gen "$(keys_of "$mode")"
done
for ((r = 1; r <= rounds; r++)); do
        for mode in "${mode_list[@]}"; do
                keys=$(keys_of "$mode")
                for conc in "${conc_list[@]}"; do
                        row=$mode/$conc
                        floor_s[$row:$r]=$(floor_of "$mode" "$keys" "$conc")
                        got=$(bare_run "$mode" "$keys" "$conc")
                        read -r "bare_s[$row:$r]" "over_ms[$row:$r]" "mfloor_s[$row:$r]" <<<"$got"
                        got=$(swarmq_run "$mode" "$keys" "$conc" "$r")
                        read -r "sq_s[$row:$r]" "sq_cpu[$row:$r]" <<<"$got"
                        msg="keysweep: round $r: $mode c=$conc floor ${floor_s[$row:$r]}s bare threads ${bare_s[$row:$r]}s swarmq ${sq_s[$row:$r]}s (${sq_cpu[$row:$r]} CPU-s)"
                        if [[ "$peer" == on ]]; then
                                got=$(pc_run "$mode" "$keys" "$conc" "$r")
                                read -r "pc_s[$row:$r]" "pc_cpu[$row:$r]" <<<"$got"
                                msg+=" parallel-consumer ${pc_s[$row:$r]}s (${pc_cpu[$row:$r]} CPU-s)"
                        fi
                        echo "$msg" >&2
                done
        done
done

rows=() per_round=() machine_rows=()
for mode in "${mode_list[@]}"; do
        keys=$(keys_of "$mode")
        for conc in "${conc_list[@]}"; do
                row=$mode/$conc
                floor=${floor_s[$row:1]}
                if [[ "$peer" == on ]]; then
                        pc_cols="$(sec "$(med pc_s "$row")") | $(medratio pc_s floor_s "$row") | $(medratio sq_s pc_s "$row")"
                        pc_cpu_col=$(sec "$(med pc_cpu "$row")")
                else
                        pc_cols="skipped | — | —"
                        pc_cpu_col=—
                fi
                label=$mode
                [[ "$mode" == key* ]] && label="key, $keys keys (${distinct_of[$keys]} distinct)"
                rows+=("| $label | $conc | $(sec "$floor") | $(sec "$(med bare_s "$row")") | $(sec "$(med sq_s "$row")") | $(medratio sq_s floor_s "$row") | $(medratio sq_s bare_s "$row") | $pc_cols | $(sec "$(med sq_cpu "$row")") | $pc_cpu_col |")
                machine_rows+=("| $label | $conc | $(sec "$floor") | $(sec "$(med over_ms "$row")") | $(sec "$(med mfloor_s "$row")") | $(medratio sq_s floor_s "$row") | $(medratio sq_s mfloor_s "$row") |")
                line="- $label, c=$conc (bare threads / swarmq"
                [[ "$peer" == on ]] && line+=" / parallel-consumer"
                line+=", s):"
                for ((r = 1; r <= rounds; r++)); do
                        line+=" $(sec "${bare_s[$row:$r]}")/$(sec "${sq_s[$row:$r]}")"
                        [[ "$peer" == on ]] && line+="/$(sec "${pc_s[$row:$r]}")"
                done
                per_round+=("$line")
        done
done

echo "| mode | concurrency | floor s | bare threads s | swarmq s | swarmq ÷ floor | swarmq ÷ bare threads | parallel-consumer s | parallel-consumer ÷ floor | swarmq ÷ parallel-consumer | swarmq CPU s | parallel-consumer CPU s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Records: $count JSON \`sleep\` tasks on one partition, sleep uniform 0–$max_ms ms (seed $seed, sum of sleeps ${sum_of[$(keys_of "${mode_list[0]}")]} ms); commit interval $commit_ms ms for both. Bare threads: the same sleeps by as many plain threads in the same ordering, no Kafka (tests/bench/sweep_floor). Wall time from the first task's start to the last result on the broker. CPU: CPU-seconds of the run (divide by $count for CPU per task), swarmq-consumer's whole process up to its last result (/proc/PID/stat, start-up included), parallel-consumer's JVM over its span (start-up excluded)."
echo
echo "The sleeps as this machine ran them (bare threads, each round just before swarmq): the mean overshoot per sleep beyond what it asked, and the floor recomputed with each sleep as long as it took there; the goal's floor stays the nominal one."
echo
echo "| mode | concurrency | floor s | sleep overshoot ms (bare threads) | floor with the measured sleeps s | swarmq ÷ floor | swarmq ÷ floor with the measured sleeps |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${machine_rows[@]}"
if ((rounds > 1)); then
        echo
        echo "Medians of $rounds rounds (each ratio taken within its round). Per round:"
        echo
        printf '%s\n' "${per_round[@]}"
fi
