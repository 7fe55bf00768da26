#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The chaos suite, short (ops/chaos.sh runs the long one): on the real
# broker, three instances and 10,000 tasks of mixed duration, three kill -9
# of a random instance (each restarted), then in a second run the broker
# itself stopped with SIGTERM mid-run and started again on the same port
# and data. After each: every task id has a result (lost 0), duplicates
# within the bound (per fault: the instances' admission windows plus one
# commit interval of results), every instance healthy with lag 0 and the
# group's committed offsets at the end of the topic. Restarts the shared
# fixture broker in place (ops/kafka.sh restart keeps its port and data).
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

out=$work/chaos.out
SQ_TEST_NAME="$test_name.chaos" bash "$src/ops/chaos.sh" --scenario kill,broker --tasks 10000 --kills 3 \
        --broker-signals TERM --window 300 --build-dir "$build" \
        --kafka-state "$build/tests/kafka" --drain-timeout 60 >"$out" 2>&1 ||
        { tail -n 60 "$out" >&2; fail "ops/chaos.sh failed"; }
grep -E '^\[chaos\]|^\|' "$out"
# What a user reads: the summary rows, with lost = 0.
assert_eq "kill scenario: lost" \
        "$(awk -F'|' '$2 ~ /^ kill / { gsub(/ /, "", $6); print $6 }' "$out")" 0
assert_eq "broker scenario: lost" \
        "$(awk -F'|' '$2 ~ /^ broker / { gsub(/ /, "", $6); print $6 }' "$out")" 0
bash "$src/ops/kafka.sh" status --state-dir "$build/tests/kafka" >/dev/null ||
        fail "the fixture broker is not running after the restarts"
log "passed"
