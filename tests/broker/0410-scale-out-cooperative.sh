#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The same scale-out as 0400, with the cooperative-sticky assignor
# (incremental rebalancing). Nothing may be lost. Duplicates are allowed and
# reported: with librdkafka 2.0.2 a commit made while partitions are
# revoked incrementally sometimes fails with ILLEGAL_GENERATION, so the new
# owner runs part of the work again; that is why eager is the default.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/scale_out.sh"
use_real_kafka
run_scale_out cooperative-sticky 0
