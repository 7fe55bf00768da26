#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Workflows on a real Apache Kafka broker with
# processing.guarantee=exactly_once, across a kill -9 of the instance that
# owns a chord (the scenario: integration/workflows_kill9.sh, also run on
# the mock as integration/0028): a chord of 60 children and its join, a
# chain that succeeds and one that stops at its failed step. Every task's
# result and its ending on topic.workflows go in one transaction with its
# offset; the new owner of the chord's partition rebuilds it from the
# topic and ends it once, its join's input the 60 children in order.
# topic.workflows was created by the instances as they create it
# (topics.partitions partitions, compacted), not auto-created by the
# broker with its defaults.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

# The killed instance is not restarted, so nothing fences its open
# transaction: the broker aborts it after transaction.timeout.ms
# (librdkafka's default 60 s, plus up to the broker's 10 s abort check),
# and until then read_committed readers (the results wait below) see
# nothing past it on the partitions it wrote to. 10 s, as Kafka Streams
# uses under exactly-once, keeps that well inside the wait (0640 saw two
# results hidden past a 60 s wait on a loaded machine).

t_workflows=$prefix-workflows
common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X "topic.workflows=$t_workflows"
        -X workflows.enable=true -X topics.partitions=3 -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000 -X kafka.fetch.wait.max.ms=100
        -X executor.threads=4 -X processing.guarantee=exactly_once
        -X kafka.transaction.timeout.ms=10000)
prod_args=("${producer_topic_args[@]}")
wf_args=(--topic-workflows "$t_workflows")
wf_partitions=3
exactly_once=1
source "$(dirname "$0")/../integration/workflows_kill9.sh"
use_python_peer
"$python" - "$bootstrap" "$t_workflows" <<'PY' || fail "topic.workflows is not as the instances create it"
import sys
from confluent_kafka.admin import AdminClient, ConfigResource
admin, topic = AdminClient({"bootstrap.servers": sys.argv[1]}), sys.argv[2]
parts = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
res = ConfigResource(ConfigResource.Type.TOPIC, topic)
policy = admin.describe_configs([res])[res].result(timeout=10)["cleanup.policy"].value
print(f"{topic}: {parts} partitions, cleanup.policy={policy}")
sys.exit(0 if parts == 3 and policy == "compact" else 1)
PY
log "ok: chord-1 ended once with its 60 children's results, the chains as declared"
