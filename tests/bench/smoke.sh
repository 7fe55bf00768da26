#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ctest bench.smoke: the benchmark suite still runs. `ops/bench.sh all
# --quick` on this build (a real Kafka broker of its own, a 200-record key
# sweep against parallel-consumer, a 2,000-record pipe, 500 no-op tasks
# through Celery, Sidekiq and swarmq, 400 tasks on 1 and 2 instances) must
# print every
# table line and append a section with the machine and the command to a
# scratch copy of the doc. No figure is judged: speed lives in
# docs/benchmarks.md, not in tests.
#
#   tests/bench/smoke.sh BUILD_DIR SOURCE_DIR
#
# Exit 77 (ctest SKIP_RETURN_CODE) when java, javac or mvn is missing: the
# pipe then runs on the mock only and the key sweep is skipped, loudly.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/swarmq-bench-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

rc=0
bash "$src/ops/bench.sh" all --quick --build "$build" --doc "$work/doc.md" \
        >"$work/out" 2>"$work/err" || rc=$?
cat "$work/out"
if ((rc != 0 && rc != 77)); then
        tail -30 "$work/err" >&2
        fail "ops/bench.sh all --quick exited $rc"
fi

expect() { # PATTERN: a table line matching it was printed
        grep -qE "$1" "$work/out" || { tail -30 "$work/err" >&2; fail "no line matching '$1'"; }
}
num='[0-9]+(\.[0-9]+)?'
expect "^\| raw librdkafka, 1 record out per record in \| $num \| $num \| $num \| $num \|$"
expect "^\| raw librdkafka, 4 records out per record in \| $num \| $num \| $num \| $num \|$"
expect "^\| raw librdkafka, 2 records out per record in \| $num \| $num \| $num \| $num \|$"
expect "^\| swarmq, noop tasks .* \| $num \| $num \| — \| — \|$"
expect "^\| swarmq, noop tasks .*events.publish=all.* \| 1→4 \| $num \| $num \|$"
expect "^\| swarmq, noop tasks .*events.publish=terminal.* \| 1→2 \| $num \| $num \|$"
grep -q '^Command: `ops/bench.sh all --quick' "$work/doc.md" || fail "no Command line in the doc section"
grep -q '^Machine: ' "$work/doc.md" || fail "no Machine line in the doc section"
if command -v gnuplot >/dev/null; then
        plots=(pipe)
        ((rc == 77)) || plots+=(keysweep latency)
        for plot in "${plots[@]}"; do
                grep -q "^!\[$plot.png\](bench/.*-$plot.png)\$" "$work/doc.md" ||
                        fail "no $plot plot linked"
                [[ -s $(ls "$work"/bench/*-"$plot".png) ]] || fail "no $plot plot written"
        done
fi
if ((rc == 77)); then
        grep -q 'SKIPPED' "$work/err" || fail "exit 77 without saying what was skipped"
        echo "SKIPPED: key sweep and real Kafka (no java/javac/mvn); the pipe ran on the mock"
        exit 77
fi
pc="$num \| $num \| $num \| $num \| $num \| $num \| $num \| $num \| $num \| $num"
expect "^\| partition \| 16 \| $pc \|$"
expect "^\| key, 10 keys \([0-9]+ distinct\) \| 16 \| $pc \|$"
expect "^\| key, 100 keys \([0-9]+ distinct\) \| 16 \| $pc \|$"
expect "^\| key, 10000 keys \([0-9]+ distinct\) \| 16 \| $pc \|$"
expect "^\| unordered \| 16 \| $pc \|$"
# The sleeps as the machine ran them: overshoot, floor with them, ratios.
machine="$num \| $num \| $num \| $num \| $num"
expect "^\| partition \| 16 \| $machine \|$"
expect "^\| unordered \| 16 \| $machine \|$"
for level in 10 50 90; do
        expect "^\| $level % \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \|$"
done
kept='[^|]+'
expect "^\| Celery, prefork pool of 4, Redis broker and result backend \| $num \| $num \| $num \(redis-server\) \| $kept \|$"
expect "^\| Sidekiq, 4 threads, Redis \| $num \| $num \| $num \(redis-server\) \| $kept \|$"
expect "^\| swarmq, 4 executors, Kafka \| $num \| $num \| $num \(Kafka broker\) \| $kept \|$"
expect "^\| 1 \| $num \| 1.00x \| $num % \|$"
expect "^\| 2 \| $num \| ${num}x \| $num % \|$"
echo "bench smoke: every table line printed"
