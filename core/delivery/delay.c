/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delay.c: the retry lane's rule for a record not yet due (see delay.h).
 */
#include "delay.h"

sq_delay_action_t sq_delay_decide(int64_t due_ms, int64_t written_ms,
                                  int64_t now_ms, int64_t hold_ms,
                                  int64_t *wakep) {
        int64_t wake;

        if (due_ms <= now_ms)
                return SQ_DELAY_RUN;
        /* A timestamp from a clock ahead of ours, or none, holds from now:
         * never a move right away, which could loop on the record's own
         * copy. */
        if (written_ms < 0 || written_ms > now_ms)
                written_ms = now_ms;
        wake =
            written_ms > INT64_MAX - hold_ms ? INT64_MAX : written_ms + hold_ms;
        if (wake > due_ms)
                wake = due_ms;
        if (wake > now_ms) {
                *wakep = wake;
                return SQ_DELAY_WAIT;
        }
        return SQ_DELAY_MOVE;
}
