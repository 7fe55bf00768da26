#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fuzzes swarmq's input parsers with libFuzzer (Debian clang +
# libclang-rt-14-dev, installed by ops/deps.sh --test):
#   task    the task decoder (Confluent-framed Avro and JSON tasks), with
#           Avro and JSON round-trip checks (tests/fuzz/fuzz_task.c)
#   config  the properties-file and SWARMQ_* environment parser
#           (tests/fuzz/fuzz_config.c)
#   records results and events (Avro and JSON, with round trips), control
#           records and schedule tick records (tests/fuzz/fuzz_records.c)
#
# DESIGN: a build directory of its own configured with CC=clang and
# -DSWARMQ_FUZZ=ON (the whole core instrumented, ASan+UBSan on). Each
# target starts from the kept corpus tests/fuzz/corpus/<target>/ (read
# only) and writes what it discovers to a scratch corpus in the build
# directory; --merge folds the new coverage back into the kept corpus
# (libFuzzer -merge=1, so only inputs that add coverage are kept). A crash,
# leak, UB report or broken round trip leaves its input under
# <build>/fuzz-out/<target>/ and makes the script exit 1: add that input to
# the kept corpus with the fix, so fuzz-replay-<target> (a unit test) keeps
# it fixed. Without clang the script says so and exits 77 (skipped).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
total=60
targets=(task config records)
build=$root/build-fuzz
merge=0

usage() {
        cat <<EOF2
Usage: ops/fuzz.sh [--time S] [--target task|config|records]... [--merge]
                   [--build-dir DIR]

Builds the libFuzzer harnesses with clang and runs each for its share of
S seconds (default $total in all), starting from tests/fuzz/corpus/<target>/.
Prints each target's runs, executions per second and new coverage, and a
summary table. Exit 0 when nothing was found, 1 on a finding (its input is
saved and named), 2 on bad usage, 77 when clang or libFuzzer is missing.

Options:
  --time S          total fuzzing seconds, split evenly between targets
  --target T        fuzz only T (repeatable): task, config, records
  --merge           after fuzzing, merge inputs that add coverage into
                    tests/fuzz/corpus/<target>/ (to commit)
  --build-dir DIR   build directory (default $build)
  -h, --help        this help
EOF2
}

die() {
        echo "fuzz.sh: $*" >&2
        exit 2
}

chosen=()
while (($#)); do
        case "$1" in
        --time)
                (($# >= 2)) || die "--time needs seconds"
                total=$2
                shift 2
                ;;
        --time=*) total=${1#*=} && shift ;;
        --target)
                (($# >= 2)) || die "--target needs task, config or records"
                chosen+=("$2")
                shift 2
                ;;
        --target=*) chosen+=("${1#*=}") && shift ;;
        --merge) merge=1 && shift ;;
        --build-dir)
                (($# >= 2)) || die "--build-dir needs a directory"
                build=$2
                shift 2
                ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/fuzz.sh --help)" ;;
        esac
done
[[ "$total" =~ ^[1-9][0-9]*$ ]] || die "--time must be a positive integer, not '$total'"
if ((${#chosen[@]})); then
        for t in "${chosen[@]}"; do
                [[ "$t" == task || "$t" == config || "$t" == records ]] ||
                        die "unknown target '$t' (task, config or records)"
        done
        targets=("${chosen[@]}")
fi

if ! command -v clang >/dev/null 2>&1; then
        echo "fuzz.sh: SKIPPED: clang is not installed (apt-get install -y" \
                "clang libclang-rt-14-dev; bash ops/deps.sh --test does it)" >&2
        exit 77
fi
probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
        rm -rf "$probe"
        echo "fuzz.sh: SKIPPED: clang cannot link libFuzzer" \
                "(apt-get install -y libclang-rt-14-dev)" >&2
        exit 77
fi
rm -rf "$probe"

echo "fuzz.sh: building the harnesses with clang in $build" >&2
CC=clang cmake -S "$root" -B "$build" -DSWARMQ_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
names=()
for t in "${targets[@]}"; do
        names+=("fuzz-$t")
done
cmake --build "$build" -j2 --target "${names[@]}" >/dev/null

per=$((total / ${#targets[@]}))
((per >= 1)) || per=1
rows=()
found=0
for t in "${targets[@]}"; do
        kept=$root/tests/fuzz/corpus/$t
        scratch=$build/fuzz-corpus/$t
        out=$build/fuzz-out/$t
        log=$build/fuzz-$t.log
        mkdir -p "$scratch" "$out"
        dict=()
        [[ -f "$root/tests/fuzz/$t.dict" ]] && dict=(-dict="$root/tests/fuzz/$t.dict")
        echo "fuzz.sh: fuzzing $t for ${per}s (corpus $kept, log $log)" >&2
        # The task and records harnesses keep one codec across inputs
        # (see fuzz_task.c): no per-input leak check while fuzzing, one
        # pass with leak detection at exit over every input afterwards.
        leaks=1
        [[ "$t" == task || "$t" == records ]] && leaks=0
        rc=0
        ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                "$build/tests/fuzz/fuzz-$t" -max_total_time="$per" \
                -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
                -detect_leaks=$leaks -print_final_stats=1 \
                -artifact_prefix="$out/" "${dict[@]}" \
                "$scratch" "$kept" >"$log" 2>&1 || rc=$?
        if ((rc == 0 && leaks == 0)); then
                ASAN_OPTIONS=detect_leaks=1 \
                        "$build/tests/fuzz/fuzz-$t" -runs=0 -max_len=8192 \
                        -artifact_prefix="$out/leak-" "$scratch" "$kept" \
                        >"$log.leaks" 2>&1 || {
                        rc=$?
                        cat "$log.leaks" >>"$log"
                        echo "fuzz.sh: $t leaks memory on some input of" \
                                "$scratch or $kept (see $log.leaks)" >&2
                }
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
        units=$(find "$scratch" -type f | wc -l)
        verdict=ok
        if ((rc != 0)); then
                verdict=FOUND
                found=1
                echo "fuzz.sh: $t found a problem (exit $rc); input(s):" >&2
                ls -1 "$out" >&2 || true
                grep -E '^(==|SUMMARY|fuzz_|.*runtime error)' "$log" | head -20 >&2 || true
        fi
        rows+=("$(printf '%-8s %6ss %12s %10s %8s %10s  %s' "$t" "$per" \
                "${runs:-?}" "${eps:-?}" "${cov:-?}" "$units" "$verdict")")
        if ((merge)); then
                mkdir -p "$build/fuzz-merge-ctl"
                "$build/tests/fuzz/fuzz-$t" -merge=1 -max_len=8192 \
                        -merge_control_file="$build/fuzz-merge-ctl/$t" \
                        "$kept" "$scratch" >>"$log" 2>&1 ||
                        echo "fuzz.sh: merging into $kept failed (see $log)" >&2
                echo "fuzz.sh: $kept holds $(find "$kept" -type f | wc -l) inputs" >&2
        fi
done

printf '%-8s %7s %12s %10s %8s %10s  %s\n' target time runs "exec/s" cov \
        "new-units" verdict
for r in "${rows[@]}"; do
        echo "$r"
done
exit "$found"
