#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The same scale-out as 0400, with the cooperative-sticky assignor
# (incremental rebalancing). Nothing may be lost. Duplicates are allowed and
# reported: with librdkafka 2.0.2 a commit made while partitions are
# revoked incrementally sometimes fails with ILLEGAL_GENERATION, so the new
# owner runs part of the work again; that is why eager is the default.
#
# Not in the default suite: on librdkafka 2.0.2 the same ILLEGAL_GENERATION
# failures can also hold an instance's final synchronous commit for about
# 45 s after SIGTERM (seen in CI, 2026-11-28), so the run fails on timing
# that the default assignor never shows. Run it on purpose with
#   SWARMQ_TEST_COOPERATIVE=1 ctest --test-dir build -R 0410
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/scale_out.sh"
if [[ "${SWARMQ_TEST_COOPERATIVE:-0}" != 1 ]]; then
        log "SKIPPED: cooperative-sticky is not the default assignor and is unreliable on librdkafka 2.0.2; set SWARMQ_TEST_COOPERATIVE=1 to run it"
        exit 77 # ctest SKIP_RETURN_CODE: shown as skipped, not passed
fi
use_real_kafka
run_scale_out cooperative-sticky 0
