#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The admission window holds: with admission.high.mark=20 the instance never
# has more than 20 ordinary tasks admitted, however many wait in Kafka. The
# window bounds memory and what a crash can make run twice, so it must be
# the configured mark, not the mark plus a poll batch (a regression test:
# the lane used to pause only after a whole batch of 512 records).
# At the mark intake holds: records wait in the consumer's prefetch and are
# taken as soon as a task leaves the window. A hold becomes a pause (which
# drops librdkafka's prefetch, fetched again after the resume) only when
# no task leaves for 500 ms; with tasks of 10 ms it never does.
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X admission.high.mark=20 -X admission.low.mark=10
wait_ready "$c1_http"

# 600 tasks of 10 ms on 2 threads: about 3 s of work, all in Kafka at once.
producer -q submit --count 600 --type sleep --payload 10 \
        --ids-out "$work/ids" || fail "submit failed"

peak=0
samples=0
sample() { # records the peak of the window; succeeds once 600 finished
        n=$(metric_sum "$c1_http" '^swarmq_tasks_in_flight\{lane="tasks"\}')
        ((n > peak)) && peak=$n
        samples=$((samples + 1))
        done_cnt=$(metric_sum "$c1_http" '^swarmq_tasks_total\{')
        echo "$done_cnt finished"
        ((done_cnt >= 600))
}
wait_until 120 "600 tasks finished" --every 0.05 -- sample
log "admitted at most $peak tasks over $samples samples"
producer wait --ids-file "$work/ids" --timeout-ms 60000 >/dev/null ||
        fail "not every task finished"
((peak >= 10)) || fail "the window never filled (peak $peak): the test saw no backlog"
((peak <= 20)) || fail "the window reached $peak tasks, over admission.high.mark=20"
holds=$(metric_sum "$c1_http" '^swarmq_admission_holds_total')
pauses=$(metric_sum "$c1_http" '^swarmq_admission_pauses_total')
log "intake held $holds times, paused $pauses times"
((holds > 0)) || fail "the full window never held intake"
assert_eq "pauses (tasks left the window every few ms: no hold lasted 500 ms)" "$pauses" 0
log "passed"
