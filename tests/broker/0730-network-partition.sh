#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Network partitions, short (ops/chaos.sh --scenario partition runs the
# long one): three instances on a broker of their own, c3 in a network
# namespace the scenario creates (a veth pair: traffic on this machine
# only), tasks at 100/s. c3 is cut off (packets silently dropped) for 2 s,
# less than the session timeout (6 s): no instance's assignment changes.
# Then for 12 s: c1 and c2 take c3's partitions, c3 logs that it lost its
# assignment (it commits nothing of it) and owns partitions again after
# the heal. Every submitted task has a result (lost 0), duplicates are
# counted and within the bound, every instance is healthy with lag 0.
# Needs root and network namespaces (ip netns): skipped (77) without.
source "$(dirname "$0")/../integration/lib.sh"

# A container without CAP_NET_ADMIN has root and ip but no namespaces:
# try one.
probe_ns=sqprobe$$
if ((EUID != 0)) || ! command -v ip >/dev/null ||
        ! ip netns add "$probe_ns" 2>/dev/null; then
        echo "skipped: needs root and iproute2 (ip netns) for a network namespace"
        exit 77
fi
ip netns del "$probe_ns"
state=$build/tests/kafka-part
trap 'sq_cleanup; bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true' EXIT

out=$work/chaos.out
SQ_TEST_NAME="$test_name.chaos" bash "$src/ops/chaos.sh" --scenario partition --rate 100 --cut-short 2 \
        --cut-long 12 --session 6 --window 300 --build-dir "$build" \
        --partition-state "$state" --drain-timeout 90 >"$out" 2>&1 ||
        { grep -v '^20[0-9][0-9]-' "$out" | tail -n 60 >&2; fail "ops/chaos.sh --scenario partition failed"; }
grep -E '^\[chaos\]|^\|' "$out"
# What a user reads: the summary row with lost = 0, the short cut without
# a rebalance, the long one taken over, noticed and healed.
assert_eq "partition scenario: lost" \
        "$(awk -F'|' '$2 ~ /^ partition / { gsub(/ /, "", $6); print $6 }' "$out")" 0
grep -q 'ok: short cut: c3 assignments (no rebalance)' "$out" ||
        fail "no check that the short cut caused no rebalance"
grep -qE 'c3 noticed [0-9.]+ s after the cut: .*assignment lost' "$out" ||
        fail "c3 did not say it lost its assignment"
grep -qE 'c3 rejoined and owns [1-9][0-9]* partitions' "$out" ||
        fail "c3 did not rejoin"
log "passed"
