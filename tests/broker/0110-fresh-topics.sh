#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An instance that creates its topics gets their partitions in its first
# assignment: six instances, one after the other, each on topics that do
# not exist yet (topics.create, 3 partitions), must each own the 3 task
# partitions once /readyz says ready. The consumer subscribes before the
# topics exist, and a KRaft broker knows a created topic only some time
# after CreateTopics answers: unless the instance waits until its metadata
# lists them, the group's assignment lacks the new topics and the instance
# runs nothing until its next metadata refresh, minutes later (0600, 0601
# and 0602 failed so under load; about one start in four lost the race on
# 2 busy cores).
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

for ((k = 1; k <= 6; k++)); do
        name=fresh$k
        start_consumer "$name" -b "$bootstrap" -g "$group-$k" -X topics.partitions=3 \
                -X "topic.tasks=$t_tasks-$k" -X "topic.critical=$t_critical-$k" \
                -X "topic.retry=$t_retry-$k" -X "topic.dlt=$t_dlt-$k" \
                -X "topic.results=$t_results-$k" -X "topic.events=$t_events-$k"
        url_var=${name}_http
        wait_ready "${!url_var}"
        assert_eq "$name: task partitions in its first assignment" \
                "$(metric_sum "${!url_var}" '^swarmq_partitions_assigned\{lane="tasks"')" 3
        grep -q "created topic=$t_tasks-$k " "$work/$name.log" ||
                fail "$name did not create its tasks topic (the case under test)"
        stop_consumers "$name"
done
log "passed"
