#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One entry point for the benchmark suite: each comparison side by side in
# one run, on one broker, results appended to docs/benchmarks.md with the
# machine, versions and the exact command. See ops/bench.sh --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/ops/lib.sh"

usage() {
        cat <<'EOF'
Usage: ops/bench.sh [COMMAND] [options]

Runs swarmq's benchmarks side by side with what users would pick instead,
each comparison in one run on one broker (ratios, not absolute figures,
are what a shared machine can tell), prints the tables and appends them to
docs/benchmarks.md with the machine, the versions and this command.

Commands:
  all        keysweep, pipe, jobqueues, latency, then scaling, on one
             broker (default)
             (default)
  keysweep   parallel-consumer's key sweep: the same 10,000 `sleep` records
             (0-5 ms, one partition) run by swarmq and by Confluent
             parallel-consumer 0.5.3.3 in the modes partition, key with 10,
             100 and 10,000 keys, unordered, at concurrency 16 and 100;
             wall time against the work floor and against the same
             sleeps by bare threads without Kafka, what the machine
             gives, and the CPU-seconds of each run (swarmq-consumer
             from /proc/PID/stat, parallel-consumer's JVM); a second
             table: the bare threads' overshoot per sleep and the floor
             recomputed with the sleeps as long as they took
             (tests/bench/keysweep.sh). Real Kafka only.
  pipe       throughput and CPU per task: a plain librdkafka
             consume->produce pipe writing 1, 2 and 4 records per record
             in vs swarmq with noop tasks, events.publish=all (4 records
             per task) and terminal (2), each against the pipe writing as
             many (tests/bench/run.sh)
  jobqueues  swarmq vs Celery 5 (Redis broker and result backend) and
             Sidekiq 6.4 (Redis), all from Debian: the same backlog of
             no-op tasks (--jobs, 20,000) drained at concurrency 4, tasks/s
             and CPU per 100,000 of the workers and of the store, with what
             each keeps (tests/bench/jobqueues.sh). Needs redis-server,
             python3-celery, python3-redis, ruby-sidekiq (ops/deps.sh --test)
  latency    submit -> result visible (the result's broker append time
             minus the task's created_at), p50 / p99 / p99.9 at 10, 50 and
             90 % of the maximum throughput (what one instance
             sustains while a client submits), one instance
             (tests/bench/latency.sh). Real Kafka only.
  scaling    1, 2 and 3 instances in one group on 12 partitions running
             the same backlog of `sleep` tasks (--scale-count, 6,000, of
             20 ms): tasks/s and the speed-up over one instance
             (tests/bench/scaling.sh). Real Kafka only
  guarantee  at_least_once vs exactly_once (tests/bench/guarantee.sh; the
             options after the command go to that script)
  memory     RSS figures on the mock (tests/bench/memory.sh; options go
             to it)
  soak       RSS on real Kafka: one instance draining a backlog of
             1,000,000 tasks, then a 30-minute soak at a steady rate
             (tests/bench/soak.sh; options go to it, --help lists them)
  events-latency  GET /events latency (tests/bench/events_latency.sh;
             options go to it)
  abtest     A/B comparison of a flag's variants: one instance on the
             embedded broker with flag.ranked_selection=50% runs a backlog
             of `work` tasks (--count, 4,000; --quick: 200) that a fast
             and a slow agent can both take; per variant (ranked vs
             least-loaded): tasks, success ratio, p50 / p99 / mean run
             time from /metrics (tests/bench/abtest.sh; options go to it:
             --build, --count, --quick, -X)

Options (all, keysweep, pipe):
  --broker real|mock   real: Apache Kafka 4.4.0 from Maven Central
                       (ops/kafka.sh), the default; mock: librdkafka's mock
                       cluster (pipe only; `all` then skips the key sweep
                       and says so)
  --bootstrap HOST:PORT  use this running broker instead of starting one
  --build DIR          use this build as it is (tests enabled); default: a
                       Release build made in ./build-bench
  --quick              tiny sizes, a smoke run (CI): key sweep of 200
                       records at concurrency 16, pipe of 2,000 records,
                       2,000 tasks per job queue;
                       writes no doc unless --doc is given
  --count N            pipe: records (default 100000)
  --jobs N             jobqueues: tasks per system (default 20000)
  --latency-count N    latency: the maximum is measured with 5 x N tasks
                       submitted as fast as they go, and each level runs
                       at least N (default 20000)
  --levels LIST        latency: percentages of the maximum throughput
                       (default 10,50,90)
  --scale-count N      scaling: tasks per size (default 6000)
  --threads T          pipe: swarmq executor threads (default 4)
  --publish LIST       pipe: events.publish modes swarmq runs with,
                       comma-separated from all, terminal, none (default
                       all,terminal)
  --rounds R           pipe, keysweep, latency: repeat the whole comparison
                       R times and report medians (default 1; 3 for
                       figures worth keeping)
  --baseline-build DIR pipe: also run swarmq from this build (e.g. main
                       before a change) in the same rounds
  --sweep-count N      keysweep: records per mode (default 10000)
  --modes LIST         keysweep: comma-separated, from partition, key10,
                       key100, key10000 (any key<N>), unordered (default all
                       five)
  --concurrency LIST   keysweep: comma-separated (default 16,100)
  --commit-ms MS       keysweep: commit interval of both (default 100)
  --seed S             keysweep: seed of the records (default 42)
  --no-peer            keysweep: swarmq only, no parallel-consumer
  -X KEY=VALUE         a swarmq-consumer configuration key for every swarmq
                       run (repeatable), e.g. -X kafka.linger.ms=0
  --pipe-X PROP=VALUE  pipe: a librdkafka property for the raw pipe's
                       clients (repeatable), e.g. --pipe-X
                       max.in.flight.requests.per.connection=1 (swarmq's
                       producer setting)
  --doc FILE           append the results to FILE (default
                       docs/benchmarks.md), and PNG plots of them to
                       bench/ beside it (gnuplot-nox, which bash
                       ops/deps.sh --bench installs; none without it)
  --no-write           print only, append nothing
  -h, --help           this help

What it needs: bash ops/deps.sh --bench installs all of it (Java and
Maven for the broker and parallel-consumer, redis-server, Celery and
Sidekiq for jobqueues, gnuplot-nox for the plots); --test installs the
same without gnuplot-nox.

Exit codes: 0 done; 1 a benchmark failed; 2 bad usage; 77 (with --quick)
the run was partial because java/javac/mvn are missing: the real broker
and parallel-consumer need them (apt-get install -y openjdk-17-jdk-headless
maven; bash ops/deps.sh --test), so the pipe ran on the mock only.

Examples:
  ops/bench.sh all                        the full suite on real Kafka
  ops/bench.sh keysweep --modes partition,key10 --concurrency 16
  ops/bench.sh pipe --broker mock --count 100000
  ops/bench.sh all --quick --build build  the CI smoke
EOF
}

die() {
        echo "bench: $*" >&2
        echo "bench: see ops/bench.sh --help" >&2
        exit 2
}

cmd=all
if (($#)) && [[ "$1" != -* ]]; then
        cmd=$1
        shift
fi
case $cmd in
all | keysweep | pipe | jobqueues | latency | scaling) ;;
guarantee) exec bash "$root/tests/bench/guarantee.sh" "$@" ;;
memory) exec bash "$root/tests/bench/memory.sh" "$@" ;;
soak) exec bash "$root/tests/bench/soak.sh" "$@" ;;
events-latency) exec bash "$root/tests/bench/events_latency.sh" "$@" ;;
abtest) exec bash "$root/tests/bench/abtest.sh" "$@" ;;
help) usage; exit 0 ;;
*) die "unknown command '$cmd' (all, keysweep, pipe, jobqueues, latency, scaling, guarantee, memory, soak, events-latency, abtest)" ;;
esac

broker=real bootstrap= build= quick=0 count= jobs= scale_count= threads=4 sweep_count= modes=
latency_count= levels=10,50,90
publish=all,terminal rounds=1 baseline=
concurrency= commit_ms=100 seed=42 peer=on doc=$root/docs/benchmarks.md
write=1 doc_given=0
extra=()
pipe_extra=()
cmdline="ops/bench.sh $cmd"
need() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value"; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
while (($#)); do
        case $1 in
        --quick) quick=1; cmdline+=" $1"; shift; continue ;;
        --no-peer) peer=off; cmdline+=" $1"; shift; continue ;;
        --no-write) write=0; cmdline+=" $1"; shift; continue ;;
        -h | --help) usage; exit 0 ;;
        --broker | --bootstrap | --build | --count | --jobs | --scale-count | --threads | --sweep-count | \
                --modes | --concurrency | --commit-ms | --seed | -X | --doc | \
                --publish | --rounds | --baseline-build | --latency-count | --levels | --pipe-X) need "$@" ;;
        *) die "unknown option '$1'" ;;
        esac
        case $1 in
        --broker) [[ "$2" == real || "$2" == mock ]] || die "--broker must be real or mock, not '$2'"; broker=$2 ;;
        --bootstrap) bootstrap=$2 ;;
        --build) build=$(cd "$2" 2>/dev/null && pwd) || die "--build: no directory '$2'" ;;
        --count) posint "$1" "$2"; count=$2 ;;
        --jobs) posint "$1" "$2"; jobs=$2 ;;
        --latency-count) posint "$1" "$2"; latency_count=$2 ;;
        --levels) [[ "$2" =~ ^[1-9][0-9]?(,[1-9][0-9]?)*$ ]] ||
                die "--levels must list percentages from 1 to 99 (comma-separated), not '$2'"
                levels=$2 ;;
        --scale-count) posint "$1" "$2"; scale_count=$2 ;;
        --threads) posint "$1" "$2"; threads=$2 ;;
        --publish) [[ "$2" =~ ^(all|terminal|none)(,(all|terminal|none))*$ ]] ||
                die "--publish must list all, terminal or none (comma-separated), not '$2'"
                publish=$2 ;;
        --rounds) posint "$1" "$2"; rounds=$2 ;;
        --baseline-build) baseline=$(cd "$2" 2>/dev/null && pwd) || die "--baseline-build: no directory '$2'" ;;
        --sweep-count) posint "$1" "$2"; sweep_count=$2 ;;
        --modes) modes=$2 ;;
        --concurrency) concurrency=$2 ;;
        --commit-ms) posint "$1" "$2"; commit_ms=$2 ;;
        --seed) posint "$1" "$2"; seed=$2 ;;
        -X) [[ "$2" == *=* ]] || die "-X needs KEY=VALUE, not '$2'"; extra+=(-X "$2") ;;
        --pipe-X) [[ "$2" == *=* ]] || die "--pipe-X needs PROPERTY=VALUE, not '$2'"
                pipe_extra+=(--pipe-X "$2") ;;
        --doc) doc=$2; doc_given=1 ;;
        *) die "unknown option '$1'" ;;
        esac
        cmdline+=" $1 $2"
        shift 2
done
[[ "$cmd" == latency && "$broker" == mock ]] &&
        die "latency runs on real Kafka only (its results topics keep the broker's append time; the mock cluster answers no CreateTopics)"
[[ "$cmd" == scaling && "$broker" == mock ]] &&
        die "scaling runs on real Kafka only (the mock cluster runs in one process: it would be the bottleneck measured)"
[[ "$cmd" == jobqueues && "$broker" == mock ]] &&
        die "jobqueues runs on real Kafka only (the peers keep their queues in Redis; the mock cluster is no store to compare)"
[[ "$cmd" == keysweep && "$broker" == mock ]] &&
        die "keysweep runs on real Kafka only (parallel-consumer is a Java client; the mock cluster answers no CreateTopics)"
((quick && !doc_given)) && write=0
if ((quick)); then
        # jobs: enough for a measurable span (when all are done in the
        # first sample that sees any, tests/bench/jobqueues.sh starts the
        # span at the last sample that saw none).
        : "${count:=2000}" "${sweep_count:=200}" "${concurrency:=16}" "${jobs:=2000}" "${scale_count:=400}"
        # latency: 300 tasks per level, not 5 s of them (at a measured
        # maximum of 30,000-80,000 tasks/s that was 600,000 tasks, and the
        # smoke ran past its 300 s timeout on a loaded machine).
        : "${latency_count:=300}" "${latency_seconds:=0}"
fi
: "${count:=100000}" "${sweep_count:=10000}" "${concurrency:=16,100}" "${jobs:=20000}" "${scale_count:=6000}"
: "${latency_count:=20000}" "${latency_seconds:=5}"
: "${modes:=partition,key10,key100,key10000,unordered}"

# Without java, javac and mvn there is no real broker and no
# parallel-consumer: a smoke still runs the pipe on the mock, and says so.
partial=0
if [[ "$broker" == real && -z "$bootstrap" ]]; then
        for tool in java javac mvn; do
                command -v "$tool" >/dev/null && continue
                if ((quick)) && [[ "$cmd" != keysweep ]]; then
                        echo "bench: SKIPPED: $tool not found: no real Kafka and no parallel-consumer; the pipe runs on the mock only" >&2
                        broker=mock partial=1
                        break
                fi
                echo "bench: $tool not found: real Kafka and parallel-consumer need java, javac and mvn (apt-get install -y openjdk-17-jdk-headless maven)" >&2
                exit 1
        done
fi

if [[ -z "$build" ]]; then
        "$root/ops/deps.sh" >&2
        echo "bench: building Release into $root/build-bench" >&2
        "$root/ops/build.sh" "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DSWARMQ_TESTS=ON >&2
        build=$root/build-bench
fi
[[ -x "$build/consumer/swarmq-consumer" && -x "$build/tests/bench/sweep_gen" ]] ||
        die "--build '$build' has no swarmq-consumer or tests/bench/sweep_gen (configure with -DSWARMQ_TESTS=ON)"

out=$(mktemp /tmp/swarmq-bench-out.XXXXXX)
kafka_state=
cleanup() {
        [[ -n "$kafka_state" ]] &&
                bash "$root/ops/kafka.sh" stop --state-dir "$kafka_state" >/dev/null 2>&1
        rm -f "$out"
}
trap cleanup EXIT

if [[ "$broker" == real && -z "$bootstrap" ]]; then
        kafka_state=$build/kafka-bench-$$
        echo "bench: starting Apache Kafka (ops/kafka.sh's default version, state $kafka_state)" >&2
        bootstrap=$(bash "$root/ops/kafka.sh" start --state-dir "$kafka_state" |
                sed -n 's/^bootstrap.servers=//p')
        [[ -n "$bootstrap" ]] || { echo "bench: the Kafka broker did not start" >&2; exit 1; }
fi

ran=()
if [[ "$cmd" == all || "$cmd" == keysweep ]]; then
        if [[ "$broker" == mock ]]; then
                echo "bench: SKIPPED keysweep: it needs --broker real" >&2
        else
                echo "bench: keysweep on $bootstrap" >&2
                peer_args=(--peer "$peer")
                {
                        echo "#### Key sweep: swarmq vs parallel-consumer 0.5.3.3"
                        echo
                        bash "$root/tests/bench/keysweep.sh" --bootstrap "$bootstrap" \
                                --build "$build" --count "$sweep_count" --modes "$modes" \
                                --concurrency "$concurrency" --commit-ms "$commit_ms" \
                                --seed "$seed" --rounds "$rounds" "${peer_args[@]}" \
                                "${extra[@]}"
                        echo
                } >>"$out"
                ran+=(keysweep)
        fi
fi
if [[ "$cmd" == all || "$cmd" == pipe ]]; then
        echo "bench: pipe on the $broker broker" >&2
        pipe_args=(--broker "$broker" --build "$build" --count "$count" --threads "$threads"
                --publish "$publish" --rounds "$rounds")
        [[ -n "$baseline" ]] && pipe_args+=(--baseline-build "$baseline")
        [[ "$broker" == real ]] && pipe_args+=(--bootstrap "$bootstrap")
        {
                echo "#### Throughput and CPU: swarmq vs the raw librdkafka pipe"
                echo
                bash "$root/tests/bench/run.sh" "${pipe_args[@]}" "${extra[@]}" "${pipe_extra[@]}"
                echo
        } >>"$out"
        ran+=(pipe)
fi

if [[ "$cmd" == all || "$cmd" == jobqueues ]]; then
        if [[ "$broker" == mock ]]; then
                echo "bench: SKIPPED jobqueues: it needs --broker real" >&2
        else
                echo "bench: jobqueues on $bootstrap" >&2
                {
                        echo "#### Job queues: swarmq vs Celery and Sidekiq"
                        echo
                        bash "$root/tests/bench/jobqueues.sh" --bootstrap "$bootstrap" \
                                --build "$build" --count "$jobs"
                        echo
                } >>"$out"
                ran+=(jobqueues)
        fi
fi

if [[ "$cmd" == all || "$cmd" == latency ]]; then
        if [[ "$broker" == mock ]]; then
                echo "bench: SKIPPED latency: it needs --broker real (LogAppendTime)" >&2
        else
                echo "bench: latency on $bootstrap" >&2
                {
                        echo "#### Latency: submit to result visible, one instance"
                        echo
                        bash "$root/tests/bench/latency.sh" --bootstrap "$bootstrap" \
                                --build "$build" --count "$latency_count" \
                                --levels "$levels" --threads "$threads" --rounds "$rounds" \
                                --seconds "$latency_seconds" "${extra[@]}"
                        echo
                } >>"$out"
                ran+=(latency)
        fi
fi
if [[ "$cmd" == all || "$cmd" == scaling ]]; then
        if [[ "$broker" == mock ]]; then
                echo "bench: SKIPPED scaling: it needs --broker real" >&2
        else
                echo "bench: scaling on $bootstrap" >&2
                scale_sizes=1,2,3
                ((quick)) && scale_sizes=1,2
                {
                        echo "#### Scaling out: 1 to 3 instances"
                        echo
                        bash "$root/tests/bench/scaling.sh" --bootstrap "$bootstrap" \
                                --build "$build" --count "$scale_count" --sizes "$scale_sizes"
                        echo
                } >>"$out"
                ran+=(scaling)
        fi
fi

cat "$out"
if ((write)); then
        cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
        mem=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')
        rdkafka=$(pkg-config --modversion rdkafka 2>/dev/null || echo '?')
        commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
        btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
        java_v=$(java -version 2>&1 | head -1 | sed 's/.*"\(.*\)".*/\1/' || true)
        kafka_v="Apache Kafka $(cat "${kafka_state:-/nonexistent}/kafka-version" 2>/dev/null || echo '(version not known: --bootstrap)') (ops/kafka.sh)"
        [[ "$broker" == mock ]] && kafka_v="librdkafka's mock cluster (swarmq-mock-broker)"
        {
                echo
                echo "### $(date -u +%Y-%m-%dT%H:%MZ) — ${ran[*]}, $kafka_v"
                echo
                echo "Machine: $(nproc) cores ($cpu), $mem, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; shared with other engineers' builds and tests, so only ratios within this run mean much."
                echo "Versions: swarmq $commit (${btype:-default} build), librdkafka $rdkafka, Java $java_v, parallel-consumer 0.5.3.3."
                echo "Command: \`$cmdline\`"
                echo
                cat "$out"
        } >>"$doc"
        echo "bench: results appended to $doc" >&2
        # Plots beside the doc, linked from the section (gnuplot-nox).
        plots=$(dirname "$doc")/bench
        mkdir -p "$plots"
        stamp=$(date -u +%Y%m%dT%H%M)
        rc=0
        pngs=$(bash "$root/tests/bench/plot.sh" "$out" "$plots/$stamp") || rc=$?
        if ((rc == 0)); then
                echo >>"$doc"
                for png in $pngs; do
                        echo "![${png##*-}](bench/${png##*/})" >>"$doc"
                        echo "bench: plot $png" >&2
                done
        elif ((rc != 77)); then
                echo "bench: plotting failed (the tables are written)" >&2
        fi
fi
((partial)) && exit 77
exit 0
