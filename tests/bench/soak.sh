#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Memory on real Kafka (issue 14, goal 5): one instance's resident memory
# (1) while it drains a backlog of --backlog noop tasks (1,000,000 by
# default) written before it starts: the admission window, not the backlog,
# must bound it; and (2) over a soak of --soak-minutes (30 by default) of
# tasks submitted at --rate per second: flat, no growth. Usually run by
# ops/bench.sh (soak).
#
#   tests/bench/soak.sh --bootstrap B --build DIR [--backlog N]
#                       [--soak-minutes M] [--rate R] [--threads T]
#                       [--parts backlog,soak] [-X KEY=VALUE]...
#
# RSS is process_resident_memory_bytes from the instance's own /metrics
# (read from /proc/self/statm), sampled every 0.5 s during the backlog and
# every 10 s during the soak. The backlog row gives the RSS once ready
# (idle), the peak, and the peak of the admission window
# (swarmq_tasks_in_flight). The soak row gives the RSS after its first
# minute, at the end, the peak, and the least-squares slope of the samples
# of its second half (MiB per 10 minutes), after the bounded structures
# have filled (the dedup map holds dedup.max.entries ids, 100,000 by
# default: 100 s at 1,000 tasks/s): growth shows there. A second line
# lists the RSS at every tenth of the soak. Prints the markdown tables on
# stdout, progress on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

bootstrap= b= backlog=1000000 minutes=30 rate=2000 threads=4 partitions=12
parts=backlog,soak
extra=()
die() { echo "bench soak: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --backlog) backlog=${2:?}; shift 2 ;;
        --soak-minutes) minutes=${2:?}; shift 2 ;;
        --rate) rate=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --parts) parts=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required (a real Kafka broker)"
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/sweep_gen" ]] ||
        die "no swarmq-consumer or tests/bench/sweep_gen in '$b' (build with -DSWARMQ_TESTS=ON)"
for v in backlog minutes rate threads; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v/minutes/soak-minutes} must be a positive integer, not '${!v}'"
done
[[ "$parts" =~ ^(backlog|soak)(,(backlog|soak))?$ ]] ||
        die "--parts must list backlog and/or soak, not '$parts'"

bench_workdir soak
submit_pid=
cleanup() {
        [[ -n "$submit_pid" ]] && kill -TERM "$submit_pid" 2>/dev/null || true
        bench_cleanup
}
trap cleanup EXIT

run_id=$(date +%s)-$$
start_consumer() { # PREFIX: started, and ready (/readyz)
        bench_start_swarmq "$b" "$1" "$1" "$1" "$work/$1" \
                -X executor.threads="$threads" "${extra[@]}"
        http=$bench_http
        wait_until 120 "bench soak: instance $1 ready" --every 0.2 -- \
                value_is == 200 sq_http_status "$http/readyz"
}
stop_consumer() { bench_stop_pids; }
# sample: "rss_bytes finished in_flight" from the instance's /metrics.
sample() {
        sq_http_get "$http/metrics?name%5B%5D=process_resident_memory_bytes&name%5B%5D=swarmq_tasks_total&name%5B%5D=swarmq_tasks_in_flight" |
                awk '$1 == "process_resident_memory_bytes" { r = $2 }
                     $1 ~ /^swarmq_tasks_total/ { s += $2 }
                     $1 ~ /^swarmq_tasks_in_flight/ { f += $2 }
                     END { printf "%d %d %d\n", r, s, f }'
}
mib() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1048576 }'; }

if [[ ",$parts," == *,backlog,* ]]; then
        p=soak-$run_id-backlog
        bench_make_topics "$b" "$p" "$partitions"
        echo "bench soak: writing a backlog of $backlog noop tasks" >&2
        bench_submit "$b" "$p" "$backlog" 0
        start_consumer "$p"
        read -r idle _ _ < <(sample)
        peak=$idle window=0 t0=$(date +%s.%N)
        while :; do
                read -r rss fin inflight < <(sample)
                ((rss > peak)) && peak=$rss
                ((inflight > window)) && window=$inflight
                ((fin - inflight >= backlog)) && break
                if (($(date +%s) - ${t0%.*} > 3600)); then
                        tail -5 "$work/$p.log" >&2
                        die "the backlog was not drained within an hour"
                fi
                sleep 0.5
        done
        secs=$(awk -v a="$t0" -v z="$(date +%s.%N)" 'BEGIN { printf "%.0f", z - a }')
        stop_consumer
        echo "| backlog | RSS ready, MiB | peak RSS, MiB | peak admission window (tasks) | seconds to drain |"
        echo "|---|---|---|---|---|"
        echo "| $backlog noop tasks | $(mib "$idle") | $(mib "$peak") | $window | $secs |"
        echo
fi

if [[ ",$parts," == *,soak,* ]]; then
        p=soak-$run_id-soak
        n=$((rate * 60 * minutes))
        bench_make_topics "$b" "$p" "$partitions"
        start_consumer "$p"
        echo "bench soak: $minutes min at $rate tasks/s ($n tasks)" >&2
        bench_submit "$b" "$p" "$n" "$rate" &
        submit_pid=$!
        t0=$(date +%s)
        : >"$work/samples"
        while :; do
                now=$(date +%s)
                read -r rss fin inflight < <(sample)
                echo "$((now - t0)) $rss $fin" >>"$work/samples"
                ((fin - inflight >= n)) && break
                if ((now - t0 > minutes * 60 + 600)); then
                        tail -5 "$work/$p.log" >&2
                        die "the soak's $n tasks did not finish within 10 min of its end"
                fi
                sleep 10
        done
        wait "$submit_pid" || die "the soak's submit failed"
        submit_pid=
        stop_consumer
        echo "| soak | tasks | RSS after 1 min, MiB | RSS at the end, MiB | peak RSS, MiB | slope over the second half, MiB per 10 min |"
        echo "|---|---|---|---|---|---|"
        awk -v m="$minutes" -v r="$rate" -v n="$n" '
                { t[NR] = $1; v[NR] = $2 / 1048576; if (v[NR] > peak) peak = v[NR] }
                END {
                        half = m * 30
                        for (i = 1; i <= NR; i++) {
                                if (t[i] >= 60 && !first) first = v[i]
                                if (t[i] < half) continue
                                k++; sx += t[i]; sy += v[i]; sxx += t[i] * t[i]; sxy += t[i] * v[i]
                        }
                        slope = (k > 1 && k * sxx - sx * sx) ? (k * sxy - sx * sy) / (k * sxx - sx * sx) : 0
                        printf "| %d min at %d tasks/s | %d | %.1f | %.1f | %.1f | %+.2f |\n",
                                m, r, n, first, v[NR], peak, slope * 600
                }' "$work/samples"
        echo
        awk -v m="$minutes" '
                { t[NR] = $1; v[NR] = $2 / 1048576 }
                END {
                        line = "RSS (MiB) at every tenth of the soak:"
                        for (d = 1; d <= 10; d++) {
                                for (i = 1; i < NR && t[i] < m * 6 * d; i++) ;
                                line = line sprintf(" %.1f", v[i])
                        }
                        print line
                }' "$work/samples"
        echo
fi
echo "real broker, $partitions partitions, one instance, $threads executors, noop tasks; RSS from the instance's /metrics (process_resident_memory_bytes)."
