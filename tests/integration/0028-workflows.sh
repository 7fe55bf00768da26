#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Workflows on the mock cluster (at least once), across a kill -9 of the
# instance that owns a chord: the scenario is workflows_kill9.sh
# (broker/0650 runs it on real Kafka with exactly_once). The broker is a
# process of its own, so topic.workflows outlives the killed owner.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 3
common=(-b "$bootstrap" -X workflows.enable=true -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000 -X kafka.fetch.wait.max.ms=100
        -X executor.threads=4)
prod_args=()
wf_args=()
wf_partitions=3
exactly_once=0
source "$(dirname "$0")/workflows_kill9.sh"
log "ok: chord-1 ended once with its 61 children's results, the chains as declared"
