#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The consumer lag stays true while partitions are paused. librdkafka does
# not fetch a paused partition, so the high watermark its fetches report
# stops moving: before lag.refresh.interval.ms, /status and
# swarmq_consumer_lag read 0 behind a pause, exactly when the operator
# needs the figure. On the mock cluster: an admin pause and a full
# admission window, each with records produced behind it; the lag on
# /status and /metrics counts them, and is 0 again once they ran (the
# scenario is in lag_lib.sh; tests/broker/0605 runs it on real Kafka).
# SQ_TEST_LAG_REFRESH_MS=0 turns the refresher off: the test then fails.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lag_lib.sh"

lag_paused_scenario swarmq-tasks --embedded-broker
log "passed"
