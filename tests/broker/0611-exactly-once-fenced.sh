#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# processing.guarantee=exactly_once, the failed-transaction path, on real
# Kafka: a second instance started by mistake with the running one's
# instance.id takes over its transactional.id and fences it. The fenced
# instance's open transaction cannot commit, and being fenced is fatal
# (unlike an abortable error, recovered from in place: integration tests
# 0034 and 0089): it names the cause in its log, stops with exit status 1
# at once (no drain: nothing it finishes can be committed), and leaves
# the group; the newcomer
# runs the rest. A read_committed reader still sees every task's result
# exactly once (the scenario is in exactly_once.sh, shared with 0610).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/exactly_once.sh"
use_real_kafka

fence() {
        producer "${producer_topic_args[@]}" wait --count 500 --timeout-ms 120000 \
                >/dev/null || fail "no progress before the second instance"
        # The same instance.id (-i), so the same transactional.id.
        log "starting c2 with c1's instance.id"
        start_consumer c2 "${common[@]}" -i c1

        # Within 30 s: it must not wait out the drain deadline (30 s) for
        # tasks whose results it can no longer commit.
        local rc=0
        wait_until 30 "c1 stopped after it was fenced" -- sq_gone "$c1_pid"
        wait "$c1_pid" || rc=$?
        assert_eq "fenced instance's exit status" "$rc" 1
        grep -q 'CRIT.*TXN.*failed: .*a fatal error: stopping' "$work/c1.log" ||
                fail "c1's log does not say its transaction failed for good"
        grep -qi 'fenced' "$work/c1.log" ||
                fail "c1's log does not name the cause (fenced)"
}
exactly_once_scenario 1000 fence "after the fenced instance stopped"
stop_consumers c2
log "passed"
