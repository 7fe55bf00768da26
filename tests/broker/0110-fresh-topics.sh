#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An instance that creates its topics gets them as configured, and their
# partitions in its first assignment: six instances, one after the other,
# each on topics that do not exist yet (topics.create, 3 partitions), on a
# broker that auto-creates topics (12 partitions, as Kafka does by
# default with its own num.partitions).
#
# - Each must own the 3 task partitions once /readyz says ready. A KRaft
#   broker knows a created topic only some time after CreateTopics
#   answers: unless the instance waits until its metadata lists them, and
#   subscribes only then, the group's assignment lacks the new topics and
#   the instance runs nothing until its next metadata refresh, minutes
#   later (0600, 0601 and 0602 failed so under load; about one start in
#   four lost the race on 2 busy cores).
# - Each must have created every topic it writes to itself, with 3
#   partitions: a topic handle made before the topics step asked for the
#   topic's metadata, the broker auto-created it with its own defaults
#   (12 partitions, its default.replication.factor), and the topics step
#   then found it there ("exists"): topics.partitions and
#   topics.replication.factor silently not applied (0610 showed a
#   12-partition retry topic).
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
        for t in tasks critical retry dlt results events; do
                var=t_$t
                topic=${!var}-$k
                grep -q "created topic=$topic " "$work/$name.log" ||
                        fail "$name did not create topic $topic itself" \
                                "(auto-created by the broker first?): $(grep -F "$topic" "$work/$name.log")"
                # It exists now: kcat's metadata request cannot create it.
                meta=$(kcat -b "$bootstrap" -L -t "$topic" -m 5 2>&1) || true
                [[ "$meta" == *"\"$topic\" with 3 partitions"* ]] ||
                        fail "$name: topic $topic has not 3 partitions: $meta"
        done
        stop_consumers "$name"
done
log "passed"
