#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The completed-offset map never outgrows commit.metadata.max.bytes: one
# partition holding six slow tasks with 40 quick ones after each, so the
# quick ones finish in six separate runs above the first slow one. The
# slow tasks run until the test releases them (an exec agent waiting for
# a file, at most 60 s), not for a fixed time that a loaded machine could
# spend submitting the blocks. With a
# 32-byte budget the map passes its pause mark (24 bytes): the partition
# is paused (counted on /metrics), every committed map stays within the
# budget, and once the slow tasks finish every task has its result.
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X embedded.partitions=1 \
        -X executor.threads=8 -X commit.interval.ms=100 \
        -X commit.metadata.max.bytes=32 -X agent.gate.kind=exec \
        -X agent.gate.concurrency=8 \
        -X "agent.gate.command=[\"/bin/sh\", \"-c\", \"i=0; while [ ! -e '$work/release' ] && [ \$i -lt 1200 ]; do /bin/sleep 0.05; i=\$((i + 1)); done\"]"
wait_ready "$c1_http"

: >"$work/all.ids"
for block in 1 2 3 4 5 6; do
        producer -q submit --type gate --id-prefix slow$block \
                --ids-out "$work/slow.ids" || fail "submit failed"
        cat "$work/slow.ids" >>"$work/all.ids"
        producer -q submit --count 40 --type noop --id-prefix quick$block \
                --ids-out "$work/quick.ids" || fail "submit failed"
        cat "$work/quick.ids" >>"$work/all.ids"
done

max_bytes=0
sample_map() { # records the largest map; succeeds once the partition
        # paused and a committed map was seen (the slow tasks hold it)
        bytes=$(metric_sum "$c1_http" '^swarmq_offset_map_bytes')
        ((bytes > max_bytes)) && max_bytes=$bytes
        pauses=$(metric_sum "$c1_http" '^swarmq_offset_map_pauses_total')
        echo "pauses $pauses, largest map $max_bytes bytes"
        ((pauses >= 1 && max_bytes > 0))
}
wait_until 60 "the partition paused for its map, a map committed" --every 0.05 -- sample_map
grep -q "completed-offset map needs" "$work/c1.log" ||
        fail "no log line says why the partition paused"
touch "$work/release"
producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --json \
        >"$work/summary.json" || fail "tasks missing"
assert_eq "distinct tasks with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 246
bytes=$(metric_sum "$c1_http" '^swarmq_offset_map_bytes')
((bytes > max_bytes)) && max_bytes=$bytes
log "largest committed map seen: $max_bytes bytes (budget 32)"
((max_bytes <= 32)) || fail "a committed map of $max_bytes bytes exceeds the budget"
# Everything done: the map is empty again.
wait_until 20 "map bytes once every task finished = 0" -- \
        value_is -eq 0 metric_sum "$c1_http" '^swarmq_offset_map_bytes'
assert_eq "map bytes once every task finished" "$wait_seen" 0
stop_consumers c1
log "passed"
