#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Injected faults on the mock cluster, part 1: transport errors
# (connections closed under Produce, Fetch, OffsetCommit, Heartbeat) and
# request timeouts (brokers answering Produce, Fetch and OffsetCommit long
# after the clients' request timeout), while two instances run 3,000 tasks
# (CHAOS_TASKS; ops/chaos.sh runs it bigger) of mixed duration. Nothing is
# lost, duplicates stay within the admission windows, both instances stay
# healthy and the group's committed offsets reach the end of the topic
# (the scenario is in mock_faults.sh, shared with 0031).
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"
source "$(dirname "$0")/mock_faults.sh"

inject() {
        # Transport errors: the next requests of each kind find their
        # connection closed; librdkafka reconnects and retries.
        fault errors Produce _TRANSPORT 5
        fault errors Fetch _TRANSPORT 5
        fault errors OffsetCommit _TRANSPORT 3
        fault errors Heartbeat _TRANSPORT 2
        progress $((2 * n / 5))

        # Request timeouts: every broker answers the next requests 4 s
        # late, past the 2 s request timeout, so they time out and are
        # sent again.
        local b
        for b in 1 2 3; do
                fault broker-errors $b Produce NO_ERROR 4000 2
                fault broker-errors $b Fetch NO_ERROR 4000 1
                fault broker-errors $b OffsetCommit NO_ERROR 4000 1
        done
        progress $((2 * n / 3))
}
# The 2 s request and socket timeouts are what the delayed answers outlast.
mock_faults_scenario t30 4 inject -X kafka.socket.timeout.ms=2000 \
        -X kafka.request.timeout.ms=2000
log "passed"
