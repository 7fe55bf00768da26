/* SPDX-License-Identifier: Apache-2.0 */
/*
 * breaker.h: a per-agent circuit breaker: closed, open, half-open with
 * probe tasks. A pure state machine over a clock passed in by the caller.
 *
 * DESIGN
 *   Closed: every task may run. `failures` failures with no success in
 *   between, the first and the last at most `window` apart, open it.
 *   Open: no task may run on the agent until `open` has passed since it
 *   opened; then sq_breaker_tick() makes it half-open.
 *   Half-open: at most `probes` tasks run at once as probes; `probes`
 *   successful probes close it, one failed probe opens it again for
 *   another `open` period. Outcomes of tasks that started before the
 *   agent opened (not probes) are ignored while it is open or half-open.
 *   `failures` = 0 disables the breaker (always closed).
 *
 *   No locks and no clock reads here: the owner (agents.c) calls these
 *   under its registry mutex with sq_clock_us(), which keeps the state
 *   machine table-testable without timing.
 */
#ifndef SQ_BREAKER_H
#define SQ_BREAKER_H

#include "common.h"

typedef enum {
        SQ_BREAKER_CLOSED    = 0,
        SQ_BREAKER_HALF_OPEN = 1,
        SQ_BREAKER_OPEN      = 2,
} sq_breaker_state_t;
#define SQ_BREAKER_STATE_CNT 3

typedef struct sq_breaker_conf_s {
        int failures;      /**< failures that open it; 0 = disabled */
        int64_t window_us; /**< the failures fall within this span */
        int64_t open_us;   /**< how long it stays open before probing */
        int probes;        /**< concurrent probes; successes to close */
} sq_breaker_conf_t;

typedef struct sq_breaker_s {
        sq_breaker_state_t state;
        int fails;             /* closed: failures counted */
        int64_t first_fail_us; /* closed: when the count started */
        int64_t open_until_us; /* open: when it may go half-open */
        int probes_out;        /* probes running */
        int probes_ok;         /* half-open: probes that succeeded */
} sq_breaker_t;

/** @brief Starts closed. */
void sq_breaker_init(sq_breaker_t *breaker);

/**
 * @brief Moves an open breaker whose open period has passed to half-open.
 * @returns true when the state changed.
 */
bool sq_breaker_tick(sq_breaker_t *breaker, int64_t now_us);

/**
 * @brief Asks to start a task on the agent.
 * @param probep set to true when the task is a half-open probe (report
 *        its outcome with probe=true, or give it back with
 *        sq_breaker_cancel()).
 * @returns true when the task may run now.
 */
bool sq_breaker_allow(sq_breaker_t *breaker, const sq_breaker_conf_t *conf,
                      bool *probep);

/** @returns whether a task could start now, without taking a probe. */
bool sq_breaker_could_allow(const sq_breaker_t *breaker,
                            const sq_breaker_conf_t *conf);

/**
 * @brief Records a finished task's outcome.
 * @param probe what sq_breaker_allow() said about this task.
 * @returns true when the state changed.
 */
bool sq_breaker_record(sq_breaker_t *breaker, const sq_breaker_conf_t *conf,
                       int64_t now_us, bool probe, bool success);

/** @brief Gives back a probe that did not run (its job was dropped). */
void sq_breaker_cancel(sq_breaker_t *breaker, bool probe);

/** @returns "closed", "half_open" or "open". */
const char *sq_breaker_state_name(sq_breaker_state_t state);

#endif /* SQ_BREAKER_H */
