#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Periodic schedules on a real Apache Kafka broker with
# processing.guarantee=exactly_once, across a kill -9 of the instance that
# fires them (the scenario: integration/schedules_kill9.sh, also run on
# the mock as integration/0025). Each tick's task and tick record go in
# one transaction, and the new owner's init_transactions fences the
# killed one: every beat tick has exactly one task record and exactly one
# result, no gap, none early.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

# The killed instance is not restarted, so nothing fences its open
# transaction: the broker aborts it after transaction.timeout.ms
# (librdkafka's default 60 s, plus up to the broker's 10 s abort check),
# and until then read_committed readers (the results wait below) see
# nothing past it on the partitions it wrote to. 10 s, as Kafka Streams
# uses under exactly-once, keeps that well inside the wait (seen: 2 beat
# results hidden past a 60 s wait on a loaded machine).

common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000 -X kafka.fetch.wait.max.ms=100
        -X processing.guarantee=exactly_once
        -X kafka.transaction.timeout.ms=10000)
prod_args=("${producer_topic_args[@]}")
sched_topic=$t_schedules
tasks_topic=$t_tasks
exactly_once=1
source "$(dirname "$0")/../integration/schedules_kill9.sh"
log "ok: exactly once per tick across the kill -9 of the owner"
