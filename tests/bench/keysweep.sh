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
#       [--peer on|off] [-X KEY=VALUE]...
#
# --bootstrap must be a real Kafka broker (the records' topic is created
# with CreateTopics, which the mock cluster does not answer). -X passes a
# configuration key to every swarmq-consumer run. --peer off (or no
# java/javac/mvn: exit 77 of the harness) runs swarmq only, and says so.
# Prints the markdown table on stdout, progress on stderr.
#
# Each run reads the records in a group of its own. Wall time: swarmq, from
# its first `received` event to the last result record's timestamp;
# parallel-consumer, from its first call of the user function to the
# acknowledgement of its last result. Floor: the sum of the sleeps for
# PARTITION, sum / concurrency for UNORDERED, and for KEY the larger of
# the longest key chain (one key's sleeps) and sum / concurrency.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/ops/lib.sh"

bootstrap= build= count=10000 modes=partition,key10,key100,key10000,unordered
concurrency=16,100 commit_ms=100 seed=42 max_ms=5 peer=on
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
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required"
[[ -x "$build/consumer/swarmq-consumer" ]] ||
        die "no swarmq-consumer in --build '$build' (build it first)"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$commit_ms" =~ ^[1-9][0-9]*$ ]] || die "--commit-ms must be a positive integer"
[[ "$peer" == on || "$peer" == off ]] || die "--peer must be on or off, not '$peer'"
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

# swarmq_run MODE KEYS CONC: prints the wall seconds.
swarmq_run() {
        local mode=$1 keys=$2 conc=$3 ordering p t t_first t_last
        case $mode in
        key*) ordering=key ;;
        *) ordering=$mode ;;
        esac
        p=$run_id-sq-$mode-$conc
        # Its topics exist (and have leaders) before it starts: one created by
        # the instance itself can be missed by its own subscription, which
        # then waits for librdkafka's 5-minute metadata refresh.
        for t in critical results events dlt retry; do
                "$build/tests/bench/sweep_gen" -b "$bootstrap" -t "$p-$t" -n 0 >/dev/null
        done
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
        kill -TERM "$consumer_pid"
        wait "$consumer_pid" || { echo "keysweep: swarmq-consumer ($p) did not stop cleanly" >&2; exit 1; }
        consumer_pid=
        t_first=$("$build/producer/swarmq-producer" -b "$bootstrap" \
                --topic-events "$p-events" replay --type received |
                sed -n 's/.*"at":\([0-9]*\).*/\1/p' | sort -n | head -1)
        t_last=$("$build/producer/swarmq-producer" -b "$bootstrap" \
                --topic-results "$p-results" replay --results --with-coordinates |
                sed -n 's/.*"_timestamp":\([0-9]*\).*/\1/p' | sort -n | tail -1)
        awk -v a="$t_first" -v z="$t_last" 'BEGIN { printf "%.2f\n", (z - a) / 1000 }'
}

# pc_run MODE KEYS CONC: prints the wall seconds.
pc_run() {
        local mode=$1 keys=$2 conc=$3 ordering p line
        case $mode in
        key*) ordering=KEY ;;
        partition) ordering=PARTITION ;;
        *) ordering=UNORDERED ;;
        esac
        p=$run_id-pc-$mode-$conc
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
        awk -v s="$(sed 's/.* seconds=\([0-9.]*\).*/\1/' <<<"$line")" \
                'BEGIN { printf "%.2f\n", s }'
}

floor_of() { # MODE KEYS CONC: prints the floor in seconds
        awk -v m="$1" -v s="${sum_of[$2]}" -v l="${chain_of[$2]}" -v c="$3" 'BEGIN {
                f = s / c
                if (m == "partition") f = s
                else if (m ~ /^key/ && l > f) f = l
                printf "%.2f\n", f / 1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "keysweep: $count records per mode, sleep 0..$max_ms ms, seed $seed, commit interval $commit_ms ms, modes $modes, concurrency $concurrency, parallel-consumer $peer" >&2
rows=()
for mode in "${mode_list[@]}"; do
        keys=$(keys_of "$mode")
        gen "$keys"
        for conc in "${conc_list[@]}"; do
                floor=$(floor_of "$mode" "$keys" "$conc")
                sq=$(swarmq_run "$mode" "$keys" "$conc")
                echo "keysweep: $mode c=$conc floor ${floor}s swarmq ${sq}s" >&2
                if [[ "$peer" == on ]]; then
                        pc=$(pc_run "$mode" "$keys" "$conc")
                        echo "keysweep: $mode c=$conc parallel-consumer ${pc}s" >&2
                        pc_cols="$pc | $(ratio "$pc" "$floor") | $(ratio "$sq" "$pc")"
                else
                        pc_cols="skipped | — | —"
                fi
                label=$mode
                [[ "$mode" == key* ]] && label="key, $keys keys (${distinct_of[$keys]} distinct)"
                rows+=("| $label | $conc | $floor | $sq | $(ratio "$sq" "$floor") | $pc_cols |")
        done
done

echo "| mode | concurrency | floor s | swarmq s | swarmq ÷ floor | parallel-consumer s | parallel-consumer ÷ floor | swarmq ÷ parallel-consumer |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Records: $count JSON \`sleep\` tasks on one partition, sleep uniform 0–$max_ms ms (seed $seed, sum of sleeps ${sum_of[$(keys_of "${mode_list[0]}")]} ms); commit interval $commit_ms ms for both."
