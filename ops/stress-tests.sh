#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs ctest suites again and again on a machine loaded on purpose, and
# prints each test's pass rate: the flake finder behind "the test command
# passes every time, on a busy machine". See --help.
#
# DESIGN
#   One ctest invocation per run (the broker label brings its fixture,
#   broker.start and broker.stop; the resource slots of
#   tests/resources.json decide which broker tests run side by side). CPU hogs are plain busy loops at nice 0, started
#   before the first run and killed by pid on exit. After each run the
#   ctest log is kept, and for every failed test its work directory
#   (BUILD/tests/out/NAME, which the next run would wipe) is copied next
#   to it, so each failure's consumer and broker logs survive.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
        cat <<'EOF'
Usage: ops/stress-tests.sh [options]

Runs the chosen ctest suites N times while N CPU hogs keep the machine
busy, then prints a pass rate per test (passed/runs, mean and max time)
and where each failure's logs are kept.

Options:
  -L, --label REGEX   ctest labels to run (default 'integration|broker';
                      'broker' starts its real-Kafka fixture each run)
  -R, --tests REGEX   only the tests whose name matches (ctest -R)
  -n, --runs N        runs of the suite (default 5)
  -j, --jobs N        tests at once (ctest -j, default 4, as ops/test.sh)
      --hogs N        CPU hogs (busy loops at nice 0) for the whole
                      duration (default: one per core, nproc); 0 = none
      --asan          use the AddressSanitizer + UBSan build
                      (build-asan, with the options ops/test.sh uses)
      --build-dir DIR build directory (default build, or build-asan)
      --build         (re)build the build directory first
      --out DIR       where logs are kept (default
                      BUILD_DIR/stress/YYYYmmdd-HHMMSS)
  -h, --help          this help

Examples:
  ops/stress-tests.sh --label integration --runs 10 -j 3
  ops/stress-tests.sh --label broker --runs 3
  ops/stress-tests.sh --asan --build --label integration --runs 1
  ops/stress-tests.sh -R '0060|0061' --runs 20 --hogs 4

Exit status: 0 when every run passed, 1 when a test failed at least once,
2 on a usage error.
EOF
}

label='integration|broker'
regex=''
runs=5
jobs=4
hogs=$(nproc)
asan=0
build_dir=''
do_build=0
out=''
while (($#)); do
        case $1 in
        -L | --label) label=${2:?}; shift ;;
        -R | --tests) regex=${2:?}; shift ;;
        -n | --runs) runs=${2:?}; shift ;;
        -j | --jobs) jobs=${2:?}; shift ;;
        --hogs) hogs=${2:?}; shift ;;
        --asan) asan=1 ;;
        --build-dir) build_dir=${2:?}; shift ;;
        --build) do_build=1 ;;
        --out) out=${2:?}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "stress-tests: unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
        shift
done
for v in runs jobs hogs; do
        [[ ${!v} =~ ^[0-9]+$ ]] || { echo "stress-tests: --$v expects a number" >&2; exit 2; }
done
((runs >= 1 && jobs >= 1)) || { echo "stress-tests: --runs and --jobs must be at least 1" >&2; exit 2; }

if ((asan)); then
        build_dir=${build_dir:-$root/build-asan}
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
        build_dir=${build_dir:-$root/build}
fi
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
if ((do_build)); then
        if ((asan)); then
                SWARMQ_WERROR=ON "$root/ops/build.sh" "$build_dir" \
                        -DSWARMQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
        else
                SWARMQ_WERROR=ON "$root/ops/build.sh" "$build_dir"
        fi
fi
[[ -f "$build_dir/CTestTestfile.cmake" ]] ||
        { echo "stress-tests: $build_dir is not a build directory (try --build)" >&2; exit 2; }
out=${out:-$build_dir/stress/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

hog_pids=()
stop_hogs() {
        local pid
        for pid in "${hog_pids[@]}"; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in "${hog_pids[@]}"; do
                wait "$pid" 2>/dev/null || true
        done
        hog_pids=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < hogs; i++)); do
        nice -n 0 bash -c 'while :; do :; done' &
        hog_pids+=($!)
done

# Every test sets its own TIMEOUT (tests/CMakeLists.txt).
ctest_args=(--test-dir "$build_dir" -L "$label" -j "$jobs" --output-on-failure)
[[ -n "$regex" ]] && ctest_args+=(-R "$regex")
echo "stress-tests: $runs run(s) of ctest ${ctest_args[*]}" \
        "with $hogs CPU hog(s)$( ((asan)) && echo ', ASan+UBSan'); logs in $out"

# results.tsv: run, test, status (Passed/Failed/Timeout/...), seconds
results=$out/results.tsv
: >"$results"
t_all=$SECONDS
for ((run = 1; run <= runs; run++)); do
        log=$out/run-$run.log
        t0=$SECONDS
        rc=0
        ctest "${ctest_args[@]}" >"$log" 2>&1 || rc=$?
        # " 12/40 Test #21: integration.0021-retry-kill9 .....   Passed   31.20 sec"
        sed -nE 's/^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: +([^ ]+) \.*[ *]*([A-Za-z]+[A-Za-z ()]*[A-Za-z)]) +([0-9.]+) sec$/\1\t\2\t\3/p' \
                "$log" | sed "s/^/$run\t/" >>"$results"
        failed=$(awk -F'\t' -v r="$run" '$1 == r && $3 != "Passed" && $3 != "Skipped" { print $2 }' "$results")
        for t in $failed; do
                short=${t#*.}
                if [[ -d "$build_dir/tests/out/$short" ]]; then
                        mkdir -p "$out/run-$run"
                        cp -a "$build_dir/tests/out/$short" "$out/run-$run/$short" 2>/dev/null || true
                fi
        done
        n=$(awk -F'\t' -v r="$run" '$1 == r' "$results" | wc -l)
        nf=$(printf '%s' "$failed" | grep -c . || true)
        echo "stress-tests: run $run/$runs: $((n - nf)) of $n passed in $((SECONDS - t0)) s" \
                "(ctest exit $rc)${failed:+; failed: $(echo $failed)}"
        if ((n == 0)); then
                echo "stress-tests: run $run ran no test; see $log" >&2
                echo -e "$run\t(no test ran)\tFailed\t0" >>"$results"
        fi
done
stop_hogs

echo
echo "stress-tests: $runs run(s), $hogs hog(s), -j $jobs$( ((asan)) && echo ', ASan+UBSan'), $((SECONDS - t_all)) s"
awk -F'\t' '
        { n[$2]++; s[$2] += $4; if ($4 > mx[$2]) mx[$2] = $4
          if ($3 == "Passed") p[$2]++; else if ($3 == "Skipped") k[$2]++
          else f[$2] = f[$2] " " $1 ":" $3 }
        END { for (t in n) { r = n[t] - k[t]
                printf "%-45s %3d/%-3d %6.1f%% %7.1f %7.1f %s%s\n",
                t, p[t], r, r ? 100 * p[t] / r : 100, s[t] / n[t], mx[t],
                k[t] ? "skipped " k[t] "x " : "",
                (t in f) ? "failed in run:status" f[t] : "" } }
' "$results" | sort >"$out/summary.txt"
printf '%-45s %-7s %7s %7s %7s\n' test passed rate mean_s max_s
cat "$out/summary.txt"
if awk -F'\t' '$3 != "Passed" && $3 != "Skipped" { bad = 1 } END { exit !bad }' "$results"; then
        echo
        echo "stress-tests: failures (ctest log per run, work directories kept):"
        awk -F'\t' -v o="$out" '$3 != "Passed" && $3 != "Skipped" { t = $2; sub(/^[^.]*\./, "", t)
                print "  run " $1 ": " $2 " (" $3 "): " o "/run-" $1 ".log, " o "/run-" $1 "/" t "/" }' "$results"
        exit 1
fi
echo "stress-tests: every test passed in every run"
