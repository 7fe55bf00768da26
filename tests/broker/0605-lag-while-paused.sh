#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The consumer lag stays true while partitions are paused, on real Kafka
# 3.9: the lag-while-paused scenario of tests/integration/0008 (an admin
# pause and a full admission window, each with records produced behind
# it; the lag on /status and /metrics counts them, and is 0 again once
# they ran), against a real broker's ListOffsets and fetch sessions.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/lag_lib.sh"

use_real_kafka
lag_paused_scenario "$t_tasks" -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X topics.partitions=3 -X kafka.session.timeout.ms=6000
log "passed"
