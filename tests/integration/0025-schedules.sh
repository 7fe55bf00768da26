#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Periodic schedules on the mock cluster (at least once), across a kill -9
# of the instance that fires them: the scenario is schedules_kill9.sh
# (broker/0640 runs it on real Kafka with exactly_once). The broker is a
# process of its own, so topic.schedules outlives the killed owner.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 3
common=(-b "$bootstrap" -X commit.interval.ms=200 -X kafka.session.timeout.ms=6000
        -X kafka.fetch.wait.max.ms=100)
prod_args=()
sched_topic=swarmq-schedules
tasks_topic=swarmq-tasks
exactly_once=0
source "$(dirname "$0")/schedules_kill9.sh"
log "ok: every beat tick fired once across the kill -9, none early; once and skip skipped the missed ticks"
