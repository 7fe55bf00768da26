#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The whole test suite, as CI runs it (.ci/run calls exactly this): installs
# the build and test dependencies, builds with warnings as errors, runs every
# ctest suite (unit, integration on the mock cluster, the real-Kafka suite
# on a broker the fixture starts from Maven Central jars), then builds again
# with AddressSanitizer + UBSan and runs the suite once more under them,
# then fuzzes the parsers for SWARMQ_FUZZ_TIME seconds (default 40).
#
#   ops/test.sh            everything
#   ops/test.sh --quick    one build, no sanitizer pass
#
# Exits non-zero on any failure. Test logs: build-ci/Testing/Temporary/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

"$root/ops/deps.sh" --test
"$root/ops/check-format.sh"

echo "test: building (warnings are errors)"
SWARMQ_WERROR=ON "$root/ops/build.sh" "$root/build-ci"
# -j4: at most two real-Kafka tests share the broker at a time, and one
# that restarts it or starts brokers of its own runs alone or one at a
# time (the slots of tests/resources.json); the integration tests, mostly
# waiting on group joins and backoffs, fill the other slots beside them
# (README, "Flaky tests").
echo "test: running the suite"
ctest --test-dir "$root/build-ci" --output-on-failure --timeout 600 -j4

if ((quick == 0)); then
        echo "test: building with ASan + UBSan"
        SWARMQ_WERROR=ON "$root/ops/build.sh" "$root/build-asan" \
                -DSWARMQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
        echo "test: running the suite under ASan + UBSan"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                ctest --test-dir "$root/build-asan" --output-on-failure \
                --timeout 900 -j4
fi
# A short libFuzzer run on the task decoder, the config parser and the
# other records swarmq reads (the kept corpus also runs in every build as
# unit.fuzz_replay_*). Skipped, loudly, where clang cannot build libFuzzer
# binaries.
echo "test: fuzzing (ops/fuzz.sh --time ${SWARMQ_FUZZ_TIME:-40})"
rc=0
"$root/ops/fuzz.sh" --time "${SWARMQ_FUZZ_TIME:-40}" \
        --build-dir "$root/build-fuzz" || rc=$?
if ((rc == 77)); then
        echo "test: WARNING: the fuzz run was SKIPPED (no clang/libFuzzer)" >&2
elif ((rc != 0)); then
        echo "test: the fuzzer found a problem (see above)" >&2
        exit 1
fi
echo "test: all suites passed"
