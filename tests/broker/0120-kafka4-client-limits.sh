#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What librdkafka 2.0.2 (Debian's, which swarmq links) cannot do against
# Apache Kafka 4.x, shown as a user meets it (docs/operations.md, "Kafka
# versions"): KIP-848's consumer group protocol, which 4.x brokers offer
# beside the classic one, is not known to this client. Asking for it
# (kafka.group.protocol=consumer) makes swarmq-consumer refuse to start
# with exit 2 and librdkafka's error naming the property, before it
# touches the broker; without it the same instance joins the group with
# the classic protocol on the fixture broker (Kafka 4.4.0 in CI) and gets
# its partitions.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

rc=0
"$consumer_bin" -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X kafka.group.protocol=consumer >"$work/kip848.log" 2>&1 || rc=$?
cat "$work/kip848.log"
assert_eq "exit status with kafka.group.protocol=consumer" "$rc" 2
grep -q 'Kafka property "group.protocol" = "consumer": No such configuration property: "group.protocol"' \
        "$work/kip848.log" ||
        fail "the refusal does not name group.protocol and librdkafka's error"

start_consumer classic -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X topics.partitions=3
wait_ready "$classic_http"
wait_until 30 "the classic-protocol member owns the 3 task partitions" -- \
        value_is -eq 3 metric_sum "$classic_http" '^swarmq_partitions_assigned\{lane="tasks"'
log "ok: the classic-protocol member owns the 3 task partitions"
stop_consumers classic
log "passed"
