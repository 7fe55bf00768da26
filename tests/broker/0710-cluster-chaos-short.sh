#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The three-broker chaos scenario, short (ops/chaos.sh --scenario cluster
# runs the long one): a cluster of its own (ops/kafka.sh start --brokers 3:
# replication factor 3, min.insync.replicas 2), three instances, tasks
# submitted at 100/s throughout, while (a) the broker leading most of the
# scenario's partitions is killed with SIGKILL and started again, (c) two
# brokers are killed at once: task writes must stop (no submit completes
# for 5 s; none fails), and resume when both are back. (b), the rolling
# restart of all three, is in the long form only: three more broker
# restarts would take this test past two minutes.
# Then: every submitted task has a result (lost 0), duplicates within the
# bound (per fault: the admission windows plus one commit interval of
# results), every instance healthy with lag 0 and the group committed to
# the end; the recovery time of each fault is printed.
source "$(dirname "$0")/../integration/lib.sh"

state=$build/tests/kafka3
# A cluster left by an interrupted run would be reused and then kept.
bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true
trap 'sq_cleanup; bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true' EXIT

out=$work/chaos.out
SQ_TEST_NAME="$test_name.chaos" bash "$src/ops/chaos.sh" --scenario cluster --rate 100 --down-stall 5 \
        --cluster-faults leader,two-down \
        --window 300 --build-dir "$build" --cluster-state "$state" \
        --drain-timeout 90 >"$out" 2>&1 ||
        { grep -v '^20[0-9][0-9]-' "$out" | tail -n 60 >&2; fail "ops/chaos.sh --scenario cluster failed"; }
grep -E '^\[chaos\]|^\||^  ' "$out"
# What a user reads: the summary row with lost = 0, and one recovery line
# per fault (leader kill, two down).
assert_eq "cluster scenario: lost" \
        "$(awk -F'|' '$2 ~ /^ cluster / { gsub(/ /, "", $6); print $6 }' "$out")" 0
assert_eq "cluster scenario: faults" \
        "$(awk -F'|' '$2 ~ /^ cluster / { gsub(/ /, "", $5); print $5 }' "$out")" 2
assert_eq "faults with a recovery line" "$(grep -c '^  fault ' "$out")" 2
grep -q 'writes stopped: ' "$out" ||
        fail "no sign that task writes stopped with two brokers down"
log "passed"
