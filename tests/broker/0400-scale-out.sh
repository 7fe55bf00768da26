#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Scale-out on real Kafka with the default (eager, roundrobin) assignor:
# a fourth instance joining and one leaving cleanly mid-run lose nothing
# and duplicate nothing: every task id gets exactly one result.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/scale_out.sh"
use_real_kafka
run_scale_out roundrobin 1
