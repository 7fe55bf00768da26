/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.h: one rate limit's bucket on one instance: a group-wide rate
 * (tasks per second) and burst, of which this instance takes its share,
 * and the time each task it takes may start.
 *
 * DESIGN
 *   GCRA (the generic cell rate algorithm, a token bucket kept as one
 *   time): the bucket remembers the theoretical arrival time `tat` of the
 *   next task; a task reserved at `now` may start at max(now, tat - tau),
 *   and moves tat on by one interval. So a reservation always succeeds
 *   and says when: the caller holds the task until then (no retry loop,
 *   no polling), and tasks of one limit start in the order they were
 *   reserved. Interval and tau come from the share: this instance's rate
 *   is rate x share and its burst max(1, burst x share), so the group's
 *   instances together never exceed the limit. The share changes with the
 *   partitions an instance owns (consumer/instance/ratelimits.c); a
 *   change applies to the reservations made after it. A mutex guards the
 *   few fields: taken once per limited task, from executor threads. Time
 *   is passed in (monotonic microseconds) so tests need no clock.
 */
#ifndef SQ_RATELIMIT_H
#define SQ_RATELIMIT_H

#include "common.h"

#include <pthread.h>

typedef struct sq_ratelimit_s {
        pthread_mutex_t lock;
        double rate;         /* the group's tasks per second */
        double burst;        /* the group's burst, tasks */
        double share;        /* this instance's share, (0, 1] */
        int64_t interval_us; /* between two tasks here */
        int64_t tau_us;      /* how far ahead of tat a task may start */
        int64_t tat_us;      /* the theoretical arrival time of the next */
} sq_ratelimit_t;

/** @brief Initializes a bucket with the whole limit (share 1). */
void sq_ratelimit_init(sq_ratelimit_t *rl, double rate, double burst);
/** @brief Releases the bucket's lock. */
void sq_ratelimit_term(sq_ratelimit_t *rl);

/** @brief Sets the group-wide limit (a reload). Any thread. */
void sq_ratelimit_set(sq_ratelimit_t *rl, double rate, double burst);

/** @brief Sets this instance's share of the limit, clamped to (0, 1].
 *         Any thread. */
void sq_ratelimit_set_share(sq_ratelimit_t *rl, double share);

/**
 * @brief Takes one task's token.
 * @returns when the task may start (monotonic microseconds, >= @p now_us).
 *          Any thread.
 */
int64_t sq_ratelimit_reserve(sq_ratelimit_t *rl, int64_t now_us);

/** What a bucket holds now (sq_ratelimit_read()). */
typedef struct sq_ratelimit_view_s {
        double group_rate;  /**< the group's tasks per second */
        double group_burst; /**< the group's burst */
        double share;       /**< this instance's share */
        double rate;        /**< this instance's tasks per second */
        double burst;       /**< this instance's burst */
} sq_ratelimit_view_t;

/** @brief Reads the limit, the share and what they make here. */
sq_ratelimit_view_t sq_ratelimit_read(sq_ratelimit_t *rl);

#endif /* SQ_RATELIMIT_H */
