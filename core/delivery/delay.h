/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delay.h: what the retry lane does with a record that carries a due
 * time (a retry's backoff, a delayed task's not_before): run it, wait for
 * it at the head of its partition, or move it to the end of the topic.
 *
 * DESIGN
 *   Pure: times are passed in (wall clock milliseconds), so the rule is
 *   table-tested without a clock or a broker. The instance
 *   (consumer/instance/admission.c) applies the answer: a wait pauses the
 *   partition and seeks back to the record until the wake time; a move
 *   produces the record again at the end of the topic. The hold bound
 *   keeps one long delay from holding the records behind it for longer
 *   than @p hold_ms (docs/delayed-and-cancel.md).
 */
#ifndef SQ_DELAY_H
#define SQ_DELAY_H

#include "common.h"

typedef enum {
        SQ_DELAY_RUN,  /* due: admit it */
        SQ_DELAY_WAIT, /* hold the partition on it until *wakep */
        SQ_DELAY_MOVE, /* held for hold_ms already: to the end of the topic */
} sq_delay_action_t;

/**
 * @brief Decides for a record due at @p due_ms, written at @p written_ms
 *        (its Kafka timestamp; < 0 or in the future counts as now).
 * @param hold_ms how long a record not due may hold its partition after it
 *        was written (delay.hold.max.ms, > 0).
 * @param wakep set to when to look again (min of due and written +
 *        hold_ms) for SQ_DELAY_WAIT.
 */
sq_delay_action_t sq_delay_decide(int64_t due_ms, int64_t written_ms,
                                  int64_t now_ms, int64_t hold_ms,
                                  int64_t *wakep);

#endif /* SQ_DELAY_H */
