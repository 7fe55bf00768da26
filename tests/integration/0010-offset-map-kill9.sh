#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The completed-offset map survives a crash (see offset_map_kill9.sh), on
# the mock cluster with 300 completions behind a slow head.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/offset_map_kill9.sh"

start_broker --partitions 1
producer_topic_args=()
run_offset_map_kill9 300 -b "$bootstrap"
log "passed"
