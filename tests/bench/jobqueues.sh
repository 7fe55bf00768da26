#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq against the job queues its users would otherwise pick: Celery 5
# (Debian python3-celery, Redis broker and Redis result backend) and
# Sidekiq 6.4 (Debian ruby-sidekiq, Redis), each draining the same backlog
# of no-op tasks at the same concurrency, side by side in one run. Usually
# run by ops/bench.sh (jobqueues).
#
#   tests/bench/jobqueues.sh [--count N] [--concurrency C] [--bootstrap B]
#                            [--build DIR] [--only LIST]
#
# DESIGN: every system gets the whole backlog first (enqueue time is not
# measured), then its workers start; the rate is (tasks done after the
# first one) / (time of the last done - time of the first done), sampled
# every 20 ms, so worker boot and group join are excluded for all three.
# "Done" is what each system offers a caller: for Celery a stored result
# (a celery-task-meta-* key in the Redis backend), for Sidekiq a job taken
# off its queue with at most C still running (Sidekiq keeps no results;
# its processed counter is flushed every 5 s, too coarse to time, and is
# checked at the end instead), for swarmq a task whose result and terminal
# event the broker acknowledged (its /metrics). CPU: user + system seconds
# of the workers (Celery's main process and its C prefork children, the
# Sidekiq process, swarmq-consumer) and, separately, of the store (the
# redis-server, the Kafka broker's JVM) over the same span, per 100,000
# tasks. Redis runs with its defaults (RDB snapshots, no AOF): what it keeps
# is said beside each figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

count=20000 conc=4 bootstrap= b= only=celery,sidekiq,swarmq
die() { echo "bench jobqueues: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --count) count=${2:?}; shift 2 ;;
        --concurrency) conc=${2:?}; shift 2 ;;
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        -h | --help) sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
        esac
done
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$conc" =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive integer, not '$conc'"
for s in ${only//,/ }; do
        [[ "$s" == celery || "$s" == sidekiq || "$s" == swarmq ]] ||
                die "--only takes celery, sidekiq and swarmq, not '$s'"
done
want() { [[ ",$only," == *",$1,"* ]]; }

# What each peer needs, from Debian (ops/deps.sh --bench installs them).
py=/usr/bin/python3
if want celery || want sidekiq; then
        command -v redis-server >/dev/null || die "redis-server not found (apt-get install -y redis-server, or ops/deps.sh --bench)"
fi
if want celery; then
        "$py" -c 'import celery, redis' 2>/dev/null ||
                die "Celery not found for $py (apt-get install -y python3-celery python3-redis)"
fi
if want sidekiq; then
        command -v sidekiq >/dev/null || die "sidekiq not found (apt-get install -y ruby-sidekiq)"
fi
if want swarmq; then
        bench_default_build
fi

bench_workdir jobqueues

# cpu_tree PID: user + system CPU seconds of PID and its descendants.
cpu_tree() {
        local pid kids
        kids=$(pgrep -P "$1" 2>/dev/null || true)
        {
                awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
                for pid in $kids; do cpu_tree "$pid"; done
        } | awk -v hz="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%.2f\n", s / hz }'
}

# measure NAME WORKER_PID STORE_PID DONE_FN: samples DONE_FN (prints the
# tasks done so far) every 20 ms until it reaches $count; sets
# rate_NAME, cpu_NAME, store_NAME. The span starts at the first sample
# that saw a task done, or, when that one saw them all, at the last that
# saw none (as tests/bench/run.sh does).
measure() {
        local name=$1 wpid=$2 spid=$3 done_fn=$4
        t_first= n_first=0 w_first=0 s_first=0 t_last= w_last=0 s_last=0
        t_zero= w_zero=0 s_zero=0
        step() {
                local n now
                n=$("$done_fn")
                now=$EPOCHREALTIME
                echo "$n done"
                if ((n == 0)); then
                        # The last moment none was done: the start when
                        # the first sample that saw any saw them all.
                        t_zero=$now
                        w_zero=$(cpu_tree "$wpid") s_zero=$(cpu_tree "$spid")
                fi
                if [[ -z "$t_first" ]] && ((n > 0)); then
                        t_first=$now n_first=$n
                        w_first=$(cpu_tree "$wpid") s_first=$(cpu_tree "$spid")
                fi
                ((n >= count)) || return 1
                t_last=$now
                w_last=$(cpu_tree "$wpid") s_last=$(cpu_tree "$spid")
        }
        wait_until 900 "bench jobqueues: $name done with $count tasks" --every 0.02 -- step ||
                return 1
        if ((n_first >= count)) && [[ -n "$t_zero" ]]; then
                t_first=$t_zero n_first=0 w_first=$w_zero s_first=$s_zero
        fi
        if ((count <= n_first)); then
                # Drained before the first sample (swarmq does 2,000 in
                # well under the time it takes to start sampling): no span
                # to time. Said in the row, not a failure: the smoke's
                # small count meets it, the full run's does not.
                echo "bench jobqueues: $name: all $count done before the first sample: not measured (use a larger --count)" >&2
                printf -v "rate_$name" '%s' "not measured: all $count done before the first sample"
                printf -v "cpu_$name" '%s' "—"
                printf -v "store_$name" '%s' "—"
                return 0
        fi
        printf -v "rate_$name" '%s' "$(awk -v n="$count" -v f="$n_first" -v a="$t_first" -v z="$t_last" \
                'BEGIN { printf "%.0f", (n - f) / (z - a) }')"
        printf -v "cpu_$name" '%s' "$(awk -v n="$count" -v f="$n_first" -v a="$w_first" -v z="$w_last" \
                'BEGIN { printf "%.2f", (z - a) * 100000 / (n - f) }')"
        printf -v "store_$name" '%s' "$(awk -v n="$count" -v f="$n_first" -v a="$s_first" -v z="$s_last" \
                'BEGIN { printf "%.2f", (z - a) * 100000 / (n - f) }')"
        echo "bench jobqueues: $name: $(eval echo "\$rate_$name") tasks/s" >&2
}

redis_pid= redis_port=
start_redis() {
        redis_port=$("$py" "$root/ops/free_ports.py" 1)
        mkdir -p "$work/redis"
        redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
                --daemonize no --logfile "$work/redis.log" &
        redis_pid=$!
        pids+=($redis_pid)
        wait_until 30 "redis-server on port $redis_port answers" -- \
                value_is == PONG redis-cli -p "$redis_port" ping >/dev/null
}
rcli() { redis-cli -p "$redis_port" "$@"; }

versions=()
rows=()

if want celery; then
        start_redis
        mkdir -p "$work/celery"
        cat >"$work/celery/benchapp.py" <<EOF
from celery import Celery
app = Celery("benchapp", broker="redis://127.0.0.1:$redis_port/0",
             backend="redis://127.0.0.1:$redis_port/1")
app.conf.result_expires = None

@app.task
def noop():
    return None
EOF
        echo "bench jobqueues: celery: enqueueing $count tasks" >&2
        (cd "$work/celery" && "$py" -c "
from benchapp import noop
for _ in range($count):
    noop.delay()
")
        celery_done() { rcli -n 1 dbsize; }
        (cd "$work/celery" && exec "$py" -m celery -A benchapp worker -c "$conc" \
                --pool prefork -l warning --without-gossip --without-mingle \
                --without-heartbeat) >"$work/celery.log" 2>&1 &
        pids+=($!)
        measure celery $! "$redis_pid" celery_done || { tail -20 "$work/celery.log" >&2; exit 1; }
        versions+=("Celery $("$py" -c 'import celery; print(celery.__version__)')")
        rows+=("| Celery, prefork pool of $conc, Redis broker and result backend | $rate_celery | $cpu_celery | $store_celery (redis-server) | each result in Redis; the queue and results in memory, RDB snapshots (a crash loses what came after the last one) |")
        bench_stop_pids # the worker, then its redis-server
fi

if want sidekiq; then
        start_redis
        mkdir -p "$work/sidekiq"
        cat >"$work/sidekiq/noop.rb" <<'EOF'
require "sidekiq"
class Noop
  include Sidekiq::Worker
  sidekiq_options retry: false
  def perform; end
end
EOF
        echo "bench jobqueues: sidekiq: enqueueing $count jobs" >&2
        REDIS_URL=redis://127.0.0.1:$redis_port/0 ruby -I"$work/sidekiq" -e "
require 'noop'
left = $count
while left > 0
  n = [left, 1000].min
  Sidekiq::Client.push_bulk('class' => Noop, 'args' => Array.new(n) { [] })
  left -= n
end
" 2>"$work/sidekiq-push.log" || { cat "$work/sidekiq-push.log" >&2; exit 1; }
        # Done = taken off the queue; at most $conc are still running then
        # (counted as done, a bias of $conc of $count in Sidekiq's favour).
        sidekiq_done() { echo $((count - $(rcli llen queue:default))); }
        (cd "$work/sidekiq" && REDIS_URL=redis://127.0.0.1:$redis_port/0 \
                exec sidekiq -r ./noop.rb -c "$conc" -q default) >"$work/sidekiq.log" 2>&1 &
        pids+=($!)
        measure sidekiq $! "$redis_pid" sidekiq_done || { tail -20 "$work/sidekiq.log" >&2; exit 1; }
        # Every job ran: Sidekiq's processed counter (flushed every 5 s).
        sidekiq_processed() { rcli get stat:processed; }
        wait_until 30 "bench jobqueues: sidekiq processed all $count jobs" -- \
                value_is -ge "$count" sidekiq_processed >/dev/null
        versions+=("Sidekiq $(ruby -e 'require "sidekiq"; puts Sidekiq::VERSION')")
        rows+=("| Sidekiq, $conc threads, Redis | $rate_sidekiq | $cpu_sidekiq | $store_sidekiq (redis-server) | no results; the queue in memory, RDB snapshots |")
        bench_stop_pids # the worker, then its redis-server
fi

if want swarmq; then
        [[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/sweep_gen" ]] ||
                die "no swarmq-consumer or sweep_gen in '$b' (build with -DSWARMQ_TESTS=ON)"
        [[ -n "$bootstrap" ]] || bench_start_kafka "$work/kafka"
        # The broker's process, by the port it listens on (the first broker
        # of the bootstrap list), for its CPU.
        kafka_port=${bootstrap%%,*}
        kafka_pid=$(ss -Hltnp "sport = :${kafka_port##*:}" 2>/dev/null |
                sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
        p=jobq-$(date +%s)-$$
        bench_make_topics "$b" "$p" 12
        echo "bench jobqueues: swarmq: submitting $count noop tasks" >&2
        bench_submit "$b" "$p" "$count"
        bench_start_swarmq "$b" "$p" "$p" "$p" "$work/consumer" -X executor.threads="$conc"
        consumer_pid=$bench_pid http=$bench_http
        swarmq_done() {
                sq_http_get "$http/metrics" | awk '
                        $1 ~ /^swarmq_tasks_total/ { s += $2 }
                        $1 ~ /^swarmq_tasks_in_flight/ { f += $2 }
                        END { printf "%d\n", (f > 0 ? s - f : s) }'
        }
        measure swarmq "$consumer_pid" "${kafka_pid:-$consumer_pid}" swarmq_done ||
                { tail -20 "$work/consumer.log" >&2; exit 1; }
        store="$store_swarmq (Kafka broker)"
        [[ -z "$kafka_pid" ]] && store="— (the broker's process was not found)"
        versions+=("swarmq $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')")
        rows+=("| swarmq, $conc executors, Kafka | $rate_swarmq | $cpu_swarmq | $store | each result and 3 lifecycle events in Kafka, acknowledged by the broker (acks=all) before the offset is committed; replayable |")
fi

echo "$count no-op tasks drained at concurrency $conc; ${versions[*]}."
echo
echo "| system | tasks/s | worker CPU s per 100,000 | store CPU s per 100,000 | what is kept |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
