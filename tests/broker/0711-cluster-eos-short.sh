#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Exactly-once on the three-broker cluster, short (ops/chaos.sh --scenario
# cluster --exactly-once runs it with any faults and length): a cluster of
# its own (replication factor 3, min.insync.replicas 2), three instances
# with processing.guarantee=exactly_once, tasks at 100/s, through a kill
# storm (four kill -9 of random instances about a second apart, each
# restarted at once under its instance.id, so its transactional.id fences
# the dead one) and then a SIGKILL of the broker leading most partitions.
# A read_committed reader (swarmq-producer wait) sees each task's result
# exactly once: lost 0, duplicates 0; the aborted transactions' results
# are there for a read_uncommitted reader.
source "$(dirname "$0")/../integration/lib.sh"

state=$build/tests/kafka3-eos
bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true
trap 'sq_cleanup; bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true' EXIT

out=$work/chaos.out
SQ_TEST_NAME="$test_name.chaos" bash "$src/ops/chaos.sh" --scenario cluster --exactly-once --rate 100 \
        --cluster-faults kill-storm,leader --kills 4 --window 300 \
        --build-dir "$build" --cluster-state "$state" --drain-timeout 90 \
        >"$out" 2>&1 ||
        { grep -v '^20[0-9][0-9]-' "$out" | tail -n 60 >&2; fail "ops/chaos.sh --scenario cluster --exactly-once failed"; }
grep -E '^\[chaos\]|^\||^  ' "$out"
row() {
        awk -F'|' -v c="$1" '$2 ~ /^ cluster / { gsub(/ /, "", $c); print $c }' "$out"
}
assert_eq "exactly once on the cluster: lost" "$(row 6)" 0
assert_eq "exactly once on the cluster: duplicates (read_committed)" "$(row 7)" 0
assert_eq "exactly once on the cluster: faults (4 kills, 1 leader)" "$(row 5)" 5
grep -q 'fault leader-kill-n' "$out" || fail "no leader kill"
log "passed"
