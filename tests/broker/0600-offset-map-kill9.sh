#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The completed-offset map survives a crash (see
# tests/integration/offset_map_kill9.sh), on real Kafka 3.9 with 2,000
# completions behind a slow head (integration 0010 is the same on the mock
# cluster, with 300).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/offset_map_kill9.sh"

use_real_kafka
run_offset_map_kill9 2000 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X topics.partitions=1
log "passed"
