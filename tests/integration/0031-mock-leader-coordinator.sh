#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Injected faults on the mock cluster, part 2: leader loss (the task
# partitions, then the results partitions, leaderless for a while, then led
# by another broker), a broker going down and up, and the group
# coordinator moving between brokers (with NOT_COORDINATOR answers), while
# two instances run 3,000 tasks (CHAOS_TASKS; ops/chaos.sh runs it bigger)
# of mixed duration. Nothing is lost, duplicates stay within the admission
# windows, both instances stay healthy and the group's committed offsets
# reach the end of the topic (the scenario is in mock_faults.sh, shared
# with 0030).
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"
source "$(dirname "$0")/mock_faults.sh"

inject() {
        # Leader loss on the task partitions: fetches stop, the instances
        # keep polling and stay healthy; then broker 2 leads them all.
        fault leader swarmq-tasks all -1
        sleep 2 # the outage lasts 2 s (the experiment, not a synchronisation)
        fault leader swarmq-tasks all 2
        progress $((3 * n / 10))

        # Leader loss on the results partitions: results cannot be
        # acknowledged, so no offset may be committed past them; then
        # broker 3 leads them.
        fault leader swarmq-results all -1
        sleep 2
        fault leader swarmq-results all 3
        progress $((n / 2))

        # The group coordinator moves (twice), with NOT_COORDINATOR answers.
        fault coordinator group swarmq 2
        fault errors OffsetCommit NOT_COORDINATOR 2
        fault errors Heartbeat NOT_COORDINATOR 2
        progress $((2 * n / 3))
        fault coordinator group swarmq 3

        # A broker leading partitions goes down and comes back.
        fault down 1
        sleep 2
        fault up 1
        progress $((5 * n / 6))
}
mock_faults_scenario t31 5 inject
log "passed"
